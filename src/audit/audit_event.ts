/**
 * One authorization decision: a host-function call a plugin made, what Cedar
 * decided and why. Serialized as one JSON line in the audit file.
 *
 * @example A denied read
 * ```ts
 * import type { AuditEvent } from "./audit_event.ts";
 * const event: AuditEvent = {
 *   time: new Date().toISOString(),
 *   callId: "c-1",
 *   plugin: "enrich",
 *   version: "1.0.0",
 *   action: "fs.read",
 *   resource: 'File::"/etc/passwd"',
 *   decision: "deny",
 *   policies: [],
 *   errors: [],
 *   caller: null,
 *   durationUs: 42,
 *   reason: "denied by default",
 * };
 * ```
 */
export interface AuditEvent {
  /** When the decision was made, ISO 8601 (`Date.prototype.toISOString`). */
  time: string;
  /** Id of the plugin invocation the host call belongs to. */
  callId: string;
  /** The calling plugin's name. */
  plugin: string;
  /** The calling plugin's version. */
  version: string;
  /** The Cedar action, e.g. `"fs.read"`. */
  action: string;
  /** The Cedar resource, e.g. `'File::"/data/x/a.txt"'`. */
  resource: string;
  /** What Cedar decided. */
  decision: "allow" | "deny";
  /** Ids of the policies that decided. */
  policies: string[];
  /** Errors Cedar reported while evaluating (a policy that errored is skipped). */
  errors: string[];
  /** Who invoked the plugin (e.g. the HTTP caller), or `null` when unknown. */
  caller: string | null;
  /** How long the decision took, in microseconds. */
  durationUs: number;
  /** For denials: `"denied by default"` or `"forbidden by <id>"`. */
  reason?: string;
  /**
   * How many decisions this event stands for; absent means 1. More than 1 for
   * repeats of an identical decision summed at the end of their window, for
   * decisions folded past a plugin's audit budget, and for host calls refused
   * past the `hostCalls` cap. `time` is then the first of them, `durationUs`
   * their total.
   */
  count?: number;
  /** When `count` is more than 1: the time of the last decision summed in. */
  lastTime?: string;
  /**
   * Set on an event that sums a plugin's decisions past its audit budget: they
   * share plugin, version, action and decision, while their resources, call
   * ids, callers and policies varied, so those read `"*"`, `"*"`, `null`, `[]`.
   */
  folded?: true;
}
