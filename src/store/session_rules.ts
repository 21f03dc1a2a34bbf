// What every store of operator-console sessions shares (in memory, PostgreSQL): the bounds of a session's life and
// of how many are held, and how ids and CSRF tokens are made.

/** How long a console session lasts from sign-in: 8 hours. */
export const SESSION_TTL_MS = 8 * 3_600_000;
/** Most console sessions held. */
export const MAX_SESSIONS = 256;

/**
 * Checks a session store's lifetime and bound.
 *
 * @param ttlMs How long a session lasts, in milliseconds.
 * @param maxSessions Most sessions held.
 * @throws {RangeError} When either is not a positive integer.
 */
export function checkSessionBounds(ttlMs: number, maxSessions: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`Cannot keep console sessions for ${ttlMs} ms: "ttlMs" must be a positive integer`);
  }
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new RangeError(`Cannot hold ${maxSessions} console sessions: "maxSessions" must be a positive integer`);
  }
}

/** A fresh session id or CSRF token: 32 random bytes, base64url (43 characters). */
export function randomSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
