import { dirname } from "node:path";
import type { Sql } from "postgres";
import type { AuditEvent } from "../../audit/mod.ts";
import { StoreUnavailableError } from "../errors.ts";
import { AuditSpool, parseSpoolLine } from "./_audit_spool.ts";
import { checkTimeout, describe, errorCode, sendBounded } from "./_errors.ts";

/** Options of {@linkcode PostgresAuditWriter.open}. */
export interface PostgresAuditWriterOptions {
  /** This replica's name, stored with each of its events (1 to 200 characters, no control characters). */
  replica: string;
  /**
   * The local spool: a JSON-lines file (mode 0o600, parent directories created) that holds events while the database
   * cannot take them. One writer per path: two processes must not share one.
   */
  spoolPath: string;
  /** Events inserted by one statement at most. @default {500} */
  batchSize?: number;
  /** How long an event may wait for a batch to fill before it is sent, in ms. @default {100} */
  flushMs?: number;
  /** How long one insert may wait for the database, connecting included, before its batch is spooled, in ms. @default {5000} */
  timeoutMs?: number;
  /** How often a non-empty spool is tried again, in ms. @default {1000} */
  retryMs?: number;
  /**
   * Events held in memory (queued or in a batch in flight) past which the queue is spilled to the spool while a slow
   * batch holds the database's turn; at twice it (the spool failing or slower than the writes) new events are dropped
   * and counted in `stats().dropped`. @default {10000}
   */
  maxQueued?: number;
}

/** What {@linkcode PostgresAuditWriter.stats} reports. */
export interface PostgresAuditWriterStats {
  /** Events this writer stored in the database, directly or from the spool (not counting ones already there). */
  written: number;
  /** Events in the spool now (a torn line counts until a drain skips it). */
  spooled: number;
  /** Events in memory: waiting for a batch or in one in flight. */
  queued: number;
  /** Spooled events a drain found in the database afterwards (inserted by it, or already there from an earlier try). */
  drained: number;
  /** Spool lines that were not a record (a line torn by a crash mid-append), skipped by a drain. */
  skipped: number;
  /** Events the database refused as data (e.g. a string PostgreSQL cannot store), moved to `<spoolPath>.rejected`. */
  rejected: number;
  /** Events dropped because neither the database, the spool nor memory could take them, or written after close. */
  dropped: number;
  /** The most recent failure, kept after the writer recovers; never quotes an event's values. */
  lastError?: string;
}

interface Entry {
  readonly seq: number;
  /** The record as one JSON line: `{"uid","replica","at","event"}`. */
  readonly line: string;
}

/** The year 0 to 9999, the instants PostgreSQL and ISO 8601 both write plainly. */
const MIN_AT_MS = -62_167_219_200_000;
const MAX_AT_MS = 253_402_300_799_999;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Writes the audit trail of one replica into PostgreSQL's `audit` table,
 * shared by every replica, and never loses an event because the database is
 * down: `write()` is synchronous and never throws; events are inserted in
 * batches (one parameterized statement each, `ON CONFLICT (uid) DO NOTHING`);
 * a batch the database does not take in time goes to a local spool file
 * (fsync'd JSON lines), and so do the batches after it until a drain, every
 * `retryMs`, has moved the spool into the database.
 *
 * Each event gets a unique id (`<replica>:<boot>:<seq>`), so an event sent
 * twice (an insert whose answer was lost, a spool re-sent after a crash
 * between insert and truncation) is stored once: none lost, none doubled.
 *
 * `at` is the decision's time (`lastTime ?? time` of the event, or the time of
 * `write()` when that is not a date): queries filter and order by it, and
 * retention deletes by it.
 *
 * @example Subscribe to the gateway's audit log
 * ```ts ignore
 * import { AuditLog } from "../../audit/mod.ts";
 * import { connect } from "./connect.ts";
 * import { PostgresAuditWriter } from "./postgres_audit.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: ".keycard/audit-spool.jsonl" });
 * const log = new AuditLog();
 * log.subscribe((event) => writer.write(event));
 * // ...
 * await log.close();
 * await writer.close();
 * await sql.end();
 * ```
 */
export class PostgresAuditWriter {
  readonly #sql: Sql;
  readonly #spool: AuditSpool;
  readonly #replica: string;
  readonly #boot: string;
  readonly #batchSize: number;
  readonly #flushMs: number;
  readonly #timeoutMs: number;
  readonly #retryMs: number;
  readonly #maxQueued: number;
  #seq = 0;
  #queue: Entry[] = [];
  /** First sequence number of each batch in flight (to the database or the spool), with its size. */
  readonly #inflight = new Map<number, number>();
  #inflightEvents = 0;
  #pumping = false;
  /** A spill to the spool is running. */
  #spilling = false;
  #draining: Promise<void> = Promise.resolve();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: { target: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;
  #written = 0;
  #drained = 0;
  #skipped = 0;
  #rejected = 0;
  #dropped = 0;
  #lastError: string | undefined;

  private constructor(sql: Sql, spool: AuditSpool, options: Required<PostgresAuditWriterOptions>) {
    this.#sql = sql;
    this.#spool = spool;
    this.#replica = options.replica;
    this.#batchSize = options.batchSize;
    this.#flushMs = options.flushMs;
    this.#timeoutMs = options.timeoutMs;
    this.#retryMs = options.retryMs;
    this.#maxQueued = options.maxQueued;
    const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"));
    this.#boot = `${Date.now().toString(36)}${random.join("")}`;
  }

  /**
   * Opens the writer. A spool an earlier run left (the database was down when
   * it ended) starts draining in the background; when the database is down
   * now, open does not fail: the spool waits for it. `await writer.drain()`
   * waits for that first drain.
   *
   * @param sql The pool, from the `postgres` client; the writer does not end it.
   * @param options The replica's name, the spool file, batching and time bounds.
   * @returns The writer.
   * @throws {TypeError} When `replica` or `spoolPath` is empty or not a string, or `replica` has control characters.
   * @throws {RangeError} When a count or duration is not a positive integer (`flushMs` may be 0).
   * @throws {Deno.errors.PermissionDenied} When the spool file exists and cannot be read.
   *
   * @example Open with a spool in the data directory
   * ```ts ignore
   * const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: "/var/lib/keycard/audit-spool.jsonl" });
   * ```
   */
  static async open(sql: Sql, options: PostgresAuditWriterOptions): Promise<PostgresAuditWriter> {
    const { replica, spoolPath } = options;
    if (
      typeof replica !== "string" || replica === "" || replica.length > 200 || CONTROL.test(replica)
    ) {
      throw new TypeError(
        `Cannot open the audit writer for replica ${JSON.stringify(replica)}: ` +
          "it must be 1 to 200 characters without control characters",
      );
    }
    if (typeof spoolPath !== "string" || spoolPath === "") {
      throw new TypeError(
        `Cannot open the audit writer with spool path ${JSON.stringify(spoolPath)}: it must be a path`,
      );
    }
    const batchSize = count("batchSize", options.batchSize ?? 500, 1);
    const settings: Required<PostgresAuditWriterOptions> = {
      replica,
      spoolPath,
      batchSize,
      flushMs: count("flushMs", options.flushMs ?? 100, 0),
      timeoutMs: checkTimeout(options.timeoutMs ?? 5000),
      retryMs: count("retryMs", options.retryMs ?? 1000, 1),
      maxQueued: count("maxQueued", options.maxQueued ?? 10_000, batchSize),
    };
    const writer = new PostgresAuditWriter(sql, await AuditSpool.open(spoolPath), settings);
    if (writer.#spool.count > 0) writer.drain();
    return writer;
  }

  /**
   * Queues one event for the database: synchronous, O(1) amortized, never
   * throws. A full batch is sent at once, a partial one after `flushMs`.
   *
   * @param event The event, as `AuditLog` hands it to subscribers.
   * @returns Nothing; {@linkcode PostgresAuditWriter.flush} waits for it.
   * @throws {never} A failure is counted in {@linkcode PostgresAuditWriter.stats}.
   *
   * @example
   * ```ts ignore
   * writer.write(event);
   * ```
   */
  write(event: AuditEvent): void {
    try {
      if (this.#closing) {
        this.#drop("it was written after close()");
        return;
      }
      const held = this.#queue.length + this.#inflightEvents;
      if (held >= 2 * this.#maxQueued) {
        this.#drop(`${held} events are held in memory and neither the database nor the spool takes them`);
        return;
      }
      const seq = ++this.#seq;
      this.#queue.push({ seq, line: this.#record(event, seq) });
      // A slow batch holds the pump: spill the queue, a batch or more at a time, rather than hold it all.
      if (held + 1 >= this.#maxQueued && this.#pumping && this.#queue.length >= this.#batchSize) this.#spill();
      if (this.#queue.length >= this.#batchSize) this.#kick();
      else if (!this.#pumping && this.#flushTimer === undefined) {
        this.#flushTimer = setTimeout(() => {
          this.#flushTimer = undefined;
          this.#kick();
        }, this.#flushMs);
        Deno.unrefTimer(this.#flushTimer);
      }
    } catch (error) {
      this.#drop(`it could not be queued (${error instanceof Error ? error.name : typeof error})`);
    }
  }

  /**
   * Waits until every event written before the call is in the database or
   * durably in the spool.
   *
   * @returns A promise that resolves then.
   * @throws {Error} When a batch could go neither to the database nor to the spool (the disk failing too); its events
   * stay queued and are tried again.
   *
   * @example
   * ```ts ignore
   * writer.write(event);
   * await writer.flush(); // in the database, or in the spool file
   * ```
   */
  flush(): Promise<void> {
    const target = this.#seq;
    if (this.#oldestUnsettled() > target) return Promise.resolve();
    const settled = new Promise<void>((resolve, reject) => this.#waiters.push({ target, resolve, reject }));
    this.#kick();
    return settled;
  }

  /**
   * Tries to move the spool into the database now (the writer also does so
   * every `retryMs` while it is not empty). Resolves after one attempt,
   * successful or not: `stats()` tells which.
   *
   * @returns A promise that resolves when the attempt is over.
   * @throws {never} A failure is kept in `stats().lastError`; the spool stays for the next attempt.
   *
   * @example
   * ```ts ignore
   * await writer.drain();
   * writer.stats().spooled; // 0 when the database took everything
   * ```
   */
  drain(): Promise<void> {
    this.#draining = this.#draining.then(() => this.#drainOnce());
    return this.#draining;
  }

  /**
   * Flushes, tries the spool once, and stops the timers. Events written
   * afterwards are dropped (and counted). What the database did not take
   * stays in the spool for the next run. Calling it again returns the same promise.
   *
   * @returns A promise that resolves when done.
   * @throws {never} A failure is kept in `stats().lastError`.
   *
   * @example
   * ```ts ignore
   * await writer.close();
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      try {
        await this.flush();
      } catch (error) {
        this.#lastError = (error as Error).message;
      }
      await this.drain();
      clearTimeout(this.#flushTimer);
      clearTimeout(this.#retryTimer);
      this.#flushTimer = this.#retryTimer = undefined;
    })();
    return this.#closed;
  }

  /**
   * Counters of what happened to the events written so far.
   *
   * @returns A snapshot.
   * @throws {never}
   *
   * @example
   * ```ts ignore
   * const { spooled, lastError } = writer.stats();
   * ```
   */
  stats(): PostgresAuditWriterStats {
    const stats: PostgresAuditWriterStats = {
      written: this.#written,
      spooled: this.#spool.count,
      queued: this.#queue.length + this.#inflightEvents,
      drained: this.#drained,
      skipped: this.#skipped,
      rejected: this.#rejected,
      dropped: this.#dropped,
    };
    if (this.#lastError !== undefined) stats.lastError = this.#lastError;
    return stats;
  }

  /** The event as a spool line and batch element; its text is what the database stores. */
  #record(event: AuditEvent, seq: number): string {
    const written = Date.now();
    let atMs = Date.parse(event.lastTime ?? event.time);
    if (!(atMs >= MIN_AT_MS && atMs <= MAX_AT_MS)) atMs = written;
    let json = eventJson(event);
    // PostgreSQL's jsonb holds neither NUL nor a lone surrogate: U+FFFD in their place rather than a refused event.
    if (/\\u(0000|d[89a-f])/i.test(json)) json = eventJson(event, storableText);
    const uid = `${this.#replica}:${this.#boot}:${seq}`;
    return `{"uid":${JSON.stringify(uid)},"replica":${JSON.stringify(this.#replica)},"at":"${
      new Date(atMs).toISOString()
    }","event":${json}}`;
  }

  #drop(why: string): void {
    this.#dropped++;
    this.#lastError = `An audit event was dropped: ${why}`;
  }

  /** The sequence number of the oldest event neither in the database nor in the spool (Infinity when none). */
  #oldestUnsettled(): number {
    let oldest = this.#queue[0]?.seq ?? Infinity;
    for (const first of this.#inflight.keys()) oldest = Math.min(oldest, first);
    return oldest;
  }

  #settled(): void {
    const oldest = this.#oldestUnsettled();
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.target >= oldest) return true;
      waiter.resolve();
      return false;
    });
  }

  #failWaiters(message: string): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new Error(`Cannot flush the audit trail: ${message}`));
  }

  /** Starts the pump unless it runs: it sends batches until the queue is empty. */
  #kick(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump().then((stalled) => {
      this.#pumping = false;
      // Events queued between the pump's last look and now would otherwise wait for the next write.
      if (!stalled && this.#queue.length > 0) this.#kick();
    });
  }

  /** Sends batches until the queue is empty. @returns True when it stopped because the spool failed too. */
  async #pump(): Promise<boolean> {
    while (this.#queue.length > 0) {
      // Behind the spool, one append (and fsync) takes as much as memory may hold, not a database batch.
      const toSpool = this.#spool.count > 0 || this.#spilling;
      const batch = this.#queue.splice(0, toSpool ? this.#maxQueued : this.#batchSize);
      if (!(await this.#settle(batch, toSpool))) return true;
    }
    return false;
  }

  /**
   * Moves what is queued to the spool, all of it in each append, for as long as a slow batch holds the pump, so
   * that memory stays bounded.
   */
  #spill(): void {
    if (this.#spilling) return;
    this.#spilling = true;
    (async () => {
      while (this.#pumping && this.#queue.length >= this.#batchSize) {
        if (!(await this.#settle(this.#queue.splice(0), true))) return;
      }
    })().finally(() => {
      this.#spilling = false;
    });
  }

  /**
   * Puts one batch in the database, or in the spool when the spool is not empty (order) or the database does not
   * take it. @returns False when the spool failed too: the batch is back in the queue, a retry is scheduled.
   */
  async #settle(batch: Entry[], toSpool = false): Promise<boolean> {
    const first = batch[0];
    if (first === undefined) return true;
    this.#inflight.set(first.seq, batch.length);
    this.#inflightEvents += batch.length;
    const lines = batch.map((entry) => entry.line);
    try {
      if (!toSpool && this.#spool.count === 0 && !this.#spilling) {
        try {
          this.#written += await this.#insertAll(lines);
          return true;
        } catch (error) {
          this.#lastError = `Cannot insert ${lines.length} audit events: ${reason(error)}; they go to the spool`;
        }
      }
      try {
        await this.#spool.append(lines);
      } catch (error) {
        const message = `Cannot append ${lines.length} audit events to the spool "${this.#spool.path}": ${
          error instanceof Error ? error.message : String(error)
        }`;
        this.#lastError = message;
        this.#queue = [...batch, ...this.#queue].sort((a, b) => a.seq - b.seq);
        this.#failWaiters(message);
        this.#scheduleRetry();
        return false;
      }
      this.#scheduleRetry();
      return true;
    } finally {
      this.#inflight.delete(first.seq);
      this.#inflightEvents -= batch.length;
      this.#settled();
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#closing) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#queue.length > 0) this.#kick();
      if (this.#spool.count > 0) this.drain();
    }, this.#retryMs);
    Deno.unrefTimer(this.#retryTimer);
  }

  async #drainOnce(): Promise<void> {
    try {
      while (await this.#spool.take()) {
        let batch: string[] = [];
        let skipped = 0;
        let drained = 0;
        const send = async () => {
          this.#written += await this.#insertAll(batch);
          drained += batch.length;
          batch = [];
        };
        for await (const line of this.#spool.lines()) {
          const record = parseSpoolLine(line);
          if (record === undefined) {
            skipped++;
            continue;
          }
          batch.push(JSON.stringify(record));
          if (batch.length >= this.#batchSize) await send();
        }
        if (batch.length > 0) await send();
        await this.#spool.finish();
        // Counted once the file is gone: a failed attempt reads the same lines again.
        this.#drained += drained;
        this.#skipped += skipped;
        if (skipped > 0) {
          this.#lastError = `Skipped ${skipped} unreadable lines of the audit spool "${this.#spool.path}"`;
        }
      }
    } catch (error) {
      this.#lastError = `Cannot drain the audit spool "${this.#spool.path}": ${reason(error)}`;
    } finally {
      if (this.#spool.count > 0) this.#scheduleRetry();
    }
  }

  /**
   * Inserts records, halving a batch the database refuses as data until the refused records are alone; those go to
   * `<spoolPath>.rejected` so that one bad event cannot hold up the trail. @returns Rows inserted.
   * @throws {StoreUnavailableError} When the database is unreachable or silent. @throws {Error} On other failures.
   */
  async #insertAll(lines: readonly string[]): Promise<number> {
    try {
      return await this.#insert(lines);
    } catch (error) {
      if (!isDataError(error)) throw error;
      if (lines.length > 1) {
        const half = lines.length >>> 1;
        return await this.#insertAll(lines.slice(0, half)) + await this.#insertAll(lines.slice(half));
      }
      await Deno.mkdir(dirname(this.#spool.path), { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(`${this.#spool.path}.rejected`, lines.join("\n") + "\n", {
        append: true,
        create: true,
        mode: 0o600,
      });
      this.#rejected += lines.length;
      this.#lastError = `The database refused an audit event (${
        describe(error)
      }): kept in "${this.#spool.path}.rejected"`;
      return 0;
    }
  }

  async #insert(lines: readonly string[]): Promise<number> {
    const json = `[${lines.join(",")}]`;
    // `::text::jsonb`: a parameter typed jsonb would be JSON-encoded again by the client.
    const result = await sendBounded(
      () =>
        this.#sql`INSERT INTO audit (uid, replica, at, event)
          SELECT r->>'uid', r->>'replica', (r->>'at')::timestamptz, r->'event'
          FROM jsonb_array_elements(${json}::text::jsonb) AS r
          ON CONFLICT (uid) DO NOTHING`,
      this.#timeoutMs,
      true,
      (why, code, cause) => new StoreUnavailableError(`Cannot write audit events: ${why}`, { code, cause }),
    );
    // The client's RowList carries the command's row count; sendBounded's type keeps only the rows.
    return (result as unknown as { count: number }).count;
  }
}

function count(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Cannot open the audit writer with ${name} ${value}: it must be an integer >= ${min}`);
  }
  return value;
}

function storableText(_key: string, value: unknown): unknown {
  return typeof value === "string" ? value.toWellFormed().replaceAll("\0", "\uFFFD") : value;
}

/** The event as JSON; an event the type forbids (a bigint, a cycle) keeps its plain fields rather than be lost. */
function eventJson(event: AuditEvent, replacer?: (key: string, value: unknown) => unknown): string {
  try {
    const json = JSON.stringify(event, replacer as (key: string, value: unknown) => unknown);
    if (typeof json === "string" && json.startsWith("{")) return json;
  } catch {
    // Below.
  }
  const kept: Record<string, string> = {};
  for (const field of ["time", "callId", "plugin", "version", "action", "resource", "decision", "reason"] as const) {
    try {
      if (event?.[field] !== undefined && event[field] !== null) kept[field] = String(event[field]);
    } catch {
      kept[field] = "[unprintable]";
    }
  }
  kept.unserializable = "the event could not be written as JSON";
  return JSON.stringify(kept, replacer as (key: string, value: unknown) => unknown);
}

/** A failure the data caused (SQLSTATE class 22, data exception, or 54, a limit exceeded): retrying cannot help. */
function isDataError(error: unknown): boolean {
  const code = errorCode(error);
  return error instanceof Error && error.name === "PostgresError" && code !== undefined && /^(22|54)/.test(code);
}

function reason(error: unknown): string {
  if (error instanceof StoreUnavailableError) return error.message.replace(/^Cannot write audit events: /, "");
  return describe(error);
}
