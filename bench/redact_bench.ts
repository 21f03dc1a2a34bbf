// The cost of redaction on the audit hot path: AuditLog.record() of a realistic event (the Cedar request included)
// without redaction, with redaction configured but nothing to mask yet, and with secrets to look for (10 config
// values, 1,000 remembered header values, 2 patterns) in an event that holds none and in one that holds one.
// Run: deno bench --allow-read --allow-write bench/redact_bench.ts
import { AuditLog } from "../src/audit/mod.ts";
import type { AuditEvent } from "../src/audit/mod.ts";
import { Redactor } from "../src/redact/mod.ts";

let calls = 0;

/** A kv.get event as the host records it; its time and call id differ from the previous event's, as they do live. */
function event(key: string): AuditEvent {
  return {
    time: new Date(1_750_000_000_000 + calls).toISOString(),
    callId: `4f1c2d3e-5a6b-4c7d-8e9f-${String(calls++).padStart(12, "0")}`,
    plugin: "stamp",
    version: "1.0.0",
    action: "kv.get",
    resource: `Key::"stamp/stamp/${key}"`,
    decision: "allow",
    policies: ["grant.stamp.4"],
    errors: [],
    caller: "app",
    durationUs: 12,
    request: {
      principal: {
        uid: { type: "Plugin", id: "stamp" },
        attrs: { name: "stamp", version: "1.0.0", sha256: "ab".repeat(32), tenant: "" },
        parents: [],
      },
      action: "kv.get",
      resource: { uid: { type: "Key", id: `stamp/stamp/${key}` }, attrs: {}, parents: [] },
      context: { caller: "app" },
    },
  } as unknown as AuditEvent;
}

const loaded = new Redactor({ headers: ["authorization"], patterns: ["AKIA[0-9A-Z]{16}", "ghp_[A-Za-z0-9]{36}"] });
loaded.setSecrets("config", [
  ...Array.from({ length: 9 }, (_, i) => `config-secret-${i}-xyz`),
  "sk_live_0123456789abcdef",
]);
for (let i = 0; i < 1000; i++) loaded.observe(new Headers({ authorization: `Bearer token-${i}-${"q".repeat(24)}` }));
const idle = new Redactor({ headers: ["authorization"] });

const options = { ringSize: 10_000, aggregate: false } as const;
const none = new AuditLog(options);
const configured = new AuditLog({ ...options, redact: (e) => idle.maskValue(e) });
const active = new AuditLog({ ...options, redact: (e) => loaded.maskValue(e) });

Deno.bench("record(): no redaction", { group: "record", baseline: true }, () => none.record(event("counter")));
Deno.bench("record(): redaction configured, nothing known yet", { group: "record" }, () => {
  configured.record(event("counter"));
});
Deno.bench("record(): 2,010 known secrets + 2 patterns, none in the event", { group: "record" }, () => {
  active.record(event("counter"));
});
Deno.bench("record(): 2,010 known secrets + 2 patterns, one in the event", { group: "record" }, () => {
  active.record(event("sk_live_0123456789abcdef"));
});
Deno.bench("mask(): a 4 KiB log line, 2,010 known secrets + 2 patterns, none in it", { group: "log" }, () => {
  loaded.mask(LOG_LINE);
});

const LOG_LINE = "stamping 4096 bytes of input for the caller; ".repeat(90).slice(0, 4096);
