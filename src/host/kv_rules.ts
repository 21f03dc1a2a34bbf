import { HostCallError } from "../runtime/mod.ts";

/** Largest value a plugin store accepts, in bytes: Deno KV's own limit, kept for every store so plugins see one. */
export const MAX_KV_VALUE_BYTES = 65536;
/** Longest plugin name, namespace or key, in UTF-8 bytes (Deno KV keys total at most 2048). */
export const MAX_KV_PART_BYTES = 512;
/** Longest part of a name quoted in a message. */
const MAX_QUOTED = 80;

/** What a store was doing when it failed, as its messages say it. */
export type KvAction = "read" | "write" | "delete";

/**
 * The rules every plugin key-value store applies, whatever keeps the values:
 * part lengths and characters, the value size limit, refusal after close and
 * the shape of `io` errors. {@linkcode KvStore} and `PostgresKvStore` both
 * hold one, so a plugin gets the same answer from either.
 *
 * @example Check a call before touching the store
 * ```ts
 * import { KvRules } from "./kv_rules.ts";
 * const rules = new KvRules(4);
 * rules.checkParts("counter", "state", "hits");
 * rules.checkValue("hits", new Uint8Array(4));
 * await rules.run("write", "hits", () => Promise.resolve(), (error) => String(error));
 * ```
 */
export class KvRules {
  /** Largest value accepted, in bytes. */
  readonly maxValueBytes: number;
  #closed = false;

  /**
   * Checks the value limit.
   *
   * @param maxValueBytes Largest value accepted, in bytes.
   * @throws {RangeError} When `maxValueBytes` is not an integer from 1 to 65536.
   *
   * @example Refuse a limit above Deno KV's
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * try { new KvRules(65537); } catch (error) { error instanceof RangeError; }
   * ```
   */
  constructor(maxValueBytes: number = MAX_KV_VALUE_BYTES) {
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > MAX_KV_VALUE_BYTES) {
      throw new RangeError(
        `Value limit ${maxValueBytes} is invalid: maxValueBytes must be an integer from 1 to ${MAX_KV_VALUE_BYTES}`,
      );
    }
    this.maxValueBytes = maxValueBytes;
  }

  /**
   * Whether {@linkcode KvRules.close} ran.
   *
   * @returns True once closed.
   *
   * @example Read the state
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * new KvRules().closed; // false
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Marks the store closed: {@linkcode KvRules.run} refuses from now on.
   *
   * @returns True the first time, false when it was closed already.
   *
   * @example Close twice
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * const rules = new KvRules();
   * rules.close(); // true
   * rules.close(); // false
   * ```
   */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /**
   * Checks a plugin name, namespace and key.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @throws {HostCallError} `invalid` for a part that is empty, over 512 UTF-8
   * bytes, holds a lone surrogate or a control character.
   *
   * @example Refuse an empty key
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * try { new KvRules().checkParts("p", "n", ""); } catch (error) { (error as Error).message; }
   * ```
   */
  checkParts(plugin: string, namespace: string, key: string): void {
    checkPart("Plugin name", plugin);
    checkPart("Namespace", namespace);
    checkPart("Key", key);
  }

  /**
   * Checks a value's size.
   *
   * @param key The key it is for, quoted in the message.
   * @param value The bytes to store.
   * @throws {HostCallError} `limit` when the value is larger than `maxValueBytes`.
   *
   * @example Refuse a value over the limit
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * try { new KvRules(1).checkValue("k", new Uint8Array(2)); } catch (error) { (error as Error).message; }
   * ```
   */
  checkValue(key: string, value: Uint8Array): void {
    if (value.byteLength > this.maxValueBytes) {
      throw new HostCallError(
        "limit",
        `Cannot set key ${quote(key)} to ${value.byteLength} bytes: values are limited to ${this.maxValueBytes} bytes`,
      );
    }
  }

  /**
   * Runs one store operation: refused with `io` once closed; any failure that
   * is not a {@linkcode HostCallError} already becomes `io` with the reason
   * `describe` gives (never the backend's own message, which may name a path
   * or a database address).
   *
   * @param action What the operation does, for the message.
   * @param key The key, quoted in the message.
   * @param body The operation.
   * @param describe The reason shown for a failure, e.g. the error's name or code.
   * @returns What `body` returns.
   * @throws {HostCallError} `io` when closed or when `body` fails.
   *
   * @example Turn a failure into `io`
   * ```ts
   * import { KvRules } from "./kv_rules.ts";
   * const rules = new KvRules();
   * await rules.run("read", "k", () => Promise.reject(new TypeError("x")), (e) => (e as Error).name).catch(
   *   (error) => error.message, // 'Cannot read key "k": the store failed (TypeError)'
   * );
   * ```
   */
  async run<T>(
    action: KvAction,
    key: string,
    body: () => Promise<T>,
    describe: (error: unknown) => string,
  ): Promise<T> {
    if (this.#closed) throw new HostCallError("io", `Cannot ${action} key ${quote(key)}: the store is closed`);
    try {
      return await body();
    } catch (error) {
      if (error instanceof HostCallError) throw error;
      throw new HostCallError("io", `Cannot ${action} key ${quote(key)}: the store failed (${describe(error)})`, {
        cause: error,
      });
    }
  }
}

/**
 * A name as messages quote it: JSON, cut at 80 characters.
 *
 * @param value The name.
 * @returns The quoted text.
 *
 * @example Quote a long key
 * ```ts
 * import { quoteKvPart } from "./kv_rules.ts";
 * quoteKvPart("k".repeat(100)); // "kkk…" (80 k's, then an ellipsis)
 * ```
 */
export function quoteKvPart(value: string): string {
  return quote(value);
}

function quote(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}

function checkPart(what: string, value: string): void {
  // Past 512 UTF-16 units the name is too long whatever it encodes to: count no further (a lower bound).
  const counted = value.length > MAX_KV_PART_BYTES;
  const bytes = counted ? value.length : new TextEncoder().encode(value).byteLength;
  if (bytes === 0 || bytes > MAX_KV_PART_BYTES) {
    throw new HostCallError(
      "invalid",
      `${what} ${quote(value)} is ${bytes}${
        counted ? " or more" : ""
      } bytes: it must be 1 to ${MAX_KV_PART_BYTES} bytes`,
    );
  }
  // A lone surrogate would be encoded as U+FFFD and share its entry with another name.
  if (!value.isWellFormed()) {
    throw new HostCallError("invalid", `${what} ${quote(value)} contains a lone surrogate: it must be valid Unicode`);
  }
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) {
      const hex = code.toString(16).toUpperCase().padStart(4, "0");
      throw new HostCallError(
        "invalid",
        `${what} ${
          quote(value)
        } contains the control character U+${hex} at index ${i}: control characters are not allowed`,
      );
    }
  }
}
