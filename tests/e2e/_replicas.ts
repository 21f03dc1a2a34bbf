// The replicas harness: several keycards started with `deno task start <config>`, each with a temp dir of its own
// (keycard.yaml, a copy of policies/, its data dir), all on one PostgreSQL database (`store: { kind: postgres }`),
// one admin token for all (KEYCARD_ADMIN_TOKEN) and the same client tokens in every keycard.yaml, so that a load
// balancer could send any request to any of them. Every wait is bounded.
import postgres from "postgres";
import { join } from "node:path";
import { copyPolicies, examplePlugin } from "../_test_utils.ts";
import { createTestDatabase, startTestPostgres, type TestDatabase } from "../_postgres.ts";
import { bearer, BOUND, DENO, pluginDir, Run, sha256Hex, TREE_SOURCE, within } from "./_server.ts";

/** The tests' PostgreSQL server, or undefined on a machine without one (the tests are then ignored by name). */
export const testPostgres = await startTestPostgres();

/** The example plugins every replica configures (and seeds into the database). */
export const REPLICA_PLUGINS = ["hello", "stamp"] as const;

function randomToken(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The tokens every replica accepts. */
export interface Tokens {
  /** KEYCARD_ADMIN_TOKEN of every replica (at least 32 characters). */
  admin: string;
  /** Client `app`, role caller. */
  caller: string;
  /** Client `load`, role caller: kept apart so that a test can count the audit events of its own traffic. */
  load: string;
}

/** Fresh random tokens. */
export function makeTokens(): Tokens {
  return { admin: randomToken("admin"), caller: randomToken("caller"), load: randomToken("load") };
}

/** Options of {@linkcode makeReplicaSite}. */
export interface ReplicaSiteOptions {
  /** `store.url`: the database, or a proxy in front of it. */
  storeUrl: string;
  /** Tokens of the clients (the admin token is passed in the environment at start). */
  tokens: Tokens;
  /** More lines of the `store:` section, each starting with two spaces (e.g. `"  timeoutMs: 1000"`). @default {[]} */
  storeLines?: string[];
  /** `server.maxBodyBytes`. @default {1048576} */
  maxBodyBytes?: number;
  /** Example plugins to configure, by name. @default {REPLICA_PLUGINS} */
  plugins?: readonly string[];
}

/** One replica's temp dir: keycard.yaml, policies/ and data/. */
export interface ReplicaSite extends AsyncDisposable {
  /** The replica's id (`store.replica`), as the audit log records it. */
  name: string;
  dir: string;
  configPath: string;
  dataDir: string;
  policiesDir: string;
}

/**
 * Writes a replica's site: keycard.yaml with `store: { kind: postgres, url, replica: <name> }`, port 0 on loopback,
 * the example plugins, the clients `app` and `load` (role caller), and a copy of the repository's policies.
 */
export async function makeReplicaSite(name: string, options: ReplicaSiteOptions): Promise<ReplicaSite> {
  const plugins = options.plugins ?? REPLICA_PLUGINS;
  for (const plugin of plugins) await examplePlugin(plugin);
  const dir = await Deno.makeTempDir({ prefix: `keycard-replica-${name}-` });
  const policiesDir = await copyPolicies(dir);
  const dataDir = join(dir, "data");
  const configPath = join(dir, "keycard.yaml");
  const yaml = [
    "server:",
    "  host: 127.0.0.1",
    "  port: 0",
    `  maxBodyBytes: ${options.maxBodyBytes ?? 1048576}`,
    `dataDir: ${JSON.stringify(dataDir)}`,
    `policies: ${JSON.stringify(policiesDir)}`,
    "store:",
    "  kind: postgres",
    `  url: ${JSON.stringify(options.storeUrl)}`,
    `  replica: ${name}`,
    ...(options.storeLines ?? []),
    plugins.length ? "plugins:" : "plugins: []",
    ...plugins.map((plugin) => `  - path: ${JSON.stringify(pluginDir(plugin))}`),
    "tokens:",
    `  - { id: app, sha256: ${sha256Hex(options.tokens.caller)}, roles: [caller] }`,
    `  - { id: load, sha256: ${sha256Hex(options.tokens.load)}, roles: [caller] }`,
    "limits:",
    "  deadlineMs: 1000",
    "routes: []",
    "",
  ].join("\n");
  await Deno.writeTextFile(configPath, yaml);
  return {
    name,
    dir,
    configPath,
    dataDir,
    policiesDir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A replica started with `deno task start <its config>`. */
export interface Replica extends AsyncDisposable {
  name: string;
  site: ReplicaSite;
  run: Run;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** fetch against it, bounded by {@linkcode BOUND}.request unless `init.signal` is given. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The pid of the server process (`main.ts serve`, the child of the launcher `deno task start` runs). */
  serverPid(): Promise<number>;
  /** Stops it with SIGTERM (bounded) and returns its exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

/**
 * Runs a short `deno eval` helper and returns what it prints: the test task may run `deno` but not read `/proc` or
 * kill processes itself (as tests/e2e/_server.ts does).
 */
export async function helper(script: string, options: { stdin?: "null" | "piped" } = {}): Promise<string> {
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--no-config", script],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!out.success) throw new Error(`A deno eval helper failed: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** The server process under the process `pid` started: the descendant running `main.ts serve`. */
async function findServer(pid: number): Promise<number> {
  const text = await helper(`${TREE_SOURCE}
    for (const pid of tree(${pid})) {
      try {
        const args = Deno.readTextFileSync("/proc/" + pid + "/cmdline").split("\\0");
        if (args.includes("serve") && args.some((a) => a.endsWith("/src/cli/main.ts"))) console.log(pid);
      } catch { /* exited */ }
    }
  `);
  const pids = text.trim().split(/\s+/).filter(Boolean).map(Number);
  if (pids.length !== 1) throw new Error(`Expected one server process under ${pid}, found ${JSON.stringify(pids)}`);
  return pids[0]!;
}

/**
 * A killer armed in advance: a `deno eval` helper that SIGKILLs `pid` the moment `fire()` writes to its stdin, so
 * that the kill lands within a millisecond of the event that fires it rather than after a process start.
 */
export interface Killer {
  /** Sends the kill; resolves when the helper has sent it. */
  fire(): Promise<void>;
}

/** Arms a {@linkcode Killer} for `pid`; resolves once the helper is waiting. */
export async function armKiller(pid: number): Promise<Killer> {
  const child = new Deno.Command(DENO, {
    args: [
      "eval",
      "--no-config",
      `console.log("armed");
       const buffer = new Uint8Array(1);
       await Deno.stdin.read(buffer);
       Deno.kill(${pid}, "SIGKILL");
       console.log("killed");`,
    ],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const waitFor = async (word: string) => {
    while (!seen.includes(word)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`The kill helper ended before "${word}": ${seen}`);
      seen += value;
    }
  };
  await within(BOUND.line, "the kill helper to arm", waitFor("armed"));
  return {
    async fire() {
      const writer = child.stdin.getWriter();
      await writer.write(new Uint8Array([1]));
      await writer.close();
      await within(BOUND.line, "the kill", waitFor("killed"));
      await child.status;
      await child.stderr.cancel();
    },
  };
}

/**
 * Starts a replica: `deno task start <config>` with KEYCARD_ADMIN_TOKEN, waiting (bounded) for the banner
 * `keycard serving on ...` and the `plugins: ...` line.
 */
export async function startReplica(site: ReplicaSite, tokens: Tokens): Promise<Replica> {
  const run = new Run(["task", "start", site.configPath], { KEYCARD_ADMIN_TOKEN: tokens.admin });
  try {
    const serving = await run.stdout.waitFor(/^keycard serving on http:\/\/127\.0\.0\.1:\d+ /, {
      ms: BOUND.start,
      what: `keycard serving on ... (replica ${site.name})`,
    });
    const base = /^keycard serving on (http:\/\/127\.0\.0\.1:\d+) /.exec(serving)![1]!;
    await run.stdout.waitFor(/^plugins: /);
    return {
      name: site.name,
      site,
      run,
      base,
      fetch: (path, init = {}) =>
        fetch(new URL(path, base), { ...init, signal: init.signal ?? AbortSignal.timeout(BOUND.request) }),
      serverPid: () => findServer(run.process.pid),
      async stop() {
        run.signal("SIGTERM");
        return await run.exit();
      },
      [Symbol.asyncDispose]: () => run[Symbol.asyncDispose](),
    };
  } catch (error) {
    await run[Symbol.asyncDispose]();
    throw error;
  }
}

/** Several replicas on one fresh database, with the test's own pool on it (not through any proxy). */
export interface Cluster extends AsyncDisposable {
  database: TestDatabase;
  /** A pool on the database for the test's own queries. */
  sql: postgres.Sql;
  tokens: Tokens;
  sites: ReplicaSite[];
  replicas: Replica[];
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions extends Partial<Omit<ReplicaSiteOptions, "tokens" | "storeUrl">> {
  /** Turns the database's URL into the one the replicas are given (e.g. through a proxy). @default {the same} */
  storeUrlOf?: (databaseUrl: string) => string;
}

/**
 * Creates a fresh database and starts one replica per name on it, all at once (as a rollout would).
 * @param names The replicas' ids.
 */
export async function startCluster(names: string[], options: ClusterOptions = {}): Promise<Cluster> {
  if (testPostgres === undefined) throw new Error("No PostgreSQL for this test: it should have been ignored");
  const database = await createTestDatabase(testPostgres.url);
  const sql = postgres(database.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
  const tokens = makeTokens();
  const sites: ReplicaSite[] = [];
  const replicas: Replica[] = [];
  const dispose = async () => {
    await Promise.all(replicas.map((replica) => replica[Symbol.asyncDispose]()));
    await Promise.all(sites.map((site) => Promise.resolve(site[Symbol.asyncDispose]()).catch(() => {})));
    await sql.end({ timeout: 1 });
    await database[Symbol.asyncDispose]();
  };
  try {
    for (const name of names) {
      const storeUrl = options.storeUrlOf?.(database.url) ?? database.url;
      sites.push(await makeReplicaSite(name, { ...options, storeUrl, tokens }));
    }
    const started = await Promise.allSettled(sites.map((site) => startReplica(site, tokens)));
    for (const result of started) if (result.status === "fulfilled") replicas.push(result.value);
    const failed = started.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return { database, sql, tokens, sites, replicas, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Polls `probe` on a replica until it returns true, bounded by `boundMs`, a few milliseconds apart.
 * @returns Milliseconds from `since` (a `performance.now()` value) to the first success.
 */
export async function until(
  what: string,
  probe: () => Promise<boolean>,
  options: { since?: number; boundMs?: number; everyMs?: number } = {},
): Promise<number> {
  const since = options.since ?? performance.now();
  const bound = options.boundMs ?? BOUND.request;
  for (;;) {
    if (await probe()) return performance.now() - since;
    if (performance.now() - since > bound) throw new Error(`${what}: not within ${bound} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 5));
  }
}

/** Status and text of an invocation with a token. */
export async function invoke(
  replica: Replica,
  token: string,
  plugin: string,
  exportName: string,
  body = "",
): Promise<{ status: number; text: string; callId: string | null }> {
  const response = await replica.fetch(`/v1/plugins/${plugin}/invoke/${exportName}`, {
    method: "POST",
    headers: bearer(token),
    body,
  });
  return { status: response.status, text: await response.text(), callId: response.headers.get("x-keycard-call-id") };
}

/** GET /readyz's body. */
export async function readyz(replica: Replica): Promise<{ status: string; store?: Record<string, unknown> }> {
  const response = await replica.fetch("/readyz");
  return JSON.parse(await response.text());
}

/** The /metrics text, read with the admin token. */
export async function scrape(replica: Replica, tokens: Tokens): Promise<string> {
  const response = await replica.fetch("/metrics", { headers: bearer(tokens.admin) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${text.slice(0, 400)}`);
  return text;
}

/** A metric's value in a /metrics text (the first sample whose name and labels match), or undefined. */
export function metric(text: string, name: string): number | undefined {
  const escaped = name.replace(/[{}"=.,]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return match ? Number(match[1]) : undefined;
}

/** The database's audit events, summed per action (an aggregated event counts `count` decisions). */
export async function auditCounts(
  sql: postgres.Sql,
  where: { plugin: string; caller: string },
): Promise<Record<string, number>> {
  const rows = await sql<{ action: string; decisions: string }[]>`
    SELECT event->>'action' AS action, sum(coalesce((event->>'count')::bigint, 1)) AS decisions
    FROM audit WHERE event->>'plugin' = ${where.plugin} AND event->>'caller' = ${where.caller}
    GROUP BY 1 ORDER BY 1`;
  return Object.fromEntries(rows.map((row) => [row.action, Number(row.decisions)]));
}
