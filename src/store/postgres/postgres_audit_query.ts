import type { PendingQuery, Row, Sql } from "postgres";
import type { AuditEvent, AuditQuery } from "../../audit/mod.ts";
import type { AuditWindow } from "../../lifecycle/mod.ts";
import { StoreUnavailableError } from "../errors.ts";
import { checkTimeout, describe, sendBounded } from "./_errors.ts";

/** Options of the audit reads on PostgreSQL. */
export interface AuditReadOptions {
  /** How long the read may wait for the database, connecting included, in ms. @default {5000} */
  timeoutMs?: number;
}

/** Options of {@linkcode pruneAudit}. */
export interface PruneAuditOptions {
  /** How long each delete statement may wait for the database, in ms. @default {5000} */
  timeoutMs?: number;
  /** Rows one delete statement removes at most, so that a first prune of a large table does not hold one long lock. @default {10000} */
  chunk?: number;
}

/** An event of the shared trail with the replica that recorded it. */
export type ReplicaAuditEvent = AuditEvent & { replica: string };

/**
 * Finds events of every replica in the shared `audit` table, with the
 * filters and order of `AuditLog.query`: newest first (by the decision's time,
 * `lastTime ?? time`, then insertion), at most `limit` (default 100), `since`
 * compared with `lastTime ?? time`.
 *
 * @param sql The pool.
 * @param filters Plugin, action, decision, earliest time, and how many at most (`Infinity` for all).
 * @param options The time bound.
 * @returns The matching events, each with its `replica`.
 * @throws {RangeError} When `since` is not a valid date, `limit` is not a non-negative integer, or `timeoutMs` is invalid.
 * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
 * @throws {Error} When the statement fails otherwise (its SQLSTATE is named).
 *
 * @example The last ten denials of a plugin, across replicas
 * ```ts ignore
 * import { queryAudit } from "./postgres_audit_query.ts";
 * const events = await queryAudit(sql, { plugin: "enrich", decision: "deny", limit: 10 });
 * events[0]?.replica; // e.g. "r-1"
 * ```
 */
export async function queryAudit(
  sql: Sql,
  filters: AuditQuery = {},
  options: AuditReadOptions = {},
): Promise<ReplicaAuditEvent[]> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
  const { plugin, action, decision, since, limit = 100 } = filters;
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit >= 0))) {
    throw new RangeError(`Cannot query audit events with limit ${limit}: it must be a non-negative integer`);
  }
  const sinceDate = sinceOf(since, (shown) => `Cannot query audit events since ${shown}: it is not a valid date`);
  if (limit === 0) return [];
  const rows = await read(
    "query the audit trail",
    timeoutMs,
    () =>
      sql`SELECT replica, event FROM audit WHERE true
        ${plugin === undefined ? sql`` : sql`AND event->>'plugin' = ${plugin}`}
        ${action === undefined ? sql`` : sql`AND event->>'action' = ${action}`}
        ${decision === undefined ? sql`` : sql`AND event->>'decision' = ${decision}`}
        ${sinceDate === undefined ? sql`` : sql`AND at >= ${sinceDate}`}
        ORDER BY at DESC, id DESC
        ${limit === Infinity ? sql`` : sql`LIMIT ${limit}`}`,
  );
  return rows.map((row) => ({ ...(row.event as AuditEvent), replica: row.replica as string }));
}

/**
 * Reads a window of the shared trail, oldest first, as `readAuditEvents`
 * reads the files: the last `last` events (by decision time, then insertion)
 * at or after `since`. For `policy plan` across replicas.
 *
 * @param sql The pool.
 * @param window The last N events, the events since a time, or both.
 * @param options The time bound.
 * @returns The events, oldest first.
 * @throws {RangeError} When `last` is not a positive integer, `since` is not a date, or `timeoutMs` is invalid.
 * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
 * @throws {Error} When the statement fails otherwise (its SQLSTATE is named).
 *
 * @example The last 1,000 decisions of every replica
 * ```ts ignore
 * import { readAuditWindow } from "./postgres_audit_query.ts";
 * const events = await readAuditWindow(sql, { last: 1000 });
 * ```
 */
export async function readAuditWindow(
  sql: Sql,
  window: AuditWindow = {},
  options: AuditReadOptions = {},
): Promise<AuditEvent[]> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
  const { last } = window;
  if (last !== undefined && !(Number.isSafeInteger(last) && last >= 1)) {
    throw new RangeError(`Cannot read the last ${JSON.stringify(last)} audit events: it must be a positive integer`);
  }
  const since = sinceOf(window.since, (shown) => `Cannot read audit events since ${shown}: not an ISO 8601 time`);
  const where = since === undefined ? sql`` : sql`WHERE at >= ${since}`;
  const rows = await read(
    "read the audit trail",
    timeoutMs,
    () =>
      last === undefined
        ? sql`SELECT event FROM audit ${where} ORDER BY at, id`
        : sql`SELECT event FROM audit ${where} ORDER BY at DESC, id DESC LIMIT ${last}`,
  );
  const events = rows.map((row) => row.event as AuditEvent);
  return last === undefined ? events : events.reverse();
}

/**
 * Deletes the events of every replica whose decision time (`at`) is older
 * than `retentionDays`, a chunk at a time.
 *
 * @param sql The pool.
 * @param retentionDays How many days of events to keep (a fraction is allowed).
 * @param options The time bound of each statement and the chunk size.
 * @returns How many events were deleted.
 * @throws {RangeError} When `retentionDays` is not a positive number, or an option is invalid.
 * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`; the
 * chunks deleted before stay deleted.
 * @throws {Error} When a statement fails otherwise (its SQLSTATE is named).
 *
 * @example Keep 30 days
 * ```ts ignore
 * import { pruneAudit } from "./postgres_audit_query.ts";
 * const deleted = await pruneAudit(sql, 30);
 * ```
 */
export async function pruneAudit(sql: Sql, retentionDays: number, options: PruneAuditOptions = {}): Promise<number> {
  if (typeof retentionDays !== "number" || !Number.isFinite(retentionDays) || retentionDays <= 0) {
    throw new RangeError(`Cannot prune the audit trail to ${retentionDays} days: it must be a positive number`);
  }
  const timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
  const chunk = options.chunk ?? 10_000;
  if (!Number.isSafeInteger(chunk) || chunk < 1) {
    throw new RangeError(`Cannot prune the audit trail in chunks of ${chunk}: it must be a positive integer`);
  }
  const cutoff = new Date(Date.now() - retentionDays * 86_400_000);
  let deleted = 0;
  for (;;) {
    // Not re-sent: a delete that committed unseen would be counted as nothing.
    const result = await send(
      "prune the audit trail",
      timeoutMs,
      false,
      () => sql`DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ${cutoff} LIMIT ${chunk})`,
    );
    deleted += result.count;
    if (result.count < chunk) return deleted;
  }
}

function sinceOf(since: string | Date | undefined, message: (shown: string) => string): Date | undefined {
  if (since === undefined) return undefined;
  const ms = since instanceof Date ? since.getTime() : Date.parse(since);
  if (Number.isNaN(ms)) throw new RangeError(message(JSON.stringify(String(since))));
  return new Date(ms);
}

function read(what: string, timeoutMs: number, query: () => PendingQuery<Row[]>): Promise<Row[]> {
  return send(what, timeoutMs, true, query);
}

async function send(
  what: string,
  timeoutMs: number,
  resend: boolean,
  query: () => PendingQuery<Row[]>,
): Promise<Row[] & { count: number }> {
  try {
    // The client's RowList carries the command's row count; sendBounded's type keeps only the rows.
    return await sendBounded(
      query,
      timeoutMs,
      resend,
      (why, code, cause) => new StoreUnavailableError(`Cannot ${what}: ${why}`, { code, cause }),
    ) as Row[] & { count: number };
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    throw new Error(`Cannot ${what}: ${describe(error)}`, { cause: error });
  }
}
