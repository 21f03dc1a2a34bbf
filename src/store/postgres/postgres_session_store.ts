import type { PendingQuery, Row, Sql } from "postgres";
import { sha256Hex } from "../../registry/mod.ts";
import { checkTimeout, sendForStore } from "./_errors.ts";
import { checkSessionBounds, MAX_SESSIONS, randomSessionId, SESSION_TTL_MS } from "../session_rules.ts";

/** A signed-in console session as the store keeps it (the console's `ConsoleSession`). */
export interface StoredSession {
  /** The session id (the cookie's value): 32 random bytes, base64url. Only its SHA-256 is in the table. */
  readonly id: string;
  /** The client the API token named at sign-in. */
  readonly client: { readonly id: string; readonly roles: readonly string[] };
  /** The per-session CSRF token every mutation must carry. */
  readonly csrf: string;
  /** When the session ends, in ms since the epoch. */
  readonly expiresAt: number;
}

/** Options of {@linkcode PostgresSessionStore}. */
export interface PostgresSessionStoreOptions {
  /** How long a session lasts from sign-in, in milliseconds. @default {28800000} (8 hours) */
  ttlMs?: number;
  /** Most sessions held; past it, the client holding the most gives up its oldest. @default {256} */
  maxSessions?: number;
  /** How long one operation may wait for the database. @default {5000} */
  timeoutMs?: number;
  /** The clock, in ms since the epoch. @default {Date.now} */
  now?: () => number;
}

const ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * The operator console's sessions in PostgreSQL's `console_sessions` table,
 * shared by every replica of one database: a browser signed in on one replica
 * is signed in on all, and signing out on one ends the session everywhere.
 * The table holds a SHA-256 of each session id, never the id: reading it does
 * not let anyone ride a session. Expired sessions are never returned and are
 * deleted when met and at every sign-in. The bound is the in-memory store's:
 * past `maxSessions`, the client holding the most sessions gives up its oldest,
 * so a token signing in again and again only ends its own sessions.
 *
 * Every operation is bounded by `timeoutMs`; an unreachable database is a
 * `StoreUnavailableError` (a 503 for the console), never "signed out".
 *
 * @example Sign in on one replica, find the session on another
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { PostgresSessionStore } from "./postgres_session_store.ts";
 * const a = new PostgresSessionStore(await connect(url));
 * const b = new PostgresSessionStore(await connect(url));
 * const session = await a.create({ id: "admin", roles: ["admin"] });
 * (await b.get(session.id))?.client.id; // "admin"
 * ```
 */
export class PostgresSessionStore {
  readonly #sql: Sql;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  /**
   * Makes a store on a pool whose database has keycard's migrations.
   *
   * @param sql The pool, from the `postgres` client.
   * @param options Lifetime, bound, time bound and clock.
   * @throws {RangeError} When `ttlMs`, `maxSessions` or `timeoutMs` is not a positive integer.
   */
  constructor(sql: Sql, options: PostgresSessionStoreOptions = {}) {
    const { ttlMs = SESSION_TTL_MS, maxSessions = MAX_SESSIONS, timeoutMs = 5000, now = Date.now } = options;
    checkSessionBounds(ttlMs, maxSessions);
    this.#sql = sql;
    this.#ttlMs = ttlMs;
    this.#max = maxSessions;
    this.#timeoutMs = checkTimeout(timeoutMs);
    this.#now = now;
  }

  /**
   * Starts a session for an authenticated client, with a fresh random id and CSRF token; ends expired sessions and,
   * past the bound, the oldest of the client holding the most.
   *
   * @param client The client the token named.
   * @returns The new session.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   */
  async create(client: { id: string; roles: readonly string[] }): Promise<StoredSession> {
    const session: StoredSession = Object.freeze({
      id: randomSessionId(),
      client: Object.freeze({ id: client.id, roles: Object.freeze([...client.roles]) }),
      csrf: randomSessionId(),
      expiresAt: this.#now() + this.#ttlMs,
    });
    const now = new Date(this.#now());
    const hash = await idHash(session.id);
    const roles = this.#sql.json([...client.roles]);
    await this.#run("sign in to the console", false, () =>
      this.#sql`
        WITH swept AS (DELETE FROM console_sessions WHERE expires_at <= ${now}),
        added AS (
          INSERT INTO console_sessions (id_hash, client_id, roles, csrf, created_at, expires_at)
          VALUES (${hash}, ${client.id}, ${roles}, ${session.csrf}, ${now}, ${new Date(session.expiresAt)})
        )
        SELECT 1`);
    // Past the bound, the client holding the most (the signer counting its new session) gives up its oldest.
    // Replicas signing in at once may each end one: the bound holds within a few sessions.
    for (let round = 0; round < 16; round++) {
      const ended = await this.#run("bound the console sessions", false, () =>
        this.#sql`
          DELETE FROM console_sessions WHERE id_hash = (
            SELECT id_hash FROM console_sessions
            WHERE client_id = (
              SELECT client_id FROM console_sessions WHERE expires_at > ${now}
              GROUP BY client_id ORDER BY count(*) DESC, (client_id = ${client.id}) DESC, min(created_at) LIMIT 1
            ) AND id_hash <> ${hash}
            ORDER BY created_at LIMIT 1
          ) AND (SELECT count(*) FROM console_sessions WHERE expires_at > ${now}) > ${this.#max}
          RETURNING 1`);
      if (ended.length === 0) break;
    }
    return session;
  }

  /**
   * The live session of an id, or undefined (unknown, malformed or expired; an expired one is deleted).
   *
   * @param id The cookie's value.
   * @returns The session.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   */
  async get(id: string | undefined): Promise<StoredSession | undefined> {
    if (id === undefined || !ID.test(id)) return undefined;
    const hash = await idHash(id);
    const rows = await this.#run(
      "read a console session",
      true,
      () => this.#sql`SELECT client_id, roles, csrf, expires_at FROM console_sessions WHERE id_hash = ${hash}`,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const expiresAt = (row.expires_at as Date).getTime();
    if (expiresAt <= this.#now()) {
      await this.#run(
        "end an expired console session",
        true,
        () => this.#sql`DELETE FROM console_sessions WHERE id_hash = ${hash}`,
      );
      return undefined;
    }
    const roles = Array.isArray(row.roles) ? (row.roles as unknown[]).filter((r) => typeof r === "string") : [];
    return Object.freeze({
      id,
      client: Object.freeze({ id: String(row.client_id), roles: Object.freeze(roles as string[]) }),
      csrf: String(row.csrf),
      expiresAt,
    });
  }

  /**
   * Ends a session on every replica; nothing happens for an unknown id.
   *
   * @param id The session id.
   * @returns Whether a session ended.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   */
  async delete(id: string): Promise<boolean> {
    if (!ID.test(id)) return false;
    const hash = await idHash(id);
    const rows = await this.#run(
      "sign out of the console",
      true,
      () => this.#sql`DELETE FROM console_sessions WHERE id_hash = ${hash} RETURNING 1`,
    );
    return rows.length > 0;
  }

  /**
   * Deletes every expired session (the gateway runs it hourly with audit retention, so sessions nobody signs in or
   * looks up again do not linger).
   *
   * @returns How many sessions were deleted.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   */
  async sweep(): Promise<number> {
    const now = new Date(this.#now());
    const rows = await this.#run(
      "sweep expired console sessions",
      true,
      () => this.#sql`DELETE FROM console_sessions WHERE expires_at <= ${now} RETURNING 1`,
    );
    return rows.length;
  }

  #run<T extends readonly Row[]>(what: string, resend: boolean, query: () => PendingQuery<T>): Promise<T> {
    return sendForStore(what, query, this.#timeoutMs, resend);
  }
}

/** What the table keys a session by: the SHA-256 of its id, never the id. */
function idHash(id: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(id));
}
