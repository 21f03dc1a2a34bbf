// IP addresses as keycard's Cedar model sees them: one canonical text per
// address, and the IPv4 address an IPv6 address hands packets to, if any.

/** An IP address in canonical form, with the IPv4 address it reaches. */
export interface IpAddress {
  /**
   * Canonical text: dotted decimal for IPv4, RFC 5952 for IPv6 (lower case,
   * longest zero run compressed, no dotted tail). An IPv4-mapped IPv6 address
   * (`::ffff:a.b.c.d`) is the IPv4 address itself: it is the same host.
   */
  address: string;
  /** 4 or 6, the family of `address`. */
  family: 4 | 6;
  /**
   * The IPv4 address that packets to `address` reach: `address` itself for
   * IPv4; for IPv6, the IPv4 address embedded by IPv4-compatible (`::/96`),
   * IPv4-translated (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`, and the
   * local-use `64:ff9b:1::/48` in its /96 layout), 6to4 (`2002::/16`) and
   * Teredo (`2001::/32`, the de-obfuscated client address). Absent for other
   * IPv6 addresses.
   */
  ipv4?: string;
}

const _DECIMAL_OCTET = /^(?:0|[1-9]\d{0,2})$/;
const _HEX_GROUP = /^[0-9a-f]{1,4}$/;

/**
 * Parses an IP address strictly and classifies what it embeds. Only canonical
 * notations are accepted: IPv4 as four decimal octets without leading zeros
 * (`127.1`, `0x7f.0.0.1` and `0177.0.0.1` are refused: whoever reads them
 * decides what they mean, so keycard never does), IPv6 in any RFC 4291 text
 * form, with or without brackets, without a zone id.
 *
 * @param text The address, e.g. `"10.0.0.5"`, `"[::1]"`, `"64:ff9b::127.0.0.1"`.
 * @returns The canonical address and the IPv4 address it reaches, or
 * `undefined` when `text` is not an IP address in one of those forms.
 *
 * @example Classify a NAT64 address
 * ```ts
 * import { parseIpAddress } from "./parse_ip_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseIpAddress("[64:ff9b::127.0.0.1]"), {
 *   address: "64:ff9b::7f00:1",
 *   family: 6,
 *   ipv4: "127.0.0.1",
 * });
 * assert.deepEqual(parseIpAddress("::ffff:10.0.0.1"), { address: "10.0.0.1", family: 4, ipv4: "10.0.0.1" });
 * assert.equal(parseIpAddress("127.1"), undefined);
 * ```
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const v4 = _parseIpv4(bare);
  if (v4) {
    const address = _formatIpv4(v4);
    return { address, family: 4, ipv4: address };
  }
  const b = _parseIpv6(bare.toLowerCase());
  if (!b) return undefined;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  const tail = () => _formatIpv4(b.subarray(12, 16));
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) {
    const address = tail();
    return { address, family: 4, ipv4: address };
  }
  const address = _formatIpv6(b);
  let ipv4: string | undefined;
  if (zero(0, 12)) ipv4 = tail(); // IPv4-compatible (::, ::1 become 0.0.0.0/8: "this network")
  else if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) ipv4 = tail(); // IPv4-translated
  else if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) ipv4 = tail(); // NAT64
  else if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b[4] === 0 && b[5] === 1) {
    ipv4 = tail(); // NAT64 local use
  } else if (b[0] === 0x20 && b[1] === 0x02) ipv4 = _formatIpv4(b.subarray(2, 6)); // 6to4
  else if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) {
    ipv4 = _formatIpv4(b.subarray(12, 16).map((x) => x ^ 0xff)); // Teredo client
  }
  return ipv4 === undefined ? { address, family: 6 } : { address, family: 6, ipv4 };
}

function _parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => _DECIMAL_OCTET.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function _formatIpv4(bytes: Uint8Array): string {
  return Array.from(bytes).join(".");
}

function _parseIpv6(text: string): Uint8Array | undefined {
  if (text.length > 45 || !/^[0-9a-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = _parseIpv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (_HEX_GROUP.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  // A dotted tail is only allowed at the very end.
  if (halves.length === 2 && halves[0]!.includes(".")) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill(0), ...rest];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 255;
  });
  return bytes;
}

function _formatIpv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = -1;
  let bestLength = 1; // RFC 5952: a single zero group is not compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}
