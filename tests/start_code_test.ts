// Start code through PluginHost: the start section, `_initialize`, `hs_init`
// (and `_start` when it is an initializer) run once per instance, in that
// order, under the deadline, after the worker holds the memory and the
// interrupt flag; they are never listed or invocable. A WASI command's
// `_start` is the program: an ordinary export. Declared exports restrict
// what may be invoked.
import assert from "node:assert/strict";
import {
  PluginDeadlineError,
  PluginHost,
  PluginLoadError,
  PluginNotFoundError,
  PluginReportedError,
  PluginTrapError,
} from "../mod.ts";
import { toProblem } from "../src/http/problem.ts";
import { decoder, encoder, watFixture } from "./_test_utils.ts";

const DEADLINE_MS = 300;

interface Seen {
  export: string;
  message: string;
}

async function withHost(fn: (host: PluginHost, logs: Seen[]) => Promise<void>): Promise<void> {
  const logs: Seen[] = [];
  const host = new PluginHost({
    limits: { deadlineMs: DEADLINE_MS },
    hostFunctions: {
      keycard_clock_now: () => encoder.encode(`{"unixMs":${Date.now()}}`),
      keycard_log_write: (input, context) => {
        logs.push({ export: context.export, message: JSON.parse(decoder.decode(input)).message });
        return new Uint8Array();
      },
    },
  });
  try {
    await fn(host, logs);
  } finally {
    await host.close();
  }
}

async function assertNotFound(call: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof PluginNotFoundError, String(error));
    assert.match(error.message, pattern);
    assert.equal(toProblem(error).body.status, 404);
    return true;
  });
}

Deno.test("load() runs _initialize then hs_init, whose WASI calls see the memory, and lists neither", () =>
  withHost(async (host, logs) => {
    const plugin = await host.load(await watFixture("ghc_reactor"), { name: "ghc", limits: { minInstances: 2 } });
    assert.deepEqual(plugin.exports, ["ready"]);
    assert.deepEqual(host.plugins()[0]!.exports, ["ready"]);
    // hs_init's fd_write went out through log.write, once per instance, as start code.
    assert.deepEqual(logs, [{ export: "(init)", message: "hs_init" }, { export: "(init)", message: "hs_init" }]);
    // Both warm instances ran _initialize, then hs_init, each once.
    const outputs = await Promise.all([host.invoke("ghc", "ready"), host.invoke("ghc", "ready")]);
    assert.deepEqual(outputs.map((o) => decoder.decode(o)), ["ok", "ok"]);
    for (const name of ["_initialize", "hs_init"]) {
      await assertNotFound(() => host.invoke("ghc", name), /it is start code/);
    }
    await assertNotFound(() => host.invoke("ghc", "__keycard_init_hs_init"), /has no export "__keycard_init_hs_init"/);
  }));

Deno.test("load() fails with a typed cause when _initialize traps, and the host serves others", () =>
  withHost(async (host) => {
    const good = await host.load(await watFixture("ghc_reactor"), { name: "good" });
    await assert.rejects(
      // Kept warm, so its start code runs at load (on demand, the first call would run it).
      async () => host.load(await watFixture("reactor_init_trap"), { name: "bad", limits: { minInstances: 1 } }),
      (error: unknown) => {
        assert.ok(error instanceof PluginLoadError, String(error));
        assert.match(error.message, /^Cannot load plugin "bad": its start code "_initialize" trapped: /);
        assert.ok(error.cause instanceof PluginTrapError);
        return true;
      },
    );
    assert.deepEqual(host.plugins().map((p) => p.name), ["good"]);
    assert.equal(decoder.decode(await host.invoke(good, "ready")), "ok");
    // The name is free again, and another plugin loads after the failure.
    await host.load(await watFixture("extism_fail"), { name: "bad" });
    assert.equal(host.stats().stuckWorkers, 0);
  }));

Deno.test("load() runs an initializer _start (AssemblyScript's --exportStart) and hides it", () =>
  withHost(async (host) => {
    const plugin = await host.load(await watFixture("start_initializer"), { name: "as" });
    assert.deepEqual(plugin.exports, ["get"]);
    assert.equal((await host.invoke("as", "get")).length, 0);
    await assertNotFound(() => host.invoke("as", "_start"), /it is start code/);
  }));

Deno.test("invoke() runs a WASI command's _start as its program, never at load", () =>
  withHost(async (host) => {
    // One instance: each run waits for it to be renewed in its worker, rather
    // than for a second worker to boot (slow on a loaded machine).
    const ok = await host.load(await watFixture("wasi_command_exit"), { name: "cmd", limits: { instances: 1 } });
    assert.deepEqual(ok.exports, ["_start"]);
    // Exit code 3 at load would fail the load: _start did not run.
    const failing = await host.load(await watFixture("wasi_command_exit_code"), {
      name: "cmd3",
      limits: { instances: 1 },
    });
    assert.deepEqual(failing.exports, ["_start"]);
    for (let run = 0; run < 3; run++) {
      assert.equal((await host.invoke("cmd", "_start")).length, 0);
    }
    for (let run = 0; run < 2; run++) {
      await assert.rejects(() => host.invoke("cmd3", "_start"), (error: unknown) => {
        assert.ok(error instanceof PluginTrapError, String(error));
        assert.match(error.message, /^Plugin "cmd3" "_start" exited with code 3: /);
        return true;
      });
    }
    // A program runs on a fresh instance each time; that is no failure.
    assert.equal(host.stats().replaced, 2);
  }));

Deno.test("load() with declared exports lists only them and refuses the rest as not found", () =>
  withHost(async (host) => {
    const trap = await watFixture("trap");
    const plugin = await host.load(trap, { name: "trap", exports: ["unreachable"] });
    assert.deepEqual(plugin.exports, ["unreachable"]);
    await assertNotFound(
      () => host.invoke("trap", "out_of_bounds"),
      /has no export "out_of_bounds": only its declared exports may be invoked \("unreachable"\)/,
    );
    await assert.rejects(() => host.invoke("trap", "unreachable"), PluginTrapError);
    // Declaring _start makes it a command's program even beside other exports.
    const command = await host.load(await watFixture("start_initializer"), { name: "cmd", exports: ["_start"] });
    assert.deepEqual(command.exports, ["_start"]);
    assert.equal((await host.invoke("cmd", "_start")).length, 0);
  }));

Deno.test("load() refuses a declared export the module lacks, or one that is start code", () =>
  withHost(async (host) => {
    await assert.rejects(
      async () => host.load(await watFixture("trap"), { name: "trap", exports: ["unreachable", "missing"] }),
      (error: unknown) => {
        assert.ok(error instanceof PluginLoadError, String(error));
        assert.match(error.message, /declared export "missing" is not a function the module exports/);
        assert.match(error.message, /"unreachable", "out_of_bounds"/);
        return true;
      },
    );
    await assert.rejects(
      async () => host.load(await watFixture("ghc_reactor"), { name: "ghc", exports: ["hs_init"] }),
      /declared export "hs_init" is start code/,
    );
    assert.equal(host.plugins().length, 0);
  }));

Deno.test("invoke() treats Extism's fail and loop-forever test plugins as Extism does", () =>
  withHost(async (host) => {
    await host.load(await watFixture("extism_fail"), { name: "fail" });
    await assert.rejects(() => host.invoke("fail", "run_test"), (error: unknown) => {
      assert.ok(error instanceof PluginReportedError, String(error));
      assert.equal(error.detail, "Some error message");
      return true;
    });
    await host.load(await watFixture("extism_loop_forever"), { name: "loop" });
    await assert.rejects(() => host.invoke("loop", "loop", "", { deadlineMs: 50 }), PluginDeadlineError);
    assert.equal(host.stats().stuckWorkers, 0);
  }));
