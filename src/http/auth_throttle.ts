/** Options of {@linkcode AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Failed authentications of one client per window before the next ones are answered 429. @default {20} */
  failures?: number;
  /** The window, in milliseconds, counted from a client's first failure in it. @default {60000} */
  windowMs?: number;
  /** Clients tracked at once; past it, the oldest window is dropped (memory stays bounded). @default {10000} */
  maxAddresses?: number;
  /** The clock, in milliseconds. @default {Date.now} */
  now?: () => number;
}

/**
 * Counts failed authentications per client address in fixed windows, so
 * that token guessing is answered 429 with `Retry-After` past a number of
 * failures. Only failures are counted and only failures are throttled: a
 * valid token passes at once, from any address. An IPv6 address counts by
 * its /64 (one host holds a whole /64); IPv4-mapped IPv6 as IPv4.
 *
 * Throttling does not make a token guessable or not (that is its entropy: the
 * admin token is 256 random bits); it bounds what a guesser costs the server,
 * its log and its audit, and tells the guesser to stop.
 *
 * @example Throttle the 4th failure in a window
 * ```ts
 * import { AuthThrottle } from "./auth_throttle.ts";
 * let now = 0;
 * const throttle = new AuthThrottle({ failures: 3, windowMs: 60_000, now: () => now });
 * [1, 2, 3].map(() => throttle.fail("192.0.2.1")); // [0, 0, 0]
 * throttle.fail("192.0.2.1"); // 60: seconds to wait
 * now += 60_000;
 * throttle.fail("192.0.2.1"); // 0: a new window
 * ```
 */
export class AuthThrottle {
  readonly #failures: number;
  readonly #windowMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** Windows by client, oldest first (a new window is re-inserted at the end). */
  readonly #windows = new Map<string, { start: number; count: number }>();

  /** @param options Failures per window, window length, clients tracked, clock. */
  constructor(options: AuthThrottleOptions = {}) {
    this.#failures = options.failures ?? 20;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#max = options.maxAddresses ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Clients tracked now (at most `maxAddresses`). */
  get size(): number {
    return this.#windows.size;
  }

  /**
   * Records one failed authentication.
   * @param address The client's address (`""` when unknown: all such clients count as one).
   * @returns 0 while the client is within its failures, else the seconds until its window ends (`Retry-After`).
   */
  fail(address: string): number {
    const key = clientKey(address);
    const now = this.#now();
    let window = this.#windows.get(key);
    if (window === undefined || now >= window.start + this.#windowMs) {
      this.#windows.delete(key);
      this.#windows.set(key, window = { start: now, count: 0 });
      if (this.#windows.size > this.#max) this.#windows.delete(this.#windows.keys().next().value!);
    }
    window.count++;
    if (window.count <= this.#failures) return 0;
    return Math.max(1, Math.ceil((window.start + this.#windowMs - now) / 1000));
  }
}

/** The unit a client is counted by: an IPv4 address, or the /64 of an IPv6 one. */
function clientKey(address: string): string {
  if (!address.includes(":")) return address;
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped) return mapped[1]!;
  const [head = "", tail, ...rest] = bare.split("::");
  if (rest.length > 0) return bare;
  const front = head === "" ? [] : head.split(":");
  const back = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? front : [...front, ...Array(8 - front.length - back.length).fill("0"), ...back];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return bare;
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`;
}
