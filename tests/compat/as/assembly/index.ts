// An AssemblyScript program on @assemblyscript/wasi-shim: console, process.env
// and Date are WASI calls, which keycard decides and audits.

export function run(): i32 {
  console.log("hello from AssemblyScript");
  const region = process.env.has("REGION") ? process.env.get("REGION") : "(none)";
  console.log("region=" + region);
  console.log("now=" + Date.now().toString());
  return 0;
}
