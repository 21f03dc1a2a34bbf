// A counting semaphore whose wait queue is bounded: when the queue is full,
// acquire refuses at once instead of queueing without end. A waiter can give
// up (its deadline passed) and leaves the queue.

/** Returned by a successful acquire; call it exactly once. */
export type Release = () => void;

interface Waiter {
  resolve: (release: Release) => void;
  reject: (reason: unknown) => void;
}

export class Semaphore {
  readonly permits: number;
  readonly maxQueue: number;
  #available: number;
  #queue: Waiter[] = [];

  constructor(permits: number, maxQueue: number) {
    if (!Number.isInteger(permits) || permits < 1) {
      throw new RangeError(`Permits must be a positive integer: ${permits}`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError(`Queue bound must be >= 0: ${maxQueue}`);
    this.permits = permits;
    this.maxQueue = maxQueue;
    this.#available = permits;
  }

  /** Calls holding a permit now. */
  get active(): number {
    return this.permits - this.#available;
  }

  /** Calls waiting for a permit. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Takes a permit, waiting in the queue when none is free.
   * @returns the release function, or `undefined` at once when the queue is full.
   */
  acquire(signal?: AbortSignal): Promise<Release> | undefined {
    if (this.#available > 0) {
      this.#available--;
      return Promise.resolve(this.#releaser());
    }
    if (this.#queue.length >= this.maxQueue) return undefined;
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#queue.push(waiter);
      signal?.addEventListener("abort", () => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) {
          this.#queue.splice(index, 1);
          reject(signal.reason);
        }
      }, { once: true });
    });
  }

  /** Rejects every waiter (used on close). */
  rejectAll(reason: unknown): void {
    for (const waiter of this.#queue.splice(0)) waiter.reject(reason);
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next.resolve(this.#releaser());
      else this.#available++;
    };
  }
}
