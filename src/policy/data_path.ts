// Lexical normalization of paths inside the data root, shared by grants,
// resource entities and WASI preopens: "/" is the data root itself.

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Normalizes a data-root path lexically: `.`/`..` resolved, duplicate slashes
 * collapsed, a leading `./` or `/` meaning the root. Returns `"/a/b"` form.
 * @throws {RangeError} On control characters, backslashes or `..` above the root.
 */
export function normalizeDataPath(path: string): string {
  if (path === "") throw new RangeError("Path is empty");
  if (CONTROL.test(path)) throw new RangeError(`Path ${JSON.stringify(path)} contains a control character`);
  if (path.includes("\\")) throw new RangeError(`Path ${JSON.stringify(path)} contains a backslash`);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw new RangeError(`Path ${JSON.stringify(path)} escapes the data root`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return "/" + parts.join("/");
}

/** The directory a normalized path is in; the root's is the root. */
export function parentDir(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** Every ancestor directory of a normalized path, nearest first, ending with "/". */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  let current = path;
  while (current !== "/") {
    current = parentDir(current);
    out.push(current);
  }
  return out;
}
