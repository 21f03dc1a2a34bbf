// Prometheus text exposition (format 0.0.4) of the gateway's counters.
import type { AuditStats } from "../audit/mod.ts";
import type { PolicyEngineStats } from "../policy/mod.ts";
import type { PluginStats, WorkerStats } from "../runtime/mod.ts";

/** Latency buckets of the call histogram, in seconds. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

function newHistogram(): Histogram {
  return { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
}

function observe(histogram: Histogram, seconds: number): void {
  for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) histogram.counts[i]!++;
  histogram.sum += seconds;
  histogram.count++;
}

/** The lines of one histogram series; `labels` without braces, maybe empty. */
function renderHistogram(name: string, labels: string, h: Histogram, lines: string[]): void {
  const withLabel = (extra: string) => `{${[labels, extra].filter(Boolean).join(",")}}`;
  BUCKETS.forEach((le, i) => lines.push(`${name}_bucket${withLabel(`le="${le}"`)} ${h.counts[i]}`));
  lines.push(`${name}_bucket${withLabel('le="+Inf"')} ${h.count}`);
  const plain = labels ? `{${labels}}` : "";
  lines.push(`${name}_sum${plain} ${h.sum}`, `${name}_count${plain} ${h.count}`);
}

/** Gauges read at scrape time. */
export interface MetricsSnapshot {
  /** Calls waiting for a slot, over all plugins. */
  queued: number;
  /** Calls refused with 429. */
  rejected: number;
  /** Instances (worker isolates) running. */
  instances: number;
  /** Instances replaced after a trap, deadline or memory overrun. */
  replaced: number;
  /** Workers ended and replaced after their budget of instantiations or calls. @default {undefined} (not rendered) */
  recycled?: number;
  /** Idle instances retired (after `concurrency.idleMs`, or to make room under `maxWorkers`). @default {undefined} (not rendered) */
  retired?: number;
  /**
   * Per-plugin instances, memory, calls and replacements, and each grouped plugin's group.
   * @default {undefined} (not rendered)
   */
  plugins?: PluginStats[];
  /**
   * Workers, their estimated RSS share, and each isolation group's workers and plugins.
   * @default {undefined} (not rendered)
   */
  workers?: WorkerStats;
  /** Policy set version in force. */
  policyVersion: number;
  /** The policy engine's counters. @default {undefined} (not rendered) */
  engine?: PolicyEngineStats;
  /** Decisions by plugin, action and decision. */
  decisions: { plugin: string; action: string; decision: string; count: number }[];
  /** The shared store: whether it answers, audit events in the local spool. @default {undefined} (not rendered) */
  store?: { up: boolean; spooled: number };
  /** The audit log's work: backlog, sums, folds, evictions, writes. @default {undefined} (not rendered) */
  audit?: Pick<
    AuditStats,
    "events" | "aggregated" | "folded" | "pending" | "evicted" | "written" | "queued" | "rotations"
  >;
}

/**
 * Counts plugin calls by plugin, export and outcome, with a latency histogram,
 * and renders them with scrape-time gauges as Prometheus text.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * metrics.observeCall("hello", "greet", "ok", 0.0004);
 * metrics.render({ queued: 0, rejected: 0, instances: 1, replaced: 0, policyVersion: 1, decisions: [] })
 *   .includes('keycard_calls_total{plugin="hello",export="greet",outcome="ok"} 1'); // true
 * ```
 */
export class Metrics {
  #calls = new Map<string, number>();
  #latency = new Map<string, Histogram>();
  #store = new Map<string, Histogram>();
  #lag: Histogram | undefined;

  /**
   * Records one operation on the shared store.
   * @param op What it was, e.g. `plugins.get` or `kv.set`.
   * @param seconds How long it took, failures included.
   */
  observeStore(op: string, seconds: number): void {
    const labels = `op="${escape(op)}"`;
    let histogram = this.#store.get(labels);
    if (!histogram) this.#store.set(labels, histogram = newHistogram());
    observe(histogram, seconds);
  }

  /**
   * Records how long a change made on another replica (or this one) took to be in force here.
   * @param seconds From the change's commit, by the database's clock, to its swap on this replica.
   */
  observePropagation(seconds: number): void {
    observe(this.#lag ??= newHistogram(), Math.max(0, seconds));
  }

  /**
   * Records one call.
   * @param plugin The plugin's name.
   * @param exportName The export.
   * @param outcome `ok` or the problem kind.
   * @param seconds Wall time of the call.
   */
  observeCall(plugin: string, exportName: string, outcome: string, seconds: number): void {
    const labels = `plugin="${escape(plugin)}",export="${escape(exportName)}"`;
    const key = `${labels},outcome="${escape(outcome)}"`;
    this.#calls.set(key, (this.#calls.get(key) ?? 0) + 1);
    let histogram = this.#latency.get(labels);
    if (!histogram) this.#latency.set(labels, histogram = newHistogram());
    observe(histogram, seconds);
  }

  /**
   * Renders every metric.
   * @param snapshot The gauges and decision counters of this moment.
   * @returns Prometheus text.
   */
  render(snapshot: MetricsSnapshot): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    metric("keycard_calls_total", "counter", "Plugin calls by plugin, export and outcome.");
    for (const [labels, count] of this.#calls) lines.push(`keycard_calls_total{${labels}} ${count}`);
    metric("keycard_call_duration_seconds", "histogram", "Wall time of plugin calls, queue included.");
    for (const [labels, h] of this.#latency) renderHistogram("keycard_call_duration_seconds", labels, h, lines);
    metric("keycard_decisions_total", "counter", "Cedar decisions of host calls by plugin, action and decision.");
    for (const d of snapshot.decisions) {
      lines.push(
        `keycard_decisions_total{plugin="${escape(d.plugin)}",action="${escape(d.action)}",decision="${
          escape(d.decision)
        }"} ${d.count}`,
      );
    }
    if (snapshot.audit) renderAudit(snapshot.audit, metric, lines);
    metric("keycard_queue_depth", "gauge", "Calls waiting for a slot.");
    lines.push(`keycard_queue_depth ${snapshot.queued}`);
    metric("keycard_rejections_total", "counter", "Calls refused because a queue was full.");
    lines.push(`keycard_rejections_total ${snapshot.rejected}`);
    metric("keycard_instances", "gauge", "Plugin instances (worker isolates).");
    lines.push(`keycard_instances ${snapshot.instances}`);
    metric("keycard_instances_replaced_total", "counter", "Instances replaced after a trap, deadline or overrun.");
    lines.push(`keycard_instances_replaced_total ${snapshot.replaced}`);
    if (snapshot.recycled !== undefined) {
      metric("keycard_workers_recycled_total", "counter", "Workers ended and replaced after their budget.");
      lines.push(`keycard_workers_recycled_total ${snapshot.recycled}`);
    }
    if (snapshot.retired !== undefined) {
      metric("keycard_instances_retired_total", "counter", "Idle instances retired, their workers ended.");
      lines.push(`keycard_instances_retired_total ${snapshot.retired}`);
    }
    if (snapshot.plugins) renderPlugins(snapshot.plugins, metric, lines);
    if (snapshot.workers) renderWorkers(snapshot.workers, metric, lines);
    metric("keycard_policy_version", "gauge", "Version of the policy set in force.");
    lines.push(`keycard_policy_version ${snapshot.policyVersion}`);
    if (snapshot.engine) renderEngine(snapshot.engine, metric, lines);
    if (snapshot.store) {
      metric("keycard_store_up", "gauge", "Whether the shared store (PostgreSQL) answers: 1 up, 0 down.");
      lines.push(`keycard_store_up ${snapshot.store.up ? 1 : 0}`);
      metric("keycard_audit_spool_events", "gauge", "Audit events in the local spool, waiting for the database.");
      lines.push(`keycard_audit_spool_events ${snapshot.store.spooled}`);
      metric("keycard_store_seconds", "histogram", "Time of operations on the shared store, by operation.");
      for (const [labels, h] of this.#store) renderHistogram("keycard_store_seconds", labels, h, lines);
      metric(
        "keycard_propagation_lag_seconds",
        "histogram",
        "From a change's commit (database clock) to its swap on this replica.",
      );
      if (this.#lag) renderHistogram("keycard_propagation_lag_seconds", "", this.#lag, lines);
    }
    return lines.join("\n") + "\n";
  }
}

function renderEngine(
  engine: PolicyEngineStats,
  metric: (name: string, type: string, help: string) => void,
  lines: string[],
): void {
  metric("keycard_policy_evaluator", "gauge", "Who decides the policy set in force (1 for the one that does).");
  for (const evaluator of ["typescript", "cedar-wasm"]) {
    lines.push(`keycard_policy_evaluator{evaluator="${evaluator}"} ${engine.evaluator === evaluator ? 1 : 0}`);
  }
  const counters: [string, string, number][] = [
    ["keycard_policy_fallback_sets_total", "Policy sets loaded that fell back to cedar-wasm.", engine.fallbackSets],
    ["keycard_policy_shadow_checked_total", "Sampled decisions cedar-wasm decided again.", engine.shadow.checked],
    [
      "keycard_policy_shadow_disagreements_total",
      "Sampled decisions on which cedar-wasm and the evaluator differed.",
      engine.shadow.disagreements,
    ],
    [
      "keycard_policy_shadow_skipped_total",
      "Sampled decisions not checked (queue full, cedar-wasm unavailable, or a reload in between).",
      engine.shadow.skipped,
    ],
  ];
  for (const [name, help, value] of counters) {
    metric(name, "counter", help);
    lines.push(`${name} ${value}`);
  }
}

function renderPlugins(
  plugins: PluginStats[],
  metric: (name: string, type: string, help: string) => void,
  lines: string[],
): void {
  const rows: [string, string, string, "instances" | "memoryBytes" | "calls" | "replacements"][] = [
    [
      "keycard_plugin_instances",
      "gauge",
      "Live instances of a plugin, each with its own wasm memory: in workers of its own, or in the workers of its " +
      "isolation group (label group).",
      "instances",
    ],
    [
      "keycard_plugin_memory_bytes",
      "gauge",
      "Linear memory of a plugin's live instances, summed, as of each one's start or last call.",
      "memoryBytes",
    ],
    [
      "keycard_plugin_calls_total",
      "counter",
      "Calls of a plugin that ran on an instance, failed ones included.",
      "calls",
    ],
    [
      "keycard_plugin_replacements_total",
      "counter",
      "Instances of a plugin replaced after a trap, deadline or memory overrun.",
      "replacements",
    ],
  ];
  // A plugin of an isolation group carries group="<name>"; one with workers of its own (isolation: plugin) has no
  // group label at all, rather than group="", so that `{group=~".+"}` selects exactly the grouped ones.
  const labels = (p: PluginStats) =>
    `plugin="${escape(p.plugin)}"${p.group === undefined ? "" : `,group="${escape(p.group)}"`}`;
  for (const [name, type, help, field] of rows) {
    metric(name, type, help);
    for (const p of plugins) lines.push(`${name}{${labels(p)}} ${p[field]}`);
  }
}

function renderWorkers(
  workers: WorkerStats,
  metric: (name: string, type: string, help: string) => void,
  lines: string[],
): void {
  metric("keycard_workers", "gauge", "Worker isolates alive: those hosting plugin instances, and warm spares.");
  lines.push(`keycard_workers ${workers.workers}`);
  metric(
    "keycard_worker_plugins",
    "gauge",
    "Average plugins hosted per live worker: 1 when every plugin has workers of its own, more when isolation " +
      "groups share them.",
  );
  lines.push(`keycard_worker_plugins ${workers.pluginsPerWorker}`);
  metric("keycard_group_workers", "gauge", "Live workers of an isolation group, shared by its plugins.");
  for (const g of workers.groups) lines.push(`keycard_group_workers{group="${escape(g.group)}"} ${g.workers}`);
  metric("keycard_group_plugins", "gauge", "Plugins loaded in an isolation group.");
  for (const g of workers.groups) lines.push(`keycard_group_plugins{group="${escape(g.group)}"} ${g.plugins}`);
  metric(
    "keycard_worker_rss_share_bytes",
    "gauge",
    "Estimate: process RSS divided by live workers (the main thread's memory included, so an overstatement).",
  );
  lines.push(`keycard_worker_rss_share_bytes ${workers.rssShareBytes}`);
}

function renderAudit(
  audit: NonNullable<MetricsSnapshot["audit"]>,
  metric: (name: string, type: string, help: string) => void,
  lines: string[],
): void {
  const rows: [string, string, string, number][] = [
    ["keycard_audit_backlog", "gauge", "Audit events queued for the file, not yet written.", audit.queued],
    ["keycard_audit_pending_decisions", "gauge", "Decisions in audit sums whose window is still open.", audit.pending],
    ["keycard_audit_events_total", "counter", "Audit events emitted (ring, file, stream).", audit.events],
    [
      "keycard_audit_aggregated_decisions_total",
      "counter",
      "Decisions emitted inside another's audit event (sum of count - 1): repeats, folds, refusals.",
      audit.aggregated,
    ],
    [
      "keycard_audit_folded_decisions_total",
      "counter",
      "Decisions folded into one event per plugin, action and decision past the plugin's audit budget.",
      audit.folded,
    ],
    ["keycard_audit_written_total", "counter", "Audit events written to the file.", audit.written],
    ["keycard_audit_evicted_total", "counter", "Audit events pushed out of the in-memory ring.", audit.evicted],
    ["keycard_audit_rotations_total", "counter", "Audit file rotations.", audit.rotations],
  ];
  for (const [name, type, help, value] of rows) {
    metric(name, type, help);
    lines.push(`${name} ${value}`);
  }
}

function escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
