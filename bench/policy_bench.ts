/**
 * keycard policy benchmarks: Cedar decisions (cached, uncached, 20 and 10,000
 * policies), policy reloads, and an authorized host call end to end.
 *
 * Run: deno bench --allow-read --allow-write
 *        --allow-env=CI,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/policy_bench.ts
 * (`--allow-write`: a temp dir for the data root and the KV file; KV needs the
 * `kv` unstable flag, which deno.json sets.) `deno bench` prints no p50:
 * `bench/policy_p50.ts` runs the same items in a plain loop and prints
 * p50/p99, the targets, and a breakdown of where an uncached decision goes.
 *
 * Groups (the first bench of each is the baseline):
 *
 * - `decision, 20 policies`: base.cedar (2 forbids) + 18 grants of one
 *   plugin. Cache hit: the same request again and again (target p50 <= 2 µs).
 *   Uncached: fs.read of a file never asked before, so every decision misses
 *   the cache and runs cedar-wasm `statefulIsAuthorized` on the plugin's
 *   preparsed slice (target p50 <= 100 µs).
 *
 * - `decision, 10k policies`: 1,000 plugins x 10 grants of mixed kinds +
 *   base.cedar = 10,000 policies. A plugin's first decision preparses its
 *   slice (base.cedar + its 10 grants) and is measured apart, on plugins not
 *   asked before. The steady state warms every slice once (untimed), then
 *   decides for a random plugin a resource never asked before (fs.read,
 *   kv.get or http.request in turn) (target p50 <= 150 µs).
 *
 * - `reload 10k policies`: cold = `PolicyEngine.create` with all 1,001
 *   sources (parse + strict validation of every source); one changed =
 *   `engine.load` with one source's text changed (only that source is parsed
 *   and validated again) (target <= 1 s).
 *
 * - `host call`: one `host.invoke()` of an export of tests/testdata/relay.wat
 *   (one host call: isolate -> bridge -> build request -> Cedar -> audit ->
 *   capability -> back) against `echo` of bench/testdata/policy_relay_noop.wat
 *   (the same input and output handling without the host call). Per host
 *   call = relay - echo (policy_p50.ts prints it; target p50 <= 30 µs).
 *   Repeated identical requests hit the decision cache (the realistic case);
 *   `kv_get, unique key` asks for a new key every time (uncached decision).
 *
 * @module
 */
import {
  APP_PRINCIPAL,
  encoder,
  engine20,
  FIXED_REQUEST,
  PLUGINS,
  random,
  RELAY_CALLS,
  SCHEMA,
  sources10k,
  UNIQUE_KEYS,
  uniqueFileRead,
  uniqueMixedRequest,
  withOneChanged,
  world,
} from "./policy_fixtures.ts";
import { PolicyEngine } from "../src/policy/mod.ts";

const e20 = await engine20();
const sources = sources10k();
const e10k = await PolicyEngine.create({ schema: SCHEMA, sources });
const w = await world();
globalThis.addEventListener("unload", () => void w.close());

// --- decisions, 20 policies ----------------------------------------------------

let n = 0;
Deno.bench("cache hit (same request)", { group: "decision, 20 policies", baseline: true }, () => {
  e20.authorize(FIXED_REQUEST);
});
Deno.bench("uncached (fs.read, unique file)", { group: "decision, 20 policies" }, () => {
  e20.authorize(uniqueFileRead(APP_PRINCIPAL, "/data/in", n++));
});

// --- decisions, 10,000 policies over 1,000 plugins ------------------------------

const rnd = random(42);
let nextCold = 0;
let warmed = false;
const TEN_K = { group: "decision, 10k policies" };
Deno.bench("first decision of a plugin (slice preparse)", { ...TEN_K, baseline: true, n: 800, warmup: 100 }, () => {
  e10k.authorize(uniqueMixedRequest(nextCold++ % PLUGINS, n++));
});
Deno.bench("uncached, steady state (random plugin, unique resource)", TEN_K, (b) => {
  if (!warmed) {
    for (let i = 0; i < PLUGINS; i++) e10k.authorize(uniqueMixedRequest(i, n++));
    warmed = true;
  }
  const request = uniqueMixedRequest(Math.floor(rnd() * PLUGINS), n++);
  b.start();
  e10k.authorize(request);
  b.end();
});

// --- reloads of 10,000 policies ------------------------------------------------

let reloads = 0;
const RELOAD = { group: "reload 10k policies" };
Deno.bench("cold: PolicyEngine.create, 1,001 sources", { ...RELOAD, baseline: true, n: 3, warmup: 0 }, async () => {
  await PolicyEngine.create({ schema: SCHEMA, sources });
});
Deno.bench("engine.load, one source changed", { ...RELOAD, n: 10, warmup: 1 }, () => {
  e10k.load(withOneChanged(sources, reloads++));
});

// --- authorized host call, end to end --------------------------------------------

const inputs = new Map(RELAY_CALLS.map(([fn, input]) => [fn, encoder.encode(input)]));
const HOST_CALL = { group: "host call" };
Deno.bench("keycard invoke noop (no host call)", { ...HOST_CALL, baseline: true }, async () => {
  await w.baseline("noop", new Uint8Array());
});
Deno.bench("keycard invoke echo (no host call)", HOST_CALL, async () => {
  await w.baseline("echo", inputs.get("kv_get")!);
});
for (const [fn] of RELAY_CALLS) {
  const input = inputs.get(fn)!;
  Deno.bench(`keycard invoke relay ${fn} (1 host call)`, HOST_CALL, async () => {
    await w.relay(fn, input);
  });
}
let mix = 0;
Deno.bench("keycard invoke relay, mix of the 4 (1 host call)", HOST_CALL, async () => {
  const [fn] = RELAY_CALLS[mix++ % RELAY_CALLS.length]!;
  await w.relay(fn, inputs.get(fn)!);
});
const uniqueInputs = Array.from({ length: UNIQUE_KEYS }, (_, i) => encoder.encode(`{"key":"u-${i}"}`));
let key = 1;
Deno.bench("keycard invoke relay kv_get, unique key (uncached)", { ...HOST_CALL, n: 3000, warmup: 100 }, async () => {
  await w.relay("kv_get", uniqueInputs[key++ % UNIQUE_KEYS]!);
});
