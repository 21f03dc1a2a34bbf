// keycard AssemblyScript PDK.
//
// A small Extism PDK plus typed wrappers for keycard's host functions
// (README.md, "Host-function ABI"). Compile plugins with
//   --use abort=<path-to-this-file-without-.ts>/abortHandler
// so that AssemblyScript's default `env.abort` import is replaced: keycard
// refuses any import outside `extism:host/env` and `extism:host/user`.
//
// AssemblyScript only emits the imports a plugin actually reaches, so a plugin
// that never calls e.g. fsWrite() does not import keycard_fs_write.

// ---------------------------------------------------------------------------
// Extism host ABI (module "extism:host/env"). Addresses are i64
// `blockIndex << 48 | offset`.
// ---------------------------------------------------------------------------

// @ts-ignore: decorator
@external("extism:host/env", "alloc")
export declare function extism_alloc(length: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "free")
export declare function extism_free(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "length")
export declare function extism_length(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "load_u8")
export declare function extism_load_u8(offs: u64): u8;
// @ts-ignore: decorator
@external("extism:host/env", "load_u64")
export declare function extism_load_u64(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "store_u8")
export declare function extism_store_u8(offs: u64, value: u8): void;
// @ts-ignore: decorator
@external("extism:host/env", "store_u64")
export declare function extism_store_u64(offs: u64, value: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "input_length")
export declare function extism_input_length(): u64;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u8")
export declare function extism_input_load_u8(offs: u64): u8;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u64")
export declare function extism_input_load_u64(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "output_set")
export declare function extism_output_set(offs: u64, length: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "error_set")
export declare function extism_error_set(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "config_get")
export declare function extism_config_get(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "var_get")
export declare function extism_var_get(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "var_set")
export declare function extism_var_set(offs: u64, valueOffs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_info")
export declare function extism_log_info(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_debug")
export declare function extism_log_debug(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_warn")
export declare function extism_log_warn(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_error")
export declare function extism_log_error(offs: u64): void;

// ---------------------------------------------------------------------------
// keycard host functions (module "extism:host/user"), all (i64) -> i64.
// ---------------------------------------------------------------------------

// @ts-ignore: decorator
@external("extism:host/user", "keycard_fs_read")
export declare function keycard_fs_read(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_fs_write")
export declare function keycard_fs_write(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_fs_list")
export declare function keycard_fs_list(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_fs_delete")
export declare function keycard_fs_delete(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_http_request")
export declare function keycard_http_request(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_kv_get")
export declare function keycard_kv_get(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_kv_set")
export declare function keycard_kv_set(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_kv_delete")
export declare function keycard_kv_delete(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_env_get")
export declare function keycard_env_get(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_log_write")
export declare function keycard_log_write(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_clock_now")
export declare function keycard_clock_now(req: u64): u64;
// @ts-ignore: decorator
@external("extism:host/user", "keycard_random_get")
export declare function keycard_random_get(req: u64): u64;

// ---------------------------------------------------------------------------
// Extism memory helpers
// ---------------------------------------------------------------------------

/** Copies `len` bytes starting at `ptr` (wasm memory) into a new Extism block. */
export function writeBlockRaw(ptr: usize, len: i32): u64 {
  const offs = extism_alloc(<u64>len);
  if (offs == 0) return 0;
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    extism_store_u64(offs + <u64>i, load<u64>(ptr + <usize>i));
  }
  for (; i < len; i++) {
    extism_store_u8(offs + <u64>i, load<u8>(ptr + <usize>i));
  }
  return offs;
}

/** Copies bytes into a new Extism block and returns its address (0 if alloc failed). */
export function writeBlock(bytes: Uint8Array): u64 {
  return writeBlockRaw(bytes.dataStart, bytes.length);
}

/** Copies a string, UTF-8 encoded, into a new Extism block. */
export function writeString(s: string): u64 {
  const buf = String.UTF8.encode(s);
  return writeBlockRaw(changetype<usize>(buf), buf.byteLength);
}

/** Reads the Extism block at `offs`, skipping its first `skip` bytes. */
export function readBlockFrom(offs: u64, skip: i32): Uint8Array {
  if (offs == 0) return new Uint8Array(0);
  const total = <i64>extism_length(offs);
  let len = <i32>(total - <i64>skip);
  if (len < 0) len = 0;
  const out = new Uint8Array(len);
  const ptr = out.dataStart;
  const base = offs + <u64>skip;
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    store<u64>(ptr + <usize>i, extism_load_u64(base + <u64>i));
  }
  for (; i < len; i++) {
    store<u8>(ptr + <usize>i, extism_load_u8(base + <u64>i));
  }
  return out;
}

/** Reads the whole Extism block at `offs`. */
export function readBlock(offs: u64): Uint8Array {
  return readBlockFrom(offs, 0);
}

// ---------------------------------------------------------------------------
// Bytes and strings
// ---------------------------------------------------------------------------

/** Encodes a string as UTF-8 bytes. */
export function toBytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** Decodes UTF-8 bytes to a string. */
export function fromBytes(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

/** Concatenates `a` + 0x00 + `b` (keycard's "JSON header, NUL, raw bytes" framing). */
export function joinNul(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + 1 + b.length);
  out.set(a, 0);
  out[a.length] = 0;
  out.set(b, a.length + 1);
  return out;
}

/** Index of the first 0x00 byte, or -1. */
export function indexOfNul(b: Uint8Array): i32 {
  for (let i = 0; i < b.length; i++) {
    if (unchecked(b[i]) == 0) return i;
  }
  return -1;
}

const HEX = "0123456789abcdef";

/** Lower-case hex of bytes. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) {
    const v = <i32>unchecked(b[i]);
    s += HEX.charAt(v >> 4) + HEX.charAt(v & 15);
  }
  return s;
}

/** Returns `s` as a quoted JSON string literal (escapes `"`, `\` and control characters). */
export function jsonString(s: string): string {
  let out = "\"";
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    if (i > start) out += s.substring(start, i);
    start = i + 1;
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c == 0x08) out += "\\b";
    else if (c == 0x0c) out += "\\f";
    else out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
  }
  if (start < n) out += s.substring(start, n);
  return out + "\"";
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Minimal JSON scan: finds `"key"` followed by `:` and a JSON string value in
 * `json` and returns the decoded string, or null. Not a JSON parser: meant for
 * flat objects such as keycard's `{"code": "...", "message": "..."}`.
 */
export function jsonGetString(json: string, key: string): string | null {
  const needle = jsonString(key);
  let from = 0;
  const n = json.length;
  while (true) {
    const at = json.indexOf(needle, from);
    if (at < 0) return null;
    let i = at + needle.length;
    from = i;
    while (i < n && isSpace(json.charCodeAt(i))) i++;
    if (i >= n || json.charCodeAt(i) != 0x3a) continue; // ':'
    i++;
    while (i < n && isSpace(json.charCodeAt(i))) i++;
    if (i >= n || json.charCodeAt(i) != 0x22) return null; // not a string value
    return jsonDecodeStringAt(json, i + 1);
  }
}

function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

// ---------------------------------------------------------------------------
// Input, output, errors, config, vars, logging
// ---------------------------------------------------------------------------

/** The call's input bytes. */
export function inputBytes(): Uint8Array {
  const len = <i32>extism_input_length();
  const out = new Uint8Array(len);
  const ptr = out.dataStart;
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    store<u64>(ptr + <usize>i, extism_input_load_u64(<u64>i));
  }
  for (; i < len; i++) {
    store<u8>(ptr + <usize>i, extism_input_load_u8(<u64>i));
  }
  return out;
}

/** The call's input decoded as UTF-8. */
export function inputString(): string {
  return fromBytes(inputBytes());
}

/** Sets the call's output. */
export function outputBytes(b: Uint8Array): void {
  const offs = writeBlock(b);
  if (offs != 0) extism_output_set(offs, <u64>b.length);
}

/** Sets the call's output to a UTF-8 string. */
export function outputString(s: string): void {
  outputBytes(toBytes(s));
}

/** Sets the call's error message (the export should then return 1). */
export function setError(msg: string): void {
  const offs = writeString(msg);
  if (offs != 0) extism_error_set(offs);
}

/** A config value of the plugin's manifest, or null when absent. */
export function configGet(key: string): string | null {
  const k = writeString(key);
  const v = extism_config_get(k); // the host frees the key block
  if (v == 0) return null;
  const s = fromBytes(readBlock(v));
  extism_free(v);
  return s;
}

/** An Extism plugin variable, or null when absent. */
export function varGet(key: string): Uint8Array | null {
  const k = writeString(key);
  const v = extism_var_get(k); // the host frees the key block
  if (v == 0) return null;
  const b = readBlock(v);
  extism_free(v);
  return b;
}

/** Sets an Extism plugin variable (null deletes it). */
export function varSet(key: string, value: Uint8Array | null): void {
  const k = writeString(key);
  const v = value === null ? <u64>0 : writeBlock(changetype<Uint8Array>(value));
  extism_var_set(k, v);
  extism_free(k);
  if (v != 0) extism_free(v);
}

/** Logs through the Extism logger (not keycard's audited log.write). */
export function extismLog(level: string, msg: string): void {
  const offs = writeString(msg);
  if (level == "error") extism_log_error(offs);
  else if (level == "warn") extism_log_warn(offs);
  else if (level == "debug") extism_log_debug(offs);
  else extism_log_info(offs);
  extism_free(offs);
}

// ---------------------------------------------------------------------------
// abort handler: pass with `--use abort=<this file>/abortHandler`
// ---------------------------------------------------------------------------

/** Replaces AssemblyScript's `env.abort`: sets an Extism error (message at file:line:col) and traps. */
export function abortHandler(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32,
): void {
  let msg = "abort";
  if (message !== null) msg += ": " + changetype<string>(message);
  msg += " at ";
  msg += fileName !== null ? changetype<string>(fileName) : "?";
  msg += ":" + lineNumber.toString() + ":" + columnNumber.toString();
  setError(msg);
  unreachable();
}

// ---------------------------------------------------------------------------
// keycard host calls
// ---------------------------------------------------------------------------

/** Result of a keycard host call: either ok bytes or an error code and message. */
export class HostResult {
  constructor(
    public ok: bool,
    public bytes: Uint8Array,
    public errorCode: string = "",
    public errorMessage: string = "",
  ) {}

  /** The ok payload decoded as UTF-8. */
  text(): string {
    return fromBytes(this.bytes);
  }

  /** For "JSON + NUL + raw bytes" results (http): the JSON part. */
  head(): string {
    const at = indexOfNul(this.bytes);
    return at < 0 ? this.text() : fromBytes(this.bytes.subarray(0, at));
  }

  /** For "JSON + NUL + raw bytes" results (http): the raw part. */
  body(): Uint8Array {
    const at = indexOfNul(this.bytes);
    return at < 0 ? new Uint8Array(0) : this.bytes.subarray(at + 1);
  }

  /** The error as JSON `{"code","message"}` (for embedding in plugin output). */
  errorJson(): string {
    return "{\"code\":" + jsonString(this.errorCode) + ",\"message\":" +
      jsonString(this.errorMessage) + "}";
  }
}

/** A keycard host import: `(i64 request) -> i64 response`. */
export type HostFn = (req: u64) => u64;

/**
 * Calls a keycard host function: writes `request` to a new block, calls `fn`,
 * decodes the status byte and frees both blocks. Never traps on an error value.
 */
export function callHost(fn: HostFn, request: Uint8Array): HostResult {
  const req = writeBlock(request);
  if (req == 0) {
    return new HostResult(false, new Uint8Array(0), "limit", "could not allocate the request block");
  }
  const res = fn(req);
  extism_free(req);
  if (res == 0 || extism_length(res) == 0) {
    if (res != 0) extism_free(res);
    return new HostResult(false, new Uint8Array(0), "invalid", "empty response from host");
  }
  const status = extism_load_u8(res);
  const payload = readBlockFrom(res, 1);
  extism_free(res);
  if (status == 0) return new HostResult(true, payload);
  const json = fromBytes(payload);
  const code = jsonGetString(json, "code");
  const message = jsonGetString(json, "message");
  return new HostResult(
    false,
    payload,
    code !== null ? changetype<string>(code) : "unknown",
    message !== null ? changetype<string>(message) : json,
  );
}

/** Calls a keycard host function with a JSON request string. */
export function callHostJson(fn: HostFn, json: string): HostResult {
  return callHost(fn, toBytes(json));
}

/** fs.read: file bytes. */
export function fsRead(path: string): HostResult {
  return callHostJson(keycard_fs_read, "{\"path\":" + jsonString(path) + "}");
}

/** fs.write: ok payload is `{"bytes": n}`. */
export function fsWrite(path: string, data: Uint8Array): HostResult {
  const head = toBytes("{\"path\":" + jsonString(path) + "}");
  return callHost(keycard_fs_write, joinNul(head, data));
}

/** fs.list: ok payload is `[{"name","kind"}]`. */
export function fsList(path: string): HostResult {
  return callHostJson(keycard_fs_list, "{\"path\":" + jsonString(path) + "}");
}

/** fs.delete: empty ok payload. */
export function fsDelete(path: string): HostResult {
  return callHostJson(keycard_fs_delete, "{\"path\":" + jsonString(path) + "}");
}

/**
 * http.request: ok payload is `{"status","headers"}` + NUL + body (use
 * `head()` and `body()`). `headersJson` must be a JSON object text.
 */
export function httpRequest(
  method: string,
  url: string,
  body: Uint8Array | null = null,
  headersJson: string = "{}",
): HostResult {
  const head = toBytes(
    "{\"url\":" + jsonString(url) + ",\"method\":" + jsonString(method) +
      ",\"headers\":" + headersJson + "}",
  );
  const b = body === null ? new Uint8Array(0) : changetype<Uint8Array>(body);
  return callHost(keycard_http_request, joinNul(head, b));
}

/** kv.get: value bytes; a `not_found` error when absent. */
export function kvGet(key: string): HostResult {
  return callHostJson(keycard_kv_get, "{\"key\":" + jsonString(key) + "}");
}

/** kv.set: empty ok payload. */
export function kvSet(key: string, value: Uint8Array): HostResult {
  const head = toBytes("{\"key\":" + jsonString(key) + "}");
  return callHost(keycard_kv_set, joinNul(head, value));
}

/** kv.delete: empty ok payload. */
export function kvDelete(key: string): HostResult {
  return callHostJson(keycard_kv_delete, "{\"key\":" + jsonString(key) + "}");
}

/** env.get: UTF-8 value (use `text()`). */
export function envGet(name: string): HostResult {
  return callHostJson(keycard_env_get, "{\"name\":" + jsonString(name) + "}");
}

/** log.write: empty ok payload. */
export function logWrite(level: string, message: string): HostResult {
  return callHostJson(
    keycard_log_write,
    "{\"level\":" + jsonString(level) + ",\"message\":" + jsonString(message) + "}",
  );
}

/** clock.now: ok payload is the JSON `{"unixMs": n}` (use `text()`). */
export function clockNow(): HostResult {
  return callHostJson(keycard_clock_now, "{}");
}

/** random.get: `n` random bytes. */
export function randomGet(n: i32): HostResult {
  return callHostJson(keycard_random_get, "{\"bytes\":" + n.toString() + "}");
}

// ---------------------------------------------------------------------------
// Base64, hashing and a small structural JSON reader (used by route-hook
// plugins: HookInput/HookOutput carry bodies as base64 inside JSON).
// ---------------------------------------------------------------------------

/** Standard base64 (RFC 4648, with `=` padding) of bytes. */
export function base64Encode(b: Uint8Array): string {
  const n = b.length;
  const out = new Uint8Array(((n + 2) / 3) * 4);
  // Static UTF-16 string data (a literal here, not a module global, so that
  // plugins that never encode carry none of it): symbol k at alphabet + 2k.
  const alphabet = changetype<usize>("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  let o = 0;
  let i = 0;
  for (; i + 3 <= n; i += 3) {
    const v = (<u32>unchecked(b[i]) << 16) | (<u32>unchecked(b[i + 1]) << 8) | <u32>unchecked(b[i + 2]);
    unchecked((out[o] = <u8>load<u16>(alphabet + (<usize>((v >> 18) & 63) << 1))));
    unchecked((out[o + 1] = <u8>load<u16>(alphabet + (<usize>((v >> 12) & 63) << 1))));
    unchecked((out[o + 2] = <u8>load<u16>(alphabet + (<usize>((v >> 6) & 63) << 1))));
    unchecked((out[o + 3] = <u8>load<u16>(alphabet + (<usize>(v & 63) << 1))));
    o += 4;
  }
  const rest = n - i;
  if (rest > 0) {
    const v = (<u32>unchecked(b[i]) << 16) | (rest == 2 ? <u32>unchecked(b[i + 1]) << 8 : 0);
    out[o] = <u8>load<u16>(alphabet + (<usize>((v >> 18) & 63) << 1));
    out[o + 1] = <u8>load<u16>(alphabet + (<usize>((v >> 12) & 63) << 1));
    out[o + 2] = rest == 2 ? <u8>load<u16>(alphabet + (<usize>((v >> 6) & 63) << 1)) : 0x3d;
    out[o + 3] = 0x3d;
  }
  return fromBytes(out);
}

/** Standard base64 of a string's UTF-8 bytes. */
export function base64EncodeString(s: string): string {
  return base64Encode(toBytes(s));
}

function b64Value(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41; // A-Z
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26; // a-z
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52; // 0-9
  if (c == 0x2b || c == 0x2d) return 62; // + (or URL-safe -)
  if (c == 0x2f || c == 0x5f) return 63; // / (or URL-safe _)
  return -1;
}

/**
 * Decodes base64 (standard or URL-safe alphabet; `=` padding optional; ASCII
 * whitespace ignored). Returns null on any other character or a dangling
 * single trailing symbol.
 */
export function base64Decode(s: string): Uint8Array | null {
  const n = s.length;
  const out = new Uint8Array((n * 3) >> 2);
  let o = 0;
  let acc = 0;
  let bits = 0;
  let symbols = 0;
  let padded = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) continue;
    if (c == 0x3d) { // '='
      padded = true;
      continue;
    }
    if (padded) return null; // data after padding
    const v = b64Value(c);
    if (v < 0) return null;
    symbols++;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = <u8>((acc >> bits) & 0xff);
    }
  }
  if ((symbols & 3) == 1) return null;
  return out.slice(0, o);
}

/** 64-bit FNV-1a hash of bytes. */
export function fnv1a64(b: Uint8Array): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < b.length; i++) {
    h ^= <u64>unchecked(b[i]);
    h *= 0x100000001b3;
  }
  return h;
}

/** A u64 as 16 lower-case hex digits (zero-padded). */
export function hex64(v: u64): string {
  let s = "";
  for (let shift = 60; shift >= 0; shift -= 4) {
    s += HEX.charAt(<i32>((v >> <u64>shift) & 15));
  }
  return s;
}

function jsonSkipSpace(json: string, i: i32): i32 {
  const n = json.length;
  while (i < n && isSpace(json.charCodeAt(i))) i++;
  return i;
}

/** Index just after the JSON string literal whose opening quote is at `i`, or -1 if unterminated. */
function jsonStringEnd(json: string, i: i32): i32 {
  const n = json.length;
  i++;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c == 0x22) return i + 1;
    i += c == 0x5c ? 2 : 1;
  }
  return -1;
}

/**
 * Index just after the JSON value starting at (or after whitespace from) `i`,
 * or -1. Strings are scanned with their escapes; objects and arrays by
 * bracket depth (string-aware, structure not validated); scalars up to the
 * next `,` `}` `]` or whitespace.
 */
export function jsonSkipValue(json: string, i: i32): i32 {
  const n = json.length;
  i = jsonSkipSpace(json, i);
  if (i >= n) return -1;
  const c = json.charCodeAt(i);
  if (c == 0x22) return jsonStringEnd(json, i);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (i < n) {
      const d = json.charCodeAt(i);
      if (d == 0x22) {
        i = jsonStringEnd(json, i);
        if (i < 0) return -1;
        continue;
      }
      if (d == 0x7b || d == 0x5b) depth++;
      else if (d == 0x7d || d == 0x5d) {
        depth--;
        if (depth == 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  const start = i;
  while (i < n) {
    const d = json.charCodeAt(i);
    if (d == 0x2c || d == 0x7d || d == 0x5d || isSpace(d)) break;
    i++;
  }
  return i > start ? i : -1;
}

/**
 * Decodes the JSON string literal `raw` (surrounding whitespace allowed), or
 * returns null when `raw` is not a string literal.
 */
export function jsonParseString(raw: string): string | null {
  const i = jsonSkipSpace(raw, 0);
  if (i >= raw.length || raw.charCodeAt(i) != 0x22) return null;
  return jsonDecodeStringAt(raw, i + 1);
}

/**
 * Decodes a JSON string's contents starting just after its opening quote at
 * `i`, up to the closing quote; null when it is unterminated or malformed.
 */
function jsonDecodeStringAt(text: string, i: i32): string | null {
  const n = text.length;
  let out = "";
  let start = i;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c == 0x22) return out + text.substring(start, i);
    if (c != 0x5c) {
      i++;
      continue;
    }
    out += text.substring(start, i);
    if (i + 1 >= n) return null;
    const e = text.charCodeAt(i + 1);
    i += 2;
    if (e == 0x6e) out += "\n";
    else if (e == 0x72) out += "\r";
    else if (e == 0x74) out += "\t";
    else if (e == 0x62) out += "\b";
    else if (e == 0x66) out += "\f";
    else if (e == 0x75) {
      if (i + 4 > n) return null;
      let code = 0;
      for (let k = 0; k < 4; k++) {
        const h = hexValue(text.charCodeAt(i + k));
        if (h < 0) return null;
        code = (code << 4) | h;
      }
      out += String.fromCharCode(code);
      i += 4;
    } else out += String.fromCharCode(e); // \" \\ \/
    start = i;
  }
  return null;
}

/**
 * Reads the top-level members of a JSON object one at a time (no module
 * globals, no closures). `next()` returns false at the end or at the first
 * malformed part (then `malformed` is true).
 */
class JsonMembers {
  i: i32 = 0;
  started: bool = false;
  done: bool = false;
  malformed: bool = false;
  key: string = "";
  raw: string = "";

  constructor(public json: string) {}

  private fail(): bool {
    this.done = true;
    this.malformed = true;
    return false;
  }

  next(): bool {
    if (this.done) return false;
    const json = this.json;
    const n = json.length;
    let i = this.i;
    if (!this.started) {
      this.started = true;
      i = jsonSkipSpace(json, 0);
      if (i >= n || json.charCodeAt(i) != 0x7b) return this.fail();
      i = jsonSkipSpace(json, i + 1);
      if (i < n && json.charCodeAt(i) == 0x7d) {
        this.done = true;
        return false;
      }
    } else {
      i = jsonSkipSpace(json, i);
      if (i >= n) return this.fail();
      const c = json.charCodeAt(i);
      if (c == 0x7d) {
        this.done = true;
        return false;
      }
      if (c != 0x2c) return this.fail();
      i = jsonSkipSpace(json, i + 1);
    }
    if (i >= n || json.charCodeAt(i) != 0x22) return this.fail();
    const ke = jsonStringEnd(json, i);
    if (ke < 0) return this.fail();
    const key = jsonParseString(json.substring(i, ke));
    if (key === null) return this.fail();
    i = jsonSkipSpace(json, ke);
    if (i >= n || json.charCodeAt(i) != 0x3a) return this.fail();
    const vs = jsonSkipSpace(json, i + 1);
    const ve = jsonSkipValue(json, vs);
    if (ve < 0) return this.fail();
    this.key = changetype<string>(key);
    this.raw = json.substring(vs, ve);
    this.i = ve;
    return true;
  }
}

/**
 * The raw JSON text of the top-level member `key` of the object `json` (first
 * occurrence), or null when absent or `json` is not an object. Unlike
 * `jsonGetString` this respects nesting: a key inside a nested object or a
 * string value never matches.
 */
export function jsonGetRaw(json: string, key: string): string | null {
  const members = new JsonMembers(json);
  while (members.next()) {
    if (members.key == key) return members.raw;
  }
  return null;
}

/** The top-level member `key` of `json` decoded as a string, or null when absent or not a string. */
export function jsonGetStringField(json: string, key: string): string | null {
  const raw = jsonGetRaw(json, key);
  return raw === null ? null : jsonParseString(changetype<string>(raw));
}

/** The top-level member `key` of `json` as a boolean: `fallback` when absent or not `true`/`false`. */
export function jsonGetBool(json: string, key: string, fallback: bool): bool {
  const raw = jsonGetRaw(json, key);
  if (raw === null) return fallback;
  if (raw == "true") return true;
  if (raw == "false") return false;
  return fallback;
}

/** The decoded keys of the object `json`'s top-level members, in order (those read before any malformed part; empty when not an object). */
export function jsonObjectKeys(json: string): Array<string> {
  const keys = new Array<string>();
  const members = new JsonMembers(json);
  while (members.next()) keys.push(members.key);
  return keys;
}
