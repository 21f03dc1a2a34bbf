// Bounds what one plugin can put into the audit trail, without losing count
// of a single decision.
//
// - Repeats: decisions identical but for time and duration (same plugin,
//   version, call, caller, action, resource, decision, policies, errors,
//   reason, policy set and Cedar request) within `windowMs` of the first: the first `repeats` are events of
//   their own, the rest are summed into one event emitted when the window
//   ends (`count`, `time` of the first summed, `lastTime`, total `durationUs`).
// - Budget: each plugin has a token bucket (`burst`, refilled `perSecond`, by
//   the events' own clock); every event emitted on its own takes a token. A
//   new decision of a plugin with no token left is folded into one event per
//   plugin, version, action and decision and window (`folded: true`).
// So a plugin costs at most burst + 2 x perSecond x t + (its folded keys) x
// t / windowMs lines over t seconds, and every decision is in exactly one
// emitted event: sum of `count` == decisions recorded.

import type { AuditEvent } from "./audit_event.ts";

export interface AggregatorOptions {
  windowMs: number;
  repeats: number;
  burst: number;
  perSecond: number;
}

interface Window {
  /** Event-clock ms at which the window closes. */
  end: number;
  /** Events of this key emitted on their own in the window. */
  individual: number;
  /** Most events emitted on their own (0 for a folded key). */
  limit: number;
  /** The sum of the later ones, emitted when the window closes. */
  tail: AuditEvent | undefined;
}

interface Budget {
  tokens: number;
  at: number;
}

export type Emit = (event: AuditEvent) => void;

export class Aggregator {
  readonly options: AggregatorOptions;
  /** Open windows in (roughly) the order they close: a window is re-inserted when it reopens. */
  readonly #windows = new Map<string, Window>();
  readonly #budgets = new Map<string, Budget>();
  #pending = 0;
  #folded = 0;

  constructor(options: AggregatorOptions) {
    this.options = options;
  }

  /** Decisions held in sums not yet emitted. */
  get pending(): number {
    return this.#pending;
  }

  /** Decisions folded past a plugin's budget so far. */
  get folded(): number {
    return this.#folded;
  }

  /** Takes one decision (or `count` of them): emits it now, or adds it to a sum emitted later. */
  admit(event: AuditEvent, ms: number, emit: Emit): void {
    this.sweep(ms, emit);
    const key = JSON.stringify([
      event.plugin,
      event.version,
      event.callId,
      event.caller,
      event.action,
      event.resource,
      event.decision,
      event.policies,
      event.errors,
      event.reason,
      // Replay needs each summed decision's request to be the one kept: a Host decided by name and then by
      // address, or two log lines of different sizes, are not repeats. The rest of a request (a resource's
      // parents, the principal's uid) follows from the uids already in the key, and serializing it whole
      // doubled the cost of record().
      event.policySet,
      event.request?.principal?.attrs,
      event.request?.resource?.attrs,
      event.request?.context,
      event.requestOmitted,
    ]);
    let window = this.#windows.get(key);
    if (window && ms >= window.end) {
      this.#close(key, window, emit);
      window = undefined;
    }
    if (window) {
      if (window.individual < window.limit && this.#take(event.plugin, ms)) {
        window.individual++;
        emit(event);
      } else {
        this.#add(window, event, false);
      }
      return;
    }
    if (this.#take(event.plugin, ms)) {
      this.#windows.set(key, {
        end: ms + this.options.windowMs,
        individual: 1,
        limit: this.options.repeats,
        tail: undefined,
      });
      emit(event);
      return;
    }
    // Over budget: one sum per plugin, version, action and decision (an array of another length: no clash).
    const foldKey = JSON.stringify([event.plugin, event.version, event.action, event.decision]);
    let fold = this.#windows.get(foldKey);
    if (fold && ms >= fold.end) {
      this.#close(foldKey, fold, emit);
      fold = undefined;
    }
    if (!fold) {
      this.#windows.set(foldKey, fold = { end: ms + this.options.windowMs, individual: 0, limit: 0, tail: undefined });
    }
    this.#folded += event.count ?? 1;
    this.#add(fold, event, true);
  }

  /** Emits the sums of every window closed at `ms`. */
  sweep(ms: number, emit: Emit): void {
    for (const [key, window] of this.#windows) {
      if (window.end > ms) break;
      this.#close(key, window, emit);
    }
  }

  /** Emits every sum now, closing every window (for flush and close). */
  drain(emit: Emit): void {
    for (const [key, window] of this.#windows) this.#close(key, window, emit);
  }

  /** Emits now the sums of one call's repeated decisions (the call is over: nothing more joins them). */
  drainCall(callId: string, emit: Emit): void {
    for (const [key, window] of this.#windows) {
      if (window.tail?.callId === callId && !window.tail.folded) this.#close(key, window, emit);
    }
  }

  #close(key: string, window: Window, emit: Emit): void {
    this.#windows.delete(key);
    const tail = window.tail;
    if (tail === undefined) return;
    this.#pending -= tail.count!;
    emit(tail);
  }

  #add(window: Window, event: AuditEvent, folded: boolean): void {
    const count = event.count ?? 1;
    this.#pending += count;
    const tail = window.tail;
    if (tail === undefined) {
      window.tail = folded
        ? {
          time: event.time,
          callId: "*",
          plugin: event.plugin,
          version: event.version,
          action: event.action,
          resource: "*",
          decision: event.decision,
          policies: [],
          errors: [],
          caller: null,
          durationUs: event.durationUs,
          ...(event.decision === "deny" ? { reason: "various: folded past the plugin's audit budget" } : {}),
          count,
          lastTime: event.lastTime ?? event.time,
          folded: true,
        }
        : { ...event, count, lastTime: event.lastTime ?? event.time };
      return;
    }
    tail.count! += count;
    tail.durationUs += event.durationUs;
    tail.lastTime = event.lastTime ?? event.time;
  }

  #take(plugin: string, ms: number): boolean {
    const { burst, perSecond } = this.options;
    let budget = this.#budgets.get(plugin);
    if (!budget) this.#budgets.set(plugin, budget = { tokens: burst, at: ms });
    if (ms > budget.at) {
      budget.tokens = Math.min(burst, budget.tokens + (ms - budget.at) * perSecond / 1000);
      budget.at = ms;
    }
    if (budget.tokens < 1) return false;
    budget.tokens--;
    return true;
  }
}
