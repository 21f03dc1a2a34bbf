import assert from "node:assert/strict";
import { Metrics } from "./metrics.ts";

Deno.test("Metrics.render() writes per-plugin series with escaped plugin labels and the workers", () => {
  const text = new Metrics().render({
    queued: 0,
    rejected: 0,
    instances: 1,
    replaced: 1,
    policyVersion: 1,
    decisions: [],
    plugins: [{ plugin: 'a"b\\c\nd', instances: 1, memoryBytes: 131072, calls: 3, replacements: 1 }],
    workers: { workers: 2, pluginsPerWorker: 1, rssShareBytes: 1000 },
  });
  const lines = text.split("\n");
  const label = 'plugin="a\\"b\\\\c\\nd"';
  assert.ok(lines.includes(`keycard_plugin_instances{${label}} 1`), text);
  assert.ok(lines.includes(`keycard_plugin_memory_bytes{${label}} 131072`), text);
  assert.ok(lines.includes(`keycard_plugin_calls_total{${label}} 3`), text);
  assert.ok(lines.includes(`keycard_plugin_replacements_total{${label}} 1`), text);
  assert.ok(lines.includes("# TYPE keycard_plugin_calls_total counter"), text);
  assert.ok(lines.includes("# TYPE keycard_workers gauge"), text);
  assert.ok(lines.includes("keycard_workers 2"), text);
  assert.ok(lines.includes("keycard_worker_plugins 1"), text);
  assert.ok(lines.includes("keycard_worker_rss_share_bytes 1000"), text);
});
