import assert from "node:assert/strict";
import { join } from "node:path";
import { Redactor } from "../redact/mod.ts";
import type { AuditEvent } from "./audit_event.ts";
import { AuditLog } from "./audit_log.ts";

const SECRET = "sk_test_9f8e7d6c5b4a";

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date().toISOString(),
    callId: "c-1",
    plugin: "leaky",
    version: "1.0.0",
    action: "kv.get",
    resource: `Key::"leaky/leaky/${SECRET}"`,
    decision: "deny",
    policies: [],
    errors: [`Cannot kv.get Key::"leaky/leaky/${SECRET}"`],
    caller: "app",
    durationUs: 5,
    reason: "denied by default",
    ...overrides,
  };
}

Deno.test("AuditLog with redact masks the ring, the file, subscribers and sums alike", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keycard_audit_redact_" });
  try {
    const redactor = new Redactor();
    redactor.setSecrets("config", [SECRET]);
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog({
      file: { path },
      aggregate: { repeats: 1, windowMs: 60_000 },
      redact: (e) => redactor.maskValue(e),
    });
    const streamed: AuditEvent[] = [];
    log.subscribe((e) => streamed.push(e));
    // A nested field (the Cedar request) is masked like the top-level ones.
    const request = { context: { path: `/v1/${encodeURIComponent(SECRET)}` } };
    for (let i = 0; i < 3; i++) log.record({ ...event(), request } as unknown as AuditEvent);
    await log.close();
    const file = await Deno.readTextFile(path);
    const answered = JSON.stringify(log.query());
    for (const [where, text] of [["file", file], ["query", answered], ["subscribers", JSON.stringify(streamed)]]) {
      assert.ok(!text!.includes(SECRET), `${where} holds the secret`);
      assert.ok(text!.includes('Key::\\"leaky/leaky/[REDACTED]\\"'), `${where} lacks the mask`);
      assert.ok(text!.includes("/v1/[REDACTED]"), `${where} lacks the masked request path`);
    }
    // The repeats were summed after masking: one event of its own, one sum of two.
    assert.deepEqual(log.query().map((e) => e.count ?? 1), [2, 1]);
    assert.equal(log.stats().recorded, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AuditLog keeps only fields without free text when redact throws, and still counts the decision", () => {
  const log = new AuditLog({
    aggregate: false,
    redact: () => {
      throw new Error(`cannot mask ${SECRET}`);
    },
  });
  log.record(event());
  const [stored] = log.query();
  assert.ok(!JSON.stringify(stored).includes(SECRET));
  assert.equal(stored?.resource, "(unredacted: omitted)");
  assert.deepEqual(stored?.errors, ["redaction failed: Error"]);
  assert.equal(log.stats().recorded, 1);
});

Deno.test("AuditLog refuses a redact option that is not a function", () => {
  assert.throws(
    () => new AuditLog({ redact: "yes" as unknown as (e: AuditEvent) => AuditEvent }),
    /Cannot create an audit log with redact string: it must be a function/,
  );
});
