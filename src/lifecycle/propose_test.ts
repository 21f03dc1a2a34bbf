import assert from "node:assert/strict";
import type { FootprintEntry } from "../conformance/mod.ts";
import {
  type AuthorizationRequest,
  compileGrants,
  envVarEntity,
  hostEntity,
  keyEntity,
  pathEntity,
  pluginEntity,
  PolicyEngine,
  runtimeEntity,
} from "../policy/mod.ts";
import { parseManifest } from "../registry/mod.ts";
import { proposeGrants } from "./propose.ts";

const POLICIES = new URL("../../policies/", import.meta.url);

function entry(action: string, resource: string, http?: FootprintEntry["http"]): FootprintEntry {
  return { action, resource, count: 1, allowed: 0, declared: true, ...(http ? { http } : {}) };
}

const files = (action: string, ...paths: string[]) => paths.map((p) => entry(action, `File::${JSON.stringify(p)}`));

Deno.test("proposeGrants() collapses a file and one below it to their directory", async () => {
  const proposal = await proposeGrants("p", files("fs.read", "/data/stamp/a.txt", "/data/stamp/sub/b.txt"));
  assert.deepEqual(proposal.grants, [{ "fs.read": { dir: "data/stamp" } }]);
  assert.equal(
    proposal.yaml,
    "grants:\n  - fs.read: { dir: data/stamp } # 2 attempts on /data/stamp/a.txt, /data/stamp/sub/b.txt\n",
  );
});

Deno.test("proposeGrants() grants a single file's directory, and the data root only for a file in it", async () => {
  assert.deepEqual((await proposeGrants("p", files("fs.write", "/data/out/report.json"))).grants, [
    { "fs.write": { dir: "data/out" } },
  ]);
  const root = await proposeGrants("p", files("fs.delete", "/top.txt", "/data/x/y.txt"));
  assert.deepEqual(root.grants, [{ "fs.delete": { dir: "/" } }]);
  // fs.list decides on the directory listed itself.
  assert.deepEqual((await proposeGrants("p", [entry("fs.list", 'Dir::"/data/in"')])).grants, [
    { "fs.list": { dir: "data/in" } },
  ]);
});

Deno.test("proposeGrants() keeps a few siblings apart and never widens to the data root", async () => {
  const siblings = await proposeGrants("p", files("fs.read", "/data/a/1.txt", "/data/b/2.txt", "/data/c/3.txt"));
  assert.deepEqual(siblings.grants.map((g) => Object.values(g)[0]), [
    { dir: "data/a" },
    { dir: "data/b" },
    { dir: "data/c" },
  ]);
  // Five top-level directories are five grants: their parent would be the data root.
  const top = await proposeGrants("p", files("fs.read", "/a/f", "/b/f", "/c/f", "/d/f", "/e/f"));
  assert.deepEqual(top.grants.map((g) => Object.values(g)[0]), ["a", "b", "c", "d", "e"].map((dir) => ({ dir })));
});

Deno.test("proposeGrants() merges siblingDirs siblings into their parent, level by level", async () => {
  const paths = ["/data/cache/00/x", "/data/cache/01/x", "/data/cache/02/x", "/data/cache/03/y/z", "/data/keep/f"];
  assert.deepEqual((await proposeGrants("p", files("fs.read", ...paths))).grants, [
    { "fs.read": { dir: "data/cache" } },
    { "fs.read": { dir: "data/keep" } },
  ]);
  assert.equal((await proposeGrants("p", files("fs.read", ...paths), { siblingDirs: Infinity })).grants.length, 5);
  await assert.rejects(proposeGrants("p", [], { siblingDirs: 1 }), RangeError);
});

Deno.test("proposeGrants() reads paths as the data root's, `..` resolved", async () => {
  const proposal = await proposeGrants("p", files("fs.read", "/data/a/../b/c.txt", "//data/./b/d.txt"));
  assert.deepEqual(proposal.grants, [{ "fs.read": { dir: "data/b" } }]);
  const escaping = await proposeGrants("p", files("fs.read", "/../etc/passwd"));
  assert.deepEqual(escaping.grants, []);
  assert.match(escaping.cannotGrant[0]!.reason, /^not a path in the data root: .*escapes the data root/);
});

Deno.test("proposeGrants() covers many files in many directories with every attempt permitted", async () => {
  const paths: string[] = [];
  for (let team = 0; team < 5; team++) {
    for (let shard = 0; shard < 10; shard++) {
      for (let n = 0; n < 4; n++) paths.push(`/data/team${team}/shard${shard}/file${n}.bin`);
    }
  }
  paths.push("/data/solo/one.txt", "/data/pair/a/1", "/data/pair/b/2");
  const proposal = await proposeGrants("p", files("fs.read", ...paths));
  // Ten shards under each team become the team; five teams under data become data, which covers the rest.
  assert.deepEqual(proposal.grants, [{ "fs.read": { dir: "data" } }]);
  const few = await proposeGrants("p", files("fs.read", ...paths), { siblingDirs: 11 });
  assert.equal(few.grants.length, 5 * 10 + 3);
  await assertPermits("p", few.cedar, paths.map((path) => read("p", path)));
});

Deno.test("proposeGrants() grants hosts, schemes and methods exactly, the port when not the default", async () => {
  const proposal = await proposeGrants("p", [
    entry("http.request", 'Host::"api.example.com:443"', { schemes: ["https"], methods: ["POST", "GET"] }),
    entry("http.request", 'Host::"api.example.com:8443"', { schemes: ["https"], methods: ["PUT"] }),
    entry("http.request", 'Host::"plain.example:80"', { schemes: ["http"], methods: ["GET"] }),
    entry("http.request", 'Host::"both.example:8080"', { schemes: ["http", "https"], methods: ["HEAD"] }),
    entry("http.request", 'Host::"[2606:4700::1111]:443"', { schemes: ["https"], methods: ["GET"] }),
    // A footprint without the methods (recorded before they were): any method, the scheme its port says.
    entry("http.request", 'Host::"old.example:443"'),
  ]);
  assert.deepEqual(proposal.grants, [
    { "http.request": { host: "2606:4700::1111", scheme: "https", methods: ["GET"] } },
    { "http.request": { host: "api.example.com", scheme: "https", methods: ["GET", "POST"] } },
    { "http.request": { host: "api.example.com", port: 8443, scheme: "https", methods: ["PUT"] } },
    { "http.request": { host: "both.example", port: 8080, scheme: "http", methods: ["HEAD"] } },
    { "http.request": { host: "both.example", port: 8080, scheme: "https", methods: ["HEAD"] } },
    { "http.request": { host: "old.example", scheme: "https" } },
    { "http.request": { host: "plain.example", scheme: "http", methods: ["GET"] } },
  ]);
  assert.match(
    proposal.yaml,
    /^ {2}- http\.request: \{ host: "2606:4700::1111", scheme: https, methods: \[GET\] \} # 1 attempt: GET$/m,
  );
  assert.deepEqual(proposal.cannotGrant, []);
});

Deno.test("proposeGrants() does not propose what base.cedar forbids, and says why", async () => {
  const proposal = await proposeGrants("p", [
    entry("http.request", 'Host::"10.0.0.5:8080"', { schemes: ["http"], methods: ["GET"] }),
    entry("http.request", 'Host::"127.0.0.1:80"', { schemes: ["http"], methods: ["GET"] }),
    entry("http.request", 'Host::"files.example:21"', { schemes: ["ftp"], methods: ["GET"] }),
    { ...entry("fs.read", "(unresolved)"), count: 3 },
    entry("http.request", 'Host::"ok.example:443"', { schemes: ["https"], methods: ["GET"] }),
  ]);
  assert.deepEqual(proposal.grants, [{ "http.request": { host: "ok.example", scheme: "https", methods: ["GET"] } }]);
  assert.deepEqual(proposal.cannotGrant.map((a) => [a.resource, a.count, a.reason.replace(/ \(.*/s, "")]), [
    ['Host::"10.0.0.5:8080"', 1, "forbidden by base.http.private-addresses"],
    ['Host::"127.0.0.1:80"', 1, "forbidden by base.http.private-addresses"],
    ['Host::"files.example:21"', 1, "forbidden by base.http.schemes"],
    ["(unresolved)", 3, "refused before any policy decision"],
  ]);
});

Deno.test("proposeGrants() grants key-value namespaces with the actions used", async () => {
  const proposal = await proposeGrants("p", [
    entry("kv.get", 'Key::"p/cache/a"'),
    entry("kv.get", 'Key::"p/cache/b/c"'),
    entry("kv.get", 'Key::"p/counts/n"'),
    entry("kv.set", 'Key::"p/counts/n"'),
    entry("kv.get", 'Key::"p/all/k"'),
    entry("kv.set", 'Key::"p/all/k"'),
    entry("kv.delete", 'Key::"p/all/k"'),
    entry("kv.delete", 'Key::"p/gone/k"'),
  ]);
  assert.deepEqual(proposal.grants, [
    { kv: { namespace: "all" } },
    { "kv.get": { namespace: "cache" } },
    { kv: { namespace: "counts", actions: ["get", "set"] } },
    { "kv.delete": { namespace: "gone" } },
  ]);
});

Deno.test("proposeGrants() grants the configuration names read and the runtime services used", async () => {
  const proposal = await proposeGrants("p", [
    entry("env.get", 'EnvVar::"p/ZONE"'),
    entry("env.get", 'EnvVar::"p/REGION"'),
    entry("random.get", 'Runtime::"random"'),
    entry("log.write", 'Runtime::"log"'),
  ]);
  assert.deepEqual(proposal.grants, [{ "env.get": { names: ["REGION", "ZONE"] } }, { "log.write": {} }, {
    "random.get": {},
  }]);
  assert.equal(proposal.warnings.length, 0);
  const none = await proposeGrants("p", []);
  assert.deepEqual([none.grants, none.yaml, none.cedar], [[], "grants: []\n", ""]);
});

Deno.test("proposeGrants() warns of each manifest grant wider than what was used, naming it", async () => {
  const manifest = parseManifest(
    `name: w
grants:
  - fs.read: { dir: ./data }
  - fs.write: { dir: data/out }
  - http.request: { host: api.example.com, methods: [GET, POST, DELETE] }
  - http.request: { host: "*.example.org" }
  - http.request: { host: never.example }
  - kv: { namespace: cache }
  - env.get: { names: [REGION, SECRET] }
  - clock.now: {}
`,
    "w.yaml",
  );
  const proposal = await proposeGrants("w", [
    entry("fs.read", 'File::"/data/w/in/a.txt"'),
    entry("fs.write", 'File::"/data/out/r.json"'),
    entry("http.request", 'Host::"api.example.com:443"', { schemes: ["https"], methods: ["GET"] }),
    entry("http.request", 'Host::"a.example.org:443"', { schemes: ["https"], methods: ["GET"] }),
    entry("kv.get", 'Key::"w/cache/k"'),
    entry("env.get", 'EnvVar::"w/REGION"'),
  ], { manifest });
  assert.deepEqual(proposal.warnings.map((w) => `grant ${w.grant} (${w.text}) ${w.message}`), [
    'grant 1 (fs.read: { dir: "./data" }) is wider than needed: the attempts it permits need only data/w/in',
    "grant 3 (http.request: { host: api.example.com, methods: [GET, POST, DELETE] }) methods POST, DELETE are granted " +
    "but never used",
    'grant 4 (http.request: { host: "*.example.org" }) permits every method; only GET used',
    'grant 4 (http.request: { host: "*.example.org" }) permits every name under example.org; only a.example.org ' +
    "contacted",
    'grant 5 (http.request: { host: never.example }) host "never.example" is granted but was never contacted',
    "grant 6 (kv: { namespace: cache }) actions set, delete are granted but never used",
    "grant 7 (env.get: { names: [REGION, SECRET] }) name SECRET is granted but never read",
    "grant 8 (clock.now: {}) is never used: no attempt needed it",
  ]);
  await assert.rejects(proposeGrants("other", [], { manifest }), RangeError);
});

Deno.test("proposeGrants() YAML parses back as a manifest, compiles to its Cedar and permits exactly the attempts", async () => {
  const plugin = "prop";
  const attempts: [FootprintEntry, AuthorizationRequest][] = [
    [entry("fs.read", 'File::"/data/prop/a.txt"'), read(plugin, "/data/prop/a.txt")],
    [entry("fs.read", 'File::"/data/prop/deep/er/b.txt"'), read(plugin, "/data/prop/deep/er/b.txt")],
    [entry("fs.write", 'File::"/top.txt"'), request(plugin, "fs.write", pathEntity("/top.txt", "File"))],
    [entry("fs.list", 'Dir::"/data/in put"'), request(plugin, "fs.list", pathEntity("/data/in put", "Dir"))],
    [
      entry("http.request", 'Host::"api.example.com:8443"', { schemes: ["https"], methods: ["POST"] }),
      http(plugin, "api.example.com", 8443, "https", "POST"),
    ],
    [
      entry("http.request", 'Host::"93.184.216.34:80"', { schemes: ["http"], methods: ["GET"] }),
      http(plugin, "93.184.216.34", 80, "http", "GET", "93.184.216.34"),
    ],
    [entry("kv.set", 'Key::"prop/123/k"'), request(plugin, "kv.set", keyEntity(plugin, "123", "k"))],
    [entry("env.get", 'EnvVar::"prop/TRUE"'), request(plugin, "env.get", envVarEntity(plugin, "TRUE"))],
    [
      entry("log.write", 'Runtime::"log"'),
      request(plugin, "log.write", runtimeEntity("log"), { level: "warn", bytes: 10 }),
    ],
    [entry("clock.now", 'Runtime::"clock"'), request(plugin, "clock.now", runtimeEntity("clock"))],
  ];
  const proposal = await proposeGrants(plugin, attempts.map(([e]) => e));
  const manifest = parseManifest(`name: ${plugin}\n${proposal.yaml}`, "proposed.yaml");
  assert.deepEqual(manifest.grants, proposal.grants);
  assert.equal(compileGrants(plugin, manifest.grants), proposal.cedar);
  await assertPermits(plugin, proposal.cedar, attempts.map(([, r]) => r));
  // Least: beside, above or another way, each is denied.
  const denied = await decide(plugin, proposal.cedar, [
    read(plugin, "/data/prop.txt"),
    read(plugin, "/data/prop2/a.txt"),
    request(plugin, "fs.delete", pathEntity("/data/prop/a.txt", "File")),
    http(plugin, "api.example.com", 443, "https", "POST"),
    http(plugin, "api.example.com", 8443, "https", "GET"),
    http(plugin, "evil.api.example.com", 8443, "https", "POST"),
    request(plugin, "kv.get", keyEntity(plugin, "123", "k")),
    request(plugin, "env.get", envVarEntity(plugin, "FALSE")),
    request(plugin, "random.get", runtimeEntity("random")),
  ]);
  assert.deepEqual(denied, denied.map(() => "deny"));
});

function request(
  plugin: string,
  action: string,
  resource: AuthorizationRequest["resource"],
  context: Record<string, unknown> = {},
): AuthorizationRequest {
  return {
    principal: pluginEntity({ name: plugin, version: "1.0.0", sha256: "ab" }),
    action,
    resource,
    context: { caller: "test", ...context },
  };
}

function read(plugin: string, path: string): AuthorizationRequest {
  return request(plugin, "fs.read", pathEntity(path, "File"));
}

function http(plugin: string, host: string, port: number, scheme: string, method: string, ip?: string) {
  return request(plugin, "http.request", hostEntity({ host, port, scheme, ip }, false), { method, path: "/x", hop: 0 });
}

/** Decides requests with a fresh engine of base.cedar and the given grants' Cedar, as the gateway loads them. */
async function decide(plugin: string, cedar: string, requests: AuthorizationRequest[]): Promise<string[]> {
  const [schema, base] = await Promise.all([
    Deno.readTextFile(new URL("keycard.cedarschema", POLICIES)),
    Deno.readTextFile(new URL("base.cedar", POLICIES)),
  ]);
  const engine = await PolicyEngine.create({
    schema,
    sources: [{ name: "base.cedar", text: base }, { name: `grants/${plugin}`, text: cedar }],
  });
  try {
    return requests.map((r) => engine.authorize(r).decision);
  } finally {
    engine.close();
  }
}

async function assertPermits(plugin: string, cedar: string, requests: AuthorizationRequest[]): Promise<void> {
  const decisions = await decide(plugin, cedar, requests);
  const denied = requests.filter((_, i) => decisions[i] !== "allow").map((r) => `${r.action} ${r.resource.uid.id}`);
  assert.deepEqual(denied, []);
}
