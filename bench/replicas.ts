/**
 * Scale out (issue 14): one replica, then three, on one PostgreSQL database, each started with
 * `deno task start <config>` as the README runs it (tests/e2e/_replicas.ts), in one bounded run that stops by itself.
 * Reports:
 *
 * - invocations/s (`POST /v1/plugins/hello/invoke/greet`, the caller token) and decisions/s (`POST /v1/authorize`,
 *   a stamp `random.get` request, the admin token), driven by wrk at one replica, then at each of three at once
 *   (one wrk per replica, the same connections each; the sum is reported);
 * - the propagation lag of `--writes` policy writes on A: from the PUT's response to the first `GET /v1/policies` on
 *   B and on C that lists the written policy (polled every `--poll-ms`), p50 / p99 / max, and the replicas' own
 *   `keycard_propagation_lag_seconds` mean over the same writes.
 *
 * All processes (three servers, wrk, this driver) share the machine's cores: three replicas on two cores cannot
 * triple anything, and the numbers say what one machine does, not what three would.
 *
 * The database: `KEYCARD_TEST_PG_URL` (a server the run may create a database on), else a throwaway cluster when
 * Debian's PostgreSQL binaries may be run (see tests/_postgres.ts); a fresh database is created and dropped.
 *
 * Run: deno task bench:replicas [--seconds=5] [--connections=32] [--writes=100] [--poll-ms=2]
 *
 * @module
 */
import { bearer, TREE_SOURCE } from "../tests/e2e/_server.ts";
import {
  type Cluster,
  helper,
  makeReplicaSite,
  type Replica,
  startCluster,
  startReplica,
  testPostgres,
  until,
} from "../tests/e2e/_replicas.ts";
import { ensureWrk, intFlag, type LoadResult, type LoadTarget, runWrk } from "./_http_load_driver.ts";

interface Flags {
  seconds: number;
  connections: number;
  writes: number;
  pollMs: number;
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = { seconds: 5, connections: 32, writes: 100, pollMs: 2 };
  for (const arg of args) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    if (key === "--seconds") flags.seconds = intFlag(key, value, 1, 120);
    else if (key === "--connections") flags.connections = intFlag(key, value, 1, 1024);
    else if (key === "--writes") flags.writes = intFlag(key, value, 1, 10_000);
    else if (key === "--poll-ms") flags.pollMs = intFlag(key, value, 0, 1000);
    else throw new RangeError(`Unknown flag ${JSON.stringify(arg)}`);
  }
  return flags;
}

const log = (line: string) => console.log(line);

/** A stamp `random.get` request, as the README's dry-run example: what Cedar decides per POST /v1/authorize. */
const AUTHORIZE_BODY = JSON.stringify({
  principal: { type: "Plugin", id: "stamp" },
  action: "random.get",
  resource: { type: "Runtime", id: "random" },
  context: { caller: "app" },
});

function targets(replica: Replica, cluster: Cluster): { invoke: LoadTarget; authorize: LoadTarget } {
  return {
    invoke: {
      name: `invoke hello/greet @${replica.name}`,
      url: `${replica.base}/v1/plugins/hello/invoke/greet`,
      method: "POST",
      headers: bearer(cluster.tokens.caller),
      body: "wrk",
    },
    authorize: {
      name: `authorize @${replica.name}`,
      url: `${replica.base}/v1/authorize`,
      method: "POST",
      headers: { ...bearer(cluster.tokens.admin), "content-type": "application/json" },
      body: AUTHORIZE_BODY,
    },
  };
}

/** Checks a target answers 200 before loading it: a bench of 401s or 404s measures nothing. */
async function check(target: LoadTarget): Promise<void> {
  const response = await fetch(target.url, {
    method: target.method,
    headers: target.headers ?? {},
    body: target.body ?? null,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${target.name}: ${response.status} ${text.slice(0, 300)}`);
}

/** wrk at every target at once; the results in order. */
async function loadAll(list: LoadTarget[], flags: Flags, scratchDir: string): Promise<LoadResult[]> {
  for (const target of list) await check(target);
  const options = { connections: flags.connections, threads: 1, seconds: flags.seconds, scratchDir };
  // A short warm-up of every target first (plugin instances, Cedar caches, pools).
  await Promise.all(list.map((target) => runWrk(target, { ...options, seconds: 1 })));
  return (await Promise.all(list.map((target) => runWrk(target, options)))).map((r) => r.result);
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** `sum` and `count` of the replica's keycard_propagation_lag_seconds histogram. */
async function lagHistogram(replica: Replica, cluster: Cluster): Promise<{ sum: number; count: number }> {
  const response = await replica.fetch("/metrics", { headers: bearer(cluster.tokens.admin) });
  const text = await response.text();
  // Absent until the replica has applied a change from another: 0 then.
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    sum: value("keycard_propagation_lag_seconds_sum"),
    count: value("keycard_propagation_lag_seconds_count"),
  };
}

/** The replica's `keycard_calls_total` of hello/greet by outcome (what wrk's "non-2xx" were). */
async function greetOutcomes(replica: Replica, cluster: Cluster): Promise<Map<string, number>> {
  const response = await replica.fetch("/metrics", { headers: bearer(cluster.tokens.admin) });
  const text = await response.text();
  const out = new Map<string, number>();
  for (
    const match of text.matchAll(/^keycard_calls_total\{plugin="hello",export="greet",outcome="([^"]+)"\} (\d+)$/gm)
  ) {
    out.set(match[1]!, Number(match[2]));
  }
  return out;
}

/** Outcomes other than ok between two readings, over all replicas, e.g. `"overloaded 10"`; "none" when none. */
function notOk(before: Map<string, number>[], after: Map<string, number>[]): string {
  const sums = new Map<string, number>();
  after.forEach((reading, i) => {
    for (const [outcome, n] of reading) {
      if (outcome !== "ok") sums.set(outcome, (sums.get(outcome) ?? 0) + n - (before[i]!.get(outcome) ?? 0));
    }
  });
  const parts = [...sums].filter(([, n]) => n > 0).map(([outcome, n]) => `${outcome} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}

/** Policy writes on `writer`, each observed on every `reader`: the lags in ms per reader. */
async function propagation(
  writer: Replica,
  readers: Replica[],
  cluster: Cluster,
  flags: Flags,
): Promise<Record<string, number[]>> {
  const admin = bearer(cluster.tokens.admin);
  const lags: Record<string, number[]> = Object.fromEntries(readers.map((r) => [r.name, []]));
  for (let i = 0; i < flags.writes; i++) {
    const id = `bench.write-${i}`;
    const text =
      `@id("${id}")\nforbid (principal == Plugin::"bench-nobody", action == Action::"clock.now", resource);\n`;
    const put = await writer.fetch("/v1/policies/bench-propagation.cedar", {
      method: "PUT",
      headers: { ...admin, "content-type": "text/plain" },
      body: text,
    });
    const body = await put.text();
    if (put.status !== 200) throw new Error(`PUT on ${writer.name}: ${put.status} ${body}`);
    const since = performance.now();
    const seen = await Promise.all(readers.map((reader) =>
      until(`policy ${id} on ${reader.name}`, async () => {
        const response = await reader.fetch("/v1/policies", { headers: admin });
        const { policies } = await response.json() as { policies: { id: string }[] };
        return policies.some((p) => p.id === id);
      }, { since, boundMs: 10_000, everyMs: flags.pollMs })
    ));
    readers.forEach((reader, r) => lags[reader.name]!.push(seen[r]!));
  }
  return lags;
}

function table(rows: { label: string; results: LoadResult[] }[]): string[] {
  const lines = [
    "| what | replicas | req/s (sum) | per replica | p50 / p99 (ms, worst replica) | non-2xx | errors |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const { label, results } of rows) {
    const sum = results.reduce((s, r) => s + r.rps, 0);
    lines.push(
      `| ${label} | ${results.length} | ${sum.toFixed(0)} | ${results.map((r) => r.rps.toFixed(0)).join(" / ")} | ${
        Math.max(...results.map((r) => r.p50Ms)).toFixed(2)
      } / ${Math.max(...results.map((r) => r.p99Ms)).toFixed(2)} | ${results.reduce((s, r) => s + r.non2xx, 0)} | ${
        results.reduce((s, r) => s + r.errors, 0)
      } |`,
    );
  }
  return lines;
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args);
  if (testPostgres === undefined) {
    log("bench:replicas needs PostgreSQL: set KEYCARD_TEST_PG_URL to a server this run may create a database on");
    return 2;
  }
  if (await ensureWrk(log) === undefined) {
    log("bench:replicas needs wrk (/usr/bin/wrk)");
    return 2;
  }
  log(
    `bench:replicas --seconds=${flags.seconds} --connections=${flags.connections} --writes=${flags.writes} ` +
      `(PostgreSQL from ${testPostgres.origin}; ${navigator.hardwareConcurrency} cores)`,
  );
  const scratch = await Deno.makeTempDir({ prefix: "keycard-bench-replicas-" });
  await using cluster = await startCluster(["a"]);
  // Stops the run (and the replicas it started, by id) if it outlives its bound.
  const bound = (60 + 8 * flags.seconds + flags.writes) * 1000;
  const watchdog = setTimeout(async () => {
    log(`still running after ${bound / 1000} s: stopping the replicas and exiting`);
    for (const replica of cluster.replicas) {
      await helper(`${TREE_SOURCE}
        for (const p of [...tree(${replica.run.process.pid}), ${replica.run.process.pid}]) {
          try { Deno.kill(p, "SIGKILL"); } catch { /* gone */ }
        }`).catch(() => {});
    }
    Deno.exit(3);
  }, bound);
  Deno.unrefTimer(watchdog);
  try {
    const a = cluster.replicas[0]!;
    const one = targets(a, cluster);
    const outcomesOne = [await greetOutcomes(a, cluster)];
    const invokeOne = await loadAll([one.invoke], flags, scratch);
    const notOkOne = notOk(outcomesOne, [await greetOutcomes(a, cluster)]);
    const authorizeOne = await loadAll([one.authorize], flags, scratch);

    for (const name of ["b", "c"]) {
      const site = await makeReplicaSite(name, { storeUrl: cluster.database.url, tokens: cluster.tokens });
      cluster.sites.push(site);
      cluster.replicas.push(await startReplica(site, cluster.tokens));
    }
    const three = cluster.replicas.map((replica) => targets(replica, cluster));
    const outcomesThree = await Promise.all(cluster.replicas.map((r) => greetOutcomes(r, cluster)));
    const invokeThree = await loadAll(three.map((t) => t.invoke), flags, scratch);
    const notOkThree = notOk(outcomesThree, await Promise.all(cluster.replicas.map((r) => greetOutcomes(r, cluster))));
    const authorizeThree = await loadAll(three.map((t) => t.authorize), flags, scratch);

    const [, b, c] = cluster.replicas as [Replica, Replica, Replica];
    const before = await Promise.all([b, c].map((r) => lagHistogram(r, cluster)));
    const lags = await propagation(a, [b, c], cluster, flags);
    const after = await Promise.all([b, c].map((r) => lagHistogram(r, cluster)));

    log("");
    for (
      const line of table([
        { label: "invoke hello/greet", results: invokeOne },
        { label: "invoke hello/greet", results: invokeThree },
        { label: "POST /v1/authorize", results: authorizeOne },
        { label: "POST /v1/authorize", results: authorizeThree },
      ])
    ) log(line);
    log(`invoke outcomes other than ok (server side, warm-up included): 1 replica: ${notOkOne}; 3: ${notOkThree}`);
    log("");
    log(`propagation of ${flags.writes} policy writes on A (PUT response -> listed by GET /v1/policies):`);
    log("| replica | p50 | p99 | max | metric mean (keycard_propagation_lag_seconds) |");
    log("|---|---|---|---|---|");
    [b, c].forEach((replica, i) => {
      const samples = lags[replica.name]!;
      const count = after[i]!.count - before[i]!.count;
      const mean = count > 0 ? `${((after[i]!.sum - before[i]!.sum) / count * 1000).toFixed(1)} ms (${count})` : "n/a";
      log(
        `| ${replica.name} | ${percentile(samples, 0.5).toFixed(1)} ms | ${percentile(samples, 0.99).toFixed(1)} ms | ${
          Math.max(...samples).toFixed(1)
        } ms | ${mean} |`,
      );
    });
    log("");
    log(
      `ratios, 3 replicas over 1: invoke ${(sumRps(invokeThree) / sumRps(invokeOne)).toFixed(2)}, authorize ${
        (sumRps(authorizeThree) / sumRps(authorizeOne)).toFixed(2)
      } (${navigator.hardwareConcurrency} cores shared by every replica and wrk)`,
    );
    return 0;
  } finally {
    clearTimeout(watchdog);
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

function sumRps(results: LoadResult[]): number {
  return results.reduce((sum, r) => sum + r.rps, 0);
}

if (import.meta.main) Deno.exit(await main());
