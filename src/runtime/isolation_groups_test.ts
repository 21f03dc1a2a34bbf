// Isolation groups: plugins of one group share its workers, never an
// instance. Real workers, real plugins; the hostile ones are the containment
// suite's (tests/containment_test.ts runs all of it in both modes too).
import assert from "node:assert/strict";
import { PluginDeadlineError, PluginHost, PluginMemoryError, PluginTrapError } from "./mod.ts";
import { examplePlugin, watFixture } from "../../tests/_test_utils.ts";

const DEADLINE_MS = 300;

/** The count a `counter.wat` instance returns: calls it has served. */
async function next(host: PluginHost, name: string): Promise<number> {
  const out = await host.invoke(name, "next");
  return Number(new DataView(out.buffer, out.byteOffset, 8).getBigUint64(0, true));
}

/** Workers hosting instances: all of them but the warm spares. */
function hosting(host: PluginHost): number {
  return host.workerStats().workers - host.stats().spares;
}

Deno.test("plugins of a one-worker group share that worker, each with an instance and memory of its own", async () => {
  await using host = new PluginHost({ groups: { tenants: { workers: 1 } } });
  const counter = await watFixture("counter");
  // The same module twice: two instances, two memories, two counts.
  await host.load(counter, { name: "a", group: "tenants" });
  await host.load(counter, { name: "b", group: "tenants" });
  await host.load(await examplePlugin("hello"), { name: "hello", group: "tenants" });
  assert.equal(await next(host, "a"), 1);
  assert.equal(await next(host, "a"), 2);
  assert.equal(await next(host, "b"), 1);
  assert.equal(new TextDecoder().decode(await host.invoke("hello", "greet", "group")), "Hello, group!");
  assert.equal(hosting(host), 1);
  assert.equal(host.stats().instances, 3);
  const stats = host.workerStats();
  assert.deepEqual(stats.groups, [{ group: "tenants", workers: 1, plugins: 3 }]);
  assert.equal(stats.pluginsPerWorker, 3);
  assert.deepEqual(host.pluginStats().map((p) => [p.plugin, p.group, p.instances]), [
    ["a", "tenants", 1],
    ["b", "tenants", 1],
    ["hello", "tenants", 1],
  ]);
  assert.equal(host.plugins().find((p) => p.name === "a")?.group, "tenants");
});

for (
  const hostile of [
    { fixture: "trap", export: "unreachable", error: PluginTrapError },
    { fixture: "infinite_loop", export: "spin", error: PluginDeadlineError },
    { fixture: "memory_grow_bomb", export: "grow", error: PluginMemoryError },
  ] as const
) {
  Deno.test(`a ${hostile.fixture} in a group replaces only that plugin's instance; its neighbour keeps its own`, async () => {
    await using host = new PluginHost({
      groups: { tenants: { workers: 1 } },
      limits: { deadlineMs: DEADLINE_MS, memoryPages: 256 },
    });
    // The neighbour waits behind the hostile call in the one worker: its deadline outlasts the hostile one's.
    await host.load(await watFixture("counter"), { name: "neighbour", group: "tenants", limits: { deadlineMs: 5000 } });
    await host.load(await watFixture(hostile.fixture), { name: "hostile", group: "tenants" });
    assert.equal(await next(host, "neighbour"), 1);
    // The neighbour's call is sent while the hostile one runs in the same thread; it answers once that one is stopped.
    const failing = host.invoke("hostile", hostile.export);
    const waiting = next(host, "neighbour");
    await assert.rejects(failing, hostile.error);
    assert.equal(await waiting, 2);
    // Same instance (its count goes on), never replaced; the hostile plugin's was.
    assert.equal(await next(host, "neighbour"), 3);
    const stats = new Map(host.pluginStats().map((p) => [p.plugin, p]));
    assert.equal(stats.get("neighbour")?.replacements, 0);
    assert.equal(stats.get("hostile")?.replacements, 1);
    assert.equal(host.stats().stuckWorkers, 0);
    // Still one worker: the trap, deadline or overrun ended an instance, not the worker.
    assert.equal(hosting(host), 1);
    await assert.rejects(host.invoke("hostile", hostile.export), hostile.error);
    assert.equal(await next(host, "neighbour"), 4);
  });
}

Deno.test("a call that passes its deadline while it waits behind a neighbour in the worker is not started", async () => {
  // The hammer's first host call says it is running (and keeps the worker's thread until its deadline).
  let running!: () => void;
  const started = new Promise<void>((resolve) => running = resolve);
  await using host = new PluginHost({
    groups: { tenants: { workers: 1 } },
    hostFunctions: {
      keycard_clock_now: () => {
        running();
        return new TextEncoder().encode(`{"unixMs":${Date.now()}}`);
      },
    },
  });
  // Both kept warm: a cold start could take the short deadline by itself.
  await host.load(await watFixture("counter"), {
    name: "late",
    group: "tenants",
    limits: { deadlineMs: 150, minInstances: 1 },
  });
  await host.load(await watFixture("host_call_loop"), {
    name: "hammer",
    group: "tenants",
    limits: { deadlineMs: 800, minInstances: 1 },
  });
  assert.equal(await next(host, "late"), 1);
  const hammering = host.invoke("hammer", "hammer");
  await started;
  await assert.rejects(next(host, "late"), PluginDeadlineError);
  await assert.rejects(hammering, PluginDeadlineError);
  // It never ran: the instance that served the first call was replaced unused, so a new one counts from 1.
  assert.equal(await next(host, "late"), 1);
});

Deno.test("a group spreads over its workers, never two instances of one plugin in a worker", async () => {
  await using host = new PluginHost({
    groups: { pair: { workers: 2 } },
    concurrency: { maxCalls: 64 },
    hostFunctions: {
      keycard_test_sleep: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return new Uint8Array();
      },
    },
  });
  // "exclusive" traps if two calls ever share its instance; it may have 4 instances, its group allows 2.
  await host.load(await watFixture("exclusive"), {
    name: "exclusive",
    group: "pair",
    limits: { instances: 4, queue: 16, deadlineMs: 5000 },
  });
  await host.load(await watFixture("counter"), { name: "counter", group: "pair" });
  const calls = await Promise.allSettled(Array.from({ length: 8 }, () => host.invoke("exclusive", "enter")));
  assert.deepEqual(calls.filter((c) => c.status === "rejected"), []);
  assert.equal(host.pluginStats().find((p) => p.plugin === "exclusive")?.instances, 2);
  assert.equal(await next(host, "counter"), 1);
  // Two workers, the counter in one of them.
  assert.equal(hosting(host), 2);
  assert.deepEqual(host.workerStats().groups, [{ group: "pair", workers: 2, plugins: 2 }]);
});

Deno.test("unload() of a grouped plugin leaves its neighbours' instances; the worker ends with its last one", async () => {
  await using host = new PluginHost({ groups: { tenants: { workers: 1 } } });
  const counter = await watFixture("counter");
  await host.load(counter, { name: "a", group: "tenants" });
  await host.load(counter, { name: "b", group: "tenants" });
  await next(host, "a");
  assert.equal(await next(host, "b"), 1);
  assert.ok(await host.unload("a"));
  assert.equal(await next(host, "b"), 2);
  assert.equal(hosting(host), 1);
  assert.ok(await host.unload("b"));
  assert.equal(hosting(host), 0);
  assert.deepEqual(host.workerStats().groups, [{ group: "tenants", workers: 0, plugins: 0 }]);
});

Deno.test("a group's worker past its call budget takes no new instance and ends with its last; calls go on", async () => {
  await using host = new PluginHost({ groups: { tenants: { workers: 1 } }, recycle: { calls: 5 } });
  const counter = await watFixture("counter");
  await host.load(counter, { name: "a", group: "tenants" });
  await host.load(counter, { name: "b", group: "tenants" });
  const counts: number[] = [];
  for (let i = 0; i < 6; i++) counts.push(await next(host, i % 2 === 0 ? "a" : "b"));
  // Calls 1-5 in the first worker; at its budget both instances left it; the next calls start in a new worker.
  assert.deepEqual(counts, [1, 1, 2, 2, 3, 1]);
  assert.equal(host.stats().recycled, 1);
  assert.equal(hosting(host), 1);
  assert.equal(await next(host, "a"), 1);
});

Deno.test("load() and new PluginHost() refuse a bad group name or size, and keep nothing", async () => {
  assert.throws(() => new PluginHost({ groups: { tenants: { workers: 0 } } }), RangeError);
  assert.throws(() => new PluginHost({ groups: { tenants: { workers: 1.5 } } }), /groups\.tenants\.workers/);
  await using host = new PluginHost();
  await assert.rejects(host.load(await watFixture("counter"), { name: "x", group: "" }), TypeError);
  assert.deepEqual(host.plugins(), []);
});
