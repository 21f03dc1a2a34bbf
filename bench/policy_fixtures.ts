// Shared fixtures of bench/policy_bench.ts and bench/policy_p50.ts: policy
// sets (20 policies for one plugin; 10,000 over 1,000 plugins), request
// builders, and an end-to-end world (PluginHost + createHostFunctions + the
// relay plugin) in a temp dir. See the header of policy_bench.ts.
import { AuditLog } from "../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../src/host/mod.ts";
import {
  type AuthorizationRequest,
  compileGrants,
  type Entity,
  type Grant,
  hostEntity,
  keyEntity,
  pathEntity,
  pluginEntity,
  PolicyEngine,
  type PolicySource,
} from "../src/policy/mod.ts";
import { PluginHost } from "../src/runtime/mod.ts";
import { compileWat } from "../tests/_wat.ts";

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

export const SCHEMA = await Deno.readTextFile(new URL("../policies/keycard.cedarschema", import.meta.url));
export const BASE = await Deno.readTextFile(new URL("../policies/base.cedar", import.meta.url));

// --- 20 policies: base.cedar (2) + 18 grants of one plugin -----------------

export const APP = "app";

/** 18 grants of every kind for one plugin; with base.cedar's 2 forbids, 20 policies. */
export const APP_GRANTS: Grant[] = [
  { "fs.read": { dir: "/data/in" } },
  { "fs.read": { dir: "/data/shared" } },
  { "fs.read": { dir: "/data/certs" } },
  { "fs.write": { dir: "/data/out" } },
  { "fs.write": { dir: "/data/logs" } },
  { "fs.list": { dir: "/data" } },
  { "fs.delete": { dir: "/data/tmp" } },
  { "http.request": { host: "api.example.com", methods: ["GET", "POST"] } },
  { "http.request": { host: "*.cdn.example.net" } },
  { "http.request": { host: "93.184.216.34", port: 443 } },
  { kv: { namespace: "app" } },
  { "kv.get": { namespace: "cache" } },
  { "kv.set": { namespace: "cache" } },
  { "kv.delete": { namespace: "cache" } },
  { "env.get": { names: ["REGION", "STAGE"] } },
  { "log.write": {} },
  { "clock.now": {} },
  { "random.get": {} },
];

export function sources20(): PolicySource[] {
  return [{ name: "base.cedar", text: BASE }, { name: `grants/${APP}`, text: compileGrants(APP, APP_GRANTS) }];
}

const SHA = "0".repeat(64);
export const APP_PRINCIPAL: Entity = pluginEntity({ name: APP, version: "1.0.0", sha256: SHA });

/** The request of the cache-hit item: always the same. */
export const FIXED_REQUEST: AuthorizationRequest = {
  principal: APP_PRINCIPAL,
  action: "fs.read",
  resource: pathEntity("/data/in/reports/2024/q1.csv", "File"),
  context: { caller: "" },
};

/** fs.read of a file never asked before (allowed by grant 1): every call misses the cache. */
export function uniqueFileRead(principal: Entity, dir: string, n: number): AuthorizationRequest {
  return {
    principal,
    action: "fs.read",
    resource: pathEntity(`${dir}/reports/f-${n}.csv`, "File"),
    context: { caller: "" },
  };
}

// --- 10,000 policies: 1,000 plugins x 10 grants + base.cedar ----------------

export const PLUGINS = 1000;
export const pluginName = (i: number): string => `plugin-${String(i).padStart(4, "0")}`;

/** Ten grants of mixed kinds for plugin `i`. */
export function pluginGrants(i: number): Grant[] {
  const p = pluginName(i);
  return [
    { "fs.read": { dir: `/data/${p}/in` } },
    { "fs.write": { dir: `/data/${p}/out` } },
    { "fs.list": { dir: `/data/${p}` } },
    { kv: { namespace: "state" } },
    { "kv.get": { namespace: "shared" } },
    { "http.request": { host: `api-${i}.example.com`, methods: ["GET"] } },
    { "http.request": { host: "*.example.org" } },
    { "env.get": { names: ["REGION"] } },
    { "clock.now": {} },
    { "random.get": {} },
  ];
}

const countPolicies = (text: string) => (text.match(/^\s*(permit|forbid)\s*\(/gm) ?? []).length;

/**
 * base.cedar plus one `grants/<plugin>` source per plugin: 10,000 policies, the most a set may hold
 * (`maxPolicies`). The last plugin gives up its trailing grants (never fs, kv or http) for base.cedar's.
 */
export function sources10k(): PolicySource[] {
  const out: PolicySource[] = [{ name: "base.cedar", text: BASE }];
  let total = countPolicies(BASE);
  for (let i = 0; i < PLUGINS; i++) {
    let grants = pluginGrants(i);
    let text = compileGrants(pluginName(i), grants);
    while (i === PLUGINS - 1 && total + countPolicies(text) > 10_000) {
      grants = grants.slice(0, -1);
      text = compileGrants(pluginName(i), grants);
    }
    total += countPolicies(text);
    out.push({ name: `grants/${pluginName(i)}`, text });
  }
  return out;
}

/** The same set with one source changed (a comment added or removed, alternating). */
export function withOneChanged(sources: PolicySource[], n: number): PolicySource[] {
  const index = 1 + (n % (sources.length - 1));
  return sources.map((s, i) => i === index ? { name: s.name, text: `// reload ${n}\n${s.text}` } : s);
}

export const PRINCIPALS: Entity[] = Array.from(
  { length: PLUGINS },
  (_, i) => pluginEntity({ name: pluginName(i), version: "1.0.0", sha256: SHA }),
);

/** A request of plugin `i` for a resource never asked before: fs.read, kv.get or http.request by `n % 3`. */
export function uniqueMixedRequest(i: number, n: number): AuthorizationRequest {
  const principal = PRINCIPALS[i]!;
  const p = pluginName(i);
  switch (n % 3) {
    case 0:
      return uniqueFileRead(principal, `/data/${p}/in`, n);
    case 1:
      return { principal, action: "kv.get", resource: keyEntity(p, "state", `k-${n}`), context: { caller: "" } };
    default:
      return {
        principal,
        action: "http.request",
        resource: hostEntity({ host: `api-${i}.example.com`, port: 443, scheme: "https", ip: "93.184.216.34" }, false),
        context: { caller: "", method: "GET", path: `/items/${n}`, hop: 0 },
      };
  }
}

/** A deterministic pseudo-random generator (mulberry32), so runs are comparable. */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function engine20(): Promise<PolicyEngine> {
  return PolicyEngine.create({ schema: SCHEMA, sources: sources20() });
}

// --- end to end: isolate -> bridge -> Cedar -> back ---------------------------

/** The relay exports measured, with their input; each makes exactly one host call. */
export const RELAY_CALLS = [
  ["clock_now", "{}"],
  ["random_get", '{"bytes":16}'],
  ["kv_get", '{"key":"k"}'],
  ["fs_read", '{"path":"data/small.txt"}'],
] as const;

/** Keys `u-0` ... `u-<n-1>` are stored for the unique-resource kv_get variant. */
export const UNIQUE_KEYS = 4000;

export interface World {
  host: PluginHost<CallerContext>;
  engine: PolicyEngine;
  audit: AuditLog;
  root: string;
  /** Invokes a relay export; throws unless the host function answered ok (status byte 0). */
  relay(fn: string, input: Uint8Array): Promise<Uint8Array>;
  /** Invokes an export of the baseline plugin (bench/testdata/policy_relay_noop.wat). */
  baseline(fn: "noop" | "echo", input: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function world(): Promise<World> {
  const root = await Deno.makeTempDir({ prefix: "keycard-policy-bench-" });
  await Deno.mkdir(`${root}/data`, { recursive: true });
  await Deno.writeTextFile(
    `${root}/data/small.txt`,
    "a small file of 64 bytes, read through keycard_fs_read: ok....\n",
  );
  const engine = await PolicyEngine.create({
    schema: SCHEMA,
    sources: [
      { name: "base.cedar", text: BASE },
      {
        name: "grants/relay",
        text: compileGrants("relay", [
          { "clock.now": {} },
          { "random.get": {} },
          { kv: { namespace: "relay" } },
          { "fs.read": { dir: "/data" } },
        ]),
      },
    ],
  });
  const audit = new AuditLog();
  const kv = await KvStore.open(`${root}/kv.sqlite`);
  await kv.set("relay", "relay", "k", encoder.encode("value-of-k"));
  for (let i = 0; i < UNIQUE_KEYS; i++) await kv.set("relay", "relay", `u-${i}`, encoder.encode(`value-${i}`));
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 5000, queue: 1000 },
    concurrency: { queue: 1000 },
    hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(root), kv }),
  });
  const wat = async (url: URL) => await compileWat(await Deno.readTextFile(url), url.pathname);
  await host.load(await wat(new URL("../tests/testdata/relay.wat", import.meta.url)), {
    name: "relay",
    version: "1.0.0",
  });
  await host.load(await wat(new URL("./testdata/policy_relay_noop.wat", import.meta.url)), {
    name: "relay_noop",
    version: "1.0.0",
  });
  let closed = false;
  const w: World = {
    host,
    engine,
    audit,
    root,
    async relay(fn, input) {
      const out = await host.invoke("relay", fn, input);
      if (out[0] !== 0) throw new Error(`relay ${fn} failed: ${decoder.decode(out.subarray(1))}`);
      return out;
    },
    baseline(fn, input) {
      return host.invoke("relay_noop", fn, input);
    },
    async close() {
      if (closed) return;
      closed = true;
      await host.close();
      await audit.close();
      kv.close();
      await Deno.remove(root, { recursive: true });
    },
  };
  // Every relay call must be allowed and answered.
  for (const [fn, input] of RELAY_CALLS) await w.relay(fn, encoder.encode(input));
  await w.relay("kv_get", encoder.encode('{"key":"u-0"}'));
  return w;
}
