/**
 * HTTP load on loopback, in one bounded run that stops by itself:
 *
 * 1. a bare Hono GET (`new Hono().get("/", (c) => c.text("ok"))` on Deno.serve);
 * 2. the full keycard stack: `POST /v1/plugins/hello/invoke/echo` with a 64-byte
 *    body and a caller's bearer token (body limit, token hash, Cedar decision,
 *    plugin host, metrics), served from `createGateway(...).app.fetch`;
 * 3. the ratio full-stack rps / bare rps (target >= 0.5).
 *
 * When the ratio misses the target (or with `--breakdown`) it also measures
 * where the time goes: a bare Hono POST echo, the gateway's `/healthz`, the
 * invoke route with a stubbed plugin (auth only; auth + Cedar), a bare Hono
 * POST calling the plugin host directly, and the plugin host with no HTTP.
 *
 * Load: wrk (32 connections, 2 threads, 10 s per target, `--latency`; installed
 * with apt-get when missing and running as root), else 32 concurrent fetch
 * loops in this process, which then share the 2 cores with the server.
 * Everything listens on 127.0.0.1 only.
 *
 * Flags: `--duration=<s>` (default 10), `--connections=<n>` (32),
 * `--threads=<n>` (2), `--instances=<n>` (the hello plugin's instances, 2),
 * `--breakdown` / `--no-breakdown`, `--fetch` (skip wrk), `--raw` (print
 * wrk's reports).
 *
 * Run: deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-run=wrk,/usr/bin/wrk,apt-get
 *        --allow-sys=uid
 *        --allow-env=CI,LOG_TOKENS,LOG_STREAM,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/http_load.ts
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway, type Gateway } from "../src/gateway/mod.ts";
import { createApp } from "../src/http/mod.ts";
import type { Decision } from "../src/policy/mod.ts";
import {
  ensureWrk,
  intFlag,
  type LoadOptions,
  type LoadResult,
  type LoadTarget,
  runFetch,
  runLoops,
  runWrk,
  startWatchdog,
} from "./_http_load_driver.ts";

const TARGET_RATIO = 0.5;
const WARMUP_SECONDS = 2;
/** Nothing in this run may take longer: past it the process exits with 3 (servers and workers die with it). */
const WATCHDOG_MS = 10 * 60_000;

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** 64 printable ASCII bytes (they go into wrk's Lua script verbatim). */
const BODY = "keycard-http-load-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ".slice(0, 64);
const TOKEN = `bench-${crypto.randomUUID()}`;
const INVOKE_PATH = "/v1/plugins/hello/invoke/echo";
const INVOKE_HEADERS = { authorization: `Bearer ${TOKEN}`, "content-type": "application/octet-stream" };

interface Flags {
  seconds: number;
  connections: number;
  threads: number;
  breakdown: boolean | undefined;
  fetch: boolean;
  raw: boolean;
  instances: number;
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = {
    seconds: 10,
    connections: 32,
    threads: 2,
    breakdown: undefined,
    fetch: false,
    raw: false,
    instances: 2,
  };
  for (const arg of args) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    const int = (min: number, max: number): number => intFlag(key, value, min, max);
    if (key === "--duration") flags.seconds = int(1, 60);
    else if (key === "--connections") flags.connections = int(1, 1024);
    else if (key === "--threads") flags.threads = int(1, 64);
    else if (key === "--instances") flags.instances = int(1, 64);
    else if (arg === "--breakdown") flags.breakdown = true;
    else if (arg === "--no-breakdown") flags.breakdown = false;
    else if (arg === "--fetch") flags.fetch = true;
    else if (arg === "--raw") flags.raw = true;
    else throw new RangeError(`Unknown argument ${JSON.stringify(arg)}`);
  }
  return flags;
}

function log(line: string): void {
  console.error(`[http_load] ${line}`);
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A listening server on 127.0.0.1 with an ephemeral port. */
function serve(handler: Deno.ServeHandler): { url: string; server: Deno.HttpServer<Deno.NetAddr> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

/** The gateway over a temp data dir, with the repo's policies and the hello plugin. */
async function startGateway(dir: string, instances: number): Promise<Gateway> {
  const yaml = [
    "server:",
    "  host: 127.0.0.1",
    "  metrics: open", // read in-process for the outcome cross-check, without a token
    `dataDir: ${JSON.stringify(`${dir}/data`)}`,
    `policies: ${JSON.stringify(`${REPO}/policies`)}`, // read only: the run writes no policy
    "plugins:",
    `  - path: ${JSON.stringify(`${REPO}/plugins/hello`)}`,
    "tokens:",
    `  - { id: bench, sha256: "${sha256Hex(TOKEN)}", roles: [caller] }`,
    "limits:",
    `  instances: ${instances}`,
    "  queue: 1024", // 32 connections never fill it: a 429 here would be a bug, not load shedding
    "concurrency:",
    "  maxCalls: 16",
    "  queue: 1024",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/keycard.yaml`, yaml);
  const { config } = await loadConfig({ path: `${dir}/keycard.yaml`, env: {} });
  return await createGateway(config);
}

/** One request, checked: the load runs only against targets that answer as expected. */
async function check(target: LoadTarget, expected: string): Promise<void> {
  const init: RequestInit = { method: target.method, headers: target.headers ?? {} };
  if (target.body !== undefined) init.body = target.body;
  const response = await fetch(target.url, init);
  const text = await response.text();
  if (response.status !== 200 || text !== expected) {
    throw new Error(`${target.name}: expected 200 ${JSON.stringify(expected)}, got ${response.status} ${text}`);
  }
}

function fmtMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}

function table(results: LoadResult[], baseline: number): string {
  const header = ["target", "tool", "requests", "req/s", "p50", "p99", "non-2xx", "errors", "vs bare GET"];
  const rows = results.map((r) => [
    r.name,
    r.tool,
    String(r.requests),
    r.rps.toFixed(0),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    String(r.non2xx),
    String(r.errors),
    (r.rps / baseline).toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The gateway's own count of invoke outcomes (from /metrics), to cross-check the client's non-2xx count. */
async function callOutcomes(gateway: Gateway): Promise<Record<string, number>> {
  const text = await (await gateway.app.request("/metrics")).text();
  const outcomes: Record<string, number> = {};
  for (const match of text.matchAll(/^keycard_calls_total\{[^}]*outcome="([^"]+)"\} (\d+)$/gm)) {
    outcomes[match[1]!] = (outcomes[match[1]!] ?? 0) + Number(match[2]);
  }
  return outcomes;
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  const watchdog = startWatchdog(WATCHDOG_MS, log);

  const dir = await Deno.makeTempDir({ prefix: "keycard-http-load-" });
  const servers: Deno.HttpServer[] = [];
  let gateway: Gateway | undefined;
  try {
    const wrk = flags.fetch ? undefined : await ensureWrk(log);
    const options: LoadOptions = { connections: flags.connections, threads: flags.threads, seconds: flags.seconds };
    const raws: string[] = [];
    const load = async (
      target: LoadTarget,
      warmupSeconds = WARMUP_SECONDS,
      measuring: () => Promise<void> = () => Promise.resolve(),
    ): Promise<LoadResult> => {
      log(`${target.name}: ${warmupSeconds} s warm-up, ${options.seconds} s measured (${target.method} ${target.url})`);
      if (wrk) {
        await runWrk(target, { ...options, seconds: warmupSeconds, scratchDir: dir });
        await measuring();
        const { result, raw } = await runWrk(target, { ...options, scratchDir: dir });
        raws.push(`== ${target.name}\n${raw.trimEnd()}`);
        return result;
      }
      await runFetch(target, { ...options, seconds: warmupSeconds });
      await measuring();
      return await runFetch(target, options);
    };

    // 1. Bare Hono.
    const bare = new Hono()
      .get("/", (c) => c.text("ok"))
      .post(
        "/echo",
        async (c) => c.body(await c.req.arrayBuffer(), 200, { "content-type": "application/octet-stream" }),
      );
    const bareServer = serve(bare.fetch);
    servers.push(bareServer.server);
    const bareGet: LoadTarget = { name: "bare Hono GET /", url: `${bareServer.url}/`, method: "GET" };
    await check(bareGet, "ok");

    // 2. The full stack.
    const started = performance.now();
    const live = gateway = await startGateway(dir, flags.instances);
    log(`gateway ready in ${(performance.now() - started).toFixed(0)} ms`);
    const gatewayServer = serve(gateway.app.fetch);
    servers.push(gatewayServer.server);
    const full: LoadTarget = {
      name: "keycard POST invoke/echo 64 B",
      url: `${gatewayServer.url}${INVOKE_PATH}`,
      method: "POST",
      headers: INVOKE_HEADERS,
      body: BODY,
    };
    await check(full, BODY);

    const results = [await load(bareGet)];
    let before: Record<string, number> = {};
    const stack = await load(full, WARMUP_SECONDS, async () => void (before = await callOutcomes(live)));
    results.push(stack);
    const after = await callOutcomes(live);
    const serverSide = Object.fromEntries(
      Object.entries(after).map(([outcome, n]) => [outcome, n - (before[outcome] ?? 0)]).filter(([, n]) => n !== 0),
    );
    const ratio = stack.rps / results[0]!.rps;

    // 3. Where the time goes.
    const breakdown = flags.breakdown ?? ratio < TARGET_RATIO;
    if (breakdown) {
      const services = live.services;
      const echoInvoke = (_plugin: string, _export: string, input: Uint8Array) => Promise.resolve(input);
      const allow = (): Decision => ({
        decision: "allow",
        policies: ["stub"],
        errors: [],
        reason: "permitted by stub",
        version: 0,
        policySet: "sha256:stub",
        deciding: [{ id: "stub", source: "stub.cedar", line: 1 }],
        cached: true,
      });
      const authOnly = serve(createApp({ ...services, authorize: allow, invoke: echoInvoke }).app.fetch);
      const authCedar = serve(createApp({ ...services, invoke: echoInvoke }).app.fetch);
      const direct = serve(
        new Hono().post("/invoke", async (c) => {
          const input = new Uint8Array(await c.req.arrayBuffer());
          const output = await services.invoke("hello", "echo", input, {
            callId: crypto.randomUUID(),
            hostContext: { caller: "bench" },
          });
          return c.body(output as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/octet-stream" });
        }).fetch,
      );
      servers.push(authOnly.server, authCedar.server, direct.server);
      const post = (name: string, url: string, headers: Record<string, string> = {}): LoadTarget => ({
        name,
        url,
        method: "POST",
        headers: { "content-type": "application/octet-stream", ...headers },
        body: BODY,
      });
      const targets: LoadTarget[] = [
        post("bare Hono POST /echo 64 B", `${bareServer.url}/echo`),
        { name: "keycard GET /healthz (no auth)", url: `${gatewayServer.url}/healthz`, method: "GET" },
        post("keycard invoke, auth only (stub Cedar+plugin)", `${authOnly.url}${INVOKE_PATH}`, INVOKE_HEADERS),
        post("keycard invoke, auth+Cedar (stub plugin)", `${authCedar.url}${INVOKE_PATH}`, INVOKE_HEADERS),
        post("bare Hono POST -> plugin host echo", `${direct.url}/invoke`),
      ];
      const expected = [BODY, '{"status":"ok"}', BODY, BODY, BODY];
      for (const [i, target] of targets.entries()) {
        await check(target, expected[i]!);
        results.push(await load(target, 1));
      }
      log(`plugin host alone: ${flags.connections} concurrent invoke loops, no HTTP, ${options.seconds} s`);
      const input = new TextEncoder().encode(BODY);
      const invokeOnce = async () => {
        const out = await services.invoke("hello", "echo", input, { hostContext: { caller: "bench" } });
        return out.length === input.length;
      };
      await runLoops("warm-up", "direct", invokeOnce, { concurrency: flags.connections, seconds: 1 });
      results.push(
        await runLoops("plugin host invoke echo (no HTTP)", "direct", invokeOnce, {
          concurrency: flags.connections,
          seconds: options.seconds,
        }),
      );
    }

    const stats = hostStats(live);
    console.log(
      `\nHTTP load on 127.0.0.1, ${Deno.build.os} ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
        (wrk
          ? `wrk -t${options.threads} -c${options.connections} -d${options.seconds}s --latency`
          : `${options.connections} in-process fetch loops for ${options.seconds} s (competing for the same cores)`) +
        "\n",
    );
    console.log(table(results, results[0]!.rps));
    console.log(
      `\nfull-stack invoke: ${stack.non2xx} non-2xx responses, ${stack.errors} socket errors; ` +
        `gateway-side outcomes ${JSON.stringify(serverSide)}; host ${stats}`,
    );
    console.log(
      `ratio full-stack / bare GET = ${stack.rps.toFixed(0)} / ${results[0]!.rps.toFixed(0)} = ${ratio.toFixed(3)} ` +
        `(target >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? "met" : "MISSED"})`,
    );
    if (flags.raw && raws.length > 0) console.log(`\n${raws.join("\n\n")}`);
  } finally {
    for (const server of servers) await server.shutdown();
    await gateway?.close();
    await Deno.remove(dir, { recursive: true });
    clearTimeout(watchdog);
  }
}

function hostStats(gateway: Gateway): string {
  const { rejected, replaced, stuckWorkers, instances } = gateway.services.stats();
  return JSON.stringify({ instances, rejected, replaced, stuckWorkers });
}

if (import.meta.main) await main();
