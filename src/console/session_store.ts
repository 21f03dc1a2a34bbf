import { timingSafeEqual } from "node:crypto";
import { checkSessionBounds, MAX_SESSIONS, randomSessionId, SESSION_TTL_MS } from "../store/mod.ts";

/** A signed-in console session: who it is, its CSRF token and when it ends. */
export interface ConsoleSession {
  /** The session id (the cookie's value): 32 random bytes, base64url. */
  readonly id: string;
  /** The client the API token named at sign-in. */
  readonly client: { readonly id: string; readonly roles: readonly string[] };
  /** The per-session CSRF token every mutation must carry. */
  readonly csrf: string;
  /** When the session ends, in ms since the epoch. */
  readonly expiresAt: number;
}

/**
 * Where console sessions live: {@linkcode SessionStore} in memory (one process), or a store shared by replicas
 * (PostgreSQL's `console_sessions`). Methods may answer at once or later; the console awaits them.
 */
export interface ConsoleSessions {
  /** Starts a session for an authenticated client, with a fresh random id and CSRF token. */
  create(client: { id: string; roles: readonly string[] }): ConsoleSession | Promise<ConsoleSession>;
  /** The live session of an id, or undefined (unknown, malformed or expired). */
  get(id: string | undefined): ConsoleSession | undefined | Promise<ConsoleSession | undefined>;
  /** Ends a session; false for an unknown id. */
  delete(id: string): boolean | Promise<boolean>;
}

/**
 * Compares a presented CSRF token with the session's in constant time.
 *
 * @param session The session.
 * @param presented The token from the form field or header.
 * @returns Whether they are equal.
 * @example
 * ```ts
 * import { checkCsrf, SessionStore } from "./session_store.ts";
 * checkCsrf(new SessionStore().create({ id: "a", roles: [] }), "wrong"); // false
 * ```
 */
export function checkCsrf(session: ConsoleSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = new TextEncoder().encode(session.csrf);
  const b = new TextEncoder().encode(presented);
  // Lengths are not secret (every token has 43 characters); only equal lengths can be compared in constant time.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Options of {@linkcode SessionStore}. */
export interface SessionStoreOptions {
  /** How long a session lasts from sign-in, in milliseconds. @default {28800000} (8 hours) */
  ttlMs?: number;
  /**
   * Most sessions held; signing in past it ends the oldest session of the client holding the most, so a client
   * signing in again and again ends its own sessions, never those of a client holding fewer. @default {256}
   */
  maxSessions?: number;
  /** The clock, in ms since the epoch. @default {Date.now} */
  now?: () => number;
}

/**
 * The console's server-side sessions, in memory and bounded: a session is only
 * created after a token was authenticated, so unauthenticated requests never
 * grow it, and past `maxSessions` the client holding the most sessions gives up
 * its oldest. CSRF tokens are compared by {@linkcode checkCsrf}, whatever the store.
 *
 * @example Sign in, look up, sign out
 * ```ts
 * import { checkCsrf, SessionStore } from "./session_store.ts";
 * import assert from "node:assert/strict";
 * const store = new SessionStore({ maxSessions: 2 });
 * const session = store.create({ id: "admin", roles: ["admin"] });
 * assert.equal(store.get(session.id)?.client.id, "admin");
 * assert.ok(checkCsrf(session, session.csrf));
 * store.delete(session.id);
 * assert.equal(store.get(session.id), undefined);
 * ```
 */
export class SessionStore implements ConsoleSessions {
  #sessions = new Map<string, ConsoleSession>();
  #ttlMs: number;
  #max: number;
  #now: () => number;

  /**
   * Creates an empty store.
   * @param options Lifetime, bound and clock.
   * @throws {RangeError} When `ttlMs` or `maxSessions` is not a positive integer.
   */
  constructor(options: SessionStoreOptions = {}) {
    const { ttlMs = SESSION_TTL_MS, maxSessions = MAX_SESSIONS, now = Date.now } = options;
    checkSessionBounds(ttlMs, maxSessions);
    this.#ttlMs = ttlMs;
    this.#max = maxSessions;
    this.#now = now;
  }

  /** Sessions held now (expired ones included until they are next swept). */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Starts a session for an authenticated client, with a fresh random id and CSRF token.
   *
   * @param client The client the token named.
   * @returns The new session.
   * @throws {never}
   * @example
   * ```ts
   * import { SessionStore } from "./session_store.ts";
   * const session = new SessionStore().create({ id: "app", roles: ["caller"] });
   * session.id.length; // 43
   * ```
   */
  create(client: { id: string; roles: readonly string[] }): ConsoleSession {
    this.#sweep();
    if (this.#sessions.size >= this.#max) {
      // Insertion order is expiry order (one ttl for all): a client's first is its oldest.
      const byClient = new Map<string, string[]>();
      for (const [id, held] of this.#sessions) {
        const ids = byClient.get(held.client.id) ?? [];
        ids.push(id);
        byClient.set(held.client.id, ids);
      }
      // The signer counts the session it is about to get: at a tie, its own oldest goes.
      byClient.get(client.id)?.push("");
      while (this.#sessions.size >= this.#max) {
        let most: string[] = [];
        for (const ids of byClient.values()) if (ids.length > most.length) most = ids;
        const oldest = most.shift();
        if (oldest === undefined) break;
        this.#sessions.delete(oldest);
      }
    }
    const session: ConsoleSession = Object.freeze({
      id: randomSessionId(),
      client: Object.freeze({ id: client.id, roles: Object.freeze([...client.roles]) }),
      csrf: randomSessionId(),
      expiresAt: this.#now() + this.#ttlMs,
    });
    this.#sessions.set(session.id, session);
    return session;
  }

  /**
   * The live session of an id, or undefined (unknown, malformed or expired; an expired one is dropped).
   *
   * @param id The cookie's value.
   * @returns The session.
   * @throws {never}
   * @example
   * ```ts
   * import { SessionStore } from "./session_store.ts";
   * new SessionStore().get("no-such-session"); // undefined
   * ```
   */
  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /**
   * Ends a session; nothing happens for an unknown id.
   *
   * @param id The session id.
   * @returns Whether a session ended.
   * @throws {never}
   * @example
   * ```ts
   * import { SessionStore } from "./session_store.ts";
   * new SessionStore().delete("x"); // false
   * ```
   */
  delete(id: string): boolean {
    return this.#sessions.delete(id);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, session] of this.#sessions) {
      if (session.expiresAt > now) break;
      this.#sessions.delete(id);
    }
  }
}
