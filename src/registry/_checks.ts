// Checks and helpers shared by the stores and the registry; not re-exported.
import semver from "semver";
import { quote } from "./_quote.ts";
import { checkPluginName, checkPluginVersion } from "./plugin_id.ts";
import type { StoredPlugin } from "./plugin_store.ts";

// The imports map carries no @types/semver, so the function used is typed here.
const _semver = semver as { compareBuild(a: string, b: string): number };

const SHA256_HEX = /^[0-9a-f]{64}$/;
export { quote };

/** The one naming rule, under the names the stores use. */
export { checkPluginName as checkName, checkPluginVersion as checkVersion };

/** Whether a string is a canonical version (see {@linkcode checkVersion}). */
export function isVersion(version: string): boolean {
  try {
    checkPluginVersion(version);
    return true;
  } catch {
    return false;
  }
}

/** Sorts versions by semver precedence, lowest first; build metadata breaks ties so the order is total. */
export function sortVersions(versions: Iterable<string>): string[] {
  return [...versions].sort(_semver.compareBuild);
}

/** Orders names by UTF-16 code units, the same on every machine (unlike `localeCompare`). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The SHA-256 of bytes as 64 lower-case hex digits. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks a record before a store keeps it: name, version, bytes, and that
 * `sha256` is the hash of `wasm` (reads check it again, so a record that
 * would fail them is refused up front).
 */
export async function checkRecord(record: StoredPlugin): Promise<void> {
  if (typeof record !== "object" || record === null) throw new TypeError("A plugin record must be an object");
  if (typeof record.manifest !== "object" || record.manifest === null) {
    throw new TypeError("A plugin record needs a manifest object");
  }
  const name = checkPluginName(record.manifest.name);
  const version = checkPluginVersion(record.manifest.version, name);
  const id = quote(`${name}@${version}`);
  if (!(record.wasm instanceof Uint8Array)) throw new TypeError(`The wasm of plugin ${id} is not a Uint8Array`);
  if (typeof record.sha256 !== "string" || !SHA256_HEX.test(record.sha256)) {
    throw new TypeError(`The sha256 ${quote(record.sha256)} of plugin ${id} is not 64 lower-case hex digits`);
  }
  const actual = await sha256Hex(record.wasm);
  if (actual !== record.sha256) {
    throw new RangeError(
      `Cannot store plugin ${id} with sha256 ${quote(record.sha256)}: its wasm hashes to ${quote(actual)}`,
    );
  }
  if (typeof record.installedAt !== "string" || Number.isNaN(Date.parse(record.installedAt))) {
    throw new TypeError(`The installedAt ${quote(record.installedAt)} of plugin ${id} is not an ISO date`);
  }
  if (record.signature !== undefined && typeof record.signature !== "string") {
    throw new TypeError(`The signature of plugin ${id} is not a string`);
  }
  if (record.report !== undefined && !isJsonObject(record.report)) {
    throw new TypeError(`The report of plugin ${id} is not a JSON object`);
  }
}

/** Whether a value is a plain object that survives JSON (no cycles, functions or NUL text a database refuses). */
function isJsonObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  try {
    return !JSON.stringify(value).includes("\\u0000");
  } catch {
    return false;
  }
}

/** A deep copy, so that callers cannot change what a store holds (or be changed by it). */
export function copyRecord(record: StoredPlugin): StoredPlugin {
  return {
    manifest: structuredClone(record.manifest),
    wasm: record.wasm.slice(),
    sha256: record.sha256,
    installedAt: record.installedAt,
    ...(record.signature === undefined ? {} : { signature: record.signature }),
    ...(record.report === undefined ? {} : { report: structuredClone(record.report) }),
  };
}

/** Runs `task` after every earlier task of the same key has settled: a per-key mutex within one process. */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` alone among the tasks of `key`. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(() => {}, () => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard, padded base64; undefined when the text is not that. */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64.test(text)) return undefined;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** JSON with object keys sorted, so that equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) =>
      typeof v === "object" && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => compareNames(a, b)))
        : v,
  );
}
