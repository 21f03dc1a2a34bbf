// Cedar's `like`: `*` matches any run of characters, everything else itself.
// Compiled once per pattern into prefix, suffix and inner literals found
// left to right, which is exact for a pattern with only `*` wildcards.
import type { PatternElem } from "@cedar-policy/cedar-wasm/web";

/**
 * Compiles a `like` pattern of Cedar's JSON policy format.
 * @param pattern Literals and wildcards.
 * @returns A test of a whole string against the pattern.
 * @throws {TypeError} When an element is neither `"Wildcard"` nor `{ Literal }`.
 */
export function compileLike(pattern: readonly PatternElem[]): (text: string) => boolean {
  // Literals between wildcards; consecutive wildcards are one.
  const segments: string[] = [""];
  for (const element of pattern) {
    if (element === "Wildcard") {
      if (segments[segments.length - 1] !== "" || segments.length === 1) segments.push("");
    } else if (typeof element === "object" && element !== null && typeof element.Literal === "string") {
      segments[segments.length - 1] += element.Literal;
    } else {
      throw new TypeError(`Unknown \`like\` pattern element ${JSON.stringify(element)}`);
    }
  }
  if (segments.length === 1) {
    const literal = segments[0]!;
    return (text) => text === literal;
  }
  const prefix = segments[0]!;
  const suffix = segments[segments.length - 1]!;
  const inner = segments.slice(1, -1).filter((segment) => segment !== "");
  const minimum = prefix.length + suffix.length + inner.reduce((sum, segment) => sum + segment.length, 0);
  if (inner.length === 0) {
    return (text) => text.length >= minimum && text.startsWith(prefix) && text.endsWith(suffix);
  }
  return (text) => {
    if (text.length < minimum || !text.startsWith(prefix) || !text.endsWith(suffix)) return false;
    const end = text.length - suffix.length;
    let at = prefix.length;
    for (const segment of inner) {
      const found = text.indexOf(segment, at);
      if (found < 0 || found + segment.length > end) return false;
      at = found + segment.length;
    }
    return true;
  };
}
