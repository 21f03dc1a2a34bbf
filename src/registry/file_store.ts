import { join } from "node:path";
import {
  checkName,
  checkRecord,
  checkVersion,
  compareNames,
  copyRecord,
  isVersion,
  KeyedLock,
  quote,
  sha256Hex,
  sortVersions,
} from "./_checks.ts";
import type { Manifest } from "./parse_manifest.ts";
import type { PluginStore, PluginSummary, StoredPlugin } from "./plugin_store.ts";

/** Something {@linkcode FileStore} skipped or found left over on disk. */
export interface StoreProblem {
  /** The file or directory concerned. */
  path: string;
  /** What is wrong and what to do about it. */
  message: string;
}

const WASM = "plugin.wasm";
const MANIFEST = "manifest.json";
/** Prefixes of the store's own scratch directories; no name or version starts with ".". */
const LEFTOVER = /^\.(tmp|old|rm)-/;
const LEFTOVER_HINT: Record<string, string> = {
  tmp: "an install that did not finish; safe to delete",
  old: "the previous copy of a re-installed version; if that version is missing, rename this directory back to it",
  rm: "a removal that did not finish; safe to delete",
};

/**
 * A {@linkcode PluginStore} in a directory: each version lives in
 * `<root>/plugins/<name>/<version>/` as `plugin.wasm` and `manifest.json`
 * (the manifest with `sha256`, `installedAt`, `signature` and the conformance `report`).
 *
 * Writes are atomic: both files are written and fsynced in a scratch directory
 * `<root>/plugins/<name>/.tmp-<uuid>/`, which is then renamed to `<version>`,
 * so a crash leaves the old state or the new one. Reads verify the SHA-256 of
 * `plugin.wasm` against `manifest.json`; a version whose files are missing,
 * unparsable or tampered with is skipped, not fatal, and described by
 * {@linkcode FileStore.problems}, as are scratch directories a crash left
 * behind. Writes to one plugin are serialized within this object; use one
 * `FileStore` per directory (several replicas need a shared database store).
 *
 * @example Keep plugins in a directory
 * ```ts ignore
 * import { FileStore } from "./file_store.ts";
 * const store = new FileStore(".keycard/registry");
 * console.log(await store.list(), store.problems());
 * ```
 */
export class FileStore implements PluginStore {
  readonly #root: string;
  readonly #plugins: string;
  readonly #problems = new Map<string, string>();
  readonly #lock = new KeyedLock();
  /** Scratch directories of writes under way in this object, which are not leftovers. */
  readonly #scratch = new Set<string>();

  /**
   * Opens the store at a directory; nothing is read or created until used.
   *
   * @param root The directory; plugins live in its `plugins/` subdirectory, created on the first write.
   * @throws {TypeError} When `root` is not a non-empty string.
   *
   * @example Open a store
   * ```ts
   * import { FileStore } from "./file_store.ts";
   * new FileStore("/var/lib/keycard").root; // "/var/lib/keycard"
   * ```
   */
  constructor(root: string) {
    if (typeof root !== "string" || root === "") {
      throw new TypeError(`Store root ${quote(root)} is not a directory path`);
    }
    this.#root = root;
    this.#plugins = join(root, "plugins");
  }

  /** The directory given to the constructor. */
  get root(): string {
    return this.#root;
  }

  /**
   * What reads skipped or found left over: what the last {@linkcode FileStore.list}
   * found, updated by later reads and writes. One entry per path.
   *
   * @returns The problems, sorted by path.
   *
   * @example Check the store's health
   * ```ts ignore
   * import { FileStore } from "./file_store.ts";
   * const store = new FileStore(".keycard/registry");
   * await store.list();
   * for (const { path, message } of store.problems()) console.warn(path, message);
   * ```
   */
  problems(): StoreProblem[] {
    return [...this.#problems].sort(([a], [b]) => compareNames(a, b)).map(([path, message]) => ({ path, message }));
  }

  /**
   * Stores one version atomically, replacing a stored record of the same name
   * and version.
   *
   * Replacing takes two renames: the old directory goes aside to
   * `.old-<uuid>`, then the new one comes in, then the old is deleted. Between
   * the two renames, a few microseconds, readers find no such version (and a
   * {@linkcode FileStore.get} without a version falls back to the next lower
   * one); a crash exactly there leaves the version absent with its previous
   * copy in `.old-<uuid>`, which {@linkcode FileStore.problems} reports.
   *
   * @param record The record; `record.manifest.name` and `.version` are its key.
   * @returns Once both files and the rename are durable (as far as the file system honours fsync).
   * @throws {TypeError} When the record is malformed (a field of the wrong type).
   * @throws {RangeError} When the name or version breaks the naming rule, or `sha256` is not the hash of `wasm`.
   * @throws {Deno.errors.PermissionDenied} Or another I/O error when the directory cannot be written.
   *
   * @example Install a version
   * ```ts ignore
   * import { FileStore } from "./file_store.ts";
   * const wasm = await Deno.readFile("plugins/hello/build/plugin.wasm");
   * const manifest = { name: "hello", version: "1.0.0", exports: [], capabilities: [], grants: [], limits: {}, config: {} };
   * const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", wasm));
   * const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
   * await new FileStore(".keycard/registry").put({ manifest, wasm, sha256, installedAt: new Date().toISOString() });
   * ```
   */
  async put(record: StoredPlugin): Promise<void> {
    await checkRecord(record);
    const { name, version } = record.manifest;
    const stored: StoredJson = {
      manifest: record.manifest,
      sha256: record.sha256,
      installedAt: record.installedAt,
      ...(record.signature === undefined ? {} : { signature: record.signature }),
      ...(record.report === undefined ? {} : { report: record.report }),
    };
    const json = new TextEncoder().encode(`${JSON.stringify(stored, null, 2)}\n`);
    await this.#lock.run(name, async () => {
      const dir = join(this.#plugins, name);
      const target = join(dir, version);
      await Deno.mkdir(dir, { recursive: true });
      await syncDir(this.#plugins);
      const tmp = join(dir, `.tmp-${crypto.randomUUID()}`);
      let aside: string | undefined;
      this.#scratch.add(tmp);
      try {
        await Deno.mkdir(tmp);
        await writeDurably(join(tmp, WASM), record.wasm);
        await writeDurably(join(tmp, MANIFEST), json);
        await syncDir(tmp);
        aside = await this.#moveAside(target, dir, "old");
        await Deno.rename(tmp, target);
        await syncDir(dir);
      } catch (error) {
        if (aside !== undefined) {
          await Deno.rename(aside, target).catch(() => {});
          this.#scratch.delete(aside);
        }
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        throw error;
      } finally {
        this.#scratch.delete(tmp);
      }
      this.#forgetProblems(target);
      if (aside !== undefined) await this.#delete(aside);
    });
  }

  /**
   * Reads one version, or the latest by semantic-version precedence, skipping
   * (and recording in {@linkcode FileStore.problems}) a version whose files are
   * missing, unparsable or whose `plugin.wasm` does not match its SHA-256.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, the highest readable version (prereleases rank below releases).
   * @returns The record, or undefined when there is no readable one.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   *
   * @example Read the latest version
   * ```ts ignore
   * import { FileStore } from "./file_store.ts";
   * const plugin = await new FileStore(".keycard/registry").get("hello");
   * console.log(plugin?.manifest.version, plugin?.sha256);
   * ```
   */
  async get(name: string, version?: string): Promise<StoredPlugin | undefined> {
    checkName(name);
    if (version !== undefined) return this.#read(name, checkVersion(version, name));
    for (const candidate of (await this.#scan(name)).reverse()) {
      const record = await this.#read(name, candidate);
      if (record) return record;
    }
    return undefined;
  }

  /**
   * Lists every readable plugin version, verifying each (so it reads every
   * `plugin.wasm`), and refreshes {@linkcode FileStore.problems}.
   *
   * @returns One summary per name, sorted by name, each with its versions sorted lowest first and its latest.
   * @throws {Deno.errors.PermissionDenied} Or another I/O error when the `plugins/` directory cannot be read.
   *
   * @example List the installed plugins
   * ```ts ignore
   * import { FileStore } from "./file_store.ts";
   * for (const { name, latest } of await new FileStore(".keycard/registry").list()) console.log(name, latest);
   * ```
   */
  async list(): Promise<PluginSummary[]> {
    this.#problems.clear();
    const names: string[] = [];
    for (const entry of await readDir(this.#plugins)) {
      const path = join(this.#plugins, entry.name);
      const leftover = LEFTOVER.exec(entry.name);
      if (leftover) {
        if (!this.#scratch.has(path)) {
          this.#problems.set(path, `Ignored ${quote(path)}: left over by ${LEFTOVER_HINT[leftover[1]!]}`);
        }
      } else if (entry.name.startsWith(".")) continue;
      else if (!entry.isDirectory || !isName(entry.name)) {
        this.#problems.set(
          path,
          `Ignored ${quote(path)}: not a plugin directory (a name is 1-128 letters, digits, '_', '.' or '-')`,
        );
      } else names.push(entry.name);
    }
    const summaries: PluginSummary[] = [];
    for (const name of names.sort(compareNames)) {
      const versions: string[] = [];
      for (const version of await this.#scan(name)) {
        if (await this.#read(name, version)) versions.push(version);
      }
      if (versions.length > 0) summaries.push({ name, versions, latest: versions.at(-1)! });
    }
    return summaries;
  }

  /**
   * Removes one version, or every version of a plugin: the directory is first
   * renamed aside (`.rm-<uuid>`), so it disappears atomically, then deleted.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, every version.
   * @returns The versions removed, lowest first, including unreadable ones; empty when there was nothing to remove.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   * @throws {Deno.errors.PermissionDenied} Or another I/O error when the directory cannot be written.
   *
   * @example Remove an old version
   * ```ts ignore
   * import { FileStore } from "./file_store.ts";
   * await new FileStore(".keycard/registry").remove("hello", "0.9.0"); // ["0.9.0"]
   * ```
   */
  async remove(name: string, version?: string): Promise<string[]> {
    checkName(name);
    if (version !== undefined) checkVersion(version, name);
    return await this.#lock.run(name, async () => {
      const dir = join(this.#plugins, name);
      const target = version === undefined ? dir : join(dir, version);
      const removed = version === undefined ? await this.#scan(name, false) : [version];
      const aside = await this.#moveAside(target, version === undefined ? this.#plugins : dir, "rm");
      if (aside === undefined) return [];
      await syncDir(version === undefined ? this.#plugins : dir);
      this.#forgetProblems(target);
      await this.#delete(aside);
      // The plugin's directory goes with its last version; leftovers in it keep it (and are reported).
      if (version !== undefined) await Deno.remove(dir).catch(() => {});
      return removed;
    });
  }

  /** Renames `path` to a fresh scratch name in `dir`; undefined when there is no `path`. */
  async #moveAside(path: string, dir: string, kind: "old" | "rm"): Promise<string | undefined> {
    const aside = join(dir, `.${kind}-${crypto.randomUUID()}`);
    this.#scratch.add(aside);
    try {
      await Deno.rename(path, aside);
      return aside;
    } catch (error) {
      this.#scratch.delete(aside);
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  /** Deletes a scratch directory; a failure leaves a leftover for problems(), not an error for the caller. */
  async #delete(path: string): Promise<void> {
    try {
      await Deno.remove(path, { recursive: true });
    } catch (error) {
      this.#problems.set(path, `Could not delete ${quote(path)}: ${message(error)}; safe to delete`);
    } finally {
      this.#scratch.delete(path);
    }
  }

  /** The version directories of a plugin, lowest first; records what else is there unless `report` is false. */
  async #scan(name: string, report = true): Promise<string[]> {
    const dir = join(this.#plugins, name);
    const versions: string[] = [];
    for (const entry of await readDir(dir)) {
      const path = join(dir, entry.name);
      const leftover = LEFTOVER.exec(entry.name);
      if (leftover) {
        if (report && !this.#scratch.has(path)) {
          this.#problems.set(path, `Ignored ${quote(path)}: left over by ${LEFTOVER_HINT[leftover[1]!]}`);
        }
      } else if (entry.name.startsWith(".")) continue;
      else if (entry.isDirectory && isVersion(entry.name)) versions.push(entry.name);
      else if (report) {
        this.#problems.set(path, `Ignored ${quote(path)}: not a version directory (a version is a semantic version)`);
      }
    }
    return sortVersions(versions);
  }

  /** Reads and verifies one version; undefined (with a problem recorded) when it cannot be used. */
  async #read(name: string, version: string): Promise<StoredPlugin | undefined> {
    const dir = join(this.#plugins, name, version);
    const skip = (reason: string): undefined => {
      this.#problems.set(dir, `Skipped ${quote(`${name}@${version}`)} in ${quote(dir)}: ${reason}`);
      return undefined;
    };
    let text: string;
    try {
      text = await Deno.readTextFile(join(dir, MANIFEST));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) return skip(`${MANIFEST} cannot be read: ${message(error)}`);
      if (!(await exists(dir))) return undefined;
      return skip(`${MANIFEST} is missing (an install that did not finish, or a directory not made by keycard)`);
    }
    let stored: StoredJson;
    try {
      stored = parseStoredJson(text, name, version);
    } catch (error) {
      return skip(`${MANIFEST} is unusable: ${message(error)}`);
    }
    let wasm: Uint8Array;
    try {
      wasm = await Deno.readFile(join(dir, WASM));
    } catch (error) {
      return skip(`${WASM} cannot be read: ${message(error)}`);
    }
    const actual = await sha256Hex(wasm);
    if (actual !== stored.sha256) {
      return skip(
        `${WASM} hashes to ${quote(actual)} but ${MANIFEST} says ${quote(stored.sha256)}: it changed after install`,
      );
    }
    this.#problems.delete(dir);
    return copyRecord({ ...stored, wasm });
  }

  /** Drops the problems of a path and everything under it, once a write has replaced or removed it. */
  #forgetProblems(path: string): void {
    for (const key of this.#problems.keys()) {
      if (key === path || key.startsWith(join(path, "/"))) this.#problems.delete(key);
    }
  }
}

/** What `manifest.json` holds. */
interface StoredJson {
  manifest: Manifest;
  sha256: string;
  installedAt: string;
  signature?: string;
  report?: Record<string, unknown>;
}

function parseStoredJson(text: string, name: string, version: string): StoredJson {
  const data = JSON.parse(text) as Partial<Record<keyof StoredJson, unknown>> | null;
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new TypeError("expected a JSON object");
  const manifest = data.manifest as Partial<Manifest> | null | undefined;
  if (typeof manifest !== "object" || manifest === null) throw new TypeError(`"manifest" is not an object`);
  if (manifest.name !== name || manifest.version !== version) {
    throw new TypeError(`"manifest" is for ${quote(`${manifest.name}@${manifest.version}`)}, not this directory's`);
  }
  for (const key of ["exports", "capabilities", "grants"] as const) {
    if (!Array.isArray(manifest[key])) throw new TypeError(`"manifest.${key}" is not a list`);
  }
  if (typeof data.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(data.sha256)) {
    throw new TypeError(`"sha256" is not 64 lower-case hex digits`);
  }
  if (typeof data.installedAt !== "string") throw new TypeError(`"installedAt" is not a date`);
  if (data.signature !== undefined && typeof data.signature !== "string") {
    throw new TypeError(`"signature" is not text`);
  }
  const report = data.report;
  if (report !== undefined && (typeof report !== "object" || report === null || Array.isArray(report))) {
    throw new TypeError(`"report" is not an object`);
  }
  return {
    manifest: manifest as Manifest,
    sha256: data.sha256,
    installedAt: data.installedAt,
    ...(data.signature === undefined ? {} : { signature: data.signature }),
    ...(report === undefined ? {} : { report: report as Record<string, unknown> }),
  };
}

function isName(name: string): boolean {
  try {
    checkName(name);
    return true;
  } catch {
    return false;
  }
}

async function readDir(path: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  using file = await Deno.open(path, { write: true, createNew: true });
  for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
  await file.sync();
}

/** Makes a directory's entries (a new file, a rename) durable; best effort, as not every platform can open a directory. */
async function syncDir(path: string): Promise<void> {
  try {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Windows cannot open a directory; NTFS journals renames itself.
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
