/**
 * The measurements of bench/runtime_bench.ts (see its header for what each
 * one means and the targets) in a plain loop, printing p50 and p99, which
 * `deno bench` does not. Warm-up, then 3000 iterations per invoke item; fewer
 * for the slow items (cold loads 30, fib 150, Extism's 100-host-call export
 * 200) so the whole run stays around a minute.
 *
 * Run: deno run --allow-read=. --allow-write=plugins
 *        --allow-env=CI,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/runtime_p50.ts
 *
 * @module
 */
import { coldLoad, EMPTY, FIB_N, HOST_CALLS_PER_INVOKE, INPUT_4K, INPUT_64, setup } from "./_setup.ts";

interface Result {
  name: string;
  n: number;
  p50: number;
  p99: number;
}

const results = new Map<string, Result>();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Times `fn` (in µs); `fn` may time itself through the start/end handle (as a deno bench context does). */
async function measure(
  name: string,
  warmup: number,
  n: number,
  fn: (timed: { start(): void; end(): void }) => Promise<unknown>,
): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    let started = 0;
    let elapsed = -1;
    const timed = {
      start: () => void (started = performance.now()),
      end: () => void (elapsed = performance.now() - started),
    };
    const before = performance.now();
    await fn(timed);
    if (elapsed < 0) elapsed = performance.now() - before;
    if (i >= warmup) samples.push(elapsed * 1000);
  }
  samples.sort((a, b) => a - b);
  const result = { name, n, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
  results.set(name, result);
  console.error(`  ${name}: p50 ${fmt(result.p50)} µs`);
}

function fmt(us: number): string {
  return us >= 100 ? us.toFixed(0) : us.toFixed(1);
}

function p50(name: string): number {
  return results.get(name)!.p50;
}

const f = await setup();
const N = 3000;
const WARMUP = 300;

console.error("measuring...");
await measure("keycard invoke noop", WARMUP, N, () => f.host.invoke(f.hello, "noop"));
await measure("keycard invoke echo 64 B", WARMUP, N, () => f.host.invoke(f.hello, "echo", INPUT_64));
await measure("keycard invoke echo 4 KiB", WARMUP, N, () => f.host.invoke(f.hello, "echo", INPUT_4K));
await measure("keycard invoke clock100 (100 host calls)", WARMUP, N, () => f.host.invoke(f.hostCalls, "clock100"));
await measure("extism runInWorker noop", WARMUP, N, () => f.extismHello.call("noop", EMPTY));
await measure("extism runInWorker echo 64 B", WARMUP, N, () => f.extismHello.call("echo", INPUT_64));
await measure("extism runInWorker echo 4 KiB", WARMUP, N, () => f.extismHello.call("echo", INPUT_4K));
await measure("extism runInWorker clock100 (100 host calls)", 10, 200, () => f.extismHostCalls.call("clock100", EMPTY));
await measure(
  "keycard cold load+first invoke, warm spare, fresh module",
  2,
  30,
  (t) => coldLoad(f.coldHost, f.helloBytes, true, t),
);
await measure(
  "keycard cold load+first invoke, warm spare, cached module",
  2,
  30,
  (t) => coldLoad(f.coldHost, f.helloBytes, false, t),
);
await measure(
  "keycard cold load+first invoke, no spare, fresh module",
  2,
  30,
  (t) => coldLoad(f.bareHost, f.helloBytes, true, t),
);
await measure(`extism foreground raw fib(${FIB_N})`, 10, 150, () => f.fgRaw.call("fib", FIB_N));
await measure(`extism foreground instrumented fib(${FIB_N})`, 10, 150, () => f.fgInstrumented.call("fib", FIB_N));
await measure(`keycard invoke fib(${FIB_N})`, 10, 150, () => f.host.invoke(f.hello, "fib", FIB_N));
await f.close();

const width = Math.max(...[...results.keys()].map((k) => k.length));
const lines = [
  `| ${"item".padEnd(width)} | ${"n".padStart(5)} | ${"p50 µs".padStart(9)} | ${"p99 µs".padStart(9)} |`,
  `| ${"-".repeat(width)} | ${"-".repeat(5)} | ${"-".repeat(9)} | ${"-".repeat(9)} |`,
  ...[...results.values()].map((r) =>
    `| ${r.name.padEnd(width)} | ${String(r.n).padStart(5)} | ${fmt(r.p50).padStart(9)} | ${fmt(r.p99).padStart(9)} |`
  ),
];
console.log(lines.join("\n"));

const perCall = (runner: string) =>
  (p50(`${runner} clock100 (100 host calls)`) - p50(`${runner} noop`)) / HOST_CALLS_PER_INVOKE;
const keycardHostCall = perCall("keycard invoke");
const extismHostCall = perCall("extism runInWorker");
const raw = p50(`extism foreground raw fib(${FIB_N})`);
const instrumentation = p50(`extism foreground instrumented fib(${FIB_N})`) / raw - 1;
const keycardFib = p50(`keycard invoke fib(${FIB_N})`) / raw - 1;
const coldLoadMs = p50("keycard cold load+first invoke, warm spare, fresh module") / 1000;
const noop = p50("keycard invoke noop");
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const verdict = (ok: boolean) => ok ? "meets" : "MISSES";

console.log(`
derived (from p50s):
  host-call round trip, keycard   = (clock100 - noop) / 100 = ${fmt(keycardHostCall)} µs   target <= 25 µs: ${
  verdict(keycardHostCall <= 25)
}
  host-call round trip, Extism worker                       = ${fmt(extismHostCall)} µs
  keycard invoke noop                                       = ${fmt(noop)} µs   target <= 40 µs: ${verdict(noop <= 40)}
  warm-spare cold load + first invoke (fresh module)        = ${coldLoadMs.toFixed(1)} ms   target <= 20 ms: ${
  verdict(coldLoadMs <= 20)
}
  instrumentation overhead (foreground instrumented / raw)  = ${pct(instrumentation)}   target <= 10%: ${
  verdict(instrumentation <= 0.1)
}
  keycard invoke fib / foreground raw fib                   = +${pct(keycardFib)}`);
