// Cedar's string escapes: Rust's (rustc_lexer `unescape_str`), as Cedar's
// parser undoes them. `\n \r \t \\ \0 \' \"`, `\xHH` up to 7F, and `\u{H..}`
// with 1-6 hex digits and underscores after the first, not a surrogate, at most
// 10FFFF. Anything else after a backslash is an error, as is a bare carriage
// return. In a `like` pattern `\*` is a literal star and every other star, an
// escaped one (`\u{2A}`) included, is a wildcard.
import type { EstPatternElem } from "./parse_policies.ts";

/** Reports a bad escape at an index of the raw string; never returns. */
export type EscapeFailure = (index: number, detail: string) => never;

const WILDCARD: EstPatternElem = "Wildcard";

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Undoes the escapes of a string literal's contents (the lexer's `escaped`
 * strings: others are their own value).
 *
 * @param raw The text between the quotes.
 * @param fail Called with the index of a bad escape.
 * @returns The string's value.
 */
export function unescapeString(raw: string, fail: EscapeFailure): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < raw.length;) {
    const c = raw.charCodeAt(i);
    if (c === 92) {
      out += raw.slice(from, i);
      const [value, next] = escape(raw, i, false, fail);
      out += value;
      i = from = next;
    } else {
      if (c === 13) fail(i, "a bare carriage return is not allowed in a string literal; write \\r");
      i++;
    }
  }
  return wellFormed(out + raw.slice(from));
}

/**
 * Turns a `like` pattern literal's contents into Cedar's JSON pattern: one
 * `{ Literal }` per character (as cedar-wasm emits it) and `"Wildcard"` for
 * each unescaped star.
 *
 * @param raw The text between the quotes.
 * @param fail Called with the index of a bad escape.
 * @returns The pattern elements.
 */
export function unescapePattern(raw: string, fail: EscapeFailure): EstPatternElem[] {
  const elems: EstPatternElem[] = [];
  const text = wellFormed(raw);
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    let char: string;
    if (c === 92) {
      const [value, next] = escape(text, i, true, fail);
      if (next === i + 2 && text.charCodeAt(i + 1) === 42) {
        elems.push({ Literal: "*" });
        i = next;
        continue;
      }
      char = value;
      i = next;
    } else if (c === 13) {
      fail(i, "a bare carriage return is not allowed in a string literal; write \\r");
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      char = text.slice(i, i + 2);
      i += 2;
    } else {
      char = text[i]!;
      i++;
    }
    elems.push(char === "*" ? WILDCARD : { Literal: char });
  }
  return elems;
}

/** Reads the escape at `raw[i] === "\\"`; returns its value and the index past it. */
function escape(raw: string, i: number, pattern: boolean, fail: EscapeFailure): [string, number] {
  const e = raw.charCodeAt(i + 1);
  const bad = (end: number, why: string): never =>
    fail(i, `invalid escape ${JSON.stringify(raw.slice(i, Math.min(end, raw.length)))} in a string literal: ${why}`);
  switch (e) {
    case 110: // n
      return ["\n", i + 2];
    case 114: // r
      return ["\r", i + 2];
    case 116: // t
      return ["\t", i + 2];
    case 92:
      return ["\\", i + 2];
    case 48: // 0
      return ["\0", i + 2];
    case 39:
      return ["'", i + 2];
    case 34:
      return ['"', i + 2];
    case 42: // *
      if (pattern) return ["*", i + 2];
      return bad(i + 2, "\\* is an escape only in a like pattern");
    case 120: { // x
      const hi = hexDigit(raw.charCodeAt(i + 2));
      const lo = hexDigit(raw.charCodeAt(i + 3));
      if (hi < 0 || lo < 0) return bad(i + 4, "\\x takes two hex digits");
      const value = hi * 16 + lo;
      if (value > 0x7f) return bad(i + 4, "\\x goes up to \\x7F; use \\u{...} beyond ASCII");
      return [String.fromCharCode(value), i + 4];
    }
    case 117: { // u
      if (raw.charCodeAt(i + 2) !== 123) return bad(i + 3, "\\u takes braces, as in \\u{1F600}");
      let j = i + 3;
      const first = raw.charCodeAt(j);
      if (first === 95) return bad(j + 1, "a unicode escape cannot start with _");
      if (first === 125) return bad(j + 1, "a unicode escape needs a hex digit");
      let value = hexDigit(first);
      if (value < 0) return bad(j + 1, "a unicode escape takes hex digits");
      let digits = 1;
      for (j++;; j++) {
        if (j >= raw.length) return bad(j, "unclosed unicode escape");
        const c = raw.charCodeAt(j);
        if (c === 95) continue;
        if (c === 125) break;
        const digit = hexDigit(c);
        if (digit < 0) return bad(j + 1, "a unicode escape takes hex digits");
        if (++digits > 6) return bad(j + 1, "a unicode escape takes at most 6 hex digits");
        value = value * 16 + digit;
      }
      if (value > 0x10ffff) return bad(j + 1, "beyond the last code point, 10FFFF");
      if (value >= 0xd800 && value <= 0xdfff) return bad(j + 1, "a surrogate is not a character");
      return [String.fromCodePoint(value), j + 1];
    }
    default:
      return bad(i + 2, "the escapes are \\n \\r \\t \\\\ \\0 \\' \\\" \\xHH and \\u{...}");
  }
}

// cedar-wasm receives text as UTF-8, where a lone surrogate becomes U+FFFD.
function wellFormed(text: string): string {
  return text.isWellFormed() ? text : text.toWellFormed();
}
