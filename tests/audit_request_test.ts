// Audit events carry what replay needs: the Cedar request exactly as decided, the policy set by content and each
// deciding policy's source and line. Real plugin in a real isolate, real Cedar, the real JSONL file.
import assert from "node:assert/strict";
import { type AuditEvent, AuditLog, MAX_AUDIT_REQUEST_BYTES } from "../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../src/host/mod.ts";
import { compileGrants, PolicyEngine } from "../src/policy/mod.ts";
import { PluginHost } from "../src/runtime/mod.ts";
import { encoder, readRotated, watFixture } from "./_test_utils.ts";

const schema = await Deno.readTextFile(new URL("../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../policies/base.cedar", import.meta.url));
const OPS =
  '@id("ops.no-secret")\nforbid (principal, action == Action::"fs.read", resource in Dir::"/data/x/secret");\n';

async function world() {
  const root = await Deno.makeTempDir({ prefix: "keycard-test-" });
  await Deno.mkdir(`${root}/data/x/secret`, { recursive: true });
  await Deno.writeTextFile(`${root}/data/x/a.txt`, "in x");
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "ops.cedar", text: OPS },
      { name: "grants/relay", text: compileGrants("relay", [{ "fs.read": { dir: "data/x" } }, { "log.write": {} }]) },
    ],
  });
  const file = `${root}/audit/audit.jsonl`;
  const audit = new AuditLog({ file: { path: file } });
  const kv = await KvStore.open(`${root}/kv.sqlite`);
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 5000 },
    hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(root), kv, logSink: () => {} }),
  });
  await host.load(await watFixture("relay"), { name: "relay", version: "1.0.0" });
  return {
    engine,
    audit,
    call: (fn: string, request: unknown) =>
      host.invoke("relay", fn, encoder.encode(JSON.stringify(request)), { hostContext: { caller: "client-7" } }),
    /** Every event in the file, after a flush. */
    async events(): Promise<AuditEvent[]> {
      await audit.flush();
      return (await readRotated(file)).lines.map((line) => JSON.parse(line));
    },
    async [Symbol.asyncDispose]() {
      await host.close();
      await audit.close();
      kv.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("a decided host call's audit event holds its Cedar request and provenance, and replays to the same decision", async () => {
  await using w = await world();
  await w.call("fs_read", { path: "data/x/a.txt" });
  await w.call("fs_read", { path: "data/x/secret/k.pem" });
  await w.call("fs_read", { path: "data/other.txt" });
  const events = (await w.events()).filter((e) => e.action === "fs.read");
  assert.equal(events.length, 3);
  const [allowed, forbidden, byDefault] = events as [AuditEvent, AuditEvent, AuditEvent];

  assert.deepEqual(allowed.request, {
    principal: {
      uid: { type: "Plugin", id: "relay" },
      attrs: { name: "relay", version: "1.0.0", sha256: allowed.request!.principal.attrs.sha256, tenant: "" },
      parents: [],
    },
    action: "fs.read",
    resource: {
      uid: { type: "File", id: "/data/x/a.txt" },
      attrs: {},
      parents: [{ type: "Dir", id: "/data/x" }, { type: "Dir", id: "/data" }, { type: "Dir", id: "/" }],
    },
    context: { caller: "client-7" },
  });
  assert.match(String(allowed.request!.principal.attrs.sha256), /^[0-9a-f]{64}$/);
  for (const event of events) assert.equal(event.policySet, w.engine.policySet);
  const grant = w.engine.policies().find((p) => p.id === allowed.policies[0])!;
  assert.deepEqual(allowed.deciding, [{ id: grant.id, source: "grants/relay", line: grant.line }]);
  assert.deepEqual(forbidden.deciding, [{ id: "ops.no-secret", source: "ops.cedar", line: 1 }]);
  assert.deepEqual([byDefault.deciding, byDefault.reason], [[], "denied by default"]);

  // Read back from the JSON lines, each request decides again exactly as recorded.
  for (const event of events) {
    const again = w.engine.authorizeUncached(event.request!);
    assert.deepEqual([again.decision, again.policies], [event.decision, event.policies], event.resource);
  }
});

Deno.test("a request past MAX_AUDIT_REQUEST_BYTES is left out and marked; a refusal before Cedar carries none", async () => {
  await using w = await world();
  // Every ancestor Dir is a parent, with its whole path: 40 levels of 24 characters are ~20 KB of JSON.
  const deep = Array.from({ length: 40 }, (_, i) => `level-${String(i).padStart(2, "0")}-${"d".repeat(15)}`).join("/");
  await w.call("fs_read", { path: `data/${deep}/f.txt` });
  await w.call("fs_read", { nopath: true });
  const [big, refused] = (await w.events()).filter((e) => e.action === "fs.read") as [AuditEvent, AuditEvent];
  assert.equal(big.request, undefined);
  assert.match(big.requestOmitted!, new RegExp(`^too large: \\d+ bytes > ${MAX_AUDIT_REQUEST_BYTES}$`));
  assert.equal(big.policySet, w.engine.policySet, "the decision still names its set");
  assert.equal(refused.resource, "(unresolved)");
  assert.deepEqual([refused.request, refused.requestOmitted, refused.policySet], [undefined, undefined, undefined]);
});

Deno.test("AuditLog sums repeats only when their requests are equal: the kept request stands for every one", async () => {
  await using log = new AuditLog();
  const event = (bytes: number): AuditEvent => ({
    time: "2025-01-01T00:00:00.000Z",
    callId: "c-1",
    plugin: "relay",
    version: "1.0.0",
    action: "log.write",
    resource: 'Runtime::"log"',
    decision: "allow",
    policies: ["grant.relay.1"],
    errors: [],
    caller: null,
    durationUs: 1,
    policySet: "sha256:00",
    deciding: [{ id: "grant.relay.1", source: "grants/relay", line: 1 }],
    request: {
      principal: { uid: { type: "Plugin", id: "relay" }, attrs: {}, parents: [] },
      action: "log.write",
      resource: { uid: { type: "Runtime", id: "log" }, attrs: {}, parents: [] },
      context: { caller: "", level: "info", bytes },
    },
  });
  // Six of one size in one call, then six of six sizes: log.write's context carries the message size.
  for (let i = 0; i < 6; i++) log.record(event(4));
  for (let i = 0; i < 6; i++) log.record(event(10 + i));
  await log.flush();
  const events = log.query({ limit: 100 });
  const seen = events.map((e) => [e.request!.context.bytes as number, e.count ?? 1]).sort((a, b) =>
    a[0]! - b[0]! || a[1]! - b[1]!
  );
  // The default aggregation keeps 4 repeats as events and sums the rest into one.
  assert.deepEqual(seen, [[4, 1], [4, 1], [4, 1], [4, 1], [4, 2], [10, 1], [11, 1], [12, 1], [13, 1], [14, 1], [
    15,
    1,
  ]]);
  // Another policy set is not a repeat either.
  log.record({ ...event(4), policySet: "sha256:01" });
  await log.flush();
  assert.equal(log.query({ limit: 100 }).filter((e) => e.policySet === "sha256:01").length, 1);
});
