/**
 * The store cannot be reached: a bad host or port, refused or timed-out
 * connection, failed authentication, a missing database. Nothing changed;
 * the HTTP edge answers writes with 503 while it lasts.
 *
 * @example
 * ```ts
 * import { StoreUnavailableError } from "./errors.ts";
 * const error = new StoreUnavailableError('Cannot connect to PostgreSQL at "postgres://k@db:5432/k": refused', {
 *   code: "ECONNREFUSED",
 * });
 * error.code; // "ECONNREFUSED"
 * ```
 */
export class StoreUnavailableError extends Error {
  /** The driver's or server's error code (`ECONNREFUSED`, `CONNECT_TIMEOUT`, SQLSTATE `3D000` ...), when known. */
  readonly code: string | undefined;

  /**
   * Builds the error.
   *
   * @param message What could not be reached and why, quoting the URL without its password.
   * @param options The code and the cause.
   */
  constructor(message: string, options: { code?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StoreUnavailableError";
    this.code = options.code;
  }
}

/**
 * The database's schema does not fit this keycard: it was migrated by a newer
 * keycard, an applied migration differs from the code's, or a migration failed
 * (and was rolled back). keycard refuses to start against it.
 *
 * @example
 * ```ts
 * import { StoreSchemaError } from "./errors.ts";
 * const error = new StoreSchemaError("Database schema version 9 is newer than this keycard knows (1)", {
 *   databaseVersion: 9,
 *   codeVersion: 1,
 * });
 * error.databaseVersion; // 9
 * ```
 */
export class StoreSchemaError extends Error {
  /** The newest migration applied to the database (0 when none). */
  readonly databaseVersion: number;
  /** The newest migration this code knows. */
  readonly codeVersion: number;

  /**
   * Builds the error.
   *
   * @param message What does not fit, quoting the versions and names.
   * @param options Both versions and the cause.
   */
  constructor(message: string, options: { databaseVersion: number; codeVersion: number; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StoreSchemaError";
    this.databaseVersion = options.databaseVersion;
    this.codeVersion = options.codeVersion;
  }
}
