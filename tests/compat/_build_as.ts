// Builds the AssemblyScript compat program on @assemblyscript/wasi-shim.
import shimConfig from "@assemblyscript/wasi-shim/asconfig.json" with { type: "json" };
import { join } from "node:path";

/** Compiles tests/compat/as/assembly/index.ts with the shim; returns its bytes and manifest text. */
export async function buildAs(): Promise<{ wasm: Uint8Array; manifest: string }> {
  const { default: asc } = await import("assemblyscript/asc");
  // The shim's files sit in Deno's npm cache; its asconfig names them relative to itself.
  const shim = new URL(".", import.meta.resolve("@assemblyscript/wasi-shim/asconfig.json")).pathname;
  const root = new URL("./as/", import.meta.url).pathname;
  const options = shimConfig.options;
  let wasm: Uint8Array | undefined;
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([
    "assembly/index.ts",
    "--baseDir",
    root,
    "--outFile",
    "wasi_as.wasm",
    "-O2",
    "--lib",
    join(shim, options.lib),
    ...options.use.flatMap((use: string) => ["--use", use]),
    "--exportStart",
    options.exportStart,
    "--noColors",
  ], {
    stdout: asc.createMemoryStream(),
    stderr,
    readFile: (name: string, baseDir: string) => {
      try {
        return Deno.readTextFileSync(name.startsWith("/") ? name : join(baseDir, name));
      } catch {
        return null;
      }
    },
    writeFile: (name: string, contents: Uint8Array | string) => {
      if (name.endsWith(".wasm") && typeof contents !== "string") wasm = contents;
    },
    listFiles: (dirname: string, baseDir: string) => {
      try {
        const dir = dirname.startsWith("/") ? dirname : join(baseDir, dirname);
        return [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".ts")).map((e) => e.name);
      } catch {
        return null;
      }
    },
  });
  if (error || !wasm) throw new Error(`asc: ${error?.message ?? "no output"}\n${stderr.toString()}`);
  return { wasm, manifest: await Deno.readTextFile(join(root, "wasi_as.yaml")) };
}
