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
    workers: { workers: 2, pluginsPerWorker: 1, rssShareBytes: 1000, groups: [] },
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

Deno.test("Metrics.render() labels a grouped plugin's series with its group and renders the group gauges", () => {
  const text = new Metrics().render({
    queued: 0,
    rejected: 0,
    instances: 3,
    replaced: 0,
    policyVersion: 1,
    decisions: [],
    plugins: [
      { plugin: "hello", group: "tenants", instances: 1, memoryBytes: 65536, calls: 2, replacements: 0 },
      { plugin: "quoter", group: "tenants", instances: 1, memoryBytes: 131072, calls: 1, replacements: 1 },
      { plugin: "stamp", instances: 1, memoryBytes: 65536, calls: 5, replacements: 0 },
    ],
    workers: {
      workers: 3,
      pluginsPerWorker: 1.5,
      rssShareBytes: 1000,
      groups: [{ group: 'odd"one\\', workers: 1, plugins: 0 }, { group: "tenants", workers: 2, plugins: 2 }],
    },
  });
  const lines = text.split("\n");
  for (
    const line of [
      'keycard_plugin_instances{plugin="hello",group="tenants"} 1',
      'keycard_plugin_memory_bytes{plugin="quoter",group="tenants"} 131072',
      'keycard_plugin_calls_total{plugin="hello",group="tenants"} 2',
      'keycard_plugin_replacements_total{plugin="quoter",group="tenants"} 1',
      // isolation: plugin has no group label (not group="").
      'keycard_plugin_calls_total{plugin="stamp"} 5',
      "keycard_worker_plugins 1.5",
      "# TYPE keycard_group_workers gauge",
      'keycard_group_workers{group="tenants"} 2',
      'keycard_group_workers{group="odd\\"one\\\\"} 1',
      "# TYPE keycard_group_plugins gauge",
      'keycard_group_plugins{group="tenants"} 2',
      'keycard_group_plugins{group="odd\\"one\\\\"} 0',
    ]
  ) assert.ok(lines.includes(line), `${line}\n${text}`);
  assert.ok(!text.includes('group=""'), text);
  assert.match(text, /^# HELP keycard_worker_plugins Average plugins hosted per live worker/m);
  assert.doesNotMatch(text, /worker of its own\.$/m, "instances may share a group's workers");
});
