/**
 * `PluginHost` throughput with no HTTP (issue 13), in one bounded run:
 *
 * - the hello plugin's `echo` with a 64-byte input, from N concurrent callers
 *   (loops that each await one call at a time) for `--seconds`, at
 *   concurrency 1, 8 and 32, for `limits.instances` 1, 2 (the default) and 4:
 *   calls/s, p50 and p99, and the process's CPU (all threads) over the run;
 * - noop invoke p50, one caller: the definition of bench/runtime_p50.ts
 *   ("keycard invoke noop": a default host, `invoke(info, "noop")`, 300
 *   warm-up calls, then 3000 timed) so the two benches agree.
 *
 * The host's own bounds are raised (`concurrency.maxCalls` 64, queues 1024)
 * so that no call is refused: a rejection would be a bug here, not load
 * shedding. Instances are kept warm (`minInstances` = `instances`) so no
 * worker boot falls in a measured run.
 *
 * `--group` loads the plugin into the isolation group `bench`
 * (`LoadOptions.group`, with `PluginHostOptions.groups.bench.workers` set to
 * the run's instances): its instances then live in slots of the group's
 * workers.
 *
 * Where the main thread's time goes: profile one cell, then summarize.
 *
 *   deno run --cpu-prof --cpu-prof-dir=/tmp/kc-prof <the task's flags> bench/throughput.ts \
 *     --instances=2 --concurrency=32 --no-noop --no-check
 *   deno task bench:throughput --profile-summary=/tmp/kc-prof/<file>.cpuprofile [--top=25]
 *
 * Deno writes one file per isolate: `CPU.<...>.cpuprofile` is the main
 * thread's (its `(idle)` share is the time it waited), each worker's is
 * `CPU.<...>.worker-<n>.cpuprofile`.
 *
 * `--no-check` leaves out the free-cores checks (two threads spinning
 * before, between and after the cells), which would show in a profile.
 *
 * Run: deno task bench:throughput [--seconds=5] [--group] [--instances=1,2,4] [--concurrency=1,8,32] [--no-noop]
 *   [--no-check]
 *
 * @module
 */
import { type LoadOptions, PluginHost, type PluginHostOptions, type PluginInfo } from "../mod.ts";
import { cpuTimeMs, examplePlugin } from "../tests/_test_utils.ts";
import { intFlag, type LoadResult, runLoops, startWatchdog } from "./_http_load_driver.ts";
import { summarizeCpuProfile } from "./_cpuprofile_summary.ts";

/** Issue 13's targets for the host alone. */
const TARGET_CALLS_PER_SECOND = 60_000;
const TARGET_NOOP_P50_US = 10;
/** The concurrency and instances the calls/s target is judged at (the default instances). */
const TARGET_CONCURRENCY = 32;
const DEFAULT_INSTANCES = 2;
/** Same as bench/runtime_p50.ts. */
const NOOP_WARMUP = 300;
const NOOP_CALLS = 3000;
const WARMUP_SECONDS = 1;
const GROUP = "bench";
/** Nothing in this run may take longer: past it the process exits with 3 (workers die with it). */
const WATCHDOG_MS = 15 * 60_000;

const INPUT_64 = crypto.getRandomValues(new Uint8Array(64));

interface Flags {
  seconds: number;
  group: boolean;
  instances: number[];
  concurrency: number[];
  noop: boolean;
  /** Whether to run {@linkcode coresFree} around the cells (left out when profiling: it spins the main thread). */
  check: boolean;
  profileSummary: string | undefined;
  top: number;
}

function listFlag(key: string, value: string | undefined): number[] {
  const list = (value ?? "").split(",").map((part) => intFlag(key, part, 1, 1024));
  if (list.length === 0) throw new RangeError(`${key} expects a comma-separated list of integers`);
  return list;
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = {
    seconds: 5,
    group: false,
    instances: [1, 2, 4],
    concurrency: [1, 8, 32],
    noop: true,
    check: true,
    profileSummary: undefined,
    top: 25,
  };
  for (const arg of args) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    if (key === "--seconds") flags.seconds = intFlag(key, value, 1, 600);
    else if (arg === "--group") flags.group = true;
    else if (key === "--instances") flags.instances = listFlag(key, value);
    else if (key === "--concurrency") flags.concurrency = listFlag(key, value);
    else if (arg === "--no-noop") flags.noop = false;
    else if (arg === "--no-check") flags.check = false;
    else if (key === "--profile-summary" && value) flags.profileSummary = value;
    else if (key === "--top") flags.top = intFlag(key, value, 1, 1000);
    else throw new RangeError(`Unknown argument ${JSON.stringify(arg)}`);
  }
  return flags;
}

const log = (line: string) => console.error(`[throughput] ${line}`);

async function openHost(
  bytes: Uint8Array,
  hostOptions: PluginHostOptions,
  loadOptions: LoadOptions,
): Promise<{ host: PluginHost; info: PluginInfo }> {
  const host = new PluginHost(hostOptions);
  try {
    return { host, info: await host.load(bytes, loadOptions) };
  } catch (error) {
    await host.close();
    throw error;
  }
}

interface Row {
  instances: number;
  concurrency: number;
  result: LoadResult;
  /** Process CPU (all threads) over the run, in cores. */
  cores: number;
  /** {@linkcode coresFree} right after the run: under the machine's cores when other processes competed. */
  free: number;
}

async function echoRuns(bytes: Uint8Array, instances: number, flags: Flags): Promise<Row[]> {
  const hostOptions: PluginHostOptions = { concurrency: { maxCalls: 64, queue: 1024 } };
  const loadOptions: LoadOptions = {
    name: "hello",
    limits: { instances, minInstances: instances, queue: 1024 },
  };
  if (flags.group) {
    hostOptions.groups = { [GROUP]: { workers: instances } };
    loadOptions.group = GROUP;
  }
  const { host, info } = await openHost(bytes, hostOptions, loadOptions);
  try {
    if (flags.group) log(`instances ${instances}: plugin reports group ${JSON.stringify(info.group ?? null)}`);
    const out = await host.invoke(info, "echo", INPUT_64);
    if (out.length !== INPUT_64.length || !out.every((v, i) => v === INPUT_64[i])) {
      throw new Error("echo returned other bytes than its input");
    }
    const call = async () => (await host.invoke(info, "echo", INPUT_64)).length === INPUT_64.length;
    const rows: Row[] = [];
    for (const concurrency of flags.concurrency) {
      await runLoops("warm-up", "direct", call, { concurrency, seconds: WARMUP_SECONDS });
      const cpu0 = cpuTimeMs();
      const result = await runLoops(`echo 64 B`, "direct", call, { concurrency, seconds: flags.seconds });
      const cores = (cpuTimeMs() - cpu0) / (result.seconds * 1000);
      const free = flags.check ? await coresFree(200) : NaN;
      const stats = host.stats();
      if (result.non2xx + result.errors > 0 || stats.rejected > 0) {
        log(
          `instances ${instances} x ${concurrency}: ${result.non2xx} wrong, ${result.errors} errors, ` +
            `${stats.rejected} rejected`,
        );
      }
      log(
        `instances ${instances}, concurrency ${concurrency}: ${result.rps.toFixed(0)} calls/s, ` +
          `p50 ${us(result.p50Ms)}, p99 ${us(result.p99Ms)}, ${cores.toFixed(2)} cores, ${free.toFixed(2)} free after`,
      );
      rows.push({ instances, concurrency, result, cores, free });
    }
    return rows;
  } finally {
    await host.close();
  }
}

/** bench/runtime_p50.ts's "keycard invoke noop": p50 and p99 in µs. */
async function noopP50(bytes: Uint8Array, flags: Flags): Promise<{ p50: number; p99: number }> {
  const hostOptions: PluginHostOptions = {};
  const loadOptions: LoadOptions = { name: "hello" };
  if (flags.group) {
    hostOptions.groups = { [GROUP]: { workers: DEFAULT_INSTANCES } };
    loadOptions.group = GROUP;
  }
  const { host, info } = await openHost(bytes, hostOptions, loadOptions);
  try {
    const samples: number[] = [];
    for (let i = 0; i < NOOP_WARMUP + NOOP_CALLS; i++) {
      const t0 = performance.now();
      await host.invoke(info, "noop");
      if (i >= NOOP_WARMUP) samples.push((performance.now() - t0) * 1000);
    }
    samples.sort((a, b) => a - b);
    const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]!;
    return { p50: at(0.5), p99: at(0.99) };
  } finally {
    await host.close();
  }
}

/**
 * Cores two spinning threads (this one and a worker) get over `ms`: ~2.0 on an idle 2-core machine, less when other
 * processes compete for the cores (the machine is shared; this bench cannot read the load average with its
 * permissions).
 */
async function coresFree(ms = 400): Promise<number> {
  const spin = `while (performance.now() - start < ${ms}) {}`;
  const source = `onmessage = () => { const start = performance.now(); ${spin} postMessage(0); };`;
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(source)}`, { type: "module" });
  try {
    const done = new Promise((resolve) => worker.onmessage = resolve);
    const cpu0 = cpuTimeMs();
    const start = performance.now();
    worker.postMessage(0);
    while (performance.now() - start < ms) { /* spin */ }
    await done;
    return (cpuTimeMs() - cpu0) / (performance.now() - start);
  } finally {
    worker.terminate();
  }
}

function us(ms: number): string {
  const micro = ms * 1000;
  return micro >= 100 ? `${micro.toFixed(0)} µs` : `${micro.toFixed(1)} µs`;
}

function table(rows: Row[]): string {
  const header = ["instances", "concurrency", "calls", "calls/s", "p50", "p99", "CPU (cores)", "free after", "failed"];
  const cells = rows.map((r) => [
    String(r.instances),
    String(r.concurrency),
    String(r.result.requests),
    r.result.rps.toFixed(0),
    us(r.result.p50Ms),
    us(r.result.p99Ms),
    r.cores.toFixed(2),
    r.free.toFixed(2),
    String(r.result.non2xx + r.result.errors),
  ]);
  const line = (c: string[]) => `| ${c.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...cells.map(line)].join("\n");
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  if (flags.profileSummary) {
    console.log(summarizeCpuProfile(JSON.parse(await Deno.readTextFile(flags.profileSummary)), { top: flags.top }));
    return;
  }
  const watchdog = startWatchdog(WATCHDOG_MS, log);
  try {
    const bytes = await examplePlugin("hello");
    const shareBefore = flags.check ? await coresFree() : NaN;
    const rows: Row[] = [];
    for (const instances of flags.instances) rows.push(...await echoRuns(bytes, instances, flags));
    const noop = flags.noop ? await noopP50(bytes, flags) : undefined;
    const shareAfter = flags.check ? await coresFree() : NaN;

    console.log(
      `\nPluginHost throughput, hello echo 64 B, no HTTP; ${Deno.build.os} ${navigator.hardwareConcurrency} cores, ` +
        `Deno ${Deno.version.deno}; ${flags.seconds} s a cell${flags.group ? `, group "${GROUP}"` : ""}\n`,
    );
    console.log(table(rows));
    console.log(
      `\nmachine check: two spinning threads got ${shareBefore.toFixed(2)} cores before the runs, ` +
        `${shareAfter.toFixed(2)} after (of ${navigator.hardwareConcurrency}; less: other processes competed); ` +
        `"free after": the same check (200 ms) right after each cell`,
    );
    const verdict = (ok: boolean) => ok ? "met" : "MISSED";
    const judged = rows.find((r) => r.instances === DEFAULT_INSTANCES && r.concurrency === TARGET_CONCURRENCY);
    const best = rows.filter((r) => r.concurrency === TARGET_CONCURRENCY)
      .sort((a, b) => b.result.rps - a.result.rps)[0];
    console.log("\ntargets (issue 13):");
    if (judged) {
      console.log(
        `  echo 64 B, concurrency ${TARGET_CONCURRENCY}, instances ${DEFAULT_INSTANCES}: ` +
          `${judged.result.rps.toFixed(0)} calls/s, target >= ${TARGET_CALLS_PER_SECOND}: ` +
          verdict(judged.result.rps >= TARGET_CALLS_PER_SECOND) +
          (best && best !== judged
            ? ` (best: instances ${best.instances}, ${best.result.rps.toFixed(0)} calls/s)`
            : ""),
      );
    } else console.log(`  echo 64 B calls/s: not judged (needs instances ${DEFAULT_INSTANCES} at concurrency 32)`);
    if (noop) {
      console.log(
        `  noop invoke, one caller: p50 ${noop.p50.toFixed(1)} µs (p99 ${noop.p99.toFixed(1)} µs), ` +
          `target <= ${TARGET_NOOP_P50_US} µs: ${verdict(noop.p50 <= TARGET_NOOP_P50_US)}`,
      );
    }
  } finally {
    clearTimeout(watchdog);
  }
}

if (import.meta.main) await main();
