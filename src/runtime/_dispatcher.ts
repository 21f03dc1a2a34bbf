// One waiter for every call in flight. Each worker rings a doorbell shared by
// all workers of a host when it finishes a call or asks for a host call; the
// main thread sleeps on that single doorbell (one Atomics.waitAsync, not one
// per call) and, when it rings, polls every call in flight.

/** Index of the doorbell in the shared Int32 cells (0 counts idle spinners). */
export const BELL = 1;
/** How long the main thread polls before it sleeps, in ms: most calls end within it. */
const SPIN_MS = 0.05;

interface Watch {
  /** Makes progress if it can; returns true once the call is over. */
  poll: () => boolean;
  resolve: () => void;
}

/** Drives every call in flight from one loop on the main thread. */
export class Dispatcher {
  readonly #cells: Int32Array;
  readonly #spin: () => boolean;
  readonly #watches = new Set<Watch>();
  #running = false;

  /**
   * @param cells The host's shared cells (idle spinners, doorbell).
   * @param spin Whether the main thread may poll before sleeping (a core is free).
   */
  constructor(cells: Int32Array, spin: (inFlight: number) => boolean) {
    this.#cells = cells;
    this.#spin = () => spin(this.#watches.size);
  }

  /** Resolves once `poll` returns true; `poll` runs whenever the doorbell rings. */
  until(poll: () => boolean): Promise<void> {
    if (poll()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#watches.add({ poll, resolve });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#watches.size > 0) {
        const bell = Atomics.load(this.#cells, BELL);
        if (this.#pollAll()) continue;
        if (this.#spin()) {
          const until = performance.now() + SPIN_MS;
          while (Atomics.load(this.#cells, BELL) === bell && performance.now() < until) { /* spin */ }
          if (Atomics.load(this.#cells, BELL) !== bell) continue;
        }
        const wait = Atomics.waitAsync(this.#cells, BELL, bell);
        if (wait.async) await wait.value;
      }
    } finally {
      this.#running = false;
    }
  }

  /** Polls every watch once; true when any finished. */
  #pollAll(): boolean {
    let finished = false;
    for (const watch of this.#watches) {
      if (watch.poll()) {
        this.#watches.delete(watch);
        watch.resolve();
        finished = true;
      }
    }
    return finished;
  }
}
