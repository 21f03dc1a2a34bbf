// The isolate really holds: plugin workers have no Deno permissions, and the
// runtime and host code import nothing of the registry or secrets.
import assert from "node:assert/strict";
import { WorkerShell } from "../src/runtime/_instance.ts";
import type { WorkerReply } from "../src/runtime/_protocol.ts";

Deno.test("a plugin worker is denied file, network, env, run, sys and ffi access", async () => {
  // The test process itself holds these, so a denial is the worker's own.
  for (
    const descriptor of [
      { name: "read", path: "deno.json" },
      { name: "write", path: "plugins" },
      { name: "net", host: "127.0.0.1:9" },
      { name: "env", variable: "CI" },
    ] as const
  ) {
    assert.equal(Deno.permissions.querySync(descriptor).state, "granted", `test lacks ${descriptor.name}`);
  }
  const shell = new WorkerShell();
  try {
    await shell.booted;
    const results = await new Promise<Record<string, string>>((resolve) => {
      shell.listen((reply: WorkerReply) => {
        if (reply.type === "selfcheck") resolve(reply.results);
      });
      shell.send({ type: "selfcheck" });
    });
    assert.deepEqual(results, {
      read: "NotCapable",
      write: "NotCapable",
      net: "NotCapable",
      env: "NotCapable",
      run: "NotCapable",
      sys: "NotCapable",
      ffi: "NotCapable",
    });
  } finally {
    shell.terminate();
  }
});

const FORBIDDEN = [/\/registry\//, /\/http\//, /\/gateway\//, /\/cli\//, /token/i, /secret/i, /admin/i];

async function importsOf(dir: URL): Promise<{ file: string; specifier: string }[]> {
  const found: { file: string; specifier: string }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) found.push(...await importsOf(url));
    else if (entry.name.endsWith(".ts")) {
      const source = await Deno.readTextFile(url);
      for (
        const match of source.matchAll(/(?:import|export)[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']/g)
      ) {
        found.push({ file: url.pathname, specifier: match[1] ?? match[2]! });
      }
    }
  }
  return found;
}

Deno.test("src/runtime and src/host import no registry, HTTP, token or admin code", async () => {
  for (const folder of ["runtime", "host"]) {
    const dir = new URL(`../src/${folder}/`, import.meta.url);
    try {
      await Deno.stat(dir);
    } catch {
      continue; // src/host arrives with the policy issue
    }
    const imports = await importsOf(dir);
    assert.ok(folder !== "runtime" || imports.length > 0, "found no imports: the scan is broken");
    for (const { file, specifier } of imports) {
      for (const pattern of FORBIDDEN) {
        assert.doesNotMatch(specifier, pattern, `${file} imports ${specifier}`);
      }
    }
  }
});
