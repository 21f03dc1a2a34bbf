/**
 * The TypeScript Cedar evaluator (src/policy/cedar/compile_policy_set.ts)
 * against cedar-wasm `statefulIsAuthorized`, in one run, on keycard's own
 * policy sets: p50 and p99 in µs of an uncached decision (a resource never
 * asked before, entities passed as JSON and parsed on every call, as an
 * uncached decision must).
 *
 * - 20 policies: base.cedar (2 forbids) + 18 grants of one plugin; fs.read of
 *   a new file (a File with 3 ancestor Dirs), and http.request of a host with
 *   its address (base.cedar's private-range forbids evaluated). Target p50
 *   <= 5 µs.
 * - 10,000 policies: base.cedar + 1,000 plugins x 10 grants; a random plugin
 *   asks for a new resource (fs.read, kv.get, http.request in turn). Target
 *   p50 <= 10 µs. cedar-wasm decides on the whole set here (keycard's engine
 *   gives it a per-plugin slice instead).
 *
 * Every measured request is decided by both, and the decisions must agree.
 *
 * Run: deno run --allow-read --allow-env=CI,EXTISM_ENABLE_WASI_OUTPUT,__MINIMATCH_TESTING_PLATFORM__
 *        --v8-flags=--wasm-max-mem-pages=16384 bench/cedar_eval_bench.ts
 *
 * @module
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type { PolicyJson } from "@cedar-policy/cedar-wasm/web";
import { type AuthorizationRequest, hostEntity, PolicyEngine } from "../src/policy/mod.ts";
import { compilePolicySet } from "../src/policy/cedar/compile_policy_set.ts";
import { parsePolicies } from "../src/policy/cedar/parse_policies.ts";
import {
  APP_GRANTS,
  APP_PRINCIPAL,
  pluginName,
  PLUGINS,
  PRINCIPALS,
  random,
  SCHEMA,
  sources10k,
  sources20,
  uniqueFileRead,
  uniqueMixedRequest,
} from "./policy_fixtures.ts";

interface Policies {
  texts: Record<string, string>;
  policies: { id: string; json: PolicyJson }[];
}

/** Splits sources into policies by their `@id` (or a position): keycard's parser for the EST, the text for cedar-wasm. */
function toPolicies(sources: { name: string; text: string }[]): Policies {
  const texts: Record<string, string> = {};
  const policies: { id: string; json: PolicyJson }[] = [];
  for (const source of sources) {
    parsePolicies(source.text).forEach((policy, i) => {
      const id = policy.json.annotations?.id ?? `${source.name}#${i}`;
      texts[id] = source.text.slice(policy.start, policy.end);
      // The parser's EST differs from cedar-wasm's type only in bigint Longs, which the evaluator takes.
      policies.push({ id, json: policy.json as unknown as PolicyJson });
    });
  }
  return { texts, policies };
}

function cedarCall(request: AuthorizationRequest) {
  return {
    principal: request.principal.uid,
    action: { type: "Action", id: request.action },
    resource: request.resource.uid,
    context: request.context as Record<string, never>,
    entities: [request.principal, request.resource] as never,
  };
}

interface Row {
  name: string;
  p50: number;
  p99: number;
}
const rows: Row[] = [];

function measure(
  name: string,
  n: number,
  make: (i: number) => AuthorizationRequest,
  decide: (call: ReturnType<typeof cedarCall>) => unknown,
  warmup = 2000,
): void {
  const calls = Array.from({ length: n + warmup }, (_, i) => cedarCall(make(i)));
  const samples: number[] = [];
  for (let i = 0; i < calls.length; i++) {
    const start = performance.now();
    decide(calls[i]!);
    const us = (performance.now() - start) * 1000;
    if (i >= warmup) samples.push(us);
  }
  samples.sort((a, b) => a - b);
  const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]!;
  rows.push({ name, p50: at(0.5), p99: at(0.99) });
  console.error(`  ${name}: p50 ${at(0.5).toFixed(2)} µs, p99 ${at(0.99).toFixed(2)} µs`);
}

function agree(
  label: string,
  n: number,
  make: (i: number) => AuthorizationRequest,
  set: ReturnType<typeof compilePolicySet>,
  id: string,
) {
  for (let i = 0; i < n; i++) {
    const call = cedarCall(make(i));
    const theirs = cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: id });
    if (theirs.type !== "success") throw new Error(`${label}: cedar-wasm failed: ${JSON.stringify(theirs.errors)}`);
    const ours = set.isAuthorized(call);
    const same = ours.decision === theirs.response.decision &&
      JSON.stringify(ours.reason) === JSON.stringify([...theirs.response.diagnostics.reason].sort()) &&
      ours.errors.length === theirs.response.diagnostics.errors.length;
    if (!same) {
      throw new Error(`${label}: decisions differ on ${JSON.stringify(call)}: ${JSON.stringify([ours, theirs])}`);
    }
  }
}

const N = 20_000;
/** Untimed requests first: V8 optimizes the closures after some thousands of calls. */
const WARMUP = 20_000;

// --- 20 policies --------------------------------------------------------------
console.error("20 policies: base.cedar + 18 grants");
const small = toPolicies(sources20());
const set20 = compilePolicySet(small.policies);
if (cedar.preparsePolicySet("bench20", { staticPolicies: small.texts }).type !== "success") throw new Error("preparse");
const fileRead = (i: number) => uniqueFileRead(APP_PRINCIPAL, "/data/in", i);
const httpAddress = (i: number): AuthorizationRequest => ({
  principal: APP_PRINCIPAL,
  action: "http.request",
  resource: hostEntity({
    host: `h${i}.cdn.example.net`,
    port: 443,
    scheme: "https",
    ip: i % 2 ? "10.0.0.7" : "93.184.216.34",
  }, false),
  context: { caller: "", method: "GET", path: `/x/${i}`, hop: 0 },
});
agree("20 fs.read", 2000, fileRead, set20, "bench20");
agree("20 http.request", 2000, httpAddress, set20, "bench20");
console.error(`  ${small.policies.length} policies, ${APP_GRANTS.length} grants; decisions agree`);
measure("20 policies, fs.read, TS evaluator", N, fileRead, (call) => set20.isAuthorized(call), WARMUP);
measure(
  "20 policies, fs.read, cedar-wasm",
  N,
  fileRead,
  (call) => cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: "bench20" }),
);
measure(
  "20 policies, http.request by address, TS evaluator",
  N,
  httpAddress,
  (call) => set20.isAuthorized(call),
  WARMUP,
);
measure(
  "20 policies, http.request by address, cedar-wasm",
  N,
  httpAddress,
  (call) => cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: "bench20" }),
);

// The same decisions through PolicyEngine.authorize (bounds, decision cache, entity join, evaluator, provenance),
// requests built outside the timed region as above (bench/policy_p50.ts times pathEntity with the decision).
{
  const engine = await PolicyEngine.create({ schema: SCHEMA, sources: sources20(), shadowSample: 0 });
  const requests = Array.from({ length: N + WARMUP }, (_, i) => fileRead(1_000_000 + i));
  const samples: number[] = [];
  for (let i = 0; i < requests.length; i++) {
    const begin = performance.now();
    engine.authorize(requests[i]!);
    if (i >= WARMUP) samples.push((performance.now() - begin) * 1000);
  }
  samples.sort((a, b) => a - b);
  const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]!;
  rows.push({ name: "20 policies, fs.read, PolicyEngine.authorize (uncached)", p50: at(0.5), p99: at(0.99) });
  console.error(`  PolicyEngine.authorize, uncached: p50 ${at(0.5).toFixed(2)} µs, p99 ${at(0.99).toFixed(2)} µs`);
}

// --- 10,000 policies ----------------------------------------------------------
console.error("10,000 policies: base.cedar + 1,000 plugins x 10 grants");
let start = performance.now();
const large = toPolicies(sources10k());
console.error(
  `  parsePolicies of ${large.policies.length} policies: ${(performance.now() - start).toFixed(0)} ms`,
);
start = performance.now();
const set10k = compilePolicySet(large.policies);
console.error(`  compilePolicySet of ${set10k.size} policies: ${(performance.now() - start).toFixed(0)} ms`);
start = performance.now();
if (cedar.preparsePolicySet("bench10k", { staticPolicies: large.texts }).type !== "success") {
  throw new Error("preparse");
}
console.error(`  cedar-wasm preparsePolicySet: ${(performance.now() - start).toFixed(0)} ms`);
const next = random(7);
const plugins = Array.from({ length: N + WARMUP }, () => Math.floor(next() * PLUGINS));
const mixed = (i: number) => uniqueMixedRequest(plugins[i]!, i);
// cedar-wasm takes ~0.1 s a decision on the whole set: a few hundred requests only.
agree("10k mixed", 100, mixed, set10k, "bench10k");
console.error(`  ${PRINCIPALS.length} principals (${pluginName(0)}...); decisions agree`);
measure("10k policies, mixed, TS evaluator", N, mixed, (call) => set10k.isAuthorized(call), WARMUP);
measure(
  "10k policies, mixed, cedar-wasm (whole set)",
  100,
  mixed,
  (call) => cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: "bench10k" }),
  10,
);

console.log("\n| decision (uncached) | p50 µs | p99 µs |\n|---|---|---|");
for (const row of rows) console.log(`| ${row.name} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} |`);
const p50 = (name: string) => rows.find((row) => row.name === name)!.p50;
console.log(`\n20 policies target p50 <= 5 µs: ${p50("20 policies, fs.read, TS evaluator") <= 5 ? "met" : "NOT met"}`);
console.log(`10k policies target p50 <= 10 µs: ${p50("10k policies, mixed, TS evaluator") <= 10 ? "met" : "NOT met"}`);
