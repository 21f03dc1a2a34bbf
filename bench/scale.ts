/**
 * Many plugins in one gateway (issue 13), in one bounded run that stops by
 * itself. Writes `--plugins=N` copies of the five example plugins under
 * different names (each `.wasm` with a sibling `.yaml`: its manifest and
 * grants, renamed) into a temp dir, configures them as `plugins:` entries and
 * starts a real gateway with `deno task start <config>`, as the README does.
 * Then it reports:
 *
 * - ready time: spawn to the serving banner, and to `/readyz` 200;
 * - RSS of the gateway's process tree (`deno task`, launcher, server: VmRSS
 *   of each from /proc), and per plugin over an empty gateway's;
 * - first call to a plugin no one has called yet (`describe`, p50 over
 *   `--sample` plugins; its instance starts at that call): spaced by
 *   `--cold-gap-ms` so that a warm spare worker is ready, and back to back
 *   (a burst outruns the spares: each call past them boots a worker);
 * - the tree's RSS again after those calls (their instances are alive);
 * - warm call p50 (`hello-0000` `greet`, `--warm` sequential calls);
 * - with wrk: plugin calls per second over `/healthz` requests per second.
 *
 * `--group=<n>` places the plugins, in the order written, into isolation
 * groups of n plugins each (`g0000`, `g0001`, …, each listing its plugins'
 * exact names, with `--group-workers` workers, default 2) through the
 * gateway's `isolation.groups`: the plugins of a group share its workers,
 * each with a wasm instance of its own.
 *
 * Instances start on demand: a loaded plugin costs its compiled module
 * (~0.1 MiB measured), and each live instance a worker (~14 MiB), at most
 * `concurrency.maxWorkers` (256) of them. The bench starts at most
 * 2 x `--sample` + 2 instances (cold calls, hello-0000, a spare). Before it
 * starts anything, the bench estimates the need and refuses (exit 2) when it
 * passes `--max-share` of MemAvailable; while the gateway starts, it kills it
 * (exit 2) if its tree outgrows that budget or MemAvailable falls under 512 MiB.
 *
 * Run: deno task bench:scale [--plugins=1000] [--sample=20] [--cold-gap-ms=250] [--warm=200] [--max-share=0.5]
 *   [--wrk-seconds=5] [--group=<n> [--group-workers=2]]
 *
 * @module
 */
import { join } from "node:path";
import { DENO, makeSite, REPO, Run, TREE_SOURCE, within } from "../tests/e2e/_server.ts";
import { examplePlugin } from "../tests/_test_utils.ts";
import { intFlag } from "./_http_load_driver.ts";

const KINDS = ["hello", "stamp", "header-guard", "redact", "quoter"] as const;
/** Estimated RSS of a loaded plugin with no instance, in MiB (0.1 measured; its compiled module and records). */
const ESTIMATE_PER_PLUGIN_MIB = 1;
/** Estimated RSS of one worker isolate (a live instance or a spare), in MiB (see README). */
const ESTIMATE_PER_WORKER_MIB = 14;
/** The gateway's `concurrency.maxWorkers` default: no more workers than this are ever alive. */
const MAX_WORKERS = 256;
/** Estimated RSS of the gateway's process tree with no plugin, in MiB. */
const ESTIMATE_BASE_MIB = 250;
/** Below this much MemAvailable the run is stopped, whatever the budget. */
const FLOOR_MIB = 512;
const MIB = 1024 * 1024;

interface Flags {
  plugins: number;
  sample: number;
  coldGapMs: number;
  warm: number;
  maxShare: number;
  wrkSeconds: number;
  /** Plugins per isolation group; 0: no groups (every plugin has workers of its own). */
  group: number;
  groupWorkers: number;
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = {
    plugins: 1000,
    sample: 20,
    coldGapMs: 250,
    warm: 200,
    maxShare: 0.5,
    wrkSeconds: 5,
    group: 0,
    groupWorkers: 2,
  };
  for (const arg of args) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    if (key === "--plugins") flags.plugins = intFlag(key, value, 1, 100_000);
    else if (key === "--sample") flags.sample = intFlag(key, value, 1, 10_000);
    else if (key === "--cold-gap-ms") flags.coldGapMs = intFlag(key, value, 0, 10_000);
    else if (key === "--warm") flags.warm = intFlag(key, value, 1, 1_000_000);
    else if (key === "--wrk-seconds") flags.wrkSeconds = intFlag(key, value, 0, 600);
    else if (key === "--group") flags.group = intFlag(key, value, 1, 100_000);
    else if (key === "--group-workers") flags.groupWorkers = intFlag(key, value, 1, 64);
    else if (key === "--max-share") {
      flags.maxShare = Number(value);
      if (!(flags.maxShare > 0 && flags.maxShare <= 0.9)) {
        throw new RangeError(`--max-share expects a fraction over 0 and at most 0.9, got ${JSON.stringify(value)}`);
      }
    } else throw new RangeError(`Unknown flag ${JSON.stringify(arg)}`);
  }
  return flags;
}

/**
 * Runs a script in a `deno eval` helper and returns what it prints. Deno lets a process read /proc or kill others
 * only with --allow-all; --allow-run=deno permits the helper, as tests/e2e/_server.ts does.
 */
async function helper(script: string): Promise<string> {
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--no-config", script],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

/** VmRSS of the process tree of `pid`: the sum, the largest process, and how many there are. */
async function treeRss(pid: number): Promise<{ total: number; largest: number; processes: number }> {
  const text = await helper(`${TREE_SOURCE}
    const rss = [];
    for (const p of [${pid}, ...tree(${pid})]) {
      try {
        const m = /^VmRSS:\\s+(\\d+) kB/m.exec(Deno.readTextFileSync("/proc/" + p + "/status"));
        if (m) rss.push(Number(m[1]) * 1024);
      } catch { /* exited in between */ }
    }
    console.log(JSON.stringify(rss));
  `);
  const rss = JSON.parse(text || "[]") as number[];
  return { total: rss.reduce((a, b) => a + b, 0), largest: Math.max(0, ...rss), processes: rss.length };
}

/** SIGKILLs the tree of `pid`, deepest first, by id. */
async function killTree(pid: number): Promise<void> {
  await helper(`${TREE_SOURCE}
    for (const p of [...tree(${pid}), ${pid}]) { try { Deno.kill(p, "SIGKILL"); } catch { /* gone */ } }
  `);
}

function memAvailable(): number {
  return Deno.systemMemoryInfo().available; // MemAvailable of /proc/meminfo on Linux
}

function p50(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const log = (line: string) => console.log(line);

/** Writes `count` renamed copies of the example plugins; returns their paths and names. */
async function writeCopies(dir: string, count: number): Promise<{ paths: string[]; names: string[] }> {
  await Deno.mkdir(dir, { recursive: true });
  const sources = await Promise.all(KINDS.map(async (kind) => ({
    kind,
    wasm: await examplePlugin(kind),
    manifest: await Deno.readTextFile(join(REPO, "plugins", kind, "plugin.yaml")),
  })));
  const paths: string[] = [];
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const source = sources[i % sources.length]!;
    const name = `${source.kind}-${String(Math.floor(i / sources.length)).padStart(4, "0")}`;
    const manifest = source.manifest.replace(/^name: .*$/m, `name: ${name}`);
    await Deno.writeFile(join(dir, `${name}.wasm`), source.wasm);
    await Deno.writeTextFile(join(dir, `${name}.yaml`), manifest);
    paths.push(join(dir, `${name}.wasm`));
    names.push(name);
  }
  return { paths, names };
}

/** keycard.yaml's `isolation` section: one group of `size` plugins (exact names) after another. */
function isolationYaml(names: string[], size: number, workers: number): string {
  const lines = ["isolation:", "  groups:"];
  for (let i = 0; i < names.length; i += size) {
    lines.push(
      `    - name: g${String(i / size).padStart(4, "0")}`,
      `      workers: ${workers}`,
      `      plugins: [${names.slice(i, i + size).map((name) => JSON.stringify(name)).join(", ")}]`,
    );
  }
  return lines.join("\n") + "\n";
}

interface Started {
  run: Run;
  base: string;
  bannerMs: number;
  readyMs: number;
  peakRss: number;
}

/**
 * Starts `deno task start <config>` and waits (bounded by `boundMs`) for the banner and `/readyz` 200, watching the
 * tree's RSS against `budget` and MemAvailable against the floor all the while.
 */
async function startGateway(configPath: string, boundMs: number, budget: number): Promise<Started> {
  const t0 = performance.now();
  const run = new Run(["task", "start", configPath]);
  let peakRss = 0;
  let watching = true;
  const guard = Promise.withResolvers<never>();
  guard.promise.catch(() => {});
  // Sequential checks, one a second (each is a helper process): the tree's RSS and MemAvailable.
  const watch = (async () => {
    while (watching) {
      const rss = (await treeRss(run.process.pid)).total;
      peakRss = Math.max(peakRss, rss);
      const available = memAvailable();
      if (watching && (rss > budget || available < FLOOR_MIB * MIB)) {
        await killTree(run.process.pid);
        return guard.reject(
          new MemoryRefusal(
            `Stopped the start: the gateway's RSS reached ${mib(rss)} (budget ${mib(budget)}), ` +
              `MemAvailable ${mib(available)}`,
          ),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  try {
    const serving = await within(
      boundMs,
      "the serving banner",
      Promise.race([
        run.stdout.waitFor(/^keycard serving on http:\/\/127\.0\.0\.1:\d+ /, { ms: boundMs, what: "the banner" }),
        guard.promise,
      ]),
      () => run.output(),
    );
    const bannerMs = performance.now() - t0;
    const base = /^keycard serving on (http:\/\/127\.0\.0\.1:\d+) /.exec(serving)![1]!;
    // Polled: /readyz has no event to wait on. Bounded by boundMs.
    for (;;) {
      const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      if (response.status === 200) break;
      if (performance.now() - t0 > boundMs) throw new Error(`/readyz still ${response.status} after ${boundMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { run, base, bannerMs, readyMs: performance.now() - t0, peakRss };
  } catch (error) {
    await killTree(run.process.pid);
    await run[Symbol.asyncDispose]();
    throw error;
  } finally {
    watching = false;
    await watch;
  }
}

class MemoryRefusal extends Error {
  override name = "MemoryRefusal";
}

async function timedCall(base: string, token: string, plugin: string, exportName: string, body = ""): Promise<number> {
  const t = performance.now();
  const response = await fetch(`${base}/v1/plugins/${plugin}/invoke/${exportName}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  await response.arrayBuffer();
  const ms = performance.now() - t;
  if (response.status !== 200) throw new Error(`${plugin}.${exportName} answered ${response.status}`);
  return ms;
}

async function hasWrk(): Promise<boolean> {
  try {
    return (await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output()).code <= 1;
  } catch {
    return false;
  }
}

/** Requests per second wrk gets from one target. */
async function wrkRps(url: string, seconds: number, dir: string, token?: string): Promise<number> {
  const script = join(dir, `${crypto.randomUUID()}.lua`);
  const lua = token
    ? `wrk.method = "POST"\nwrk.body = "wrk"\nwrk.headers["authorization"] = "Bearer ${token}"\n`
    : `wrk.method = "GET"\n`;
  await Deno.writeTextFile(script, lua);
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${seconds}s`, "--timeout", "5s", "-s", script, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const match = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!match) throw new Error(`wrk printed no rate:\n${text}${new TextDecoder().decode(out.stderr)}`);
  return Number(match[1]);
}

async function measureEmpty(configPath: string, site: Awaited<ReturnType<typeof makeSite>>, budget: number) {
  await site.writeConfig({ plugins: [], routes: [] });
  const empty = await startGateway(configPath, 60_000, budget);
  try {
    return { rss: (await treeRss(empty.run.process.pid)).total, readyMs: empty.readyMs };
  } finally {
    await empty.run[Symbol.asyncDispose]();
  }
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args);
  const available = memAvailable();
  const budget = available * flags.maxShare;
  // Workers: the cold calls' instances (spaced and burst), hello-0000's and a spare, never past maxWorkers.
  const workers = (n: number) => Math.min(n, 2 * flags.sample + 1, MAX_WORKERS) + 1;
  const need = (n: number) =>
    (ESTIMATE_BASE_MIB + n * ESTIMATE_PER_PLUGIN_MIB + workers(n) * ESTIMATE_PER_WORKER_MIB) * MIB;
  const grouping = flags.group === 0
    ? "no isolation groups"
    : `isolation groups of ${flags.group} plugins, ${flags.groupWorkers} workers each`;
  log(
    `bench:scale --plugins=${flags.plugins} (${grouping}): MemAvailable ${mib(available)}, budget ${mib(budget)}`,
  );
  if (need(flags.plugins) > budget) {
    log(
      `refused: ${flags.plugins} plugins would need ~${mib(need(flags.plugins))} ` +
        `(${ESTIMATE_BASE_MIB} MiB + ${ESTIMATE_PER_PLUGIN_MIB} MiB per plugin + ${ESTIMATE_PER_WORKER_MIB} MiB ` +
        `per worker, ${workers(flags.plugins)} workers), over the budget of ${mib(budget)} ` +
        `(${flags.maxShare} of MemAvailable). The most this machine may run: --plugins=${
          Math.max(
            0,
            Math.floor(
              (budget / MIB - ESTIMATE_BASE_MIB - workers(flags.plugins) * ESTIMATE_PER_WORKER_MIB) /
                ESTIMATE_PER_PLUGIN_MIB,
            ),
          )
        }`,
    );
    return 2;
  }
  await using site = await makeSite({ plugins: [], routes: [] });
  const { paths, names } = await writeCopies(join(site.dir, "plugins"), flags.plugins);
  const empty = await measureEmpty(site.configPath, site, budget);
  const emptyRss = empty.rss;
  log(`empty gateway: tree RSS ${mib(emptyRss)}, /readyz 200 after ${(empty.readyMs / 1000).toFixed(2)} s`);

  await site.writeConfig({ plugins: paths, routes: [] });
  // Appended: the shared site writer knows no `isolation` section, and a top-level key may come last.
  if (flags.group > 0) {
    await Deno.writeTextFile(site.configPath, isolationYaml(names, flags.group, flags.groupWorkers), { append: true });
  }
  const boundMs = 60_000 + 1_000 * flags.plugins;
  const kc = await startGateway(site.configPath, boundMs, budget);
  try {
    const rss = await treeRss(kc.run.process.pid);
    const loaded = kc.run.stdout.lines.find((line) => line.startsWith("plugins: ")) ?? "";
    const failed = /\(not loaded: ([^)]*)\)/.exec(loaded)?.[1];
    if (failed) log(`not loaded: ${failed}`);

    // Spaced: each cold call finds a warm spare worker (refilled in ~50 ms + a ~100 ms boot after the last call took it).
    const cold: number[] = [];
    const step = Math.max(1, Math.floor(names.length / flags.sample));
    for (let i = 0; i < names.length && cold.length < flags.sample; i += step) {
      await new Promise((resolve) => setTimeout(resolve, flags.coldGapMs));
      cold.push(await timedCall(kc.base, site.callerToken, names[i]!, "describe"));
    }
    // Back to back, on other plugins (between the spaced ones) when there are enough.
    const burst: number[] = [];
    for (let i = Math.floor(step / 2); step >= 2 && i < names.length && burst.length < flags.sample; i += step) {
      burst.push(await timedCall(kc.base, site.callerToken, names[i]!, "describe"));
    }
    const calledRss = await treeRss(kc.run.process.pid);
    const warm: number[] = [];
    await timedCall(kc.base, site.callerToken, "hello-0000", "greet", "warm-up");
    for (let i = 0; i < flags.warm; i++) {
      warm.push(await timedCall(kc.base, site.callerToken, "hello-0000", "greet", "x"));
    }

    const perPlugin = (rss.total - emptyRss) / flags.plugins;
    const readyPerPluginMs = Math.max(0, kc.readyMs - empty.readyMs) / flags.plugins;
    log("");
    log(`| plugins | banner | /readyz 200 | tree RSS (${rss.processes} processes) | largest | peak while starting |`);
    log(`|---|---|---|---|---|---|`);
    log(
      `| ${flags.plugins} | ${(kc.bannerMs / 1000).toFixed(2)} s | ${(kc.readyMs / 1000).toFixed(2)} s | ${
        mib(rss.total)
      } | ${mib(rss.largest)} | ${mib(kc.peakRss)} |`,
    );
    log("");
    log(
      `per plugin: ${mib(perPlugin)} RSS (over the empty gateway's ${mib(emptyRss)}), ` +
        `${readyPerPluginMs.toFixed(1)} ms of ready time (over the empty gateway's)`,
    );
    log(
      `first call to an uncalled plugin (describe, ${cold.length} plugins, ${flags.coldGapMs} ms apart): ` +
        `p50 ${p50(cold).toFixed(2)} ms`,
    );
    log(
      burst.length === 0
        ? "first call, back to back: skipped (fewer than 2 x --sample plugins)"
        : `first call, back to back (${burst.length} plugins): p50 ${p50(burst).toFixed(2)} ms`,
    );
    log(`tree RSS after those calls (${cold.length + burst.length} instances started): ${mib(calledRss.total)}`);
    log(`warm call (hello-0000 greet, ${warm.length} calls): p50 ${p50(warm).toFixed(2)} ms`);
    log(
      `extrapolated to 1,000 plugins: ~${mib(emptyRss + 1000 * perPlugin)} RSS, ` +
        `~${((empty.readyMs + 1000 * readyPerPluginMs) / 1000).toFixed(1)} s to ready ` +
        `(workers start at calls, not at load: RSS grows with the instances alive, at most maxWorkers)`,
    );

    // The gateway's own view (issue 13's per-plugin metrics): wasm linear memory against RSS.
    const adminToken = (await Deno.readTextFile(join(site.dataDir, "admin-token"))).trim();
    const metrics = await (await fetch(`${kc.base}/metrics`, {
      headers: { authorization: `Bearer ${adminToken}` },
      signal: AbortSignal.timeout(10_000),
    })).text();
    const series = (name: string) =>
      [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].map((m) => Number(m[1]));
    const linear = series("keycard_plugin_memory_bytes");
    log(
      `/metrics: ${series("keycard_workers")[0]} workers, linear memory ${mib(linear.reduce((a, b) => a + b, 0))} ` +
        `over ${linear.length} plugins, RSS share per worker (estimate) ${
          mib(series("keycard_worker_rss_share_bytes")[0] ?? 0)
        }`,
    );

    if (flags.wrkSeconds === 0) log("wrk: skipped (--wrk-seconds=0)");
    else if (!await hasWrk()) log("wrk: not installed, HTTP ratio skipped (apt-get install wrk to measure it)");
    else {
      const health = await wrkRps(`${kc.base}/healthz`, flags.wrkSeconds, site.dir);
      const call = await wrkRps(
        `${kc.base}/v1/plugins/hello-0000/invoke/greet`,
        flags.wrkSeconds,
        site.dir,
        site.callerToken,
      );
      log(
        `wrk (32 connections, ${flags.wrkSeconds} s): /healthz ${health.toFixed(0)} req/s, ` +
          `hello-0000 greet ${call.toFixed(0)} req/s, ratio ${(call / health).toFixed(3)}`,
      );
    }
  } finally {
    await kc.run[Symbol.asyncDispose]();
  }
  // A restart on the same data dir: the plugins are installed already (the registry skips their writes).
  const again = await startGateway(site.configPath, boundMs, budget);
  try {
    const rss = await treeRss(again.run.process.pid);
    log(
      `restart with the ${flags.plugins} plugins installed: /readyz 200 after ${
        (again.readyMs / 1000).toFixed(2)
      } s, ` +
        `tree RSS ${mib(rss.total)}`,
    );
  } finally {
    await again.run[Symbol.asyncDispose]();
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    if (error instanceof MemoryRefusal) {
      console.error(error.message);
      Deno.exit(2);
    }
    throw error;
  }
}
