// redact: a route hook (response phase) with no keycard host calls.
//
// on_response: HookInput JSON in, HookOutput JSON out. Decodes the base64
// response body and, in one linear pass over its bytes:
// - for every JSON-ish member `"<key>" : "<value>"` whose key contains one of
//   the config `patterns` (comma-separated literal substrings, ASCII
//   case-insensitive; default "password,secret,token"), replaces the value
//   with `***` (whitespace around the colon allowed; escapes in the value are
//   honoured when finding its end);
// - masks every AWS access key id (`AKIA` + 16 of [A-Z0-9], not preceded or
//   followed by [A-Z0-9]) as `AKIA****************`.
// Output: {"headers":{"set":{"x-redacted":"<count>"}},"body":"<base64>"};
// with nothing masked, only the header (the body is left as is). When
// bodyTruncated is true, or the body is not valid base64, outputs {} (a
// partial body cannot be redacted reliably).

import {
  base64Decode,
  base64Encode,
  configGet,
  inputString,
  jsonGetBool,
  jsonGetStringField,
  outputString,
  toBytes,
} from "../../../pdk/assemblyscript/assembly/index";

/** A growable byte buffer. */
class Out {
  buf: Uint8Array;
  len: i32 = 0;
  constructor(capacity: i32) {
    this.buf = new Uint8Array(capacity < 16 ? 16 : capacity);
  }
  private grow(extra: i32): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length << 1;
    while (cap < this.len + extra) cap <<= 1;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len), 0);
    this.buf = next;
  }
  byte(b: u8): void {
    this.grow(1);
    unchecked((this.buf[this.len++] = b));
  }
  range(src: Uint8Array, from: i32, to: i32): void {
    if (to <= from) return;
    this.grow(to - from);
    this.buf.set(src.subarray(from, to), this.len);
    this.len += to - from;
  }
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(<u8>s.charCodeAt(i));
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

let count = 0;

function isUpperAlnum(c: i32): bool {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

function lower(c: i32): i32 {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** True when b[at..at+20) is an AWS access key id with [A-Z0-9]-boundaries. */
function awsKeyAt(b: Uint8Array, at: i32): bool {
  const n = b.length;
  if (at + 20 > n) return false;
  if (unchecked(b[at]) != 0x41 || unchecked(b[at + 1]) != 0x4b || unchecked(b[at + 2]) != 0x49 ||
    unchecked(b[at + 3]) != 0x41) return false; // "AKIA"
  if (at > 0 && isUpperAlnum(<i32>unchecked(b[at - 1]))) return false;
  for (let k = at + 4; k < at + 20; k++) {
    if (!isUpperAlnum(<i32>unchecked(b[k]))) return false;
  }
  return !(at + 20 < n && isUpperAlnum(<i32>unchecked(b[at + 20])));
}

/** Copies b[from..to) to out, masking AWS access key ids (they contain no quote, so never straddle a call). */
function copyMasked(out: Out, b: Uint8Array, from: i32, to: i32): void {
  let start = from;
  let i = from;
  while (i + 20 <= to) {
    if (unchecked(b[i]) == 0x41 && awsKeyAt(b, i)) {
      out.range(b, start, i);
      out.ascii("AKIA****************");
      count++;
      i += 20;
      start = i;
    } else i++;
  }
  out.range(b, start, to);
}

/** Index just after the string whose opening quote is at `i` (escapes honoured), or -1 if unterminated. */
function stringEnd(b: Uint8Array, i: i32): i32 {
  const n = b.length;
  i++;
  while (i < n) {
    const c = unchecked(b[i]);
    if (c == 0x22) return i + 1;
    i += c == 0x5c ? 2 : 1;
  }
  return -1;
}

function skipSpace(b: Uint8Array, i: i32): i32 {
  const n = b.length;
  while (i < n) {
    const c = unchecked(b[i]);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
    i++;
  }
  return i;
}

/** True when b[from..to) contains one of the (lower-cased) patterns, ASCII case-insensitively. */
function keyMatches(b: Uint8Array, from: i32, to: i32, patterns: Array<Uint8Array>): bool {
  for (let p = 0; p < patterns.length; p++) {
    const pat = unchecked(patterns[p]);
    const m = pat.length;
    for (let s = from; s + m <= to; s++) {
      let k = 0;
      while (k < m && lower(<i32>unchecked(b[s + k])) == <i32>unchecked(pat[k])) k++;
      if (k == m) return true;
    }
  }
  return false;
}

/** The redacted body; `count` holds the number of masks applied. */
function redact(b: Uint8Array, patterns: Array<Uint8Array>): Uint8Array {
  const n = b.length;
  const out = new Out(n + 64);
  let i = 0;
  while (i < n) {
    if (unchecked(b[i]) != 0x22) {
      let q = i;
      while (q < n && unchecked(b[q]) != 0x22) q++;
      copyMasked(out, b, i, q);
      i = q;
      continue;
    }
    const ke = stringEnd(b, i); // a quoted token b[i..ke)
    if (ke < 0) {
      copyMasked(out, b, i, n);
      break;
    }
    const colon = skipSpace(b, ke);
    if (colon < n && unchecked(b[colon]) == 0x3a) {
      const vs = skipSpace(b, colon + 1);
      if (vs < n && unchecked(b[vs]) == 0x22 && keyMatches(b, i + 1, ke - 1, patterns)) {
        const ve = stringEnd(b, vs);
        if (ve >= 0) {
          copyMasked(out, b, i, vs + 1); // key, colon and the value's opening quote
          out.ascii("***\"");
          count++;
          i = ve;
          continue;
        }
      }
    }
    copyMasked(out, b, i, ke);
    i = ke;
  }
  return out.bytes();
}

function parsePatterns(): Array<Uint8Array> {
  const conf = configGet("patterns");
  const text = conf === null ? "password,secret,token" : changetype<string>(conf);
  const list = new Array<Uint8Array>();
  const parts = text.split(",");
  for (let i = 0; i < parts.length; i++) {
    const p = unchecked(parts[i]).trim().toLowerCase();
    if (p.length > 0) list.push(toBytes(p));
  }
  return list;
}

export function on_response(): i32 {
  const input = inputString();
  if (jsonGetBool(input, "bodyTruncated", false)) {
    outputString("{}");
    return 0;
  }
  const b64 = jsonGetStringField(input, "body");
  const body = b64 === null ? new Uint8Array(0) : base64Decode(changetype<string>(b64));
  if (body === null) {
    outputString("{}");
    return 0;
  }
  count = 0;
  const redacted = redact(changetype<Uint8Array>(body), parsePatterns());
  const header = "{\"set\":{\"x-redacted\":\"" + count.toString() + "\"}}";
  if (count == 0) {
    outputString("{\"headers\":" + header + "}");
  } else {
    outputString("{\"headers\":" + header + ",\"body\":\"" + base64Encode(redacted) + "\"}");
  }
  return 0;
}

/** JSON metadata matching plugin.yaml. */
export function describe(): i32 {
  outputString("{\"name\":\"redact\",\"version\":\"1.0.0\",\"exports\":[\"on_response\",\"describe\"]}");
  return 0;
}
