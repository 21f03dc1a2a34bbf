/** Multiplier of the rolling hash (an odd constant with well-spread bits). */
const BASE = 0x01000193;
/** Slots of the prefilter: a position whose hash lands on an empty slot is skipped without a Map lookup. */
const SLOTS = 1 << 16;

function slot(hash: number): number {
  return (hash ^ (hash >>> 16)) & (SLOTS - 1);
}

/**
 * A set of literal strings, each at least `window` UTF-16 units long, found in
 * a text in one pass whatever their number: a rolling hash of every `window`
 * units of the text is looked up among the hashes of the literals' first
 * `window` units (Rabin-Karp), and only a hit is compared. Literals are
 * reference-counted, so that two sources of the same secret can come and go
 * independently.
 */
export class LiteralIndex {
  readonly #window: number;
  /** BASE ** (window - 1), modulo 2 ** 32. */
  readonly #top: number;
  readonly #refs = new Map<string, number>();
  /** Hash of the first `window` units -> the literals with that hash, longest first. */
  readonly #buckets = new Map<number, string[]>();
  /** Buckets per prefilter slot. */
  readonly #slots = new Uint32Array(SLOTS);

  /** @param window The shortest literal: every literal added is at least this long. */
  constructor(window: number) {
    this.#window = window;
    let top = 1;
    for (let i = 1; i < window; i++) top = Math.imul(top, BASE);
    this.#top = top;
  }

  /** Distinct literals held. */
  get size(): number {
    return this.#refs.size;
  }

  /** Adds one reference to `literal` (which is at least `window` long). */
  add(literal: string): void {
    const refs = this.#refs.get(literal) ?? 0;
    this.#refs.set(literal, refs + 1);
    if (refs > 0) return;
    const hash = this.#hash(literal);
    const bucket = this.#buckets.get(hash);
    if (bucket === undefined) {
      this.#buckets.set(hash, [literal]);
      this.#slots[slot(hash)]!++;
    } else {
      bucket.push(literal);
      bucket.sort((a, b) => b.length - a.length);
    }
  }

  /** Drops one reference to `literal`; the last one removes it. */
  delete(literal: string): void {
    const refs = this.#refs.get(literal);
    if (refs === undefined) return;
    if (refs > 1) {
      this.#refs.set(literal, refs - 1);
      return;
    }
    this.#refs.delete(literal);
    const hash = this.#hash(literal);
    const bucket = this.#buckets.get(hash) ?? [];
    const rest = bucket.filter((other) => other !== literal);
    if (rest.length > 0) this.#buckets.set(hash, rest);
    else {
      this.#buckets.delete(hash);
      this.#slots[slot(hash)]!--;
    }
  }

  /**
   * Appends `start, end` of every occurrence in `text` of a literal (the
   * longest one at each position); occurrences may overlap.
   */
  find(text: string, out: number[]): void {
    const window = this.#window;
    const end = text.length - window;
    if (end < 0) return;
    // Locals, not fields, in the loop that runs once per character.
    const slots = this.#slots;
    const top = this.#top;
    let hash = 0;
    for (let i = 0; i < window; i++) hash = (Math.imul(hash, BASE) + text.charCodeAt(i)) | 0;
    for (let i = 0;; i++) {
      if (slots[(hash ^ (hash >>> 16)) & (SLOTS - 1)] !== 0) {
        const bucket = this.#buckets.get(hash);
        if (bucket !== undefined) {
          for (const literal of bucket) {
            if (text.startsWith(literal, i)) {
              out.push(i, i + literal.length);
              break;
            }
          }
        }
      }
      if (i === end) return;
      hash = (Math.imul((hash - Math.imul(text.charCodeAt(i), top)) | 0, BASE) + text.charCodeAt(i + window)) | 0;
    }
  }

  #hash(literal: string): number {
    let hash = 0;
    for (let i = 0; i < this.#window; i++) hash = (Math.imul(hash, BASE) + literal.charCodeAt(i)) | 0;
    return hash;
  }
}
