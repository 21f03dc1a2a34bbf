// The DRT's randomness: xoshiro128** seeded through splitmix32, so a seed names a whole run exactly on every machine,
// and `derive` gives each policy set and request a seed of its own (a case replays alone, without the run before it).

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** A seeded pseudo-random generator (xoshiro128**) and the draws the generators need. */
export class Random {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * Seeds the generator.
   * @param seed Any 32-bit integer: the same seed draws the same sequence.
   */
  constructor(seed: number) {
    let state = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      words.push(out);
    }
    this.#s0 = words[0]!;
    this.#s1 = words[1]!;
    this.#s2 = words[2]!;
    this.#s3 = words[3]! | 1; // never the all-zero state
  }

  /** The next 32 random bits, unsigned. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty list");
    return items[this.int(items.length)]!;
  }

  /** One of the keys of `weights`, drawn in proportion to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    let total = 0;
    for (const [, w] of entries) total += w;
    let draw = this.next() * total;
    for (const [key, w] of entries) {
      draw -= w;
      if (draw < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }

  /** Up to `n` distinct elements of `items`, in random order. */
  sample<T>(items: readonly T[], n: number): T[] {
    const copy = [...items];
    this.shuffle(copy);
    return copy.slice(0, Math.max(0, n));
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** A child generator for a sub-task: its draws do not disturb this one's sequence beyond one word. */
  fork(): Random {
    return new Random(this.u32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * The seed of item `index` of a run seeded `seed`: item `i` can be replayed alone.
 * @param seed The run's seed.
 * @param index The item's index.
 * @returns A 32-bit seed.
 */
export function derive(seed: number, index: number): number {
  const [, a] = splitmix32((seed ^ Math.imul(index + 1, 0x27d4eb2f)) >>> 0);
  const [, b] = splitmix32((a + index) >>> 0);
  return b;
}
