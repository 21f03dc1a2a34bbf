/** A Cedar entity as recorded: Cedar's JSON entity shape. */
export interface AuditEntity {
  /** Which entity: `{ type: "File", id: "/data/x/a.txt" }`. */
  uid: { type: string; id: string };
  /** Its attributes, in Cedar's JSON value form (an `ip` is `{ "__extn": { "fn": "ip", "arg": "..." } }`). */
  attrs: Record<string, unknown>;
  /** The entities it is `in` (a `File` lists every ancestor `Dir`). */
  parents: { type: string; id: string }[];
}

/**
 * The Cedar request of a decision, exactly as the engine saw it: enough to
 * decide it again against another policy set (`deno task policy plan`).
 */
export interface AuditRequest {
  /** The `Plugin` principal with its attributes (name, version, sha256, tenant). */
  principal: AuditEntity;
  /** The action id, e.g. `"fs.read"` (Cedar's `Action::"fs.read"`). */
  action: string;
  /** The resource with its attributes and parents. */
  resource: AuditEntity;
  /** Cedar's `context` record (`caller`, and e.g. `method`, `path`, `hop` of an HTTP hop). */
  context: Record<string, unknown>;
}

/**
 * One authorization decision: a host-function call a plugin made, what Cedar
 * decided and why. Serialized as one JSON line in the audit file.
 *
 * Provenance: `policySet` names the policy set that decided by content
 * (`sha256:<hex>`, the same for the same sources in any process), `deciding`
 * each deciding policy with its source file and line, and `request` the Cedar
 * request itself, so that the decision can be replayed against a candidate
 * set. A request larger than {@linkcode MAX_AUDIT_REQUEST_BYTES} is left out
 * and `requestOmitted` says so; so is one of an event that sums decisions past
 * a plugin's audit budget (`folded`), whose requests varied.
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
 *   policySet: "sha256:9b1c0e4f0d8a6f43c1d2b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
 *   deciding: [],
 *   request: {
 *     principal: {
 *       uid: { type: "Plugin", id: "enrich" },
 *       attrs: { name: "enrich", version: "1.0.0", sha256: "ab12", tenant: "" },
 *       parents: [],
 *     },
 *     action: "fs.read",
 *     resource: { uid: { type: "File", id: "/etc/passwd" }, attrs: {}, parents: [{ type: "Dir", id: "/etc" }, { type: "Dir", id: "/" }] },
 *     context: { caller: "" },
 *   },
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
  /**
   * The Cedar request decided, for replay. Absent when the host call was
   * refused before it became a Cedar request (`resource` `"(unresolved)"`),
   * on a `folded` event, and when it was too large (see `requestOmitted`).
   */
  request?: AuditRequest;
  /** Why `request` is absent although Cedar decided, e.g. `"too large: 9000 bytes > 8192"`. */
  requestOmitted?: string;
  /** The policy set that decided, by content: `"sha256:<hex>"` (absent when Cedar did not decide). */
  policySet?: string;
  /** Each deciding policy with its source and 1-based line, as `policies` (absent when Cedar did not decide). */
  deciding?: { id: string; source: string; line: number }[];
}

/**
 * Largest `request` an event keeps, in bytes of JSON. Keycard's requests are
 * a few hundred bytes; a path hundreds of directories deep (every ancestor
 * `Dir` is a parent) is the one that grows past it.
 */
export const MAX_AUDIT_REQUEST_BYTES = 8192;
