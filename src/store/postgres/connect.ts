import postgres, { type Notice, type Sql } from "postgres";
import { StoreUnavailableError } from "../errors.ts";

/**
 * The environment variables the `postgres` client reads when it opens a pool (`PGHOST`, `PGPASSWORD` ... for what
 * the URL leaves out; `USER` and its kin for a URL without a user), for the server's `--allow-env` list. Without
 * permission for one, the client would fail under `--no-prompt`.
 */
export const POSTGRES_ENV_VARS: readonly string[] = Object.freeze([
  "PGHOST",
  "PGPORT",
  "PGUSER",
  "PGUSERNAME",
  "PGPASSWORD",
  "PGDATABASE",
  "PGAPPNAME",
  "PGTARGETSESSIONATTRS",
  "PGMAX",
  "PGSSL",
  "PGSSLNEGOTIATION",
  "PGIDLE_TIMEOUT",
  "PGCONNECT_TIMEOUT",
  "PGMAX_LIFETIME",
  "PGMAX_PIPELINE",
  "PGBACKOFF",
  "PGKEEP_ALIVE",
  "PGPREPARE",
  "PGDEBUG",
  "PGFETCH_TYPES",
  "PGPUBLICATIONS",
  "PGTARGET_SESSION_ATTRS",
  "USERNAME",
  "USER",
  "LOGNAME",
]);

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** Connections the pool opens at most. @default {10} */
  max?: number;
  /** Seconds to open a connection (TCP, TLS, authentication) before failing. @default {10} */
  connectTimeoutSeconds?: number;
  /** Seconds an unused connection stays open. @default {30} */
  idleTimeoutSeconds?: number;
  /** Milliseconds a statement may run before the server cancels it; 0 for no limit. @default {30000} */
  statementTimeoutMs?: number;
  /** The `application_name` the server shows for these connections (`pg_stat_activity`). @default {"keycard"} */
  applicationName?: string;
  /** Receives the server's notices, which otherwise are dropped (never printed). @default {undefined} */
  onNotice?: (notice: Notice) => void;
}

/**
 * Opens a bounded pool on the PostgreSQL database at `url` and checks that
 * it answers, so that a wrong URL fails at start, not at the first request.
 *
 * @param url `postgres://user[:password]@host[:port]/database[?sslmode=...]`.
 * @param options Pool size and timeouts.
 * @returns The pool (the `postgres` client); the caller ends it with `sql.end()`.
 * @throws {TypeError} When `url` is not a `postgres:` or `postgresql:` URL.
 * @throws {StoreUnavailableError} When the server cannot be reached or refuses the connection within the timeout.
 *
 * @example Connect, use, end
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const [{ now }] = await sql`SELECT now()`;
 * await sql.end();
 * ```
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Sql> {
  const shown = redactUrl(url);
  let sql: Sql;
  try {
    sql = postgres(url, {
      max: options.max ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 10,
      idle_timeout: options.idleTimeoutSeconds ?? 30,
      onnotice: options.onNotice ?? (() => {}),
      connection: {
        application_name: options.applicationName ?? "keycard",
        statement_timeout: options.statementTimeoutMs ?? 30_000,
      },
    });
  } catch (error) {
    throw new TypeError(`Invalid store URL ${shown}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await sql`SELECT 1`;
  } catch (error) {
    // A refused or timed-out first connection is not retried by the client: end the pool so nothing lingers.
    await sql.end({ timeout: 0 });
    throw new StoreUnavailableError(`Cannot connect to PostgreSQL at ${shown}: ${describe(error)}`, {
      code: (error as { code?: string }).code,
      cause: error,
    });
  }
  return sql;
}

/**
 * The URL as it may be shown in messages and logs: quoted, password hidden.
 * @throws {TypeError} When it is not a `postgres:` or `postgresql:` URL.
 */
function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `Invalid store URL "${url.replace(/:[^:@/]*@/, ":***@")}": expected postgres://user@host:port/database`,
    );
  }
  if (parsed.password !== "") parsed.password = "***";
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new TypeError(`Invalid store URL "${parsed.href}": the scheme must be postgres: or postgresql:`);
  }
  return `"${parsed.href}"`;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: string }).code;
  if (code === "CONNECT_TIMEOUT") return `no answer within the connect timeout (${error.message})`;
  return code !== undefined && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
