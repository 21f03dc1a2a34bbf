/**
 * Route overhead on loopback, in one bounded run that stops by itself:
 *
 * (a) the upstream alone (`Deno.serve` answering `GET` with 2 bytes);
 * (b) the same upstream through a public keycard route with 0 hooks;
 * (c) through a route with 1 request hook (`allow` of tests/testdata/route_const.wat:
 *     a constant `{"allow":true}`, so the hook costs the plugin call itself);
 * (d) through a route with 3 such hooks;
 * (e) through a route with the real header-guard hook (the request sends x-api-key).
 *
 * Each target is measured twice: throughput and loaded latency with wrk
 * (`--connections` connections, `--threads` threads, `--duration` s after a
 * 1 s warm-up; in-process fetch loops when wrk is missing or with `--fetch`),
 * then unloaded latency with one sequential fetch loop for `--seq` s. The last
 * table gives the latency each route adds over the upstream alone and, from
 * (b) and (d), the added p50/p99 per hook.
 *
 * Run: deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-run=wrk,/usr/bin/wrk,apt-get
 *        --allow-sys=uid
 *        --allow-env=CI,LOG_TOKENS,LOG_STREAM,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/routes_load.ts [--duration=5] [--seq=3]
 *        [--connections=32] [--threads=2] [--fetch]
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway, type Gateway } from "../src/gateway/mod.ts";
import { compileWat } from "../tests/_wat.ts";
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

/** Nothing in this run may take longer: past it the process exits with 3. */
const WATCHDOG_MS = 5 * 60_000;
const WARMUP_SECONDS = 1;
const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const UPSTREAM_BODY = "ok";

interface Flags {
  seconds: number;
  seqSeconds: number;
  connections: number;
  threads: number;
  fetch: boolean;
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = { seconds: 5, seqSeconds: 3, connections: 32, threads: 2, fetch: false };
  for (const arg of args) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    const int = (min: number, max: number): number => intFlag(key, value, min, max);
    if (key === "--duration") flags.seconds = int(1, 30);
    else if (key === "--seq") flags.seqSeconds = int(1, 30);
    else if (key === "--connections") flags.connections = int(1, 512);
    else if (key === "--threads") flags.threads = int(1, 16);
    else if (arg === "--fetch") flags.fetch = true;
    else throw new RangeError(`Unknown argument ${JSON.stringify(arg)}`);
  }
  return flags;
}

function log(line: string): void {
  console.error(`[routes_load] ${line}`);
}

function serve(handler: Deno.ServeHandler): { url: string; server: Deno.HttpServer<Deno.NetAddr> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

/** The gateway with header-guard and the constant hooks, and one route per measured chain. */
async function startGateway(dir: string, upstream: string): Promise<Gateway> {
  await Deno.writeFile(
    `${dir}/route_const.wasm`,
    await compileWat(await Deno.readTextFile(`${REPO}/tests/testdata/route_const.wat`), "route_const.wat"),
  );
  await Deno.copyFile(`${REPO}/tests/testdata/route_const.yaml`, `${dir}/route_const.yaml`);
  const allow = "      - { plugin: route-const, on: request, export: allow }";
  const route = (name: string, hooks: string[]) => [
    `  - name: ${name}`,
    `    match: { path: /${name}, methods: [GET] }`,
    "    auth: public",
    `    upstream: "${upstream}"`,
    ...(hooks.length ? ["    hooks:", ...hooks] : []),
  ];
  const yaml = [
    "server:",
    "  host: 127.0.0.1",
    `dataDir: ${JSON.stringify(`${dir}/data`)}`,
    `policies: ${JSON.stringify(`${REPO}/policies`)}`, // read only
    "plugins:",
    `  - path: ${JSON.stringify(`${REPO}/plugins/header-guard`)}`,
    `  - path: ${JSON.stringify(`${dir}/route_const.wasm`)}`,
    "limits:",
    "  instances: 2",
    "  queue: 1024", // the connections never fill it: a 429 here would be a bug, not load shedding
    "concurrency:",
    "  maxCalls: 16",
    "  queue: 1024",
    "routes:",
    ...route("hooks0", []),
    ...route("hooks1", [allow]),
    ...route("hooks3", [allow, allow, allow]),
    ...route("guard", ["      - { plugin: header-guard, on: request, export: on_request }"]),
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/keycard.yaml`, yaml);
  const { config } = await loadConfig({ path: `${dir}/keycard.yaml`, env: {} });
  return await createGateway(config);
}

async function check(target: LoadTarget): Promise<void> {
  const response = await fetch(target.url, { method: target.method, headers: target.headers ?? {} });
  const text = await response.text();
  if (response.status !== 200 || text !== UPSTREAM_BODY) {
    throw new Error(`${target.name}: expected 200 ${JSON.stringify(UPSTREAM_BODY)}, got ${response.status} ${text}`);
  }
}

/** One sequential keep-alive fetch loop: latency without queueing. */
async function sequential(target: LoadTarget, seconds: number): Promise<LoadResult> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
  try {
    const init: RequestInit & { client: Deno.HttpClient } = {
      method: target.method,
      headers: target.headers ?? {},
      client,
    };
    const once = async () => {
      const response = await fetch(target.url, init);
      await response.arrayBuffer();
      return response.status === 200;
    };
    await runLoops("warm-up", "fetch x1", once, { concurrency: 1, seconds: 0.5 });
    return await runLoops(target.name, "fetch x1", once, { concurrency: 1, seconds });
  } finally {
    client.close();
  }
}

function fmtMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}

function fmtDelta(ms: number): string {
  return `${ms < 0 ? "-" : "+"}${fmtMs(Math.abs(ms))}`;
}

function render(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  const watchdog = startWatchdog(WATCHDOG_MS, log);

  const dir = await Deno.makeTempDir({ prefix: "keycard-routes-load-" });
  const servers: Deno.HttpServer[] = [];
  let gateway: Gateway | undefined;
  try {
    const wrk = flags.fetch ? undefined : await ensureWrk(log);
    const options: LoadOptions = { connections: flags.connections, threads: flags.threads, seconds: flags.seconds };

    const upstream = serve(() => new Response(UPSTREAM_BODY, { headers: { "content-type": "text/plain" } }));
    servers.push(upstream.server);
    const started = performance.now();
    gateway = await startGateway(dir, upstream.url);
    log(`gateway ready in ${(performance.now() - started).toFixed(0)} ms`);
    const front = serve(gateway.app.fetch);
    servers.push(front.server);

    const targets: LoadTarget[] = [
      { name: "(a) upstream alone", url: `${upstream.url}/hooks0`, method: "GET" },
      { name: "(b) route, 0 hooks", url: `${front.url}/hooks0`, method: "GET" },
      { name: "(c) route, 1 hook (const)", url: `${front.url}/hooks1`, method: "GET" },
      { name: "(d) route, 3 hooks (const)", url: `${front.url}/hooks3`, method: "GET" },
      {
        name: "(e) route, header-guard",
        url: `${front.url}/guard`,
        method: "GET",
        headers: { "x-api-key": "bench-key" },
      },
    ];
    for (const target of targets) await check(target);

    const loaded: LoadResult[] = [];
    const unloaded: LoadResult[] = [];
    for (const target of targets) {
      log(`${target.name}: ${WARMUP_SECONDS} s warm-up, ${options.seconds} s loaded, ${flags.seqSeconds} s sequential`);
      if (wrk) {
        await runWrk(target, { ...options, seconds: WARMUP_SECONDS, scratchDir: dir });
        loaded.push((await runWrk(target, { ...options, scratchDir: dir })).result);
      } else {
        await runFetch(target, { ...options, seconds: WARMUP_SECONDS });
        loaded.push(await runFetch(target, options));
      }
      unloaded.push(await sequential(target, flags.seqSeconds));
    }

    const load = wrk
      ? `wrk -t${options.threads} -c${options.connections} -d${options.seconds}s --latency`
      : `${options.connections} in-process fetch loops for ${options.seconds} s (competing for the same cores)`;
    console.log(
      `\nRoute overhead on 127.0.0.1, ${Deno.build.os} ${navigator.hardwareConcurrency} cores, ` +
        `Deno ${Deno.version.deno}; loaded: ${load}; unloaded: 1 sequential fetch loop for ${flags.seqSeconds} s\n`,
    );
    const base = loaded[0]!;
    console.log(render(
      ["target", "req/s", "vs (a)", "loaded p50", "loaded p99", "non-2xx", "errors", "seq p50", "seq p99", "seq n"],
      targets.map((t, i) => {
        const l = loaded[i]!;
        const u = unloaded[i]!;
        return [
          t.name,
          l.rps.toFixed(0),
          (l.rps / base.rps).toFixed(3),
          fmtMs(l.p50Ms),
          fmtMs(l.p99Ms),
          String(l.non2xx + u.non2xx),
          String(l.errors + u.errors),
          fmtMs(u.p50Ms),
          fmtMs(u.p99Ms),
          String(u.requests),
        ];
      }),
    ));

    const [a, b, c, d] = [0, 1, 2, 3].map((i) => ({ l: loaded[i]!, u: unloaded[i]! }));
    const added = (x: LoadResult, y: LoadResult) => [fmtDelta(x.p50Ms - y.p50Ms), fmtDelta(x.p99Ms - y.p99Ms)];
    console.log("\nAdded latency (sequential = unloaded; loaded = under the wrk load above)\n");
    console.log(render(
      ["comparison", "seq p50", "seq p99", "loaded p50", "loaded p99"],
      [
        ["route, 0 hooks vs upstream alone", ...added(b!.u, a!.u), ...added(b!.l, a!.l)],
        ["1 hook vs 0 hooks", ...added(c!.u, b!.u), ...added(c!.l, b!.l)],
        ["3 hooks vs 0 hooks", ...added(d!.u, b!.u), ...added(d!.l, b!.l)],
        [
          "per hook ((d) - (b)) / 3",
          fmtDelta((d!.u.p50Ms - b!.u.p50Ms) / 3),
          fmtDelta((d!.u.p99Ms - b!.u.p99Ms) / 3),
          fmtDelta((d!.l.p50Ms - b!.l.p50Ms) / 3),
          fmtDelta((d!.l.p99Ms - b!.l.p99Ms) / 3),
        ],
        ["header-guard vs 0 hooks", ...added(unloaded[4]!, b!.u), ...added(loaded[4]!, b!.l)],
      ],
    ));
    const { rejected, replaced, instances } = gateway.services.stats();
    console.log(`\nplugin host: ${JSON.stringify({ instances, rejected, replaced })}`);
  } finally {
    for (const server of servers) await server.shutdown();
    await gateway?.close();
    await Deno.remove(dir, { recursive: true });
    clearTimeout(watchdog);
  }
}

if (import.meta.main) await main();
