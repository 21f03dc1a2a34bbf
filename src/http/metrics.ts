// Prometheus text exposition (format 0.0.4) of the gateway's counters.

/** Latency buckets of the call histogram, in seconds. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
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
  /** Policy set version in force. */
  policyVersion: number;
  /** Decisions by plugin, action and decision. */
  decisions: { plugin: string; action: string; decision: string; count: number }[];
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
    if (!histogram) this.#latency.set(labels, histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) histogram.counts[i]!++;
    histogram.sum += seconds;
    histogram.count++;
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
    for (const [labels, h] of this.#latency) {
      BUCKETS.forEach((le, i) =>
        lines.push(`keycard_call_duration_seconds_bucket{${labels},le="${le}"} ${h.counts[i]}`)
      );
      lines.push(`keycard_call_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      lines.push(`keycard_call_duration_seconds_sum{${labels}} ${h.sum}`);
      lines.push(`keycard_call_duration_seconds_count{${labels}} ${h.count}`);
    }
    metric("keycard_decisions_total", "counter", "Cedar decisions of host calls by plugin, action and decision.");
    for (const d of snapshot.decisions) {
      lines.push(
        `keycard_decisions_total{plugin="${escape(d.plugin)}",action="${escape(d.action)}",decision="${
          escape(d.decision)
        }"} ${d.count}`,
      );
    }
    metric("keycard_queue_depth", "gauge", "Calls waiting for a slot.");
    lines.push(`keycard_queue_depth ${snapshot.queued}`);
    metric("keycard_rejections_total", "counter", "Calls refused because a queue was full.");
    lines.push(`keycard_rejections_total ${snapshot.rejected}`);
    metric("keycard_instances", "gauge", "Plugin instances (worker isolates).");
    lines.push(`keycard_instances ${snapshot.instances}`);
    metric("keycard_instances_replaced_total", "counter", "Instances replaced after a trap, deadline or overrun.");
    lines.push(`keycard_instances_replaced_total ${snapshot.replaced}`);
    metric("keycard_policy_version", "gauge", "Version of the policy set in force.");
    lines.push(`keycard_policy_version ${snapshot.policyVersion}`);
    return lines.join("\n") + "\n";
  }
}

function escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
