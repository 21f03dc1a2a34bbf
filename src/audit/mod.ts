/**
 * The audit trail: every host-function call a plugin makes is decided by
 * Cedar and recorded here. {@linkcode AuditLog} counts every decision
 * exactly, sums repeats and folds a plugin's flood past its budget into
 * events with a `count` (so no plugin can crowd out another's events), and
 * keeps a ring of recent events that is fair between plugins, counters for
 * metrics, live subscribers, and an append-only JSON-lines file with
 * size-based rotation that never drops an event.
 *
 * @example Record a decision and wait for the file
 * ```ts ignore
 * import { AuditLog } from "./mod.ts";
 * await using log = new AuditLog({ file: { path: ".keycard/audit.jsonl" } });
 * log.record({
 *   time: new Date().toISOString(),
 *   callId: "c-1",
 *   plugin: "enrich",
 *   version: "1.0.0",
 *   action: "fs.read",
 *   resource: 'File::"/data/x/a.txt"',
 *   decision: "allow",
 *   policies: ["grant-data"],
 *   errors: [],
 *   caller: null,
 *   durationUs: 18,
 * });
 * await log.flush();
 * ```
 *
 * @module
 */
export type { AuditEntity, AuditEvent, AuditRequest } from "./audit_event.ts";
export { MAX_AUDIT_REQUEST_BYTES } from "./audit_event.ts";
export { AuditLog } from "./audit_log.ts";
export { auditFiles } from "./_file_sink.ts";
export type {
  AuditAggregateOptions,
  AuditCounter,
  AuditFileOptions,
  AuditListener,
  AuditLogOptions,
  AuditQuery,
  AuditStats,
} from "./audit_log.ts";
