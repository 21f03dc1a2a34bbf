// Per-plugin and per-worker numbers of PluginHost, with real workers.
import assert from "node:assert/strict";
import { PluginHost, PluginTrapError } from "./mod.ts";
import { compileWat } from "../../tests/_wat.ts";
import { watFixture } from "../../tests/_test_utils.ts";

// Grows its memory by 15 pages per call (up to the cap) and returns normally.
const GROW_WAT = `(module
  (memory (export "memory") 1)
  (func (export "grow") (result i32)
    (drop (memory.grow (i32.const 15)))
    (i32.const 0)))`;

Deno.test("pluginStats() shows more memory bytes after a plugin grows its memory", async () => {
  await using host = new PluginHost();
  // Kept warm, so that its memory is there to see before the first call.
  await host.load(await compileWat(GROW_WAT, "grow.wat"), { name: "grow", limits: { minInstances: 1 } });
  const before = host.pluginStats().find((s) => s.plugin === "grow")!;
  assert.equal(before.instances, 1);
  assert.ok(before.memoryBytes >= 65536, `memory at start: ${before.memoryBytes}`);
  await host.invoke("grow", "grow");
  const after = host.pluginStats().find((s) => s.plugin === "grow")!;
  assert.equal(after.memoryBytes, before.memoryBytes + 15 * 65536);
  await host.invoke("grow", "grow");
  assert.equal(host.pluginStats()[0]!.memoryBytes, before.memoryBytes + 30 * 65536);
});

Deno.test("pluginStats() counts calls and a trap's replacement, for that plugin only", async () => {
  await using host = new PluginHost();
  await host.load(await watFixture("trap"), { name: "trap" });
  await host.load(await compileWat(GROW_WAT, "grow.wat"), { name: "grow" });
  await host.invoke("grow", "grow");
  await host.invoke("grow", "grow");
  await assert.rejects(host.invoke("trap", "unreachable"), PluginTrapError);
  await assert.rejects(host.invoke("trap", "out_of_bounds"), PluginTrapError);
  const stats = Object.fromEntries(host.pluginStats().map((s) => [s.plugin, s]));
  assert.deepEqual(
    { calls: stats.trap!.calls, replacements: stats.trap!.replacements },
    { calls: 2, replacements: 2 },
  );
  assert.deepEqual({ calls: stats.grow!.calls, replacements: stats.grow!.replacements }, { calls: 2, replacements: 0 });
  assert.equal(host.stats().replaced, 2);
});

Deno.test("workerStats() counts live workers and shares the process RSS among them", async () => {
  await using host = new PluginHost({ spareWorkers: 1 });
  await host.load(await compileWat(GROW_WAT, "grow.wat"), { name: "a", limits: { minInstances: 1 } });
  await host.load(await compileWat(GROW_WAT, "grow.wat"), { name: "b", limits: { minInstances: 2 } });
  const workers = host.workerStats();
  const instances = host.pluginStats().reduce((sum, s) => sum + s.instances, 0);
  assert.equal(instances, 3);
  assert.equal(workers.workers, instances + host.stats().spares);
  assert.equal(workers.pluginsPerWorker, 1);
  const rss = Deno.memoryUsage().rss;
  assert.ok(workers.rssShareBytes > 0 && workers.rssShareBytes <= rss, `share ${workers.rssShareBytes} of ${rss}`);
});
