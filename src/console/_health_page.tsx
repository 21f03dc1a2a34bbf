/** @jsxImportSource hono/jsx */
// Health: the runtime's gauges and counters, and per plugin calls, p50/p99 latency and replacements.
import type { Hono } from "hono";
import type { Metrics } from "../http/metrics.ts";
import { can, type ConsoleDeps, type ConsoleEnv } from "./_context.ts";
import { page } from "./_layout.tsx";
import { notPermitted } from "./_plugins_pages.tsx";

/** Registers the health page on the console app. */
export function healthPage(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;
  app.get("/health", (c) => {
    // The same right /metrics asks for.
    if (!can(deps, c, "audit.read")) return notPermitted(c, "health", "audit.read");
    const stats = services.stats();
    const plugins = services.pluginStats?.() ?? [];
    const latency = deps.metrics ? callLatency(deps.metrics) : new Map<string, Latency>();
    const names = [...new Set([...plugins.map((p) => p.plugin), ...latency.keys()])].sort();
    const totals: [string, string, number][] = [
      ["plugins", "Plugins loaded", stats.plugins],
      ["instances", "Instances", stats.instances],
      ["busy", "Busy instances", stats.busy],
      ["queued", "Queue depth", stats.queued],
      ["rejected", "Rejected (saturated)", stats.rejected],
      ["replaced", "Instances replaced", stats.replaced],
      ["recycled", "Workers recycled", stats.recycled],
      ["retired", "Instances retired", stats.retired],
      ["stuck", "Stuck workers", stats.stuckWorkers],
      ["policy-version", "Policy set version", services.policies.version()],
    ];
    return page(
      c,
      { title: "Health", section: "health" },
      <>
        <h1>
          Health <span id="health-ready" class="hint">{services.ready() ? "ready" : "not ready"}</span>
        </h1>
        <table id="health-totals">
          <tbody>
            {totals.map(([id, label, value]) => (
              <tr data-metric={id}>
                <th>{label}</th>
                <td>{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Per plugin</h2>
        <div class="scroll">
          <table id="health-plugins">
            <thead>
              <tr>
                <th>Plugin</th>
                <th>Calls</th>
                <th>p50</th>
                <th>p99</th>
                <th>Instances</th>
                <th>Memory</th>
                <th>Replacements</th>
              </tr>
            </thead>
            <tbody>
              {names.map((name) => {
                const p = plugins.find((entry) => entry.plugin === name);
                const l = latency.get(name);
                return (
                  <tr data-plugin={name}>
                    <td>{name}</td>
                    <td class="calls">{p?.calls ?? l?.count ?? 0}</td>
                    <td class="p50">{l ? ms(l.p50) : "–"}</td>
                    <td class="p99">{l ? ms(l.p99) : "–"}</td>
                    <td>{p?.instances ?? 0}</td>
                    <td>{p ? `${Math.round(p.memoryBytes / 1024)} KiB` : "–"}</td>
                    <td class="replacements">{p?.replacements ?? 0}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <p class="hint">
          Latencies are estimated from the call histogram of /metrics (HTTP invocations, queue included), interpolated
          within its buckets.
        </p>
      </>,
    );
  });
}

interface Latency {
  count: number;
  p50: number;
  p99: number;
}

/** p50 and p99 per plugin from the `keycard_call_duration_seconds` histogram (all exports summed). */
function callLatency(metrics: Metrics): Map<string, Latency> {
  const text = metrics.render({ queued: 0, rejected: 0, instances: 0, replaced: 0, policyVersion: 0, decisions: [] });
  const buckets = new Map<string, Map<number, number>>();
  const line =
    /^keycard_call_duration_seconds_bucket\{plugin="((?:[^"\\]|\\.)*)",export="(?:[^"\\]|\\.)*",le="([^"]+)"\} (\d+)$/;
  for (const row of text.split("\n")) {
    const match = line.exec(row);
    if (!match) continue;
    const plugin = match[1]!.replace(/\\(.)/g, (_, ch: string) => (ch === "n" ? "\n" : ch));
    const le = match[2] === "+Inf" ? Infinity : Number(match[2]);
    let byLe = buckets.get(plugin);
    if (!byLe) buckets.set(plugin, byLe = new Map());
    byLe.set(le, (byLe.get(le) ?? 0) + Number(match[3]));
  }
  const result = new Map<string, Latency>();
  for (const [plugin, byLe] of buckets) {
    const sorted = [...byLe.entries()].sort((a, b) => a[0] - b[0]);
    const count = sorted.at(-1)?.[1] ?? 0;
    if (count === 0) continue;
    result.set(plugin, { count, p50: quantile(sorted, count, 0.5), p99: quantile(sorted, count, 0.99) });
  }
  return result;
}

/** Prometheus' histogram_quantile: linear within the bucket the rank falls in; the last finite bound past it. */
function quantile(sorted: [number, number][], count: number, q: number): number {
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of sorted) {
    if (cumulative >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / Math.max(1, cumulative - below));
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
}
