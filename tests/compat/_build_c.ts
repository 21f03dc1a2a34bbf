// Builds the C compat plugins with Debian's clang and wasi-libc (.ci/run installs them).

const dir = new URL("./c/", import.meta.url);

/**
 * Whether the C toolchain is here: clang (run permission and the binary) and
 * wasi-libc. .ci/run installs them; a bare machine skips the C tests.
 */
export const hasClang: boolean = (() => {
  if (Deno.permissions.querySync({ name: "run", command: "clang" }).state !== "granted") return false;
  try {
    return new Deno.Command("clang", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success &&
      Deno.statSync("/usr/lib/wasm32-wasi/libc.a").isFile;
  } catch {
    return false;
  }
})();

/** Compiles `tests/compat/c/<name>.c` to a WASI reactor; returns its bytes and manifest text. */
export async function buildC(name: string): Promise<{ wasm: Uint8Array; manifest: string; path: string }> {
  const source = new URL(`${name}.c`, dir).pathname;
  const path = new URL(`build/${name}.wasm`, dir).pathname;
  await Deno.mkdir(new URL("build/", dir), { recursive: true });
  const { code, stderr } = await new Deno.Command("clang", {
    args: ["--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "--sysroot=/usr", "-o", path, source],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `clang failed on ${name}.c (install clang lld wasi-libc libclang-rt-14-dev-wasm32):\n${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  return {
    wasm: await Deno.readFile(path),
    manifest: await Deno.readTextFile(new URL(`${name}.yaml`, dir)),
    path,
  };
}
