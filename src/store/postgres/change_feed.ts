import postgres, { type Sql } from "postgres";
import { StoreUnavailableError } from "../errors.ts";
import { checkTimeout, describe, errorCode, sendBounded, UNREACHABLE } from "./_errors.ts";

/** The channel on which the stores announce every committed change to plugins and policies. */
export const CHANGES_CHANNEL = "keycard_changes";

/** One committed change, as a store announced it on {@linkcode CHANGES_CHANNEL}. */
export interface Change {
  /** What changed: an installed plugin or an operator policy file. */
  kind: "plugin" | "policy";
  /** The plugin's name or the policy file's name; `"*"` when one transaction changed several policy files. */
  name: string;
  /** The change's number from `keycard_change_seq`: later changes have higher numbers. */
  change: number;
  /** When the database made it, in milliseconds since the epoch (the database's clock). */
  at: number;
}

/** Options of {@linkcode ChangeFeed.listen}. */
export interface ChangeFeedOptions {
  /**
   * Applies changes on this replica. Called with the changes heard since the last call, or with an empty list,
   * which means "catch up: compare everything with the database" (after every (re)connect, and after a
   * notification that could not be read). Never called while a previous call runs.
   */
  apply: (changes: Change[]) => Promise<void>;
  /**
   * Hears what went wrong: `apply` threw (it is retried), a notification could not be read (a catch-up follows),
   * the listening connection could not be opened again (it is retried).
   * @default {undefined} (logged with console.error)
   */
  onError?: (error: unknown) => void;
  /** How long the first `LISTEN` may take, connecting included. @default {5000} */
  timeoutMs?: number;
  /** The longest wait before `apply` is retried; the wait starts at 100 ms and doubles up to this. @default {5000} */
  maxRetryDelayMs?: number;
}

const FIRST_RETRY_DELAY_MS = 100;

/**
 * A replica's ear for changes that any replica makes to plugins and
 * policies. It holds one connection of its own that `LISTEN`s on
 * {@linkcode CHANGES_CHANNEL} and opens it again whenever it is lost (with
 * the client's backoff), and hands what it hears to `apply`, one call at a
 * time: what arrives while `apply` runs is gathered into the next call.
 *
 * Notifications sent while the connection was down are lost, so after every
 * (re)connect, the first one included, `apply([])` runs once: the replica
 * then compares its versions with the database's (`heads()`, `versions()`).
 * When `apply` throws, the error goes to `onError` and the same changes are
 * applied again after a wait (100 ms, doubling up to `maxRetryDelayMs`),
 * until they succeed or the feed closes.
 *
 * The feed does not use the client's `sql.listen()`: in `postgres` 3.4.9 that
 * connection says nothing when it is lost (so `connected` could not be
 * known), and it stays open until the pool ends, even after `unlisten`. The
 * feed's connection is a one-connection pool with the same settings as `sql`;
 * {@linkcode ChangeFeed.close} ends it. Close the feed before ending `sql`.
 *
 * @example Follow changes made by other replicas
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { ChangeFeed } from "./change_feed.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const feed = await ChangeFeed.listen(sql, {
 *   apply: async (changes) => {
 *     if (changes.length === 0) await compareEverything();
 *     else for (const change of changes) await reload(change.kind, change.name);
 *   },
 *   onError: (error) => console.warn("change feed:", error),
 * });
 * // ...
 * await feed.close();
 * await sql.end();
 * ```
 */
export class ChangeFeed {
  readonly #listener: Sql;
  readonly #apply: (changes: Change[]) => Promise<void>;
  readonly #onError: (error: unknown) => void;
  readonly #maxRetryDelayMs: number;
  #started = false;
  #closed = false;
  #connected = false;
  #pending: Change[] = [];
  #catchUp = false;
  #draining: Promise<void> | undefined;
  #wait: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;
  #relistening: Promise<void> | undefined;

  private constructor(sql: Sql, options: ChangeFeedOptions) {
    this.#apply = options.apply;
    this.#onError = options.onError ?? ((error) => console.error("keycard: change feed:", error));
    this.#maxRetryDelayMs = checkTimeout(options.maxRetryDelayMs ?? 5000);
    this.#listener = postgres(
      {
        ...sql.options,
        max: 1,
        idle_timeout: null,
        max_lifetime: null,
        fetch_types: false,
        shared: { retries: 0, typeArrayMap: {} },
        onnotify: (_channel: string, payload: string) => this.#heard(payload),
        onclose: () => this.#lost(),
      } as unknown as postgres.Options<Record<string, never>>,
    );
  }

  /**
   * Starts listening on {@linkcode CHANGES_CHANNEL} over a connection of its
   * own, with the settings of `sql`; `apply([])` then runs once (a catch-up
   * for what changed before the feed listened).
   *
   * @param sql The replica's pool; the feed copies its settings, not its connections.
   * @param options `apply`, `onError` and the bounds.
   * @returns The feed, listening.
   * @throws {TypeError} When `apply` is not a function.
   * @throws {RangeError} When `timeoutMs` or `maxRetryDelayMs` is not a positive integer.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   *
   * @example Listen
   * ```ts ignore
   * const feed = await ChangeFeed.listen(sql, { apply: async (changes) => console.log(changes) });
   * ```
   */
  static async listen(sql: Sql, options: ChangeFeedOptions): Promise<ChangeFeed> {
    if (typeof options?.apply !== "function") throw new TypeError("A change feed needs an apply function");
    const timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
    const feed = new ChangeFeed(sql, options);
    try {
      await sendBounded(
        () => feed.#listener.unsafe(`LISTEN ${CHANGES_CHANNEL}`),
        timeoutMs,
        false,
        (reason, code, cause) => new StoreUnavailableError(`Cannot listen for changes: ${reason}`, { code, cause }),
      );
    } catch (error) {
      feed.#closed = true;
      await feed.#listener.end({ timeout: 0 });
      throw error;
    }
    feed.#started = true;
    feed.#listened();
    return feed;
  }

  /**
   * Whether the listening connection is open now. While it is not,
   * notifications are lost; the catch-up after it is open again makes up
   * for them.
   *
   * @returns True while listening.
   *
   * @example Report the feed in a readiness check
   * ```ts ignore
   * const ready = feed.connected;
   * ```
   */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * How many changes were heard and are not applied yet: those that arrived
   * while `apply` ran or waits to be retried (a measure of lag).
   *
   * @returns The count; a pending catch-up is not counted.
   *
   * @example Export the lag as a gauge
   * ```ts ignore
   * gauge.set(feed.pending);
   * ```
   */
  get pending(): number {
    return this.#pending.length;
  }

  /**
   * Stops listening: ends the feed's connection, drops what was not
   * applied yet, stops retrying, and waits for a running `apply` to finish.
   * Closing twice does nothing more.
   *
   * @returns Once nothing of the feed runs any more.
   *
   * @example Close at shutdown
   * ```ts ignore
   * await feed.close();
   * ```
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#connected = false;
      this.#pending = [];
      this.#catchUp = false;
      if (this.#wait !== undefined) {
        clearTimeout(this.#wait.timer);
        this.#wait.resolve();
      }
    }
    await this.#listener.end({ timeout: 0 });
    await this.#relistening;
    await this.#draining;
  }

  /**
   * Closes the feed at the end of an `await using` block.
   *
   * @returns Once closed.
   *
   * @example Close with `await using`
   * ```ts ignore
   * await using feed = await ChangeFeed.listen(sql, { apply });
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A (re)connect: everything may have changed meanwhile. */
  #listened(): void {
    this.#connected = true;
    this.#catchUp = true;
    this.#drain();
  }

  /** The connection closed: listen again (each failed attempt closes it again, so this runs until one works). */
  #lost(): void {
    this.#connected = false;
    if (!this.#started || this.#closed) return;
    this.#relistening = (async () => {
      try {
        await this.#listener.unsafe(`LISTEN ${CHANGES_CHANNEL}`);
      } catch (error) {
        if (!this.#closed) {
          this.#onError(
            new StoreUnavailableError(`Cannot listen for changes again: ${describeListenError(error)}`, {
              code: errorCode(error),
              cause: error,
            }),
          );
        }
        return;
      }
      if (!this.#closed) this.#listened();
    })();
  }

  #heard(payload: string): void {
    if (this.#closed) return;
    try {
      this.#pending.push(parseChange(payload));
    } catch (error) {
      this.#onError(error);
      this.#catchUp = true;
    }
    this.#drain();
  }

  /** Starts applying what is pending unless a run is on: that run picks it up. */
  #drain(): void {
    if (this.#draining !== undefined || this.#closed) return;
    this.#draining = this.#run().finally(() => this.#draining = undefined);
  }

  async #run(): Promise<void> {
    // Let notifications that arrive in the same tick join the first call.
    await Promise.resolve();
    let delay = FIRST_RETRY_DELAY_MS;
    while (!this.#closed && (this.#catchUp || this.#pending.length > 0)) {
      // A catch-up compares everything, so it covers the changes heard before it.
      const batch = this.#catchUp ? [] : this.#pending;
      this.#catchUp = false;
      this.#pending = [];
      try {
        await this.#apply(batch);
        delay = FIRST_RETRY_DELAY_MS;
      } catch (error) {
        if (this.#closed) return;
        this.#onError(error);
        if (batch.length === 0) this.#catchUp = true;
        else this.#pending = [...batch, ...this.#pending];
        await new Promise<void>((resolve) => {
          this.#wait = { timer: setTimeout(resolve, delay), resolve };
        });
        this.#wait = undefined;
        delay = Math.min(delay * 2, this.#maxRetryDelayMs);
      }
    }
  }
}

/**
 * Reads a notification's payload.
 * @throws {SyntaxError} When it is not JSON.
 * @throws {TypeError} When it is not a change.
 */
function parseChange(payload: string): Change {
  const shown = JSON.stringify(payload.length > 80 ? `${payload.slice(0, 80)}...` : payload);
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (error) {
    throw new SyntaxError(`Change notification ${shown} is not JSON`, { cause: error });
  }
  const { kind, name, change, at } = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  if (
    (kind !== "plugin" && kind !== "policy") || typeof name !== "string" || name.length === 0 ||
    !Number.isSafeInteger(change) || (change as number) < 1 || typeof at !== "number" || !Number.isFinite(at)
  ) {
    throw new TypeError(
      `Change notification ${shown} is not a change: expected {"kind":"plugin"|"policy","name","change","at"}`,
    );
  }
  return { kind, name, change: change as number, at };
}

function describeListenError(error: unknown): string {
  const code = errorCode(error);
  return code !== undefined && UNREACHABLE.has(code)
    ? `the database is unreachable (${code})`
    : `the database refused LISTEN (${describe(error)})`;
}
