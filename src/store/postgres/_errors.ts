// How the PostgreSQL stores send one statement: bounded in time, re-sent on connections found dead, failures told
// apart (unreachable or not) and described without quoting values. Shared by every store in this folder.
import type { PendingQuery, Row } from "postgres";
import { StoreUnavailableError } from "../errors.ts";

/**
 * Error codes of the `postgres` client and SQLSTATEs that mean the database
 * cannot be reached or is going away, as opposed to a statement that failed.
 */
export const UNREACHABLE: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up or shutting down)
]);

/** Of those, the ones that mean the connection died under the statement (the server is likely up again). */
export const STALE: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "CONNECTION_CLOSED", "57P01", "57P02"]);

/** Re-sends of a statement on stale connections: the pool's default size (connect()'s `max`). */
export const MAX_RESENDS = 10;

/** The error's `code` when it is a string. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The reason shown for a failed statement: its SQLSTATE or the error's name, never the message (it may quote values). */
export function describe(error: unknown): string {
  const code = errorCode(error);
  if (error instanceof Error && error.name === "PostgresError" && code !== undefined) return `SQLSTATE ${code}`;
  if (code !== undefined) return code;
  return error instanceof Error ? error.name : "unknown error";
}

/**
 * Sends one statement and waits at most `timeoutMs` for its answer, connecting included.
 *
 * `resend`: whether the statement may be sent again when the connection it went out on turns out dead. After a
 * restart every pooled connection is dead until the client hears so, and the next statements sent on them fail at
 * once: a read or an idempotent write can simply be sent again, up to once per pooled connection; a statement whose
 * answer says what it changed (a delete) cannot, as the first attempt may have committed unseen.
 *
 * `unavailable` makes the error thrown when the database is unreachable or silent, from the reason
 * ("the database is unreachable (ECONNREFUSED)", "the database did not answer within 5000 ms"). Other failures
 * (a statement the server refused) are thrown as they are, for the caller to describe.
 */
export async function sendBounded<T extends readonly Row[]>(
  query: () => PendingQuery<T>,
  timeoutMs: number,
  resend: boolean,
  unavailable: (reason: string, code: string | undefined, cause?: unknown) => Error,
): Promise<T> {
  let pending: PendingQuery<T> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // A query not yet handed to a connection is dropped, so it cannot run once the database is back. One sent
      // is left to finish: the client cancels it over a new connection whose failure nobody could catch.
      if ((pending as { state?: unknown } | undefined)?.state === undefined) pending?.cancel();
      reject(unavailable(`the database did not answer within ${timeoutMs} ms`, undefined));
    }, timeoutMs);
  });
  try {
    for (let attempt = 1;; attempt++) {
      pending = query();
      try {
        return await Promise.race([pending, timedOut]);
      } catch (error) {
        const code = errorCode(error);
        if (code === undefined || !UNREACHABLE.has(code)) throw error;
        if (resend && STALE.has(code) && attempt <= MAX_RESENDS) continue;
        throw unavailable(`the database is unreachable (${code})`, code, error);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * {@linkcode sendBounded} for the stores whose callers catch {@linkcode StoreUnavailableError}: `what` is the
 * operation as messages name it (`install plugin "x@1.0.0"`). An unreachable or silent database is a
 * StoreUnavailableError ("Cannot install plugin "x@1.0.0": the database is unreachable (ECONNREFUSED)"); a statement
 * the database refused is an Error naming its SQLSTATE, never the server's message.
 */
export async function sendForStore<T extends readonly Row[]>(
  what: string,
  query: () => PendingQuery<T>,
  timeoutMs: number,
  resend: boolean,
): Promise<T> {
  try {
    return await sendBounded(
      query,
      timeoutMs,
      resend,
      (reason, code, cause) => new StoreUnavailableError(`Cannot ${what}: ${reason}`, { code, cause }),
    );
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    throw new Error(`Cannot ${what}: the database refused the statement (${describe(error)})`, { cause: error });
  }
}

/** Checks a `timeoutMs` option. @throws {RangeError} When it is not a positive integer. */
export function checkTimeout(timeoutMs: number): number {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new RangeError(`Timeout ${timeoutMs} is invalid: timeoutMs must be a positive integer of milliseconds`);
  }
  return timeoutMs;
}
