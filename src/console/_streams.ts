// The console's live audit tails: bounded per session and in all, and ended with the session they were opened for.
import { ProblemError } from "../http/problem.ts";

/** Live streams open at once, per session and in all: each holds a subscription and a connection. */
export const MAX_STREAMS_PER_SESSION = 4;
export const MAX_STREAMS = 64;

/** One open stream: the signal that ends it, and what to call once it ended. */
export interface OpenStream {
  signal: AbortSignal;
  release(): void;
}

/** The open live tails, by session. */
export class StreamRegistry {
  readonly #open = new Map<string, Set<AbortController>>();
  #total = 0;

  /**
   * Takes a place for a stream of `sessionId`.
   * @throws {ProblemError} `saturated` (429) past the bounds.
   */
  open(sessionId: string): OpenStream {
    const mine = this.#open.get(sessionId) ?? new Set<AbortController>();
    if (mine.size >= MAX_STREAMS_PER_SESSION || this.#total >= MAX_STREAMS) {
      throw new ProblemError(
        "saturated",
        `Too many live audit streams open (at most ${MAX_STREAMS_PER_SESSION} per session, ${MAX_STREAMS} in all)`,
      );
    }
    const controller = new AbortController();
    mine.add(controller);
    this.#open.set(sessionId, mine);
    this.#total++;
    let released = false;
    return {
      signal: controller.signal,
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        mine.delete(controller);
        if (mine.size === 0 && this.#open.get(sessionId) === mine) this.#open.delete(sessionId);
      },
    };
  }

  /** Ends every stream of a session (it signed out, or signed in again). */
  endSession(sessionId: string): void {
    for (const controller of this.#open.get(sessionId) ?? []) controller.abort();
  }
}
