// Instances on demand: started at a plugin's first call, retired when idle or
// to make room under maxWorkers, kept warm with minInstances. Real workers.
import assert from "node:assert/strict";
import { PluginDeadlineError, PluginHost, PluginLoadError, PluginTrapError } from "./mod.ts";
import { compileWat } from "../../tests/_wat.ts";
import { watFixture } from "../../tests/_test_utils.ts";

const NOOP_WAT = `(module
  (memory (export "memory") 1)
  (func (export "noop") (result i32) (i32.const 0)))`;

type Retired = { plugin: string; reason: "idle" | "lru" };

/** Retirements as they happen, each awaited in turn; a wait fails after `ms` instead of hanging. */
function retirements(ms = 10_000) {
  const seen: Retired[] = [];
  let wake: (() => void) | undefined;
  return {
    onRetire: (event: Retired) => {
      seen.push(event);
      wake?.();
    },
    async next(): Promise<Retired> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        while (seen.length === 0) {
          await new Promise<void>((resolve, reject) => {
            wake = resolve;
            timer = setTimeout(() => reject(new Error(`No instance retired within ${ms} ms`)), ms);
          });
          clearTimeout(timer);
        }
        return seen.shift()!;
      } finally {
        clearTimeout(timer);
        wake = undefined;
      }
    },
  };
}

function instancesOf(host: PluginHost, plugin: string): number {
  return host.pluginStats().find((s) => s.plugin === plugin)!.instances;
}

Deno.test("load() starts no worker; the first call starts one, retired after idleMs", async () => {
  const retired = retirements();
  await using host = new PluginHost({ spareWorkers: 0, concurrency: { idleMs: 50 }, onRetire: retired.onRetire });
  await host.load(await compileWat(NOOP_WAT), { name: "noop" });
  assert.equal(instancesOf(host, "noop"), 0);
  assert.equal(host.workerStats().workers, 0);
  await host.invoke("noop", "noop");
  assert.equal(instancesOf(host, "noop"), 1);
  assert.equal(host.workerStats().workers, 1);
  assert.deepEqual(await retired.next(), { plugin: "noop", reason: "idle" });
  assert.equal(instancesOf(host, "noop"), 0);
  assert.equal(host.workerStats().workers, 0);
  assert.equal(host.stats().retired, 1);
  // It starts again at the next call.
  await host.invoke("noop", "noop");
  assert.equal(instancesOf(host, "noop"), 1);
  assert.equal(host.pluginStats()[0]!.calls, 2);
});

Deno.test("load() starts minInstances, which stay past idleMs while others are retired", async () => {
  const retired = retirements();
  await using host = new PluginHost({ spareWorkers: 0, concurrency: { idleMs: 30 }, onRetire: retired.onRetire });
  const wasm = await compileWat(NOOP_WAT);
  await host.load(wasm, { name: "hot", limits: { minInstances: 1 } });
  assert.equal(instancesOf(host, "hot"), 1);
  await host.load(wasm, { name: "cold" });
  await host.invoke("cold", "noop");
  await host.invoke("hot", "noop");
  // "hot" went idle at load, before "cold": its idle time passed first.
  assert.deepEqual(await retired.next(), { plugin: "cold", reason: "idle" });
  assert.equal(instancesOf(host, "hot"), 1);
  assert.equal(instancesOf(host, "cold"), 0);
  assert.equal(host.stats().retired, 1);
});

Deno.test("invoke() past maxWorkers retires the least recently used idle instance", async () => {
  const retired = retirements();
  await using host = new PluginHost({
    spareWorkers: 0,
    concurrency: { maxWorkers: 2 },
    onRetire: retired.onRetire,
  });
  const wasm = await compileWat(NOOP_WAT);
  for (const name of ["a", "b", "c"]) await host.load(wasm, { name });
  await host.invoke("a", "noop");
  await host.invoke("b", "noop");
  await host.invoke("a", "noop"); // "b" is now the least recently used
  await host.invoke("c", "noop");
  assert.deepEqual(await retired.next(), { plugin: "b", reason: "lru" });
  assert.deepEqual(host.pluginStats().map((s) => s.instances), [1, 0, 1]);
  assert.equal(host.workerStats().workers, 2);
});

Deno.test("invoke() never runs more workers than maxWorkers under calls to more plugins than that", async () => {
  const maxWorkers = 3;
  let most = 0;
  let host: PluginHost | undefined;
  const look = () => (most = Math.max(most, host!.workerStats().workers));
  await using h = host = new PluginHost({
    spareWorkers: 1,
    concurrency: { maxWorkers, maxCalls: 16 },
    limits: { deadlineMs: 10_000 },
    hostFunctions: {
      // Seen while the calls run, when the most workers are alive.
      keycard_test_sleep: async () => {
        look();
        await new Promise((resolve) => setTimeout(resolve, 5));
        look();
        return new Uint8Array();
      },
    },
  });
  const wasm = await watFixture("exclusive");
  const names = Array.from({ length: 8 }, (_, i) => `p${i}`);
  for (const name of names) await h.load(wasm, { name });
  const calls = names.flatMap((name) => [0, 1].map(() => h.invoke(name, "enter").finally(look)));
  const results = await Promise.allSettled(calls);
  assert.deepEqual(results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []), []);
  assert.ok(most <= maxWorkers, `${most} workers alive, over maxWorkers ${maxWorkers}`);
  assert.ok(h.stats().retired >= names.length - maxWorkers, `retired ${h.stats().retired}`);
  assert.equal(h.pluginStats().reduce((sum, s) => sum + s.calls, 0), 16);
});

Deno.test("invoke() waits for a worker within its deadline when every one is kept warm; load() refuses more", async () => {
  await using host = new PluginHost({ spareWorkers: 0, concurrency: { maxWorkers: 1 } });
  const wasm = await compileWat(NOOP_WAT);
  await host.load(wasm, { name: "hot", limits: { minInstances: 1 } });
  await host.load(wasm, { name: "cold", limits: { deadlineMs: 10_000 } });
  await assert.rejects(host.invoke("cold", "noop", "", { deadlineMs: 50 }), PluginDeadlineError);
  assert.equal(host.workerStats().workers, 1);
  await assert.rejects(
    host.load(wasm, { name: "hot2", limits: { minInstances: 1 } }),
    (error: unknown) => error instanceof PluginLoadError && /concurrency\.maxWorkers/.test(error.message),
  );
  assert.equal(new TextDecoder().decode(await host.invoke("hot", "noop")), "");
  await host.unload("hot");
  // The room "hot" held is free again.
  await host.invoke("cold", "noop");
  assert.equal(host.workerStats().workers, 1);
});

Deno.test("invoke() gets the typed start-code failure at the first call; it is reported once and later calls fail at once", async () => {
  const failures: { plugin: string; error: Error }[] = [];
  await using host = new PluginHost({ spareWorkers: 0, onStartFailure: (event) => failures.push(event) });
  // Loading only checks and compiles: the trapping _initialize has not run yet.
  await host.load(await watFixture("reactor_init_trap"), { name: "bad" });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(host.invoke("bad", "run"), (error: unknown) => {
      assert.ok(error instanceof PluginTrapError, String(error));
      assert.match(error.message, /^Plugin "bad" failed to start: its start code "_initialize" trapped: /);
      return true;
    });
    assert.equal(instancesOf(host, "bad"), 0);
    assert.equal(host.workerStats().workers, 0);
  }
  // A trap is for good: heard once; the later calls fail with the same error before any worker starts.
  assert.deepEqual(failures.map((f) => f.plugin), ["bad"]);
  // Unloaded and loaded again, it gets a fresh chance.
  await host.unload("bad");
  await host.load(await watFixture("reactor_init_trap"), { name: "bad" });
  await assert.rejects(host.invoke("bad", "run"), PluginTrapError);
  assert.equal(failures.length, 2);
});
