/** Options of {@linkcode normalizePath}. */
export interface NormalizePathOptions {
  /**
   * `"refuse"`: an encoded slash (`%2F`) is a `URIError`; `"keep"`: it stays encoded, a character of its segment
   * (never a separator), for upstreams whose identifiers hold slashes. @default {"refuse"}
   */
  encodedSlashes?: "refuse" | "keep";
}

/** RFC 3986 unreserved characters: their percent-encodings mean the same as the characters. */
const UNRESERVED = /^[A-Za-z0-9._~-]$/;
/** Characters a path segment may hold as they are (RFC 3986 pchar, without `%`). */
const PCHAR = /^[A-Za-z0-9._~!$&'()*+,;=:@-]$/;
const encoder = new TextEncoder();

/**
 * Normalizes a request path before it is matched against routes and
 * forwarded (RFC 3986 6.2.2): percent-encodings of unreserved characters are
 * decoded and the others upper-cased, other characters outside a segment's
 * alphabet are percent-encoded, runs of `/` are merged, and `.` and `..`
 * segments resolved (never above the root). What an upstream might read
 * differently from keycard is refused rather than guessed at: an encoded
 * slash (unless kept), a backslash (literal or encoded), NUL and other
 * control characters, a dot segment written with an encoded dot (`%2e%2e`,
 * `.%2E`), a malformed percent-encoding.
 *
 * @param raw The path as the client sent it (no query or fragment), starting with `/`.
 * @param options Whether encoded slashes are refused or kept.
 * @returns The normalized path, starting with `/`.
 * @throws {URIError} When the path holds one of the refused forms; the message names it and quotes the path.
 *
 * @example Normalize, and refuse an encoded slash
 * ```ts
 * import { normalizePath } from "./normalize_path.ts";
 * normalizePath("/api//orders/./%37/../%7e8"); // "/api/orders/~8"
 * try {
 *   normalizePath("/pub/..%2fpriv/x");
 * } catch (error) {
 *   error instanceof URIError; // true
 * }
 * ```
 */
export function normalizePath(raw: string, options: NormalizePathOptions = {}): string {
  const refuse = (why: string): never => {
    throw new URIError(`Cannot take the path ${JSON.stringify(raw.slice(0, 200))}: ${why}`);
  };
  if (!raw.startsWith("/")) refuse('it does not start with "/"');
  const segments = raw.slice(1).split("/");
  const out: string[] = [];
  for (const [index, segment] of segments.entries()) {
    let value = "";
    let encodedDot = false;
    for (let i = 0; i < segment.length; i++) {
      const char = segment[i]!;
      if (char === "%") {
        const hex = segment.slice(i + 1, i + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) refuse("a malformed percent-encoding");
        i += 2;
        const byte = parseInt(hex, 16);
        const decoded = String.fromCharCode(byte);
        if (byte === 0x2f) {
          if (options.encodedSlashes !== "keep") refuse("an encoded slash (%2F) may read as a separator upstream");
          value += "%2F";
        } else if (byte === 0x5c) refuse("an encoded backslash (%5C) may read as a separator upstream");
        else if (byte === 0) refuse("NUL (%00)");
        else if (byte < 0x20 || byte === 0x7f) refuse("an encoded control character");
        else if (UNRESERVED.test(decoded)) {
          value += decoded;
          if (decoded === ".") encodedDot = true;
        } else value += `%${hex.toUpperCase()}`;
      } else if (char === "\\") refuse("a backslash may read as a separator upstream");
      else if (char < " " || char === "\x7f") refuse("a control character");
      else if (PCHAR.test(char)) value += char;
      else {
        for (const byte of encoder.encode(char)) value += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
      }
    }
    const last = index === segments.length - 1;
    if (value === "." || value === "..") {
      if (encodedDot) refuse("a dot segment written with an encoded dot may be resolved upstream");
      if (value === "..") out.pop();
      if (last) out.push(""); // "/a/b/.." is the directory "/a/"
    } else if (value !== "" || last) out.push(value);
  }
  return `/${out.join("/")}`;
}
