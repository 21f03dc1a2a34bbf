import type { AuditEvent } from "./audit_event.ts";
import { Aggregator } from "./_aggregator.ts";
import { FairRing } from "./_fair_ring.ts";
import { FileSink } from "./_file_sink.ts";

/** Where and how {@linkcode AuditLog} appends events as JSON lines. */
export interface AuditFileOptions {
  /** The file appended to (mode 0o600); its parent directories are created. */
  path: string;
  /** Size past which the file is rotated to `path.1`; a single longer line gets a file of its own. @default {10485760} */
  maxBytes?: number;
  /** Rotated files kept (`path.1` newest ... `path.{maxFiles}` oldest); older ones are deleted. @default {5} */
  maxFiles?: number;
}

/**
 * How {@linkcode AuditLog} bounds what one plugin can put into the trail
 * while still counting every decision (see {@linkcode AuditEvent.count}).
 */
export interface AuditAggregateOptions {
  /** How long a window of identical decisions lasts, from the first, in ms. @default {1000} */
  windowMs?: number;
  /** Identical decisions in a window that are events of their own; the rest become one summed event. @default {4} */
  repeats?: number;
  /** Events a plugin may emit on its own at once (its budget's bucket). @default {2000} */
  burst?: number;
  /** Events per second a plugin's budget refills by; past it, its decisions are folded. @default {200} */
  perSecond?: number;
}

/** Options of {@linkcode AuditLog}. */
export interface AuditLogOptions {
  /**
   * Events kept in memory for {@linkcode AuditLog.query}. When full, the
   * oldest event of the plugin holding the most goes, so that no plugin can
   * push out another's events. @default {10000}
   */
  ringSize?: number;
  /** Also append every event to a JSON-lines file. @default {undefined} (memory only) */
  file?: AuditFileOptions;
  /** Sum repeats and fold a plugin's decisions past its budget; `false` makes every decision an event. @default {{}} */
  aggregate?: AuditAggregateOptions | false;
  /**
   * Masks secrets in each event before anything else sees it: counters, the ring, the file, subscribers and sums
   * all get its result (e.g. `Redactor.prototype.maskValue` of src/redact/). When it throws, only the event's
   * fields without free text are kept. @default {undefined} (events kept as given)
   */
  redact?: (event: AuditEvent) => AuditEvent;
}

/** Filters of {@linkcode AuditLog.query}; all given filters must match. */
export interface AuditQuery {
  /** Only events of this plugin. */
  plugin?: string;
  /** Only events of this action, e.g. `"fs.read"`. */
  action?: string;
  /** Only allowed or only denied events. */
  decision?: "allow" | "deny";
  /** Only events whose `time` (for a sum, `lastTime`) is at or after this instant. */
  since?: string | Date;
  /** Most events returned. @default {100} */
  limit?: number;
}

/** Events counted by plugin, action and decision, since the log was created. */
export interface AuditCounter {
  /** The plugin's name. */
  plugin: string;
  /** The action, e.g. `"fs.read"`. */
  action: string;
  /** The decision. */
  decision: "allow" | "deny";
  /** Events recorded with this plugin, action and decision. */
  count: number;
}

/** What {@linkcode AuditLog.stats} reports. */
export interface AuditStats {
  /** Decisions passed to `record()` (an event with `count` n is n decisions). */
  recorded: number;
  /** Events emitted (to the ring, the file and subscribers); `recorded == events + aggregated + pending`. */
  events: number;
  /** Decisions emitted inside another's event (the sum of `count - 1` over events). */
  aggregated: number;
  /** Decisions folded past their plugin's budget (`folded` events), a part of `aggregated` and `pending`. */
  folded: number;
  /** Decisions in sums whose window is still open (emitted when it ends, or on flush). */
  pending: number;
  /** Events pushed out of the in-memory ring (still in the file, if any). */
  evicted: number;
  /** Events fully written to the file (0 without a file sink). */
  written: number;
  /** Events waiting for the file writer, a failed batch included: the backlog. */
  queued: number;
  /** File rotations done. */
  rotations: number;
  /** Listener calls that threw or rejected (they never reach `record()`'s caller). */
  listenerErrors: number;
  /** The most recent file write error, kept after the writer recovers. */
  lastError?: string;
}

/** Receives each event as it is recorded; see {@linkcode AuditLog.subscribe}. */
export type AuditListener = (event: AuditEvent) => void;

/**
 * The audit trail of every authorization decision: an in-memory ring for
 * queries, counters for metrics, live subscribers, and an optional
 * append-only JSON-lines file with size-based rotation.
 *
 * `record()` is synchronous and never throws; the file is written by one
 * async writer that batches whatever is queued. No event given to `record()`
 * before `close()` is dropped: a failed write keeps its events queued, and
 * `flush()` (or `close()`) retries. Events recorded after `close()` reach the
 * ring, counters and subscribers but not the file.
 *
 * @example Record and query in memory
 * ```ts
 * import { AuditLog } from "./audit_log.ts";
 * const log = new AuditLog({ ringSize: 1000 });
 * log.record({
 *   time: new Date().toISOString(),
 *   callId: "c-1",
 *   plugin: "enrich",
 *   version: "1.0.0",
 *   action: "fs.read",
 *   resource: 'File::"/etc/passwd"',
 *   decision: "deny",
 *   policies: [],
 *   errors: [],
 *   caller: null,
 *   durationUs: 12,
 *   reason: "denied by default",
 * });
 * log.query({ decision: "deny" }).length; // 1
 * await log.close();
 * ```
 *
 * @example Append to a rotated file
 * ```ts ignore
 * import { AuditLog } from "./audit_log.ts";
 * await using log = new AuditLog({ file: { path: ".keycard/audit.jsonl", maxBytes: 1 << 20, maxFiles: 3 } });
 * // ... log.record(event) on every decision ...
 * await log.flush(); // everything recorded so far is on disk
 * ```
 */
export class AuditLog {
  readonly #ring: FairRing;
  readonly #aggregator: Aggregator | undefined;
  #recorded = 0;
  #events = 0;
  #aggregated = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listenerErrors = 0;
  readonly #counters = new Map<string, AuditCounter>();
  /** Replaced, never mutated, so a listener that (un)subscribes does not disturb the dispatch in progress. */
  #listeners: readonly AuditListener[] = [];
  readonly #sink: FileSink | undefined;
  readonly #redact: ((event: AuditEvent) => AuditEvent) | undefined;
  #closed = false;

  /**
   * Creates the log. The file, if any, is opened on the first write.
   *
   * @param options Ring size, file sink and aggregation.
   * @throws {RangeError} When `ringSize`, `file.maxBytes`, `file.maxFiles` or an `aggregate` field is not a valid count.
   * @throws {TypeError} When `file.path` is empty.
   */
  constructor(options: AuditLogOptions = {}) {
    const ringSize = options.ringSize ?? 10_000;
    _checkCount("ringSize", ringSize, 1);
    this.#ring = new FairRing(ringSize);
    if (options.aggregate !== false) {
      const { windowMs = 1000, repeats = 4, burst = 2000, perSecond = 200 } = options.aggregate ?? {};
      _checkCount("aggregate.windowMs", windowMs, 1);
      _checkCount("aggregate.repeats", repeats, 1);
      _checkCount("aggregate.burst", burst, 1);
      _checkCount("aggregate.perSecond", perSecond, 1);
      this.#aggregator = new Aggregator({ windowMs, repeats, burst, perSecond });
    }
    if (options.file !== undefined) {
      const { path, maxBytes = 10 * 1024 * 1024, maxFiles = 5 } = options.file;
      if (typeof path !== "string" || path === "") {
        throw new TypeError(`Cannot create an audit log with file path "${path}": it must be a non-empty string`);
      }
      _checkCount("file.maxBytes", maxBytes, 1);
      _checkCount("file.maxFiles", maxFiles, 0);
      this.#sink = new FileSink(path, maxBytes, maxFiles);
    }
    if (options.redact !== undefined && typeof options.redact !== "function") {
      throw new TypeError(`Cannot create an audit log with redact ${typeof options.redact}: it must be a function`);
    }
    this.#redact = options.redact;
  }

  /**
   * Records one decision (or `event.count` of them): counted at once, then
   * emitted into the ring, the subscribers and the file queue, now or, for a
   * repeat or a decision past its plugin's budget, summed into one event when
   * its window ends (see {@linkcode AuditAggregateOptions}). O(1) amortized,
   * synchronous, never throws. The log keeps a frozen copy of the event, masked by the `redact` option.
   *
   * @param event The decision to record; its `time` is the clock of the windows.
   * @returns Nothing; use {@linkcode AuditLog.flush} to wait for the file.
   * @throws {never} Listener errors are counted in `stats().listenerErrors`.
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * log.record({
   *   time: "2025-01-01T00:00:00.000Z", callId: "c-1", plugin: "p", version: "1.0.0", action: "fs.read",
   *   resource: 'File::"/a"', decision: "allow", policies: ["p0"], errors: [], caller: "alice", durationUs: 3,
   * });
   * log.stats().recorded; // 1
   * ```
   */
  record(event: AuditEvent): void {
    const stored = _snapshot(this.#redact === undefined ? event : _redacted(event, this.#redact));
    const count = stored.count ?? 1;
    this.#recorded += count;
    const key = JSON.stringify([stored.plugin, stored.action, stored.decision]);
    const counter = this.#counters.get(key);
    if (counter) counter.count += count;
    else this.#counters.set(key, { plugin: stored.plugin, action: stored.action, decision: stored.decision, count });
    // After close() nothing is held back: there is no timer left to emit a sum.
    if (this.#aggregator === undefined || this.#closed) return this.#emit(stored);
    const ms = Date.parse(stored.time);
    this.#aggregator.admit(stored, Number.isNaN(ms) ? Date.now() : ms, this.#emitter);
    this.#schedule();
  }

  readonly #emitter = (event: AuditEvent): void => this.#emit(event);

  #emit(event: AuditEvent): void {
    const stored = Object.isFrozen(event) ? event : _snapshot(event);
    this.#events++;
    this.#aggregated += (stored.count ?? 1) - 1;
    this.#ring.push(stored);
    if (this.#sink !== undefined && !this.#closed) this.#sink.enqueue(_toLine(stored));
    for (const listener of this.#listeners) {
      try {
        const result: unknown = listener(stored);
        if (result instanceof Promise) result.catch(() => this.#listenerErrors++);
      } catch {
        this.#listenerErrors++;
      }
    }
  }

  /** While sums are pending, a timer emits each when its window ends, even if no decision follows. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#aggregator === undefined || this.#aggregator.pending === 0) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#aggregator?.sweep(Date.now(), this.#emitter);
      this.#schedule();
    }, this.#aggregator.options.windowMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * Finds emitted events still in the ring, newest first. An event with a
   * `count` stands for that many decisions; a sum whose window is still open
   * is not in the answer yet (`stats().pending`).
   *
   * @param filters Plugin, action, decision, earliest time, and how many at most.
   * @returns Matching events, newest first (frozen: do not mutate).
   * @throws {RangeError} When `since` is not a valid date or `limit` is not a non-negative integer.
   * @example Last ten denials of a plugin in the past hour
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * const since = new Date(Date.now() - 3_600_000);
   * log.query({ plugin: "enrich", decision: "deny", since, limit: 10 }); // []
   * ```
   */
  query(filters: AuditQuery = {}): AuditEvent[] {
    const { plugin, action, decision, since, limit = 100 } = filters;
    if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
      throw new RangeError(`Cannot query audit events with limit ${limit}: it must be a non-negative integer`);
    }
    let sinceMs: number | undefined;
    if (since !== undefined) {
      sinceMs = since instanceof Date ? since.getTime() : Date.parse(since);
      if (Number.isNaN(sinceMs)) {
        throw new RangeError(`Cannot query audit events since "${String(since)}": it is not a valid date`);
      }
    }
    this.#aggregator?.sweep(Date.now(), this.#emitter);
    const found: AuditEvent[] = [];
    for (const event of this.#ring.newest(plugin)) {
      if (found.length >= limit) break;
      if (action !== undefined && event.action !== action) continue;
      if (decision !== undefined && event.decision !== decision) continue;
      // Concurrent calls may record slightly out of time order, so scan on rather than stop at the first older one.
      // A sum matches when its last decision is at or after since.
      if (sinceMs !== undefined && !(Date.parse(event.lastTime ?? event.time) >= sinceMs)) continue;
      found.push(event);
    }
    return found;
  }

  /**
   * Calls `listener` with every event recorded from now on, synchronously
   * inside `record()`. A listener that throws (or rejects) is counted in
   * `stats().listenerErrors` and does not affect `record()` or other listeners.
   *
   * @param listener Receives each event (frozen).
   * @returns A function that unsubscribes; calling it again does nothing.
   * @throws {TypeError} When `listener` is not a function.
   * @example Stream denials
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * const unsubscribe = log.subscribe((event) => {
   *   if (event.decision === "deny") console.warn(event.reason);
   * });
   * unsubscribe();
   * ```
   */
  subscribe(listener: AuditListener): () => void {
    if (typeof listener !== "function") throw new TypeError(`Cannot subscribe "${listener}": it is not a function`);
    this.#listeners = [...this.#listeners, listener];
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const index = this.#listeners.indexOf(listener);
      if (index >= 0) this.#listeners = this.#listeners.toSpliced(index, 1);
    };
  }

  /**
   * Counts of recorded decisions by plugin, action and decision, for metrics: exact at once, sums included.
   *
   * @returns One entry per plugin, action and decision seen, in first-seen order (copies).
   * @throws {never}
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * for (const { plugin, action, decision, count } of log.counters()) {
   *   console.log(`keycard_decisions_total{plugin="${plugin}",action="${action}",decision="${decision}"} ${count}`);
   * }
   * ```
   */
  counters(): AuditCounter[] {
    return [...this.#counters.values()].map((counter) => ({ ...counter }));
  }

  /**
   * Counts of the log's work. `recorded == events + aggregated + pending`
   * always; `events - written - queued` events went only to memory (no file
   * sink, or emitted after `close()`).
   *
   * @returns Decisions recorded; events emitted; decisions aggregated, folded, pending; events evicted from
   *   memory, written and queued; rotations, listener errors, last write error.
   * @throws {never}
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * log.stats().queued; // 0: the backlog of the file writer
   * ```
   */
  stats(): AuditStats {
    const sink = this.#sink?.stats();
    const stats: AuditStats = {
      recorded: this.#recorded,
      events: this.#events,
      aggregated: this.#aggregated,
      folded: this.#aggregator?.folded ?? 0,
      pending: this.#aggregator?.pending ?? 0,
      evicted: this.#ring.evicted,
      written: sink?.written ?? 0,
      queued: sink?.queued ?? 0,
      rotations: sink?.rotations ?? 0,
      listenerErrors: this.#listenerErrors,
    };
    if (sink?.lastError !== undefined) stats.lastError = sink.lastError;
    return stats;
  }

  /**
   * Emits now the pending sums of one call's repeated decisions, closing
   * their windows early, so that whoever waited on the call (the console's
   * invoke page) sees every decision it made, each sum with its `count`.
   * Decisions folded past a plugin's budget are summed per plugin, not per
   * call, and stay pending until their window ends.
   *
   * @param callId The call whose sums to emit; it should be over.
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog({ aggregate: { windowMs: 60_000, repeats: 1, burst: 100, perSecond: 100 } });
   * const event = {
   *   time: new Date().toISOString(), callId: "c-1", plugin: "p", version: "1.0.0", action: "clock.now",
   *   resource: 'Clock::"system"', decision: "allow" as const, policies: ["p0"], errors: [], caller: null,
   *   durationUs: 1,
   * };
   * for (let i = 0; i < 3; i++) log.record(event);
   * log.stats().pending; // 2
   * log.emitSumsOf("c-1");
   * log.stats().pending; // 0
   * ```
   */
  emitSumsOf(callId: string): void {
    this.#aggregator?.drainCall(callId, this.#emitter);
  }

  /**
   * Emits every pending sum (closing its window early), then waits until
   * every event emitted before the call is in the file (at once without a
   * file sink). A failed write keeps its events queued; the next `flush()`
   * retries it.
   *
   * @returns A promise that resolves when those events are written.
   * @throws {Error} When a write, a rotation or creating the directory fails; the message quotes the path.
   * @example
   * ```ts ignore
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog({ file: { path: "/var/log/keycard/audit.jsonl" } });
   * await log.flush();
   * ```
   */
  flush(): Promise<void> {
    this.#aggregator?.drain(this.#emitter);
    return this.#sink?.flush() ?? Promise.resolve();
  }

  /**
   * Flushes, then closes the file. Safe to call more than once: a later call
   * retries whatever a failed write left queued. Events recorded afterwards
   * stay in memory only.
   *
   * @returns A promise that resolves when the file is written and closed.
   * @throws {Error} When the final flush fails (the file is closed anyway).
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * const log = new AuditLog();
   * await log.close();
   * await log.close(); // no-op
   * ```
   */
  async close(): Promise<void> {
    this.#aggregator?.drain(this.#emitter);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    await this.#sink?.close();
  }

  /**
   * Closes the log, for `await using`.
   *
   * @returns The promise of {@linkcode AuditLog.close}.
   * @throws {Error} As {@linkcode AuditLog.close}.
   * @example
   * ```ts
   * import { AuditLog } from "./audit_log.ts";
   * {
   *   await using log = new AuditLog();
   *   log.stats();
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function _checkCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`Cannot create an audit log with ${name} ${value}: it must be an integer >= ${min}`);
  }
}

/**
 * The event masked; when masking fails, only its fields that carry no free text, so that a secret is never kept
 * because the mask could not be applied.
 */
function _redacted(event: AuditEvent, redact: (event: AuditEvent) => AuditEvent): AuditEvent {
  try {
    return redact(event);
  } catch (error) {
    const { time, callId, plugin, version, action, decision, durationUs, count, lastTime } = event;
    return {
      time,
      callId,
      plugin,
      version,
      action,
      resource: "(unredacted: omitted)",
      decision,
      policies: [],
      errors: [`redaction failed: ${error instanceof Error ? error.name : typeof error}`],
      caller: null,
      durationUs,
      ...(count === undefined ? {} : { count }),
      ...(lastTime === undefined ? {} : { lastTime }),
    };
  }
}

/** A frozen copy, so that neither the caller nor a listener can rewrite history. */
function _snapshot(event: AuditEvent): AuditEvent {
  const copy = { ...event };
  if (copy.count !== undefined && !(Number.isSafeInteger(copy.count) && copy.count >= 1)) delete copy.count;
  if (Array.isArray(copy.policies)) copy.policies = Object.freeze([...copy.policies]) as string[];
  if (Array.isArray(copy.errors)) copy.errors = Object.freeze([...copy.errors]) as string[];
  return Object.freeze(copy);
}

function _toLine(event: AuditEvent): string {
  try {
    return JSON.stringify(event) + "\n";
  } catch (error) {
    // Only a value the type forbids (a bigint, a cycle, a throwing toJSON) gets here: keep a line rather than lose it.
    const fields = ["time", "callId", "plugin", "version", "action", "resource", "decision", "reason"] as const;
    const line: Record<string, string> = {};
    for (const field of fields) if (event[field] !== undefined) line[field] = _text(event[field]);
    line.unserializable = _text(error instanceof Error ? error.message : error);
    return JSON.stringify(line) + "\n";
  }
}

function _text(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "[unprintable]";
  }
}
