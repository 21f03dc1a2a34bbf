/**
 * keycard runtime benchmarks, side by side with Extism's own worker mode.
 *
 * Run: deno bench --allow-read=. --allow-write=plugins
 *        --allow-env=CI,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/
 * (the Extism SDK reads those two variables when it is imported on the main
 * thread; its node:worker_threads worker inherits the process permissions).
 * `deno bench` prints avg/min/max/p75/p99 but no p50: `bench/runtime_p50.ts`
 * runs the same measurements in a plain loop and prints p50/p99.
 *
 * Groups (the first bench of each is the baseline the others are compared to):
 *
 * - `noop`, `echo 64 B`, `echo 4 KiB`: one `host.invoke()` of the hello plugin
 *   (instrumented, in a permissionless worker isolate, SAB call channel)
 *   against one `plugin.call()` of the same module in Extism
 *   `runInWorker: true` (which never frees blocks between calls: we
 *   `reset()` every 256 calls, amortised into the numbers).
 *   Target: keycard noop p50 <= 40 µs (Extism worker mode: 62-82 µs).
 *
 * - `100 host calls`: one invoke of `clock100` (bench/testdata/host_calls.wat),
 *   which calls `extism:host/user` `keycard_clock_now` 100 times (alloc a
 *   0-byte request, call, free response and request). keycard answers on the
 *   main thread through the host-call bridge; Extism worker mode forwards the
 *   call to the main thread its own way (and is `reset()` after every call
 *   here: without it each call leaves ~200 blocks and the next one is slower).
 *   deno bench cannot divide, so per host call:
 *     (time of `100 host calls` - time of `noop`, same runner) / 100
 *   (runtime_p50.ts prints that number).
 *   Target: keycard host-call round trip p50 <= 25 µs (Extism worker ~95 µs).
 *
 * - `cold load`: `host.load()` of hello followed by its first invoke (`noop`),
 *   into a host with `spareWorkers: 4`. Between two iterations (untimed) the
 *   plugin is unloaded and we wait 250 ms; spares are taken oldest first, so
 *   the spare a load takes was created >= 4 iterations (>= 1 s) earlier, far
 *   beyond a worker boot (~25-45 ms): every timed load finds a booted spare
 *   ready. The host replaces the taken spare during the load (`new Worker()`
 *   blocks the main thread ~8-13 ms in Deno 2.9.6), which is part of what a
 *   real load costs, so it is measured. "fresh module" gives every load
 *   different bytes (an extra custom section: new sha256, so inspect,
 *   instrument and compile all run); "cached module" loads the same bytes
 *   (compile cache hit). "no spare" uses `spareWorkers: 0`: the load boots its
 *   worker, which shows what a spare saves.
 *   Target: warm-spare cold load <= 20 ms.
 *
 * - `fib (instrumentation)`: hello `fib` with n = 10000 (~14 ms of compute).
 *   Extism foreground on the main thread with the raw module (baseline) vs.
 *   the module as keycard instruments it (`instrumentModule(bytes, {maxPages:
 *   256})`, start code run as keycard does): that ratio is the
 *   instrumentation overhead alone. The keycard invoke adds the worker and
 *   channel cost on top.
 *   Target: instrumentation overhead <= 10% on a compute-heavy export.
 *
 * Resources are created once at top level and closed on `unload`.
 *
 * @module
 */
import { coldLoad, EMPTY, FIB_N, INPUT_4K, INPUT_64, setup } from "./_setup.ts";

const f = await setup();
globalThis.addEventListener("unload", () => void f.close());

const ECHO = [["echo 64 B", INPUT_64], ["echo 4 KiB", INPUT_4K]] as const;

// --- invoke latency: keycard vs. Extism worker mode ------------------------

Deno.bench("keycard invoke noop", { group: "noop", baseline: true }, async () => {
  await f.host.invoke(f.hello, "noop");
});
Deno.bench("extism runInWorker noop", { group: "noop" }, async () => {
  await f.extismHello.call("noop", EMPTY);
});

for (const [group, input] of ECHO) {
  Deno.bench(`keycard invoke ${group}`, { group, baseline: true }, async () => {
    await f.host.invoke(f.hello, "echo", input);
  });
  Deno.bench(`extism runInWorker ${group}`, { group }, async () => {
    await f.extismHello.call("echo", input);
  });
}

// --- host-call round trip: per call = (this - noop) / 100 ------------------

Deno.bench("keycard invoke clock100 (100 host calls)", { group: "100 host calls", baseline: true }, async () => {
  await f.host.invoke(f.hostCalls, "clock100");
});
Deno.bench("extism runInWorker clock100 (100 host calls)", { group: "100 host calls" }, async () => {
  await f.extismHostCalls.call("clock100", EMPTY);
});

// --- cold load with a warm spare: load + first invoke ----------------------

const COLD = { group: "cold load", n: 30, warmup: 2 };
Deno.bench("keycard load+first invoke, warm spare, fresh module", { ...COLD, baseline: true }, async (b) => {
  await coldLoad(f.coldHost, f.helloBytes, true, b);
});
Deno.bench("keycard load+first invoke, warm spare, cached module", COLD, async (b) => {
  await coldLoad(f.coldHost, f.helloBytes, false, b);
});
Deno.bench("keycard load+first invoke, no spare, fresh module", COLD, async (b) => {
  await coldLoad(f.bareHost, f.helloBytes, true, b);
});

// --- instrumentation overhead on a compute-heavy export --------------------

const FIB = { group: "fib (instrumentation)", n: 100, warmup: 5 };
Deno.bench(`extism foreground raw module fib(${FIB_N})`, { ...FIB, baseline: true }, async () => {
  await f.fgRaw.call("fib", FIB_N);
});
Deno.bench(`extism foreground instrumented module fib(${FIB_N})`, FIB, async () => {
  await f.fgInstrumented.call("fib", FIB_N);
});
Deno.bench(`keycard invoke fib(${FIB_N})`, FIB, async () => {
  await f.host.invoke(f.hello, "fib", FIB_N);
});
