import type { AuditEvent } from "../audit/mod.ts";
import {
  type AuthorizationRequest,
  type DecidingPolicy,
  type Decision,
  type PolicyEngine,
  policySetHash,
  type PolicySource,
} from "../policy/mod.ts";
import type { AuditWindow, RecordedAudit } from "./read_audit_events.ts";

/** How a decision changes from the set in force to the candidate. */
export type PlanChange = "widening" | "narrowing" | "reattributed";

/** Why recorded decisions could not be replayed. */
export type PlanSkipReason = "folded" | "too-large" | "not-decided" | "no-request" | "unreadable";

/** Recorded decisions that were not replayed, and why. */
export interface PlanSkip {
  /** The kind of event. */
  reason: PlanSkipReason;
  /** The same, said plainly. */
  why: string;
  /** Events (or unreadable lines) of this kind. */
  events: number;
  /** Decisions they stand for (an event with `count` n is n decisions; an unreadable line counts 1). */
  decisions: number;
}

/** One recorded request of a group, for a person to look at. */
export interface PlanExample {
  /** When it was decided (the first, for a sum). */
  time: string;
  /** The plugin invocation it belongs to. */
  callId: string;
  /** The resource, as in the audit (`File::"/data/x/a.txt"`). */
  resource: string;
  /** Cedar's context of the request. */
  context: Record<string, unknown>;
  /** Decisions the event stands for. */
  count: number;
}

/** A decision before or after the change. */
export interface PlanOutcome {
  /** Allow or deny. */
  decision: "allow" | "deny";
  /** `permitted by ...`, `forbidden by ...` or `denied by default`. */
  reason: string;
  /** The deciding policies, with source and line. */
  policies: DecidingPolicy[];
}

/** Decisions that change alike: same plugin, action, change and deciding policies before and after. */
export interface PlanGroup {
  /** Widening (deny to allow), narrowing (allow to deny), or the same decision by other policies. */
  change: PlanChange;
  /** The plugin that made the requests. */
  plugin: string;
  /** The action, e.g. `fs.read`. */
  action: string;
  /**
   * The policies responsible: for a widening, the candidate's permits that
   * now allow; for a narrowing, the permits in force that allowed; for a
   * reattribution, the candidate's deciding policies.
   */
  policies: DecidingPolicy[];
  /** The decision on the set in force. */
  before: PlanOutcome;
  /** The decision on the candidate set. */
  after: PlanOutcome;
  /** Decisions in the group. */
  decisions: number;
  /** Events in the group. */
  events: number;
  /** The first few of them. */
  examples: PlanExample[];
}

/** Where the replayed events came from, as the caller read them. */
export interface PlanAudit {
  /** The audit files read, oldest first. */
  files: string[];
  /** The window asked for. */
  window: { last?: number; since?: string };
}

/** What a policy change would do to the decisions recorded in the audit. */
export interface PlanReport {
  /** The set in force. */
  current: { policySet: string };
  /** The candidate set. */
  candidate: { policySet: string };
  /** Where the events came from, when the caller said. */
  audit?: PlanAudit;
  /** Counts of decisions (an event with `count` n is n decisions), and of events. */
  totals: {
    /** Events considered (and unreadable lines). */
    events: number;
    /** Decisions they stand for. */
    decisions: number;
    /** Decisions replayed on both sets. */
    replayed: number;
    /** Replayed decisions the candidate decides alike, by the same policies. */
    unchanged: number;
    /** Deny on the set in force, allow on the candidate. */
    widened: number;
    /** Allow on the set in force, deny on the candidate. */
    narrowed: number;
    /** The same decision, by other deciding policies. */
    reattributed: number;
    /** Decisions not replayed: see `skipped`. */
    skipped: number;
    /**
     * Replayed decisions the set in force decides otherwise than recorded: they
     * were made by another set (see `recordedUnderOtherSets`), or under a
     * plugin's other grants.
     */
    differsFromRecord: number;
    /** Replayed decisions recorded under a policy set other than the one in force. */
    recordedUnderOtherSets: number;
  };
  /** Decisions not replayed, by reason. */
  skipped: PlanSkip[];
  /** Deny to allow, the largest group first. */
  widenings: PlanGroup[];
  /** Allow to deny, the largest group first. */
  narrowings: PlanGroup[];
  /** The same decision by other policies, the largest group first. */
  reattributed: PlanGroup[];
}

/** Options of {@linkcode planPolicyChange}. */
export interface PlanOptions {
  /** The engine whose set in force (`engine.sources()`) is what the candidate would replace. Nothing in it changes. */
  engine: PolicyEngine;
  /** Every source of the candidate set: the candidate operator files and the plugins' grants. */
  candidate: readonly PolicySource[];
  /** The engine that validates and decides the candidate, when the candidate has a schema of its own. @default {engine} */
  candidateEngine?: PolicyEngine;
  /** Examples kept per group. @default {3} */
  examples?: number;
  /** The files and window the events were read from, and their unreadable lines, for the report. */
  audit?: Pick<RecordedAudit, "files" | "unreadable"> & { window?: AuditWindow };
}

const WHY: Record<PlanSkipReason, string> = {
  "folded": "summed past the plugin's audit budget: their resources varied and were not kept",
  "too-large": "the request was larger than the audit keeps (MAX_AUDIT_REQUEST_BYTES)",
  "not-decided": "refused before Cedar decided (malformed request, path outside the data root, host-call cap or " +
    "deadline): no policy changes them",
  "no-request": "recorded without its Cedar request (by a keycard before requests were recorded, or a " +
    "shadow-verification event)",
  "unreadable": "lines or requests that are not well-formed audit events",
};

/**
 * Plans a policy change: replays every recorded Cedar request on the set in
 * force and on the candidate set, and reports each decision that would flip
 * (deny to allow: a widening; allow to deny: a narrowing) or be made by
 * other policies, grouped by plugin, action and deciding policies, with
 * counts and examples. Events that cannot be replayed (folded past a
 * plugin's budget, requests too large to keep, refusals before Cedar, events
 * without a request) are counted by reason. Both sets are decided on the
 * side: nothing in the engine changes.
 *
 * @param events The recorded events (see `readAuditEvents`).
 * @param options The engine in force, the candidate sources, and how many examples.
 * @returns The report.
 * @throws {PolicyValidationError} When the candidate set is invalid, with source, line and column.
 * @throws {PolicyEngineUnavailableError} While cedar-wasm is being replaced.
 *
 * @example Would removing a forbid widen anything?
 * ```ts ignore
 * import { planPolicyChange, readAuditEvents } from "./mod.ts";
 * const { events } = await readAuditEvents(".keycard/audit.jsonl");
 * const report = planPolicyChange(events, { engine, candidate });
 * report.totals.widened; // decisions the candidate would allow that the set in force denies
 * ```
 */
export function planPolicyChange(events: Iterable<AuditEvent>, options: PlanOptions): PlanReport {
  const { engine, candidate } = options;
  const examples = options.examples ?? 3;
  if (!(Number.isSafeInteger(examples) && examples >= 0)) {
    throw new RangeError(`Cannot keep ${JSON.stringify(examples)} examples per group: it must be an integer >= 0`);
  }
  const skipped = new Map<PlanSkipReason, PlanSkip>();
  const skip = (reason: PlanSkipReason, decisions: number, count = 1) => {
    const entry = skipped.get(reason) ?? { reason, why: WHY[reason], events: 0, decisions: 0 };
    entry.events += count;
    entry.decisions += decisions;
    skipped.set(reason, entry);
  };
  const unreadable = options.audit?.unreadable.count ?? 0;
  if (unreadable > 0) skip("unreadable", unreadable, unreadable);

  const replayable: { event: AuditEvent; request: AuthorizationRequest }[] = [];
  let total = 0;
  let decisions = unreadable;
  for (const event of events) {
    total++;
    const count = event.count ?? 1;
    decisions += count;
    if (event.folded) skip("folded", count);
    else if (event.request !== undefined) {
      if (isRequest(event.request)) replayable.push({ event, request: event.request });
      else skip("unreadable", count);
    } else if (event.requestOmitted !== undefined) skip("too-large", count);
    else if (event.policySet === undefined && event.resource === "(unresolved)") skip("not-decided", count);
    else skip("no-request", count);
  }

  const requests = replayable.map((r) => r.request);
  // Both sets are trial sets (check validates the candidate even with nothing to replay); the set in force is untouched.
  const before = engine.check(engine.sources(), requests);
  const after = (options.candidateEngine ?? engine).check(candidate, requests);
  const currentSet = engine.policySet;
  const candidateSet = policySetHash(candidate);

  const groups = new Map<string, PlanGroup>();
  const totals: PlanReport["totals"] = {
    events: total + unreadable,
    decisions,
    replayed: 0,
    unchanged: 0,
    widened: 0,
    narrowed: 0,
    reattributed: 0,
    skipped: [...skipped.values()].reduce((sum, s) => sum + s.decisions, 0),
    differsFromRecord: 0,
    recordedUnderOtherSets: 0,
  };
  replayable.forEach(({ event }, index) => {
    const count = event.count ?? 1;
    const was = before[index]!;
    const now = after[index]!;
    totals.replayed += count;
    if (was.decision !== event.decision) totals.differsFromRecord += count;
    if (event.policySet !== undefined && event.policySet !== currentSet) totals.recordedUnderOtherSets += count;
    let change: PlanChange;
    if (was.decision !== now.decision) {
      change = now.decision === "allow" ? "widening" : "narrowing";
      totals[change === "widening" ? "widened" : "narrowed"] += count;
    } else if (was.policies.join("\n") !== now.policies.join("\n")) {
      change = "reattributed";
      totals.reattributed += count;
    } else {
      totals.unchanged += count;
      return;
    }
    const key = JSON.stringify([change, event.plugin, event.action, was.policies, now.policies]);
    let group = groups.get(key);
    if (group === undefined) {
      groups.set(
        key,
        group = {
          change,
          plugin: event.plugin,
          action: event.action,
          policies: change === "narrowing" ? was.deciding : now.deciding,
          before: outcome(was),
          after: outcome(now),
          decisions: 0,
          events: 0,
          examples: [],
        },
      );
    }
    group.decisions += count;
    group.events++;
    if (group.examples.length < examples) {
      group.examples.push({
        time: event.time,
        callId: event.callId,
        resource: event.resource,
        context: { ...event.request!.context },
        count,
      });
    }
  });

  const sorted = (change: PlanChange) =>
    [...groups.values()].filter((g) => g.change === change).sort((a, b) =>
      b.decisions - a.decisions || a.plugin.localeCompare(b.plugin) || a.action.localeCompare(b.action)
    );
  const audit = options.audit;
  return {
    current: { policySet: currentSet },
    candidate: { policySet: candidateSet },
    ...(audit === undefined ? {} : {
      audit: {
        files: [...audit.files],
        window: {
          ...(audit.window?.last === undefined ? {} : { last: audit.window.last }),
          ...(audit.window?.since === undefined ? {} : { since: new Date(audit.window.since).toISOString() }),
        },
      },
    }),
    totals,
    skipped: [...skipped.values()],
    widenings: sorted("widening"),
    narrowings: sorted("narrowing"),
    reattributed: sorted("reattributed"),
  };
}

function outcome(decision: Decision): PlanOutcome {
  return { decision: decision.decision, reason: decision.reason, policies: decision.deciding };
}

/** Whether a recorded request has the shape the engine takes (a file may have been edited by hand). */
function isRequest(value: unknown): value is AuthorizationRequest {
  const r = value as Partial<AuthorizationRequest> | null;
  return typeof r === "object" && r !== null && typeof r.action === "string" && isEntity(r.principal) &&
    isEntity(r.resource) && isRecord(r.context);
}

function isEntity(value: unknown): boolean {
  const e = value as { uid?: unknown; attrs?: unknown; parents?: unknown } | null;
  return typeof e === "object" && e !== null && isUid(e.uid) && isRecord(e.attrs) && Array.isArray(e.parents) &&
    e.parents.every(isUid);
}

function isUid(value: unknown): boolean {
  const u = value as { type?: unknown; id?: unknown } | null;
  return typeof u === "object" && u !== null && typeof u.type === "string" && typeof u.id === "string";
}

function isRecord(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
