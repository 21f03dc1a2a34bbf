// A plain WASI C program (printf, getenv, time, fopen, exit), built with
// Debian's clang and wasi-libc, through the conformance CLI and the gateway:
// with grants that allow it, and with an empty grant (every call a denial the
// program sees as an errno, never a crash of the host).
import assert from "node:assert/strict";
import { denoCommand } from "../_test_utils.ts";
import { compatGateway } from "./_gateway.ts";
import { buildC, hasClang } from "./_build_c.ts";

const SKIP = hasClang ? "" : " (ignored: needs clang and wasi-libc, which .ci/run installs)";

Deno.test({
  name: "a WASI C program passes deno task conform" + (denoCommand ? SKIP : " (ignored: needs --allow-run=deno)"),
  ignore: denoCommand === undefined || !hasClang,
}, async () => {
  const { path, manifest } = await buildC("wasi_hello");
  const manifestPath = path.replace(/\.wasm$/, ".yaml");
  await Deno.writeTextFile(manifestPath, manifest);
  const { code, stdout } = await new Deno.Command(denoCommand!, {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env=CI,LOG_TOKENS,LOG_STREAM",
      new URL("../../src/cli/conform.ts", import.meta.url).pathname,
      path,
      "--manifest",
      manifestPath,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stdout));
});

Deno.test({
  name: "a WASI C program runs through the gateway with its grants: stdout, env, clock, files" + SKIP,
  ignore: !hasClang,
}, async () => {
  const { wasm, manifest } = await buildC("wasi_hello");
  const g = await compatGateway("wasi-hello", wasm, manifest);
  try {
    const response = await g.request("/v1/plugins/wasi-hello/invoke/run", { method: "POST" });
    assert.equal(response.status, 200, await response.text());
    assert.equal(await Deno.readTextFile(`${g.dir}/data/files/data/x/from-c.txt`), "written by C\n");
    for (const action of ["log.write", "env.get", "clock.now", "fs.read", "fs.write"]) {
      const events = await g.audit(action);
      assert.ok(events.some((e) => e.decision === "allow"), `${action}: ${JSON.stringify(events)}`);
    }
    assert.ok((await g.audit("fs.read")).some((e) => e.resource === 'File::"/data/x/a.txt"'));
    // opendir/readdir go through fs.list; unlink through fs.delete.
    assert.equal((await g.request("/v1/plugins/wasi-hello/invoke/list", { method: "POST" })).status, 200);
    assert.ok((await g.audit("fs.list")).some((e) => e.decision === "allow" && e.resource === 'Dir::"/data/x"'));
    assert.equal((await g.request("/v1/plugins/wasi-hello/invoke/remove", { method: "POST" })).status, 200);
    await assert.rejects(() => Deno.stat(`${g.dir}/data/files/data/x/from-c.txt`), Deno.errors.NotFound);
    assert.ok((await g.audit("fs.delete")).some((e) => e.decision === "allow"));
    // exit(3) ends the call with its code.
    const failed = await g.request("/v1/plugins/wasi-hello/invoke/fail", { method: "POST" });
    assert.equal(failed.status, 502);
    assert.match((await failed.json()).detail, /exited with code 3/);
  } finally {
    await g.close();
  }
});

Deno.test({
  name: "a WASI C program with an empty grant sees denials as errnos and the host stays up" + SKIP,
  ignore: !hasClang,
}, async () => {
  const { wasm, manifest } = await buildC("wasi_hello");
  const bare = manifest.replace(/grants:\n( {2}- .*\n)+/, "grants: []\n");
  assert.notEqual(bare, manifest);
  const g = await compatGateway("wasi-hello", wasm, bare);
  try {
    const response = await g.request("/v1/plugins/wasi-hello/invoke/run", { method: "POST" });
    assert.equal(response.status, 200, await response.text());
    await assert.rejects(() => Deno.stat(`${g.dir}/data/files/data/x/from-c.txt`), Deno.errors.NotFound);
    // No fs grant means no preopened directory: fopen fails inside wasi-libc, no host call at all.
    for (const action of ["log.write", "env.get", "clock.now"]) {
      const events = await g.audit(action);
      assert.ok(
        events.length > 0 && events.every((e) => e.decision === "deny"),
        `${action}: ${JSON.stringify(events)}`,
      );
    }
    assert.equal((await g.request("/healthz")).status, 200);
  } finally {
    await g.close();
  }
});
