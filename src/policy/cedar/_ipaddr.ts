// Cedar's `ipaddr`: an IPv4 or IPv6 address with a prefix length, parsed as
// cedar-policy-core/src/extensions/ipaddr.rs parses it (Rust's std address
// grammar, no IPv4 embedded in IPv6, strict prefixes).
import { type ExtensionFunction, ExtensionValue, type Value } from "./value.ts";
import { checkArity, extensionError, quote, stringArgument, typeError, utf8Length } from "./_extension_errors.ts";

/** The longest text an address can have: 8 groups of 4, 7 colons, `/128`. */
const MAX_TEXT_LENGTH = 43;

/** An `ipaddr` value: the address as written (not masked) and its prefix length. */
export class IpAddr extends ExtensionValue {
  override readonly extension = "ipaddr" as const;
  /** The address as 32-bit words, most significant first: one for IPv4, four for IPv6. */
  readonly words: readonly number[];
  /** The prefix length: 32 or 128 for a single address. */
  readonly prefix: number;
  /** The constructor's argument, for display. */
  readonly source: string;

  /**
   * Wraps a parsed address.
   * @param words One word (IPv4) or four (IPv6), each an unsigned 32-bit integer.
   * @param prefix 0 to 32, or 0 to 128.
   * @param source The literal it came from.
   */
  constructor(words: readonly number[], prefix: number, source: string) {
    super();
    this.words = words;
    this.prefix = prefix;
    this.source = source;
  }

  /** Whether this is an IPv6 address. */
  get isV6(): boolean {
    return this.words.length === 4;
  }

  /**
   * Equal exactly when family, address bits and prefix length are: `10.0.0.1`
   * equals `10.0.0.1/32`, but `10.0.0.1/24` is not `10.0.0.0/24`.
   */
  override key(): string {
    return this.#key ??= `${this.words.join(":")}/${this.prefix}`;
  }
  #key: string | undefined;

  /** The Cedar expression that built it. */
  override toString(): string {
    return `ip(${quote(this.source)})`;
  }

  /** `127.0.0.0/8` (with a prefix of at least 8) or `::1/128`. */
  isLoopback(): boolean {
    const w = this.words;
    if (w.length === 1) return (w[0] as number) >>> 24 === 127 && this.prefix >= 8;
    return w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 1 && this.prefix >= 128;
  }

  /** `224.0.0.0/4` or `ff00::/8`, with a prefix at least that long. */
  isMulticast(): boolean {
    const w = this.words;
    if (w.length === 1) return (w[0] as number) >>> 28 === 0xe && this.prefix >= 4;
    return (w[0] as number) >>> 24 === 0xff && this.prefix >= 8;
  }

  /**
   * Whether every address of this range lies in `range`; false across families.
   * @param range The enclosing range.
   */
  isInRange(range: IpAddr): boolean {
    const n = this.words.length;
    if (n !== range.words.length) return false;
    // range's network <= this network, compared word by word from the top
    let networkOk = true;
    for (let k = 0; k < n; k++) {
      const outer = masked(range.words[k] as number, range.prefix - 32 * k, false);
      const inner = masked(this.words[k] as number, this.prefix - 32 * k, false);
      if (outer !== inner) {
        networkOk = outer < inner;
        break;
      }
    }
    if (!networkOk) return false;
    // this broadcast <= range's broadcast
    for (let k = 0; k < n; k++) {
      const inner = masked(this.words[k] as number, this.prefix - 32 * k, true);
      const outer = masked(range.words[k] as number, range.prefix - 32 * k, true);
      if (outer !== inner) return inner < outer;
    }
    return true;
  }
}

/** A word's network part (host bits cleared) or broadcast part (host bits set). */
function masked(word: number, bits: number, broadcast: boolean): number {
  const mask = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  return broadcast ? (word | ~mask) >>> 0 : (word & mask) >>> 0;
}

function failed(message: string): Error {
  return extensionError("ipaddr", message);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Rust's IPv4 grammar: four decimal octets of 1 to 3 digits, no leading zero. Returns -1 when refused. */
function parseIpv4(text: string, start: number, end: number): number {
  let pos = start;
  let address = 0;
  for (let group = 0; group < 4; group++) {
    if (group > 0) {
      if (pos >= end || text.charCodeAt(pos) !== 46) return -1;
      pos++;
    }
    const first = pos;
    let octet = 0;
    while (pos < end) {
      const c = text.charCodeAt(pos);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + c - 48;
      if (++pos - first > 3) return -1;
    }
    const length = pos - first;
    if (length === 0 || octet > 255 || (length > 1 && text.charCodeAt(first) === 48)) return -1;
    address = address * 256 + octet;
  }
  return pos === end ? address : -1;
}

// Scratch state of the IPv6 reader: one evaluation at a time, no allocation.
const groups = [0, 0, 0, 0, 0, 0, 0, 0];
const tail = [0, 0, 0, 0, 0, 0, 0];
let cursor = 0;

/** Rust's `read_groups`: up to `limit` colon-separated hex groups of 1 to 4 digits; moves `cursor`. */
function readGroups(text: string, end: number, into: number[], limit: number): number {
  for (let i = 0; i < limit; i++) {
    let pos = cursor;
    if (i > 0) {
      if (pos >= end || text.charCodeAt(pos) !== 58) return i;
      pos++;
    }
    const first = pos;
    let group = 0;
    while (pos < end) {
      const digit = hexDigit(text.charCodeAt(pos));
      if (digit < 0) break;
      group = group * 16 + digit;
      if (++pos - first > 4) return i;
    }
    if (pos === first) return i;
    into[i] = group;
    cursor = pos;
  }
  return limit;
}

/** Rust's IPv6 grammar without the dotted tail (Cedar refuses those earlier). Returns undefined when refused. */
function parseIpv6(text: string, start: number, end: number): number[] | undefined {
  cursor = start;
  const headSize = readGroups(text, end, groups, 8);
  if (headSize < 8) {
    if (cursor + 1 >= end || text.charCodeAt(cursor) !== 58 || text.charCodeAt(cursor + 1) !== 58) return undefined;
    cursor += 2;
    const tailSize = readGroups(text, end, tail, 8 - (headSize + 1));
    for (let i = headSize; i < 8; i++) groups[i] = 0;
    for (let i = 0; i < tailSize; i++) groups[8 - tailSize + i] = tail[i] as number;
  }
  if (cursor !== end) return undefined;
  const g = groups as [number, number, number, number, number, number, number, number];
  return [
    g[0] * 0x10000 + g[1],
    g[2] * 0x10000 + g[3],
    g[4] * 0x10000 + g[5],
    g[6] * 0x10000 + g[7],
  ];
}

/** Rust's `IpAddr::from_str` over `text[start, end)`. */
function parseAddress(text: string, start: number, end: number): number[] | undefined {
  const v4 = parseIpv4(text, start, end);
  if (v4 >= 0) return [v4];
  return parseIpv6(text, start, end);
}

function parsePrefix(text: string, max: number, maxLength: number): number {
  const length = utf8Length(text);
  if (length > maxLength) throw failed(`error parsing prefix: string length ${length} is too large`);
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) throw failed(`error parsing prefix \`${text}\`: encountered non-digit`);
    value = value * 10 + c - 48;
  }
  if (text.length > 1 && text.charCodeAt(0) === 48) throw failed(`error parsing prefix \`${text}\`: leading zero(s)`);
  if (text.length === 0) {
    throw failed("error parsing prefix from the string ``: cannot parse integer from empty string");
  }
  if (value > 255) {
    throw failed(`error parsing prefix from the string \`${text}\`: number too large to fit in target type`);
  }
  if (value > max) throw failed(`error parsing prefix: ${value} is larger than the limit ${max}`);
  return value;
}

function atLeastTwo(text: string, c: string): boolean {
  const first = text.indexOf(c);
  return first >= 0 && text.indexOf(c, first + 1) >= 0;
}

/**
 * Parses an address or a CIDR range as Cedar's `ip()` does.
 * @param text `10.0.0.1`, `10.0.0.0/8`, `::1`, `ff00::/8`, ...
 * @returns The value.
 * @throws {CedarEvalError} When Cedar refuses the text.
 */
export function parseIp(text: string): IpAddr {
  if (text.length > MAX_TEXT_LENGTH || utf8Length(text) > MAX_TEXT_LENGTH) {
    throw failed(`error parsing IP address from string \`${text}\`: string length is too large`);
  }
  if (atLeastTwo(text, ":") && atLeastTwo(text, ".")) {
    throw failed(
      `error parsing IP address from string: We do not accept IPv4 embedded in IPv6 (e.g., ::ffff:127.0.0.1). Found: \`${text}\``,
    );
  }
  const slash = text.indexOf("/");
  if (slash < 0) {
    const words = parseAddress(text, 0, text.length);
    if (words === undefined) throw failed(`invalid IP address: ${text}`);
    return new IpAddr(words, words.length === 1 ? 32 : 128, text);
  }
  const words = parseAddress(text, 0, slash);
  if (words === undefined) {
    throw failed(`error parsing IP address from the string \`${text.slice(0, slash)}\`: invalid IP address syntax`);
  }
  const prefixText = text.slice(slash + 1);
  const prefix = words.length === 1 ? parsePrefix(prefixText, 32, 2) : parsePrefix(prefixText, 128, 3);
  return new IpAddr(words, prefix, text);
}

function asIp(value: Value | undefined): IpAddr {
  if (value instanceof IpAddr) return value;
  throw typeError("ipaddr", value);
}

function test(name: string, predicate: (ip: IpAddr) => boolean): ExtensionFunction {
  return (args) => {
    checkArity(name, 1, args);
    return predicate(asIp(args[0]));
  };
}

/** The `ipaddr` extension's functions by Cedar name. */
export const IPADDR_FUNCTIONS: ReadonlyArray<readonly [string, ExtensionFunction]> = [
  ["ip", (args) => parseIp(stringArgument("ip", args))],
  ["isIpv4", test("isIpv4", (ip) => !ip.isV6)],
  ["isIpv6", test("isIpv6", (ip) => ip.isV6)],
  ["isLoopback", test("isLoopback", (ip) => ip.isLoopback())],
  ["isMulticast", test("isMulticast", (ip) => ip.isMulticast())],
  ["isInRange", (args) => {
    checkArity("isInRange", 2, args);
    return asIp(args[0]).isInRange(asIp(args[1]));
  }],
];
