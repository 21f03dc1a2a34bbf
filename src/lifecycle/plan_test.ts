import assert from "node:assert/strict";
import { type AuditEvent, AuditLog } from "../audit/mod.ts";
import {
  type AuthorizationRequest,
  compileGrants,
  pathEntity,
  pluginEntity,
  PolicyEngine,
  policySetHash,
  type PolicySource,
  PolicyValidationError,
  runtimeEntity,
} from "../policy/mod.ts";
import { planPolicyChange } from "./plan.ts";
import { readAuditEvents } from "./read_audit_events.ts";

const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));
const FORBID_KEYS =
  '@id("ops.no-keys")\nforbid (principal, action == Action::"fs.read", resource in Dir::"/data/x/keys");\n';

const grants: PolicySource[] = [
  {
    name: "grants/p",
    text: compileGrants("p", [{ "fs.read": { dir: "data/x" } }, { "clock.now": {} }]),
    trusted: true,
  },
  { name: "grants/q", text: compileGrants("q", [{ "fs.read": { dir: "data/q" } }]), trusted: true },
];

function operator(ops: string): PolicySource[] {
  return [{ name: "base.cedar", text: base }, { name: "ops.cedar", text: ops }];
}

function read(plugin: string, path: string): AuthorizationRequest {
  return {
    principal: pluginEntity({ name: plugin, version: "1.0.0", sha256: "00" }),
    action: "fs.read",
    resource: pathEntity(path, "File"),
    context: { caller: "app" },
  };
}

let calls = 0;
/** The event the host functions record for `request` decided by `engine`, read back from JSON as from the file. */
function recorded(engine: PolicyEngine, request: AuthorizationRequest, extra: Partial<AuditEvent> = {}): AuditEvent {
  const decision = engine.authorize(request);
  const event: AuditEvent = {
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, calls)).toISOString(),
    callId: `c-${++calls}`,
    plugin: request.principal.uid.id,
    version: "1.0.0",
    action: request.action,
    resource: `${request.resource.uid.type}::${JSON.stringify(request.resource.uid.id)}`,
    decision: decision.decision,
    policies: decision.policies,
    errors: decision.errors,
    caller: "app",
    durationUs: 3,
    ...(decision.decision === "deny" ? { reason: decision.reason } : {}),
    policySet: decision.policySet,
    deciding: decision.deciding,
    request,
    ...extra,
  };
  return JSON.parse(JSON.stringify(event));
}

async function inForce(ops = FORBID_KEYS) {
  return await PolicyEngine.create({ schema, sources: [...operator(ops), ...grants] });
}

Deno.test("planPolicyChange() reports removing a forbid as a widening, grouped by the new deciding permit, with counts", async () => {
  const engine = await inForce();
  const events = [
    recorded(engine, read("p", "/data/x/keys/a.pem"), { count: 5 }),
    recorded(engine, read("p", "/data/x/keys/b.pem")),
    recorded(engine, read("p", "/data/x/ok.txt"), { count: 2 }),
    recorded(engine, read("q", "/data/x/keys/a.pem")),
  ];
  assert.deepEqual(events.map((e) => e.decision), ["deny", "deny", "allow", "deny"]);
  const candidate = [...operator(""), ...grants];
  const report = planPolicyChange(events, { engine, candidate, examples: 1 });

  assert.equal(report.current.policySet, engine.policySet);
  assert.equal(report.candidate.policySet, policySetHash(candidate));
  assert.deepEqual(report.totals, {
    events: 4,
    decisions: 9,
    replayed: 9,
    unchanged: 2, // the allowed read
    widened: 6,
    narrowed: 0,
    reattributed: 1, // q's read: denied by default now, forbidden by ops.no-keys before
    skipped: 0,
    differsFromRecord: 0,
    recordedUnderOtherSets: 0,
  });
  assert.equal(report.widenings.length, 1);
  const [group] = report.widenings;
  const permit = engine.policies().find((p) => p.source === "grants/p" && p.text.includes("fs.read"))!;
  assert.deepEqual(
    { ...group, examples: undefined },
    {
      change: "widening",
      plugin: "p",
      action: "fs.read",
      policies: [{ id: permit.id, source: "grants/p", line: permit.line }],
      before: {
        decision: "deny",
        reason: "forbidden by ops.no-keys",
        policies: [{ id: "ops.no-keys", source: "ops.cedar", line: 1 }],
      },
      after: {
        decision: "allow",
        reason: `permitted by ${permit.id}`,
        policies: [{ id: permit.id, source: "grants/p", line: permit.line }],
      },
      decisions: 6,
      events: 2,
      examples: undefined,
    },
  );
  assert.deepEqual(group!.examples, [{
    time: events[0]!.time,
    callId: events[0]!.callId,
    resource: 'File::"/data/x/keys/a.pem"',
    context: { caller: "app" },
    count: 5,
  }]);
  assert.deepEqual([report.narrowings, report.skipped], [[], []]);
  assert.deepEqual(
    report.reattributed.map((g) => [g.plugin, g.before.reason, g.after.reason]),
    [["q", "forbidden by ops.no-keys", "denied by default"]],
  );
});

Deno.test("planPolicyChange() reports a new forbid as a narrowing under the permits that allowed", async () => {
  const engine = await inForce();
  const events = [
    recorded(engine, read("p", "/data/x/ok.txt"), { count: 3 }),
    recorded(engine, read("p", "/data/x/sub/b.txt")),
    recorded(engine, read("q", "/data/q/c.txt")),
  ];
  const narrow = FORBID_KEYS +
    '@id("ops.no-x")\nforbid (principal == Plugin::"p", action, resource in Dir::"/data/x");\n';
  const report = planPolicyChange(events, { engine, candidate: [...operator(narrow), ...grants] });
  assert.deepEqual([report.totals.narrowed, report.totals.widened, report.totals.unchanged], [4, 0, 1]);
  const [group] = report.narrowings;
  assert.equal(report.narrowings.length, 1);
  assert.equal(group!.plugin, "p");
  assert.deepEqual(group!.policies.map((p) => p.source), ["grants/p"], "the permits that allowed");
  assert.deepEqual(group!.after.policies, [{ id: "ops.no-x", source: "ops.cedar", line: 3 }]);
  assert.equal(group!.after.reason, "forbidden by ops.no-x");
  assert.deepEqual([group!.decisions, group!.events, group!.examples.length], [4, 2, 2]);
});

Deno.test("planPolicyChange() finds no flip for an identical candidate, and reattributions for a redundant permit", async () => {
  const engine = await inForce();
  const events = [
    recorded(engine, read("p", "/data/x/ok.txt")),
    recorded(engine, read("p", "/data/x/keys/a.pem")),
    recorded(engine, read("q", "/data/q/c.txt"), { count: 7 }),
  ];
  const same = planPolicyChange(events, { engine, candidate: engine.sources() });
  assert.equal(same.candidate.policySet, same.current.policySet);
  assert.deepEqual(
    [same.totals.replayed, same.totals.unchanged, same.totals.widened, same.totals.narrowed, same.totals.reattributed],
    [9, 9, 0, 0, 0],
  );
  assert.deepEqual([same.widenings, same.narrowings, same.reattributed], [[], [], []]);

  const also = FORBID_KEYS +
    '@id("ops.q-reads")\npermit (principal == Plugin::"q", action == Action::"fs.read", resource);\n';
  const report = planPolicyChange(events, { engine, candidate: [...operator(also), ...grants] });
  assert.deepEqual([report.totals.reattributed, report.totals.unchanged], [7, 2]);
  assert.deepEqual(report.reattributed[0]!.after.policies.map((p) => p.id).includes("ops.q-reads"), true);
});

Deno.test("planPolicyChange() skips what it cannot replay and says why, counting decisions", async () => {
  const engine = await inForce();
  const decided = recorded(engine, read("p", "/data/x/keys/a.pem"));
  const events: AuditEvent[] = [
    decided,
    // Folded past the budget: resource "*", no request.
    { ...decided, resource: "*", callId: "*", folded: true, count: 40, request: undefined, policySet: undefined },
    { ...decided, request: undefined, requestOmitted: "too large: 9000 bytes > 8192", count: 2 },
    {
      ...decided,
      resource: "(unresolved)",
      request: undefined,
      policySet: undefined,
      deciding: undefined,
      reason: "refused before policy evaluation: bad",
    },
    { ...decided, request: undefined, policySet: undefined, deciding: undefined, count: 3 }, // an older keycard's event
    { ...decided, request: { ...decided.request!, principal: "Plugin::p" } as unknown as AuthorizationRequest },
  ].map((e) => JSON.parse(JSON.stringify(e)));
  const report = planPolicyChange(events, {
    engine,
    candidate: [...operator(""), ...grants],
    audit: { files: ["/x/audit.jsonl"], unreadable: { count: 2 }, window: { last: 100 } },
  });
  assert.deepEqual(
    report.skipped.map((s) => [s.reason, s.events, s.decisions]),
    [["unreadable", 3, 3], ["folded", 1, 40], ["too-large", 1, 2], ["not-decided", 1, 1], ["no-request", 1, 3]],
  );
  assert.ok(report.skipped.every((s) => s.why.length > 20));
  assert.deepEqual(
    [report.totals.events, report.totals.decisions, report.totals.skipped, report.totals.replayed],
    [8, 50, 49, 1],
  );
  assert.equal(report.totals.widened, 1);
  assert.deepEqual(report.audit, { files: ["/x/audit.jsonl"], window: { last: 100 } });
});

Deno.test("planPolicyChange() counts decisions recorded under another set and those the set in force now decides otherwise", async () => {
  const before = await inForce("");
  const events = [recorded(before, read("p", "/data/x/keys/a.pem"), { count: 2 })]; // allowed before the forbid
  const engine = await inForce();
  const report = planPolicyChange(events, { engine, candidate: engine.sources() });
  assert.deepEqual([report.totals.recordedUnderOtherSets, report.totals.differsFromRecord], [2, 2]);
  assert.deepEqual(
    [report.totals.unchanged, report.totals.narrowed],
    [2, 0],
    "flips are the candidate's, not history's",
  );
});

Deno.test("planPolicyChange() refuses an invalid candidate with source, line and column; nothing changes", async () => {
  const engine = await inForce();
  const version = engine.version;
  const candidate = [
    ...operator('\n@id("bad")\npermit (principal, action == Action::"fs.read", resource) when { 1 + };'),
    ...grants,
  ];
  assert.throws(() => planPolicyChange([], { engine, candidate }), (error) => {
    assert.ok(error instanceof PolicyValidationError);
    assert.deepEqual([error.source, error.line], ["ops.cedar", 3]);
    assert.ok(error.column !== undefined && error.column > 1);
    return true;
  });
  assert.equal(engine.version, version);
});

Deno.test("readAuditEvents() reads rotated files oldest first, by last N and since, and counts unreadable lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keycard-plan-" });
  try {
    const path = `${dir}/audit.jsonl`;
    const engine = await inForce();
    // A real AuditLog rotating every ~2 KB: 30 events over several files.
    const log = new AuditLog({ file: { path, maxBytes: 2048, maxFiles: 20 }, aggregate: false });
    const written: AuditEvent[] = [];
    for (let i = 0; i < 30; i++) {
      const event = recorded(engine, { ...read("p", `/data/x/f${i}.txt`), action: "fs.read" });
      written.push(event);
      log.record(event);
    }
    log.record(recorded(engine, { ...read("p", "/"), action: "clock.now", resource: runtimeEntity("clock") }));
    await log.close();
    const all = await readAuditEvents(path);
    assert.ok(all.files.length >= 3, `rotated into ${all.files.length} files`);
    assert.deepEqual(all.files.at(-1), path);
    assert.equal(all.files[0], `${path}.${all.files.length - 1}`);
    assert.deepEqual(all.events.slice(0, 30).map((e) => e.callId), written.map((e) => e.callId));
    assert.equal(all.unreadable.count, 0);

    const last = await readAuditEvents(path, { last: 5 });
    assert.deepEqual(last.events.map((e) => e.callId), all.events.slice(-5).map((e) => e.callId));
    const since = await readAuditEvents(path, { since: written[25]!.time });
    assert.deepEqual(since.events.map((e) => e.callId), all.events.slice(25).map((e) => e.callId));
    const both = await readAuditEvents(path, { since: written[25]!.time, last: 2 });
    assert.deepEqual(both.events.map((e) => e.callId), all.events.slice(-2).map((e) => e.callId));

    // A torn last line and a line edited by hand are counted, with where the first is.
    await Deno.writeTextFile(path, '{"time": 3}\n{"time":"2025-', { append: true });
    const torn = await readAuditEvents(path);
    assert.equal(torn.unreadable.count, 2);
    assert.match(torn.unreadable.first!, /audit\.jsonl:\d+: "time" is not a string$/);
    assert.equal(torn.events.length, all.events.length);
    // Control characters of a hand-edited line never reach the terminal raw (JSON.parse quotes them back).
    const dirty = `${dir}/dirty.jsonl`;
    await Deno.writeTextFile(dirty, "\u0000\u001b[2J" + "x".repeat(1000) + "\n");
    const shown = (await readAuditEvents(dirty)).unreadable.first!;
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(shown, /[\u0000-\u001f]/);
    assert.ok(shown.length < 400, `${shown.length} characters`);

    await assert.rejects(() => readAuditEvents(path, { last: 0 }), RangeError);
    await assert.rejects(() => readAuditEvents(path, { since: "yesterday" }), /not an ISO 8601 time/);
    assert.deepEqual(await readAuditEvents(`${dir}/none.jsonl`), { events: [], files: [], unreadable: { count: 0 } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planPolicyChange() replays the events of a real audit file, rotated, as recorded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keycard-plan-" });
  try {
    const path = `${dir}/audit.jsonl`;
    const engine = await inForce();
    const log = new AuditLog({ file: { path, maxBytes: 1500, maxFiles: 10 } });
    for (let i = 0; i < 6; i++) log.record(recorded(engine, read("p", `/data/x/keys/k${i}.pem`)));
    for (let i = 0; i < 6; i++) log.record(recorded(engine, read("p", `/data/x/f${i}.txt`)));
    await log.close();
    const { events, files, unreadable } = await readAuditEvents(path);
    assert.ok(files.length > 1);
    const report = planPolicyChange(events, {
      engine,
      candidate: [...operator(""), ...grants],
      audit: { files, unreadable },
    });
    assert.deepEqual([report.totals.replayed, report.totals.widened, report.totals.unchanged], [12, 6, 6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
