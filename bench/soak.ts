/**
 * Soak: does the server's memory hold flat? Two runs through one PluginHost:
 *
 * - calls: hello `echo` (64 B), 8 at a time, `--calls` of them (default 1,000,000);
 * - replacements: tests/testdata/fill_trap.wat fills its 16 MiB and traps,
 *   `--replacements` times (default 10,000), each trap replacing the instance.
 *
 * RSS is sampled every 1% of a run; the first 10% is warm-up. Reported per
 * run, in MiB: warm-up (median of the samples from 10% to 20%), plateau
 * (median of every sample after warm-up), end (median of the last 10%), max
 * (the highest sample after warm-up, spikes included: a worker booting while
 * another is ended, the plugin's own 16 MiB live), idle (`--idle-ms`, default
 * 30 s, after the end). The target, end within 10% of the plateau, is the
 * growth criterion; max/plateau is printed next to it. The load average is
 * printed too: the machine is shared, numbers are noisy.
 *
 * Run: deno task bench:soak [--calls=N] [--replacements=N] [--idle-ms=N] [--only=calls|replacements]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { PluginHost } from "../mod.ts";
import { examplePlugin, watFixture } from "../tests/_test_utils.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: Object.fromEntries(
    ["calls", "replacements", "idle-ms", "only", "concurrency"].map((name) => [name, { type: "string" }]),
  ) as Record<string, { type: "string" }>,
});
const CALLS = Number(args.calls ?? 1_000_000);
const REPLACEMENTS = Number(args.replacements ?? 10_000);
const IDLE_MS = Number(args["idle-ms"] ?? 30_000);
const CONCURRENCY = Number(args.concurrency ?? 8);
const TARGET = 1.1;
const MiB = 1024 * 1024;

interface Report {
  run: string;
  n: number;
  seconds: number;
  warmup: number;
  plateau: number;
  end: number;
  max: number;
  idle: number;
  replaced: number;
  recycled: number;
  instances: number;
}

function rss(): number {
  return Deno.memoryUsage().rss;
}

function loadAverage(): string {
  try {
    return Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
  } catch {
    return "n/a (needs --allow-sys=loadavg)";
  }
}

/** Runs `n` calls of `one`, `CONCURRENCY` at a time, sampling RSS every 1%. */
async function soak(run: string, host: PluginHost, n: number, one: () => Promise<unknown>): Promise<Report> {
  const samples: number[] = [];
  const every = Math.max(1, Math.floor(n / 100));
  let next = 0;
  let done = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < n) {
      next++;
      await one();
      if (++done % every === 0) samples.push(rss());
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = (performance.now() - started) / 1000;
  const end = rss();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? end;
  const afterWarmup = samples.slice(Math.floor(samples.length / 10));
  const tail = samples.slice(Math.floor(samples.length * 0.9));
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const stats = host.stats();
  return {
    run,
    n,
    seconds,
    warmup: median(samples.slice(Math.floor(samples.length / 10), Math.floor(samples.length / 5))),
    plateau: median(afterWarmup),
    end: median(tail),
    max: Math.max(end, ...afterWarmup),
    idle: rss(),
    replaced: stats.replaced,
    recycled: stats.recycled,
    instances: stats.instances,
  };
}

function print(report: Report): void {
  const mib = (bytes: number) => (bytes / MiB).toFixed(0);
  const ratio = (value: number) => {
    const r = value / report.plateau;
    return `${r.toFixed(3)} ${r <= TARGET ? "held" : "MISSED"}`;
  };
  console.log(
    `soak ${report.run}: ${report.n} in ${report.seconds.toFixed(0)} s (${
      (report.n / report.seconds).toFixed(0)
    }/s)\n` +
      `  RSS MiB: warm-up ${mib(report.warmup)}, plateau ${mib(report.plateau)}, end ${mib(report.end)}, ` +
      `max ${mib(report.max)}, idle ${mib(report.idle)}\n` +
      `  against the plateau (target <= ${TARGET}): end ${ratio(report.end)}, max ${ratio(report.max)}\n` +
      `  replaced ${report.replaced}, workers recycled ${report.recycled}, instances ${report.instances}; ` +
      `load ${loadAverage()}`,
  );
}

console.log(`soak: start RSS ${(rss() / MiB).toFixed(0)} MiB, load ${loadAverage()}`);
if (args.only !== "replacements") {
  await using host = new PluginHost({ concurrency: { maxCalls: 16, queue: 256 } });
  await host.load(await examplePlugin("hello"), { name: "hello", limits: { instances: 2, queue: 64 } });
  const input = crypto.getRandomValues(new Uint8Array(64));
  print(await soak("calls", host, CALLS, () => host.invoke("hello", "echo", input)));
}
if (args.only !== "calls") {
  await using host = new PluginHost();
  await host.load(await watFixture("fill_trap"), { name: "fill", limits: { instances: 2, queue: 64 } });
  const errors = new Map<string, number>();
  print(
    await soak("replacements", host, REPLACEMENTS, () =>
      host.invoke("fill", "fill").catch((error) => {
        const name = error instanceof Error ? error.name : String(error);
        errors.set(name, (errors.get(name) ?? 0) + 1);
      })),
  );
  console.log(`soak replacements: errors ${JSON.stringify(Object.fromEntries(errors))}`);
}
