import assert from "node:assert/strict";
import { parseIpAddress } from "./parse_ip_address.ts";

Deno.test("parseIpAddress() gives one canonical text per address", () => {
  const cases: [string, string, 4 | 6][] = [
    ["127.0.0.1", "127.0.0.1", 4],
    ["[::1]", "::1", 6],
    ["0:0:0:0:0:0:0:1", "::1", 6],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 6],
    ["::", "::", 6],
    ["::ffff:127.0.0.1", "127.0.0.1", 4],
    ["0:0:0:0:0:ffff:a9fe:a9fe", "169.254.169.254", 4],
  ];
  for (const [text, address, family] of cases) {
    const parsed = parseIpAddress(text);
    assert.equal(parsed?.address, address, text);
    assert.equal(parsed?.family, family, text);
  }
});

Deno.test("parseIpAddress() finds the IPv4 address every embedding form reaches", () => {
  const cases: [string, string | undefined][] = [
    ["10.0.0.1", "10.0.0.1"],
    ["::127.0.0.1", "127.0.0.1"], // IPv4-compatible
    ["::ffff:0:127.0.0.1", "127.0.0.1"], // IPv4-translated
    ["64:ff9b::127.0.0.1", "127.0.0.1"], // NAT64
    ["64:ff9b::808:808", "8.8.8.8"],
    ["64:ff9b:1::a00:1", "10.0.0.1"], // NAT64 local use, /96 layout
    ["2002:7f00:1::", "127.0.0.1"], // 6to4
    ["2002:c0a8:101:1::1", "192.168.1.1"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"], // Teredo client, obfuscated
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"], // RFC 4380's example client
    ["::1", "0.0.0.1"],
    ["2606:4700::1111", undefined],
    ["fe80::1", undefined],
    ["2001:db8::1", undefined],
  ];
  for (const [text, ipv4] of cases) assert.equal(parseIpAddress(text)?.ipv4, ipv4, text);
});

Deno.test("parseIpAddress() refuses every non-canonical or malformed form", () => {
  for (
    const text of [
      "127.1",
      "0x7f.0.0.1",
      "0177.0.0.1",
      "2130706433",
      "127.000.000.001",
      "256.0.0.1",
      "1.2.3.4.5",
      "1.2.3",
      "",
      "localhost",
      "fe80::1%eth0",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "::1.2.3.4:1",
      "1.2.3.4::",
      "12345::",
      "[::1",
      ":1::",
      "::ffff:127.1",
      " 127.0.0.1",
    ]
  ) {
    assert.equal(parseIpAddress(text), undefined, JSON.stringify(text));
  }
});
