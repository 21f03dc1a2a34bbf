import { checkPattern } from "./check_pattern.ts";
import { LiteralIndex } from "./_literal_index.ts";
import { headerSecrets, secretForms } from "./_secret_forms.ts";

/** Options of {@linkcode Redactor}. */
export interface RedactorOptions {
  /** What each secret is replaced with (overlapping or adjacent secrets by one). @default {"[REDACTED]"} */
  mask?: string;
  /** Regular expressions (see {@linkcode checkPattern}) whose every match is masked. @default {[]} */
  patterns?: readonly string[];
  /** Names of the HTTP headers (any case) whose values {@linkcode Redactor.observe} learns. @default {[]} */
  headers?: readonly string[];
  /**
   * The shortest secret masked, in UTF-16 units: a shorter value would mask letters of ordinary words, so it is
   * left as is and counted (`stats().short`). Patterns are not bound by it. @default {4}
   */
  minLength?: number;
  /** Header values remembered at once; past it, the least recently seen is forgotten. @default {4096} */
  remember?: number;
}

/** What {@linkcode Redactor.stats} reports. */
export interface RedactorStats {
  /** Distinct secret strings masked, every form of every secret counted. */
  literals: number;
  /** Header values remembered (at most `remember`). */
  remembered: number;
  /** Secret values shorter than `minLength`, left unmasked. */
  short: number;
  /** Strings that had something masked. */
  masked: number;
}

/** Past this depth a value is replaced by the mask whole: never walked unbounded, never passed unmasked. */
const MAX_DEPTH = 64;
/**
 * Strings up to this length are remembered with their masked form: most strings of an audit event (field names,
 * plugin, action, entity types, hashes) recur in every event, and a lookup costs less than a scan.
 */
const CACHED_LENGTH = 256;
/** Strings remembered at once; the cache starts afresh when full or when the secrets change. */
const CACHE_SIZE = 4096;

/**
 * Masks secrets in strings and in JSON-like values (audit events, log
 * entries) before they are stored or shown: known secret values (set by
 * source, e.g. the plugins' secret config values), the values of secret
 * headers seen in requests ({@linkcode Redactor.observe}), and every match of
 * the patterns. Each secret is also found in its JSON-escaped and
 * URL-encoded forms. Finding any number of known values costs one pass over
 * the text; with nothing to mask, a value is returned as is at the cost of one
 * check.
 *
 * @example Mask a config value and a pattern
 * ```ts
 * import { Redactor } from "./redactor.ts";
 * const redactor = new Redactor({ patterns: ["sk_live_[A-Za-z0-9]{8}"] });
 * redactor.setSecrets("config", ["hunter2-secret"]);
 * redactor.mask("pw hunter2-secret key sk_live_abcd1234"); // "pw [REDACTED] key [REDACTED]"
 * redactor.maskValue({ resource: 'Key::"stamp/hunter2-secret"', n: 1 }); // { resource: 'Key::"stamp/[REDACTED]"', n: 1 }
 * ```
 */
export class Redactor {
  readonly #mask: string;
  readonly #patterns: RegExp[];
  readonly #headers: ReadonlySet<string>;
  readonly #minLength: number;
  readonly #remember: number;
  readonly #index: LiteralIndex;
  readonly #sources = new Map<string, string[]>();
  /** Header value -> its literals, in order of last sight (a Map keeps insertion order). */
  readonly #seen = new Map<string, string[]>();
  #short = 0;
  #masked = 0;
  /** Bumped whenever the secrets change, so that the cache of masked strings is never stale. */
  #generation = 0;
  #cacheGeneration = 0;
  readonly #cache = new Map<string, string>();
  /** Reused by each scan: spans found, as start, end pairs. */
  readonly #spans: number[] = [];

  /**
   * Creates a redactor that knows no secret values yet (see {@linkcode Redactor.setSecrets} and
   * {@linkcode Redactor.observe}); its patterns are checked here.
   *
   * @param options Mask, patterns, secret headers, shortest secret, header values remembered.
   * @throws {SyntaxError} When a pattern is invalid or refused by {@linkcode checkPattern}.
   * @throws {RangeError} When `minLength` or `remember` is not a positive integer, or `mask` is empty.
   */
  constructor(options: RedactorOptions = {}) {
    const { mask = "[REDACTED]", patterns = [], headers = [], minLength = 4, remember = 4096 } = options;
    if (typeof mask !== "string" || mask === "") throw new RangeError(`Cannot mask with ${JSON.stringify(mask)}`);
    for (const [name, value] of [["minLength", minLength], ["remember", remember]] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`Cannot create a redactor with ${name} ${value}: it must be an integer >= 1`);
      }
    }
    this.#mask = mask;
    this.#patterns = patterns.map(checkPattern);
    this.#headers = new Set(headers.map((name) => name.toLowerCase()));
    this.#minLength = minLength;
    this.#remember = remember;
    this.#index = new LiteralIndex(minLength);
  }

  /** Whether anything can be masked: a pattern, a known secret or a remembered header value. */
  get active(): boolean {
    return this.#patterns.length > 0 || this.#index.size > 0;
  }

  /** Whether {@linkcode Redactor.observe} has headers to learn from. */
  get observing(): boolean {
    return this.#headers.size > 0;
  }

  /**
   * Replaces the secrets known from `source` (e.g. `"config"`) with `values`.
   * Values shorter than `minLength` are not masked (they are counted in `stats().short`).
   *
   * @param source Names the set, so that a later call replaces it.
   * @param values The secret values.
   * @returns The values left unmasked because they are too short.
   * @throws {never}
   */
  setSecrets(source: string, values: Iterable<string>): string[] {
    const short: string[] = [];
    const literals: string[] = [];
    for (const value of new Set(values)) {
      if (value.length < this.#minLength) short.push(value);
      else literals.push(...this.#forms(value));
    }
    for (const literal of literals) this.#index.add(literal);
    for (const literal of this.#sources.get(source) ?? []) this.#index.delete(literal);
    this.#sources.set(source, literals);
    this.#generation++;
    this.#short += short.length;
    return short;
  }

  /**
   * Learns the values of the secret headers of a request, so that they are
   * masked wherever they appear afterwards (a plugin that logs the request it
   * was given, a key made of a token). Remembers at most `remember` values.
   *
   * @param headers The request's headers.
   * @returns Nothing.
   * @throws {never}
   */
  observe(headers: Headers): void {
    for (const name of this.#headers) {
      const value = headers.get(name);
      if (value === null || value === "") continue;
      const known = this.#seen.get(value);
      if (known !== undefined) {
        // Seen again: now the most recent.
        this.#seen.delete(value);
        this.#seen.set(value, known);
        continue;
      }
      const literals: string[] = [];
      for (const secret of new Set(headerSecrets(value))) {
        if (secret.length < this.#minLength) this.#short++;
        else literals.push(...this.#forms(secret));
      }
      for (const literal of literals) this.#index.add(literal);
      this.#seen.set(value, literals);
      this.#generation++;
      if (this.#seen.size > this.#remember) {
        const [oldest, dropped] = this.#seen.entries().next().value!;
        this.#seen.delete(oldest);
        for (const literal of dropped) this.#index.delete(literal);
      }
    }
  }

  /**
   * Masks every secret in `text`.
   *
   * @param text Any text.
   * @returns The text with each secret (each run of overlapping or adjacent ones) replaced by the mask.
   * @throws {never}
   */
  mask(text: string): string {
    if (!this.active) return text;
    if (text.length > CACHED_LENGTH) return this.#scan(text);
    if (this.#cacheGeneration !== this.#generation || this.#cache.size >= CACHE_SIZE) {
      this.#cache.clear();
      this.#cacheGeneration = this.#generation;
    }
    let masked = this.#cache.get(text);
    if (masked === undefined) this.#cache.set(text, masked = this.#scan(text));
    else if (masked !== text) this.#masked++;
    return masked;
  }

  #scan(text: string): string {
    const spans = this.#spans;
    spans.length = 0;
    this.#index.find(text, spans);
    for (const pattern of this.#patterns) {
      pattern.lastIndex = 0;
      for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
        if (match[0] === "") pattern.lastIndex++;
        else spans.push(match.index, match.index + match[0].length);
      }
    }
    if (spans.length === 0) return text;
    this.#masked++;
    return this.#splice(text, spans);
  }

  /**
   * Masks every string in a JSON-like value as `JSON.stringify` would write
   * it: strings, the items of arrays, the keys and values of objects of any
   * class (their own enumerable keys, or what their `toJSON` returns), at any
   * depth (past 64 levels a value is replaced by the mask whole). What holds
   * no secret is returned as is, not copied; a copy is a plain object.
   *
   * @param value The value, e.g. an audit event.
   * @returns The value, or a copy with its secrets masked.
   * @throws {never} Unless a getter of `value` throws.
   */
  maskValue<T>(value: T): T {
    return this.active ? this.#walk(value, 0) as T : value;
  }

  /**
   * Counts of the redactor's work.
   *
   * @returns Literals held, header values remembered, values too short to mask, strings masked.
   * @throws {never}
   */
  stats(): RedactorStats {
    return { literals: this.#index.size, remembered: this.#seen.size, short: this.#short, masked: this.#masked };
  }

  #forms(secret: string): string[] {
    return secretForms(secret).filter((form) => form.length >= this.#minLength);
  }

  #walk(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.mask(value);
    if (typeof value !== "object" || value === null) return value;
    if (depth >= MAX_DEPTH) return this.#mask;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = this.#walk(value[i], depth + 1);
        if (item !== value[i]) (copy ??= [...value])[i] = item;
      }
      return copy ?? value;
    }
    // Walked as JSON.stringify sees it: through toJSON, else own enumerable keys, whatever the class.
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      const json: unknown = toJSON.call(value);
      const masked = this.#walk(json, depth + 1);
      return masked === json ? value : masked;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const item = record[key];
      const maskedKey = this.mask(key);
      const maskedItem = this.#walk(item, depth + 1);
      if (copy === undefined && (maskedKey !== key || maskedItem !== item)) {
        copy = {};
        for (let j = 0; j < i; j++) copy[keys[j]!] = record[keys[j]!];
      }
      if (copy !== undefined) copy[maskedKey] = maskedItem;
    }
    return copy ?? value;
  }

  /** `text` with each run of overlapping or adjacent spans replaced by one mask. */
  #splice(text: string, spans: number[]): string {
    const order = Array.from({ length: spans.length / 2 }, (_, i) => i).sort((a, b) => spans[2 * a]! - spans[2 * b]!);
    let out = "";
    let at = 0;
    for (let k = 0; k < order.length;) {
      const start = spans[2 * order[k]!]!;
      let end = spans[2 * order[k]! + 1]!;
      for (k++; k < order.length && spans[2 * order[k]!]! <= end; k++) end = Math.max(end, spans[2 * order[k]! + 1]!);
      out += text.slice(at, start) + this.#mask;
      at = end;
    }
    return out + text.slice(at);
  }
}
