// Shadow verification: a sample of live decisions made by the TypeScript
// evaluator is decided again by cedar-wasm, off the hot path (a bounded queue
// drained on a timer), and compared: decision, deciding policy ids and
// erroring policy ids. A disagreement is reported to the engine, which
// applies the safer decision (deny) to the cached entry and tells its owner.

/** What the two implementations said, for comparison. */
export interface ShadowOutcome {
  /** The decision. */
  decision: "allow" | "deny";
  /** Deciding policy ids, sorted. */
  policies: readonly string[];
  /** Erroring policy ids, sorted. */
  erroring: readonly string[];
}

/** One queued check: how to ask cedar-wasm, what the evaluator said, what to do on a disagreement. */
export interface ShadowCheck {
  ours: ShadowOutcome;
  /** Decides the same request with cedar-wasm on the same policy-set version; undefined when it cannot. */
  theirs: () => ShadowOutcome | undefined;
  /** Called with cedar-wasm's outcome when it differs from `ours`. */
  disagree: (theirs: ShadowOutcome) => void;
}

/** Counters of {@linkcode ShadowVerifier}. */
export interface ShadowStats {
  /** Decisions sampled and compared. */
  checked: number;
  /** Comparisons that differed. */
  disagreements: number;
  /** Sampled decisions dropped because the queue was full, or cedar-wasm could not decide. */
  skipped: number;
}

/** Queue bound: a burst of sampled decisions past it is skipped, never delays a call. */
const MAX_QUEUED = 1024;
/** Checks per timer turn, so that a long queue does not hold the event loop. */
const BATCH = 64;

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** Whether two outcomes agree in decision, deciding ids and erroring ids. */
export function sameOutcome(a: ShadowOutcome, b: ShadowOutcome): boolean {
  return a.decision === b.decision && sameIds(a.policies, b.policies) && sameIds(a.erroring, b.erroring);
}

/** Samples decisions and checks them against cedar-wasm off the hot path. */
export class ShadowVerifier {
  readonly #rate: number;
  readonly #queue: ShadowCheck[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly stats: ShadowStats = { checked: 0, disagreements: 0, skipped: 0 };
  /** Sampling by a counter, not a random draw: 1 in every `1 / rate` decisions, deterministically. */
  #credit = 0;

  /** @param rate The share of decisions checked, from 0 (none) to 1 (all). */
  constructor(rate: number) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`shadowSample must be from 0 to 1, got ${rate}`);
    this.#rate = rate;
  }

  /** Whether the next decision is sampled. */
  sample(): boolean {
    if (this.#rate === 0) return false;
    this.#credit += this.#rate;
    if (this.#credit < 1) return false;
    this.#credit -= 1;
    return true;
  }

  /** Queues a check; it runs on a later turn of the event loop. */
  enqueue(check: ShadowCheck): void {
    if (this.#queue.length >= MAX_QUEUED) {
      this.stats.skipped++;
      return;
    }
    this.#queue.push(check);
    this.#timer ??= setTimeout(() => this.#drain(), 0);
  }

  /** Runs every queued check now (tests, and shutdown). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#queue.length > 0) this.#run(this.#queue.shift()!);
  }

  /** Cancels the pending drain; queued checks are dropped. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.stats.skipped += this.#queue.length;
    this.#queue.length = 0;
  }

  #drain(): void {
    this.#timer = undefined;
    for (let i = 0; i < BATCH && this.#queue.length > 0; i++) this.#run(this.#queue.shift()!);
    if (this.#queue.length > 0) this.#timer = setTimeout(() => this.#drain(), 0);
  }

  #run(check: ShadowCheck): void {
    let theirs: ShadowOutcome | undefined;
    try {
      theirs = check.theirs();
    } catch {
      theirs = undefined;
    }
    if (theirs === undefined) {
      this.stats.skipped++;
      return;
    }
    this.stats.checked++;
    if (sameOutcome(check.ours, theirs)) return;
    this.stats.disagreements++;
    check.disagree(theirs);
  }
}
