import { HostCallError } from "../runtime/mod.ts";
import { canonicalizePath, type CanonicalizePathOptions } from "./canonicalize_path.ts";

/** One entry of a directory listing. */
export interface FsEntry {
  /** The entry's name, without any directory. */
  name: string;
  /** What the entry is; a symbolic link is reported as such, not followed. Other special files count as `file`. */
  kind: "file" | "dir" | "symlink";
}

/** Bytes read at a time by {@linkcode FsCapability.read}. */
const READ_CHUNK = 64 * 1024;

/**
 * A narrow file-system capability over one data root. It acts only on
 * canonical paths that {@linkcode canonicalizePath} produced for this root
 * (get them from {@linkcode FsCapability.resolve}), and checks again that
 * each path is inside the root before touching it.
 *
 * Errors are {@linkcode HostCallError}s for the plugin: their messages show
 * paths relative to the root (`/notes/a.txt`), never the host path.
 *
 * Between resolving a path and using it, the data root is assumed to change
 * only through this capability: plugins cannot create symbolic links, and
 * nothing here follows one that another process swaps in afterwards.
 *
 * @example Write, list, read and delete a file
 * ```ts ignore
 * import { FsCapability } from "./fs_capability.ts";
 * const fs = await FsCapability.open("/srv/data");
 * const path = await fs.resolve("/hello.txt");
 * await fs.write(path, new TextEncoder().encode("hi")); // 2
 * await fs.list(await fs.resolve("/")); // [{ name: "hello.txt", kind: "file" }]
 * await fs.read(path, 1024); // Uint8Array [104, 105]
 * await fs.delete(path);
 * ```
 */
export class FsCapability {
  readonly #root: string;
  readonly #prefix: string;

  /**
   * Opens the capability over a directory, resolving it to its real path.
   *
   * @param root The data root: a path to an existing directory.
   * @returns The capability.
   * @throws {Deno.errors.NotFound} When the root does not exist.
   * @throws {TypeError} When the root is not a directory.
   *
   * @example Open a data root
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("./data");
   * fs.root; // "/srv/keycard/data"
   * ```
   */
  static async open(root: string): Promise<FsCapability> {
    const realRoot = await Deno.realPath(root);
    if (!(await Deno.stat(realRoot)).isDirectory) {
      throw new TypeError(`Data root "${root}" is not a directory: the data root must be a directory`);
    }
    return new FsCapability(realRoot);
  }

  /**
   * Makes the capability over a root that is already a real path (no symbolic
   * links, no trailing slash); prefer {@linkcode FsCapability.open}. With a
   * root that is not real, every path is refused.
   *
   * @param realRoot The real, absolute path of the data root.
   * @throws {TypeError} When `realRoot` is not absolute or ends with a slash.
   *
   * @example Wrap a root resolved elsewhere
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = new FsCapability(await Deno.realPath("./data"));
   * ```
   */
  constructor(realRoot: string) {
    if (!realRoot.startsWith("/") || (realRoot !== "/" && realRoot.endsWith("/"))) {
      throw new TypeError(
        `Data root "${realRoot}" is not a real path: the root must be absolute with no trailing slash`,
      );
    }
    this.#root = realRoot;
    this.#prefix = realRoot === "/" ? "/" : `${realRoot}/`;
  }

  /** The real path of the data root. */
  get root(): string {
    return this.#root;
  }

  /**
   * Resolves a plugin's path to a canonical path inside this root, ready for
   * the other methods.
   *
   * @param requested The plugin's path, relative to the root.
   * @param options Whether the path must exist.
   * @returns The canonical path.
   * @throws {HostCallError} As {@linkcode canonicalizePath}: `invalid`, `denied`, `not_found` or `io`.
   *
   * @example Resolve a plugin's path
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("/srv/data");
   * await fs.resolve("/etc/passwd"); // "/srv/data/etc/passwd"
   * ```
   */
  resolve(requested: string, options?: CanonicalizePathOptions): Promise<string> {
    return canonicalizePath(this.#root, requested, { ...options, rootIsReal: true });
  }

  /**
   * Reads a whole file of at most `maxBytes`.
   *
   * @param path A canonical path inside the root.
   * @param maxBytes The largest file accepted.
   * @returns The file's bytes.
   * @throws {HostCallError} `limit` when the file is larger than `maxBytes`;
   * `invalid` when it is not a regular file; `not_found` when it is missing;
   * `denied` when the path is not canonical inside the root; `io` otherwise.
   * @throws {RangeError} When `maxBytes` is not a non-negative safe integer.
   *
   * @example Read a small file
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("/srv/data");
   * await fs.read(await fs.resolve("/hello.txt"), 1024);
   * ```
   */
  async read(path: string, maxBytes: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`Read limit ${maxBytes} is invalid: maxBytes must be a non-negative safe integer`);
    }
    const shown = this.#check(path);
    try {
      // Stat before opening so that a FIFO or device is never opened (which could block).
      this.#checkReadable(await Deno.stat(path), shown, maxBytes);
      using file = await Deno.open(path, { read: true });
      this.#checkReadable(await file.stat(), shown, maxBytes);
      // The file may grow after the stat: read at most one byte past the limit.
      const chunks: Uint8Array[] = [];
      let total = 0;
      while (total <= maxBytes) {
        const chunk = new Uint8Array(Math.min(READ_CHUNK, maxBytes + 1 - total));
        const count = await file.read(chunk);
        if (count === null) break;
        chunks.push(chunk.subarray(0, count));
        total += count;
      }
      if (total > maxBytes) throw _tooLarge(shown, maxBytes);
      const bytes = new Uint8Array(total);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
      }
      return bytes;
    } catch (error) {
      throw _hostError(error, "read", shown);
    }
  }

  /**
   * Writes a whole file atomically: the bytes go to a temporary file in the
   * same directory, which is flushed and then renamed over the path. The
   * parent directory must exist.
   *
   * @param path A canonical path inside the root.
   * @param data The file's new content.
   * @returns The number of bytes written.
   * @throws {HostCallError} `not_found` when the parent directory is missing;
   * `invalid` when the path is the root or a directory, or the parent is not a
   * directory; `denied` when the path is not canonical inside the root; `io`
   * otherwise.
   *
   * @example Write a file
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("/srv/data");
   * await fs.write(await fs.resolve("/hello.txt"), new TextEncoder().encode("hi")); // 2
   * ```
   */
  async write(path: string, data: Uint8Array): Promise<number> {
    const shown = this.#check(path);
    if (path === this.#root) throw new HostCallError("invalid", `Cannot write "/": it is the data root, a directory`);
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    const shownParent = this.#show(parent);
    let temporary: string | undefined;
    try {
      let parentInfo: Deno.FileInfo;
      try {
        parentInfo = await Deno.stat(parent);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
          throw new HostCallError(
            "not_found",
            `Cannot write ${shown}: the parent directory ${shownParent} does not exist`,
            { cause: error },
          );
        }
        throw error;
      }
      if (!parentInfo.isDirectory) {
        throw new HostCallError("invalid", `Cannot write ${shown}: its parent ${shownParent} is not a directory`);
      }
      const existing = await Deno.lstat(path).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      });
      if (existing?.isDirectory) {
        throw new HostCallError("invalid", `Cannot write ${shown}: it is a directory`);
      }
      temporary = `${parent === "/" ? "" : parent}/.keycard-tmp-${crypto.randomUUID()}`;
      {
        using file = await Deno.open(temporary, { write: true, createNew: true });
        let written = 0;
        while (written < data.byteLength) written += await file.write(data.subarray(written));
        await file.syncData();
      }
      await Deno.rename(temporary, path);
      temporary = undefined;
      return data.byteLength;
    } catch (error) {
      throw _hostError(error, "write", shown);
    } finally {
      if (temporary !== undefined) await Deno.remove(temporary).catch(() => {});
    }
  }

  /**
   * Lists a directory, sorted by name (by UTF-16 code units, not locale).
   *
   * @param path A canonical path inside the root.
   * @returns The entries.
   * @throws {HostCallError} `not_found` when the directory is missing;
   * `invalid` when the path is not a directory; `denied` when the path is not
   * canonical inside the root; `io` otherwise.
   *
   * @example List the root
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("/srv/data");
   * await fs.list(await fs.resolve("/")); // [{ name: "hello.txt", kind: "file" }]
   * ```
   */
  async list(path: string): Promise<FsEntry[]> {
    const shown = this.#check(path);
    try {
      if (!(await Deno.stat(path)).isDirectory) {
        throw new HostCallError("invalid", `Cannot list ${shown}: it is not a directory`);
      }
      const entries: FsEntry[] = [];
      for await (const entry of Deno.readDir(path)) {
        entries.push({ name: entry.name, kind: entry.isSymlink ? "symlink" : entry.isDirectory ? "dir" : "file" });
      }
      return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (error) {
      throw _hostError(error, "list", shown);
    }
  }

  /**
   * Deletes a file. Directories and the root are refused.
   *
   * @param path A canonical path inside the root.
   * @throws {HostCallError} `denied` for the root or a path not canonical
   * inside it; `invalid` for a directory; `not_found` when the file is
   * missing; `io` otherwise.
   *
   * @example Delete a file
   * ```ts ignore
   * import { FsCapability } from "./fs_capability.ts";
   * const fs = await FsCapability.open("/srv/data");
   * await fs.delete(await fs.resolve("/hello.txt"));
   * ```
   */
  async delete(path: string): Promise<void> {
    const shown = this.#check(path);
    if (path === this.#root) throw new HostCallError("denied", `Cannot delete "/": the data root is never deleted`);
    try {
      if ((await Deno.lstat(path)).isDirectory) {
        throw new HostCallError("invalid", `Cannot delete ${shown}: it is a directory and only files are deleted`);
      }
      await Deno.remove(path);
    } catch (error) {
      throw _hostError(error, "delete", shown);
    }
  }

  /** Asserts that `path` is a canonical path inside the root; returns it quoted as the plugin sees it. */
  #check(path: string): string {
    if (path === this.#root) return '"/"';
    const canonical = path.startsWith(this.#prefix) &&
      path.slice(this.#prefix.length).split("/").every((segment) =>
        segment !== "" && segment !== "." && segment !== ".."
      );
    if (!canonical) {
      // The path is not echoed: it may hold the host path of the root.
      throw new HostCallError(
        "denied",
        "Refused a path that is not canonical inside the data root: resolve plugin paths with canonicalizePath() first",
      );
    }
    return this.#show(path);
  }

  #show(path: string): string {
    // JSON quoting escapes any control character in a host file name.
    return JSON.stringify(path === this.#root ? "/" : `/${path.slice(this.#prefix.length)}`);
  }

  #checkReadable(info: Deno.FileInfo, shown: string, maxBytes: number): void {
    if (!info.isFile) throw new HostCallError("invalid", `Cannot read ${shown}: it is not a regular file`);
    if (info.size > maxBytes) throw _tooLarge(shown, maxBytes, info.size);
  }
}

function _tooLarge(shown: string, maxBytes: number, size?: number): HostCallError {
  const actual = size === undefined ? `more than ${maxBytes}` : `${size}`;
  return new HostCallError(
    "limit",
    `Cannot read ${shown}: it is ${actual} bytes and reads are limited to ${maxBytes} bytes`,
  );
}

function _hostError(error: unknown, action: string, shown: string): HostCallError {
  if (error instanceof HostCallError) return error;
  if (error instanceof Deno.errors.NotFound) {
    return new HostCallError("not_found", `Cannot ${action} ${shown}: it does not exist`, { cause: error });
  }
  // Deno's messages quote the host path, so only the error's name is passed on.
  const name = error instanceof Error ? error.name : "unknown error";
  return new HostCallError("io", `Cannot ${action} ${shown}: the operating system refused (${name})`, {
    cause: error,
  });
}
