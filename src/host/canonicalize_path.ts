import { HostCallError } from "../runtime/mod.ts";

/** Options of {@linkcode canonicalizePath}. */
export interface CanonicalizePathOptions {
  /** Refuse a path that does not exist with code `not_found`. @default {false} */
  mustExist?: boolean;
  /** `root` is already its own real path (as `FsCapability` holds it): skip resolving it again. @default {false} */
  rootIsReal?: boolean;
}

/** Longest plugin path accepted, in UTF-8 bytes (Linux `PATH_MAX`). */
const MAX_PATH_BYTES = 4096;
/** Symbolic links followed while resolving one path before giving up (Linux `MAXSYMLINKS`). */
const MAX_SYMLINKS = 40;
/** Longest part of the requested path quoted in a message. */
const MAX_QUOTED = 80;

/**
 * Turns a path a plugin asked for into the absolute, symlink-free host path
 * inside the data root that it names, or refuses it.
 *
 * The plugin's path is relative to the data root; a leading `/` also means
 * "from the root" since plugins never see host paths. `.` and `..` are
 * resolved lexically first (so `..` never walks above the root, whatever the
 * symlinks), then symbolic links are followed: the longest existing prefix is
 * resolved to its real path and the missing remainder appended. The result
 * must be the root or inside it. Percent-encoding is not decoded: `%2e%2e` is
 * a file name.
 *
 * `root` is resolved with `Deno.realPath()` on every call, so the caller may
 * pass any path to the root, and a root that is moved is followed.
 *
 * @param root The data root: an absolute host path to a directory.
 * @param requested The plugin's path, such as `notes/today.txt` or `/notes/today.txt`.
 * @param options Whether the path must exist.
 * @returns The absolute canonical path, without a trailing slash except when it is the root `/`.
 * @throws {HostCallError} Code `invalid` for an empty path, a control character,
 * a backslash, more than 4096 bytes or a symbolic-link loop; `denied` for a
 * path that escapes the data root; `not_found` when `mustExist` is set and the
 * path is missing (or names a missing directory's `..`); `io` when the root or
 * a path cannot be resolved.
 * @throws {TypeError} When `root` is not an absolute path.
 *
 * @example Keep a plugin's path inside the data root
 * ```ts ignore
 * import { canonicalizePath } from "./canonicalize_path.ts";
 * await canonicalizePath("/srv/data", "/notes/../notes/today.txt"); // "/srv/data/notes/today.txt"
 * await canonicalizePath("/srv/data", "../etc/passwd"); // throws HostCallError "denied"
 * ```
 */
export async function canonicalizePath(
  root: string,
  requested: string,
  options: CanonicalizePathOptions = {},
): Promise<string> {
  const { mustExist = false, rootIsReal = false } = options;
  if (!root.startsWith("/")) {
    throw new TypeError(`Data root "${root}" is not an absolute path: the data root must be absolute`);
  }
  _validate(requested);
  const segments = _lexicalSegments(requested);
  let realRoot = root;
  try {
    if (!rootIsReal) realRoot = await Deno.realPath(root);
  } catch (error) {
    // The plugin sees this message, so it must not name the host path.
    throw new HostCallError("io", `Cannot resolve ${_quote(requested)} as the data root is unavailable`, {
      cause: error,
    });
  }
  const { path, exists } = await _resolve(realRoot, segments, requested);
  if (path !== realRoot && !path.startsWith(realRoot === "/" ? "/" : `${realRoot}/`)) {
    throw new HostCallError("denied", `Path ${_quote(requested)} escapes the data root`);
  }
  if (mustExist && !exists) {
    throw new HostCallError("not_found", `Path ${_quote(requested)} does not exist`);
  }
  return path;
}

function _quote(value: string): string {
  const shown = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  // JSON escapes control characters, so the message stays on one line.
  return JSON.stringify(shown);
}

function _validate(requested: string): void {
  if (requested.length === 0) {
    throw new HostCallError("invalid", 'Path "" is empty: a path must name at least the root "/"');
  }
  // More UTF-16 code units than the limit means more bytes too: no need to encode a huge string.
  const tooLong = requested.length > MAX_PATH_BYTES;
  const bytes = tooLong ? requested.length : new TextEncoder().encode(requested).byteLength;
  if (bytes > MAX_PATH_BYTES) {
    const size = tooLong ? `${bytes} or more` : `${bytes}`;
    throw new HostCallError(
      "invalid",
      `Path ${_quote(requested)} is ${size} bytes: paths are limited to ${MAX_PATH_BYTES} bytes`,
    );
  }
  for (let i = 0; i < requested.length; i++) {
    const code = requested.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) {
      const hex = code.toString(16).toUpperCase().padStart(4, "0");
      throw new HostCallError(
        "invalid",
        `Path ${
          _quote(requested)
        } contains the control character U+${hex} at index ${i}: control characters are not allowed`,
      );
    }
    if (code === 0x5c) {
      throw new HostCallError(
        "invalid",
        `Path ${_quote(requested)} contains a backslash at index ${i}: only "/" separates path segments`,
      );
    }
  }
}

/** Resolves `.`, `..` and repeated slashes without touching the file system. */
function _lexicalSegments(requested: string): string[] {
  const segments: string[] = [];
  for (const segment of requested.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length === 0) {
        throw new HostCallError("denied", `Path ${_quote(requested)} escapes the data root`);
      }
      segments.pop();
    } else {
      segments.push(segment);
    }
  }
  return segments;
}

function _append(directory: string, name: string): string {
  return directory === "/" ? `/${name}` : `${directory}/${name}`;
}

function _parent(path: string): string {
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}

function _isUnresolved(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
}

function _ioError(requested: string, error: unknown): HostCallError {
  // Deno's messages quote the host path, so only the error's name is passed on.
  const name = error instanceof Error ? error.name : "unknown error";
  return new HostCallError("io", `Cannot resolve path ${_quote(requested)} (${name})`, { cause: error });
}

async function _resolve(
  realRoot: string,
  segments: string[],
  requested: string,
): Promise<{ path: string; exists: boolean }> {
  const lexical = segments.reduce(_append, realRoot);
  try {
    return { path: await Deno.realPath(lexical), exists: true };
  } catch (error) {
    if (!_isUnresolved(error) && !(error instanceof Deno.errors.FilesystemLoop)) throw _ioError(requested, error);
  }
  // Walk one segment at a time: unlike resolving the longest existing prefix
  // with realPath, this also follows dangling links, which a write would
  // follow to create their target.
  let current = realRoot;
  const pending = segments.toReversed();
  let links = 0;
  while (pending.length > 0) {
    const segment = pending.pop()!;
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      current = _parent(current);
      continue;
    }
    const next = _append(current, segment);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(next);
    } catch (error) {
      if (!_isUnresolved(error)) throw _ioError(requested, error);
      const rest = pending.toReversed().filter((part) => part !== "" && part !== ".");
      if (rest.includes("..")) {
        // Only a link target can bring ".." here; the system cannot go up from a missing directory either.
        throw new HostCallError("not_found", `Path ${_quote(requested)} goes up from a directory that does not exist`);
      }
      return { path: rest.reduce(_append, next), exists: false };
    }
    if (!info.isSymlink) {
      current = next;
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new HostCallError(
        "invalid",
        `Path ${
          _quote(requested)
        } follows more than ${MAX_SYMLINKS} symbolic links: symbolic-link loops are not allowed`,
      );
    }
    let target: string;
    try {
      target = await Deno.readLink(next);
    } catch (error) {
      throw _ioError(requested, error);
    }
    if (target.startsWith("/")) current = "/";
    pending.push(...target.split("/").reverse());
  }
  return { path: current, exists: true };
}
