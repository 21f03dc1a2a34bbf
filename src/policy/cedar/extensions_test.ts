// The extensions against cedar-wasm, the definition of right: every case is a
// policy `permit (principal, action, resource) when { E };` that cedar-wasm
// decides (allow, deny, or an error with its message) and that the functions
// here evaluate (true, false, or a CedarEvalError with the same message).
import { freshCedar } from "../_cedar_instance.ts";

// An instance of its own: tests that share the module graph may kill a shared one on purpose.
const cedar = await freshCedar();
import assert from "node:assert/strict";
import { compareExtensionValues, EXTENSION_FUNCTIONS, extensionFromJson, extensionFromJsonArgs } from "./extensions.ts";
import {
  CedarEvalError,
  CedarRecord,
  CedarSet,
  EntityRef,
  type ExtensionValue,
  type Value,
  valueKey,
} from "./value.ts";
import { Decimal } from "./_decimal.ts";
import { IpAddr } from "./_ipaddr.ts";
import { DateTime, Duration } from "./_datetime.ts";

// ---------------------------------------------------------------------------
// A tiny expression language that prints as Cedar and runs on the functions
// under test.

interface Expr {
  readonly text: string;
  run(): Value;
}

const I64_MIN = -9223372036854775808n;
const I64_MAX = 9223372036854775807n;
const FUNCTION_STYLE = new Set(["decimal", "ip", "datetime", "duration", "unknown"]);

function cedarString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

const s = (text: string): Expr => ({ text: cedarString(text), run: () => text });
const n = (value: bigint): Expr => ({
  text: value === I64_MIN ? "(-9223372036854775807 - 1)" : value < 0n ? `(${value})` : `${value}`,
  run: () => value,
});
const b = (value: boolean): Expr => ({ text: `${value}`, run: () => value });
const principal: Expr = { text: "principal", run: () => new EntityRef("P", "p") };
const emptySet: Expr = { text: "[]", run: () => new CedarSet([]) };
const record: Expr = { text: "{a: 1}", run: () => new CedarRecord(new Map([["a", 1n]])) };

function fn(name: string, ...args: Expr[]): Expr {
  const [receiver, ...rest] = args;
  const text = FUNCTION_STYLE.has(name) || receiver === undefined
    ? `${name}(${args.map((a) => a.text).join(", ")})`
    : `${receiver.text}.${name}(${rest.map((a) => a.text).join(", ")})`;
  const f = EXTENSION_FUNCTIONS.get(name);
  assert.ok(f, `no function ${name}`);
  return { text, run: () => f(args.map((a) => a.run())) };
}

const dec = (text: string) => fn("decimal", s(text));
const ip = (text: string) => fn("ip", s(text));
const dt = (text: string) => fn("datetime", s(text));
const dur = (text: string) => fn("duration", s(text));
const instant = (epoch: bigint) => fn("offset", dt("1970-01-01"), dur(`${epoch}ms`));

function eq(a: Expr, c: Expr): Expr {
  return { text: `${a.text} == ${c.text}`, run: () => valueKey(a.run()) === valueKey(c.run()) };
}

type Op = "<" | "<=" | ">" | ">=";
function cmp(op: Op, a: Expr, c: Expr): Expr {
  return {
    text: `${a.text} ${op} ${c.text}`,
    run: () => {
      const x = a.run();
      const y = c.run();
      const order = typeof x === "bigint" && typeof y === "bigint"
        ? (x < y ? -1 : x > y ? 1 : 0)
        : compareExtensionValues(x as ExtensionValue, y as ExtensionValue);
      return op === "<" ? order < 0 : op === "<=" ? order <= 0 : op === ">" ? order > 0 : order >= 0;
    },
  };
}

/** The decimal's text, with four fraction digits. */
function decimalText(value: bigint): string {
  const abs = value < 0n ? -value : value;
  return `${value < 0n ? "-" : ""}${abs / 10000n}.${(abs % 10000n).toString().padStart(4, "0")}`;
}

/** The address in plain notation: dotted IPv4 or eight hex groups, with its prefix. */
function ipText(value: IpAddr): string {
  const w = value.words;
  const text = w.length === 1
    ? [24, 16, 8, 0].map((shift) => ((w[0] as number) >>> shift) & 255).join(".")
    : w.flatMap((word) => [(word >>> 16).toString(16), (word & 0xffff).toString(16)]).join(":");
  return `${text}/${value.prefix}`;
}

/** An expression building `value` another way than the literal did. */
function canonical(value: Value): Expr {
  if (typeof value === "boolean") return b(value);
  if (typeof value === "bigint") return n(value);
  if (typeof value === "string") return s(value);
  if (value instanceof Decimal) return dec(decimalText(value.value));
  if (value instanceof IpAddr) return ip(ipText(value));
  if (value instanceof DateTime) return instant(value.epoch);
  if (value instanceof Duration) return dur(`${value.ms}ms`);
  throw new Error(`no canonical form for ${valueKey(value)}`);
}

/** A boolean expression that holds exactly when `e` evaluates to what it evaluates to here. */
function pin(e: Expr): Expr {
  let value: Value;
  try {
    value = e.run();
  } catch (error) {
    if (error instanceof CedarEvalError) return eq(e, n(0n));
    throw error;
  }
  return typeof value === "boolean" ? e : eq(e, canonical(value));
}

// ---------------------------------------------------------------------------
// Both engines.

interface Outcome {
  kind: "allow" | "deny" | "error";
  message?: string;
}

function oracle(texts: readonly string[]): Outcome[] {
  const staticPolicies: Record<string, string> = {};
  texts.forEach((text, i) => staticPolicies[`c${i}`] = `permit (principal, action, resource) when { ${text} };`);
  const answer = cedar.isAuthorized({
    principal: { type: "P", id: "p" },
    action: { type: "A", id: "a" },
    resource: { type: "R", id: "r" },
    context: {},
    policies: { staticPolicies },
    entities: [],
  });
  if (answer.type !== "success") {
    throw new Error(`cedar-wasm refused the batch: ${answer.errors.map((e) => e.message).join("; ")}`);
  }
  const reasons = new Set(answer.response.diagnostics.reason);
  const errors = new Map(answer.response.diagnostics.errors.map((e) => [e.policyId, e.error.message]));
  return texts.map((_, i) => {
    const message = errors.get(`c${i}`);
    if (message !== undefined) return { kind: "error", message };
    return { kind: reasons.has(`c${i}`) ? "allow" : "deny" };
  });
}

function ours(e: Expr): Outcome {
  try {
    const value = e.run();
    assert.equal(typeof value, "boolean", `${e.text} is not a condition`);
    return { kind: value ? "allow" : "deny" };
  } catch (error) {
    if (error instanceof CedarEvalError) return { kind: "error", message: error.message };
    throw error;
  }
}

function show(outcome: Outcome): string {
  return outcome.message === undefined ? outcome.kind : `${outcome.kind}: ${outcome.message}`;
}

/** Runs every case on both engines; returns the disagreements. */
function differ(cases: readonly Expr[]): string[] {
  const expected = oracle(cases.map((c) => c.text));
  const mismatches: string[] = [];
  cases.forEach((c, i) => {
    const want = show(expected[i] as Outcome);
    const got = show(ours(c));
    if (want !== got) mismatches.push(`${c.text}\n  cedar-wasm: ${want}\n  ours:       ${got}`);
  });
  return mismatches;
}

function assertAgree(cases: readonly Expr[]): void {
  const mismatches = differ(cases);
  assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${cases.length} cases differ`);
}

// ---------------------------------------------------------------------------
// The fixed table.

const DECIMALS = [
  "0.0",
  "1.0",
  "-1.0",
  "1.0000",
  "1.2345",
  "-0.5",
  "-0.0",
  "00001.5",
  "123.456",
  "0.0001",
  "-0.0001",
  "12345678901.2345",
  "123456789012.3456",
  "922337203685477.5807",
  "922337203685477.5808",
  "-922337203685477.5808",
  "-922337203685477.5809",
  "922337203685478.0",
  "-922337203685478.0",
  "0000000000000000922337203685477.5807",
  "9223372036854775807.0",
  "99999999999999999999.12345",
  "922337203685478.12345",
  "922337203685477.58071",
  "1.12345",
  "1.00000",
  "1.",
  ".",
  ".5",
  "-.5",
  "1",
  "-1",
  "+1.0",
  "--1.0",
  "1.0.0",
  "1,0",
  "1e3.0",
  " 1.0",
  "1.0 ",
  "1.0\n",
  "",
  "-",
  "abc",
  "0x1.0",
  "١.0",
  "1.١",
  "1.١١١",
  "١.١١١",
];

const IPS = [
  "0.0.0.0",
  "255.255.255.255",
  "256.0.0.0",
  "1.2.3",
  "1.2.3.4.5",
  "01.2.3.4",
  "1.2.3.04",
  "1.2.3.0",
  "1.2.3.1234",
  "127.0.0.1",
  "127.255.255.255",
  "127.0.0.0/8",
  "127.0.0.1/7",
  "126.255.255.255",
  "128.0.0.1",
  "224.0.0.1",
  "239.255.255.255",
  "240.0.0.1",
  "223.255.255.255",
  "224.0.0.0/4",
  "224.0.0.0/3",
  "10.0.0.0/8",
  "10.0.0.1/24",
  "10.0.0.0/24",
  "0.0.0.0/0",
  "1.2.3.4/32",
  "1.2.3.4/33",
  "1.2.3.4/",
  "1.2.3.4/+8",
  "1.2.3.4/-8",
  "1.2.3.4/08",
  "1.2.3.4/0",
  "1.2.3.4/00",
  "1.2.3.4/100",
  "1.2.3.4/1/2",
  "1.2.3.4/a",
  "1.2.3/4",
  "1.2.3.4:80",
  " 1.2.3.4",
  "1.2.3.4 ",
  "::",
  "::1",
  "::1/128",
  "::1/127",
  "::2",
  "0:0:0:0:0:0:0:1",
  "0000:0000:0000:0000:0000:0000:0000:0001",
  "ff00::",
  "ff00::/8",
  "ff00::/7",
  "feff::",
  "ffff::1",
  "fe80::1",
  "fe80::1%eth0",
  "FE80::1",
  "2001:db8::/32",
  "2001:db8::1/64",
  "::/0",
  "::/128",
  "::/129",
  "::/0128",
  "::/01",
  "::/999",
  "::/256",
  "::/200",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7::",
  "1:2:3:4:5:6:7::8",
  "::1:2:3:4:5:6:7",
  "::1:2:3:4:5:6:7:8",
  "1::2::3",
  ":::",
  "1:::2",
  ":1::",
  "1::",
  ":",
  "12345::",
  "1:12345::",
  "g::",
  "::ffff:1.2.3.4",
  "::ffff:102:304",
  "::127.0.0.1",
  "1.2.3.4::",
  "a:b.c:d.e",
  "1:2.3",
  "abcd:ef01:2345:6789:abcd:ef01:2345:6789/128",
  "0abcd:ef01:2345:6789:abcd:ef01:2345:6789/128",
  "abcd:ef01:2345:6789:abcd:ef01:2345:6789/0128",
  "[::1]",
  "١.2.3.4",
  "1.2.3.4/3٢",
  "1.2.3.4/٣",
  "::/٣",
  "",
  "/",
  "/8",
];

const DATETIMES = [
  "2024-01-01",
  "2024-01-01T00:00:00Z",
  "2024-10-15T11:38:02.101+1134",
  "2024-10-15T11:38:02.101-1134",
  "2024-10-15T23:59:00+2359",
  "2024-10-15T00:00:00-2359",
  "0000-01-01",
  "0000-02-29",
  "0000-01-01T00:00:00+2359",
  "9999-12-31T23:59:59.999-2359",
  "9999-12-31",
  "1969-12-31T23:59:59.999Z",
  "1970-01-01",
  "1600-03-01",
  "2024-02-29",
  "2023-02-29",
  "1900-02-29",
  "2000-02-29",
  "2024-04-31",
  "2024-13-01",
  "2024-00-01",
  "2024-01-00",
  "2024-01-32",
  "2024-1-01",
  "20240-01-01",
  "+2024-01-01",
  " 2024-01-01",
  "2024-01-01 ",
  "2024/01/01",
  "2024-01-01Z",
  "2024-01-01T",
  "2024-01-01T00:00",
  "2024-01-01T00:00:00",
  "2024-01-01t00:00:00Z",
  "2024-01-01T00:00:00z",
  "2024-01-01T24:00:00Z",
  "2024-01-01T23:60:00Z",
  "2016-12-31T23:59:60Z",
  "2024-01-01T00:00:00.12Z",
  "2024-01-01T00:00:00.1234Z",
  "2024-01-01T00:00:00.123",
  "2024-01-01T00:00:00.Z",
  "2024-01-01T00:00:00+01:00",
  "2024-01-01T01:00:00+0100",
  "2024-01-01T00:00:00+2400",
  "2024-01-01T00:00:00+2360",
  "2024-01-01T00:00:00-0000",
  "2024-01-01T00:00:00+000",
  "2024-01-01T00:00:00+00000",
  "2024-01-01T00:00:00ZZ",
  "2024-02-30T24:00:00Z",
  "2024-02-30T00:00:00+2400",
  "2024-01-01T24:00:00+2400",
  "2024-01-01T00:00:00.123+2400",
  "٢٠٢٤-01-01",
  "2024-01-01T0٠:00:00Z",
  "",
];

const DURATIONS = [
  "0ms",
  "-0ms",
  "1ms",
  "1s",
  "1m",
  "1h",
  "1d",
  "60m",
  "1d2h3m4s5ms",
  "-1d2h3m4s5ms",
  "90s",
  "-90s",
  "1m1ms",
  "1m1s1ms",
  "2h1d",
  "1d1d",
  "1dms",
  "-1d-2h",
  "1x",
  "",
  "-",
  "--1d",
  "+1d",
  "1D",
  "1d ",
  "١d",
  "9223372036854775807ms",
  "9223372036854775808ms",
  "-9223372036854775808ms",
  "-9223372036854775809ms",
  "106751991167d",
  "106751991168d",
  "-106751991167d",
  "18446744073709551615ms",
  "18446744073709551616ms",
  "99999999999999999999999d",
  "106751991167d23h47m16s854ms",
  "106751991167d23h47m16s855ms",
  "-106751991167d23h47m16s854ms",
  "-106751991167d23h47m16s855ms",
  "-106751991167d23h47m16s856ms",
  "9223372036854775s807ms",
  "-9223372036854775s808ms",
  "0d0h0m0s0ms",
  "00001h",
  "1h 2m",
  "1.5h",
  "ms",
  "1",
  "d",
];

/** One value of every type, for the type errors. */
const ANY_TYPE: readonly Expr[] = [
  s("1.2.3.4"),
  n(1n),
  b(true),
  emptySet,
  record,
  principal,
  dec("1.5"),
  ip("10.0.0.1"),
  dt("2024-01-01"),
  dur("1h"),
];

function constructorCases(): Expr[] {
  const cases: Expr[] = [];
  for (const text of DECIMALS) cases.push(pin(dec(text)));
  for (const text of IPS) cases.push(pin(ip(text)));
  for (const text of DATETIMES) cases.push(pin(dt(text)));
  for (const text of DURATIONS) cases.push(pin(dur(text)));
  return cases;
}

function ipCases(): Expr[] {
  const cases: Expr[] = [];
  const valid = IPS.filter((text) => {
    try {
      ip(text).run();
      return true;
    } catch {
      return false;
    }
  });
  for (const text of valid) {
    for (const method of ["isIpv4", "isIpv6", "isLoopback", "isMulticast"]) cases.push(fn(method, ip(text)));
  }
  const ranges = [
    "10.0.0.1",
    "10.0.0.1/32",
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.0.255/24",
    "10.0.1.0/24",
    "0.0.0.0/0",
    "11.0.0.0/8",
    "::",
    "::/0",
    "::1",
    "2001:db8::/32",
    "2001:db8::1",
    "2001:db8:ffff::/48",
    "2001:db9::/32",
    "::ffff:a00:1",
  ];
  for (const a of ranges) for (const c of ranges) cases.push(fn("isInRange", ip(a), ip(c)));
  return cases;
}

function decimalCases(): Expr[] {
  const cases: Expr[] = [];
  const values = ["-922337203685477.5808", "-1.0", "-0.0001", "0.0", "0.0001", "1.0", "1.0000", "922337203685477.5807"];
  for (const method of ["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"]) {
    for (const a of values) for (const c of values) cases.push(fn(method, dec(a), dec(c)));
  }
  return cases;
}

function datetimeCases(): Expr[] {
  const cases: Expr[] = [];
  const instants = [
    dt("2024-01-01"),
    dt("2024-06-30T12:34:56.789+0130"),
    dt("1969-12-31T23:59:59.999Z"),
    dt("1969-12-31T00:00:00.001Z"),
    dt("1970-01-01"),
    dt("0000-01-01"),
    dt("9999-12-31T23:59:59.999Z"),
    instant(I64_MAX),
    instant(I64_MIN),
    instant(I64_MIN + 86400000n),
  ];
  const durations = [
    dur("0ms"),
    dur("1ms"),
    dur("-1ms"),
    dur("1d"),
    dur("-1d"),
    dur("36h"),
    dur("-36h"),
    dur("-90s"),
    dur("-1d1ms"),
    dur("23h59m59s999ms"),
    dur("9223372036854775807ms"),
    dur("-9223372036854775808ms"),
  ];
  for (const d of instants) {
    cases.push(pin(fn("toDate", d)), pin(fn("toTime", d)));
    for (const x of durations) cases.push(pin(fn("offset", d, x)));
    for (const e of instants) {
      cases.push(pin(fn("durationSince", d, e)));
      for (const op of ["<", "<=", ">", ">="] as const) cases.push(cmp(op, d, e));
      cases.push(eq(d, e));
    }
  }
  for (const x of durations) {
    for (const method of ["toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays"]) {
      cases.push(pin(fn(method, x)));
    }
    for (const y of durations) for (const op of ["<", ">="] as const) cases.push(cmp(op, x, y));
  }
  return cases;
}

function typeCases(): Expr[] {
  const cases: Expr[] = [];
  for (const [name] of EXTENSION_FUNCTIONS) {
    if (name === "unknown") continue;
    const arity =
      ["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "isInRange", "offset", "durationSince"]
          .includes(name)
        ? 2
        : 1;
    if (arity === 1) {
      for (const x of ANY_TYPE) cases.push(pin(fn(name, x)));
      cases.push(pin(fn(name, ...ANY_TYPE.slice(0, 2))));
      if (!FUNCTION_STYLE.has(name)) cases.push(pin(fn(name, ip("1.2.3.4"), ip("1.2.3.4"))));
      else cases.push(pin(fn(name)));
    } else {
      for (const x of ANY_TYPE) {
        for (const y of [ANY_TYPE[0], ANY_TYPE[6], ANY_TYPE[7], ANY_TYPE[8], ANY_TYPE[9]]) {
          cases.push(pin(fn(name, x, y as Expr)));
        }
      }
      cases.push(pin(fn(name, ANY_TYPE[6] as Expr)));
      cases.push(pin(fn(name, ANY_TYPE[8] as Expr, ANY_TYPE[9] as Expr, ANY_TYPE[9] as Expr)));
    }
  }
  // `<` and friends on every pair of extension types
  const extensions = ANY_TYPE.slice(6);
  for (const x of extensions) {
    for (const y of extensions) for (const op of ["<", ">"] as const) cases.push(cmp(op, x, y));
  }
  // `==` across types is false, never an error
  for (const x of extensions) for (const y of ANY_TYPE) cases.push(eq(x, y));
  return cases;
}

Deno.test("the extensions agree with cedar-wasm on the fixed table", () => {
  const cases = [...constructorCases(), ...ipCases(), ...decimalCases(), ...datetimeCases(), ...typeCases()];
  assert.ok(cases.length >= 300, `only ${cases.length} cases`);
  assertAgree(cases);
});

// ---------------------------------------------------------------------------
// Random literals, seeded.

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Random, items: readonly T[]): T => items[int(r, 0, items.length - 1)] as T;

function digitString(r: Random, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(48 + int(r, 0, 9));
  return out;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}

function mutate(r: Random, text: string, alphabet: string): string {
  const at = int(r, 0, text.length);
  const ch = pick(r, [...alphabet]);
  switch (int(r, 0, 2)) {
    case 0:
      return text.slice(0, at) + ch + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1);
    default:
      return text.slice(0, at) + ch + text.slice(at + 1);
  }
}

function randomDecimal(r: Random): string {
  let text: string;
  if (r() < 0.1) {
    text = `${r() < 0.5 ? "-" : ""}92233720368547${int(r, 6, 8)}.${digitString(r, int(r, 1, 5))}`;
  } else {
    const intLength = r() < 0.1 ? int(r, 0, 24) : int(r, 1, 12);
    text = `${r() < 0.3 ? "-" : ""}${digitString(r, intLength)}${r() < 0.95 ? "." : ""}${digitString(r, int(r, 0, 6))}`;
  }
  return r() < 0.1 ? mutate(r, text, "0123456789-.+e ١a") : text;
}

function randomIp(r: Random): string {
  let text: string;
  if (r() < 0.5) {
    const count = r() < 0.9 ? 4 : int(r, 2, 6);
    const octets: string[] = [];
    for (let i = 0; i < count; i++) {
      const roll = r();
      if (i === 0 && roll < 0.15) octets.push(pick(r, ["127", "224", "239", "240", "0", "255"]));
      else if (roll < 0.85) octets.push(String(int(r, 0, 255)));
      else if (roll < 0.93) octets.push(String(int(r, 256, 999)));
      else octets.push(`0${int(r, 0, 99)}`);
    }
    text = octets.join(".");
    const roll = r();
    if (roll < 0.4) text += `/${int(r, 0, 34)}`;
    else if (roll < 0.45) text += `/${pick(r, ["", "0", "00", "08", "+8", "-1", "1/2", "320"])}`;
  } else {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) {
      const value = r() < 0.3 ? 0 : int(r, 0, 0xffff);
      let hex = value.toString(16);
      if (r() < 0.1) hex = hex.toUpperCase();
      if (r() < 0.05) hex = `0${hex}`;
      groups.push(hex);
    }
    const roll = r();
    if (roll < 0.1) groups[0] = "ff" + pad(int(r, 0, 99), 2);
    else if (roll < 0.15) groups.splice(0, 8, "0", "0", "0", "0", "0", "0", "0", "1");
    let count = r() < 0.9 ? 8 : int(r, 6, 10);
    while (groups.length < count) groups.push(int(r, 0, 0xffff).toString(16));
    count = groups.length;
    if (r() < 0.6) {
      const start = int(r, 0, count - 1);
      const end = int(r, start, Math.min(count, start + int(r, 0, 8)));
      text = `${groups.slice(0, start).join(":")}::${groups.slice(end).join(":")}`;
    } else text = groups.join(":");
    const prefixRoll = r();
    if (prefixRoll < 0.4) text += `/${int(r, 0, 135)}`;
    else if (prefixRoll < 0.45) text += `/${pick(r, ["", "0", "01", "0128", "+8", "999", "256", "1٢"])}`;
  }
  return r() < 0.1 ? mutate(r, text, ":./%xg 0f1") : text;
}

function randomDatetime(r: Random): string {
  const year = r() < 0.05 ? String(int(r, 0, 99999)) : pad(int(r, 0, 9999), 4);
  const month = r() < 0.9 ? pad(int(r, 1, 12), 2) : pad(int(r, 0, 19), 2);
  const day = r() < 0.8 ? pad(int(r, 1, 28), 2) : pad(int(r, 0, 32), 2);
  let text = `${year}-${month}-${day}`;
  if (r() < 0.75) {
    const hour = r() < 0.9 ? int(r, 0, 23) : int(r, 24, 29);
    const minute = r() < 0.9 ? int(r, 0, 59) : int(r, 60, 61);
    const second = r() < 0.9 ? int(r, 0, 59) : int(r, 60, 61);
    text += `T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}`;
    const roll = r();
    if (roll < 0.4) text += `.${digitString(r, 3)}`;
    else if (roll < 0.45) text += `.${digitString(r, pick(r, [0, 1, 2, 4]))}`;
    const zone = r();
    if (zone < 0.45) text += "Z";
    else if (zone < 0.9) {
      const hh = r() < 0.9 ? int(r, 0, 23) : int(r, 24, 29);
      const mm = r() < 0.9 ? int(r, 0, 59) : int(r, 60, 99);
      text += `${r() < 0.5 ? "+" : "-"}${pad(hh, 2)}${pad(mm, 2)}`;
    } else text += pick(r, ["", "z", "+01:00", "+123", "ZZ", " "]);
  }
  return r() < 0.08 ? mutate(r, text, "0123456789-:TZ.+ ") : text;
}

function randomDuration(r: Random): string {
  let units = ["d", "h", "m", "s", "ms"].filter(() => r() < 0.45);
  if (units.length === 0) units = [pick(r, ["d", "h", "m", "s", "ms"])];
  if (r() < 0.05) units.reverse();
  if (r() < 0.03) units.push(pick(r, units));
  const big = r() < 0.15;
  const parts = units.map((unit) => {
    const length = big ? int(r, 10, 21) : int(r, 1, 5);
    return `${digitString(r, length)}${unit}`;
  });
  const text = `${r() < 0.3 ? "-" : ""}${parts.join("")}`;
  return r() < 0.08 ? mutate(r, text, "0123456789dhms- +") : text;
}

function randomCases(
  r: Random,
  count: number,
  literal: (r: Random) => string,
  build: (text: string) => Expr,
): { cases: Expr[]; accepted: number } {
  const cases: Expr[] = [];
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    const e = build(literal(r));
    try {
      e.run();
      accepted++;
    } catch (error) {
      if (!(error instanceof CedarEvalError)) throw error;
    }
    cases.push(pin(e));
  }
  return { cases, accepted };
}

Deno.test("the constructors agree with cedar-wasm on 12,000 seeded random literals", () => {
  const r = mulberry32(0x5eed_ce0a);
  const all: Expr[] = [];
  for (
    const [name, literal, build] of [
      ["decimal", randomDecimal, dec],
      ["ip", randomIp, ip],
      ["datetime", randomDatetime, dt],
      ["duration", randomDuration, dur],
    ] as const
  ) {
    const { cases, accepted } = randomCases(r, 3000, literal, build);
    // both outcomes must be well represented, or the generator is useless
    assert.ok(accepted > 600 && accepted < 2700, `${name}: ${accepted} of 3000 accepted`);
    all.push(...cases);
  }
  // the methods on random addresses, and ranges between them
  const addresses: Expr[] = [];
  while (addresses.length < 1000) {
    const e = ip(randomIp(r));
    try {
      e.run();
      addresses.push(e);
    } catch {
      // refused literals are covered above
    }
  }
  for (const [i, a] of addresses.entries()) {
    all.push(fn(pick(r, ["isLoopback", "isMulticast", "isIpv4"]), a));
    all.push(fn("isInRange", a, addresses[(i * 7 + 3) % addresses.length] as Expr));
  }
  assertAgree(all);
});

// ---------------------------------------------------------------------------
// Unit tests.

function call(name: string, ...args: Value[]): Value {
  const f = EXTENSION_FUNCTIONS.get(name);
  assert.ok(f, `no function ${name}`);
  return f(args);
}

function key(name: string, text: string): string {
  return valueKey(call(name, text));
}

Deno.test("EXTENSION_FUNCTIONS holds every function of cedar-wasm 4.13's extensions", () => {
  assert.deepEqual([...EXTENSION_FUNCTIONS.keys()].sort(), [
    "datetime",
    "decimal",
    "duration",
    "durationSince",
    "greaterThan",
    "greaterThanOrEqual",
    "ip",
    "isInRange",
    "isIpv4",
    "isIpv6",
    "isLoopback",
    "isMulticast",
    "lessThan",
    "lessThanOrEqual",
    "offset",
    "toDate",
    "toDays",
    "toHours",
    "toMilliseconds",
    "toMinutes",
    "toSeconds",
    "toTime",
    "unknown",
  ]);
});

Deno.test("ip() refuses a prefix longer than 32 on IPv4", () => {
  assert.throws(
    () => call("ip", "10.0.0.0/33"),
    new CedarEvalError(
      "error while evaluating `ipaddr` extension function: error parsing prefix: 33 is larger than the limit 32",
    ),
  );
});

Deno.test("ip() refuses IPv4 embedded in IPv6 and leading zeros", () => {
  assert.throws(() => call("ip", "::ffff:1.2.3.4"), /We do not accept IPv4 embedded in IPv6/);
  assert.throws(() => call("ip", "01.2.3.4"), /invalid IP address: 01\.2\.3\.4/);
  assert.throws(() => call("ip", "10.0.0.0/08"), /leading zero/);
  assert.throws(() => call("ip", "fe80::1%eth0"), /invalid IP address/);
});

Deno.test("ip() values are equal when address and prefix are, whatever the spelling", () => {
  assert.equal(key("ip", "10.0.0.1"), key("ip", "10.0.0.1/32"));
  assert.equal(key("ip", "A::1"), key("ip", "a:0::0:1"));
  assert.equal(key("ip", "::1"), key("ip", "0000:0000:0000:0000:0000:0000:0000:0001/128"));
  assert.notEqual(key("ip", "10.0.0.1/24"), key("ip", "10.0.0.0/24"));
  assert.notEqual(key("ip", "::ffff:102:304"), key("ip", "1.2.3.4"));
  assert.notEqual(key("ip", "0.0.0.0/0"), key("ip", "::/0"));
});

Deno.test("isLoopback() and isMulticast() need the whole range inside the class", () => {
  assert.equal(call("isLoopback", call("ip", "127.1.2.3")), true);
  assert.equal(call("isLoopback", call("ip", "127.0.0.0/7")), false);
  assert.equal(call("isLoopback", call("ip", "::1/127")), false);
  assert.equal(call("isMulticast", call("ip", "239.0.0.0/4")), true);
  assert.equal(call("isMulticast", call("ip", "ff00::/7")), false);
  assert.equal(call("isInRange", call("ip", "0.0.0.0/0"), call("ip", "::/0")), false);
});

Deno.test("decimal() refuses five fraction digits and a sign other than a leading minus", () => {
  assert.throws(() => call("decimal", "1.23456"), /too many digits after the decimal in `1\.23456`/);
  assert.throws(() => call("decimal", "+1.0"), /`\+1\.0` is not a well-formed decimal value/);
  assert.throws(() => call("decimal", "922337203685477.5808"), /overflow when converting to decimal/);
});

Deno.test("decimal() values are equal by value, and -0.5 is negative", () => {
  assert.equal(key("decimal", "1.0"), key("decimal", "1.0000"));
  assert.equal(key("decimal", "-0.0"), key("decimal", "0.0"));
  assert.equal(call("lessThan", call("decimal", "-0.5"), call("decimal", "0.0")), true);
  assert.equal(call("decimal", "-922337203685477.5808").toString(), 'decimal("-922337203685477.5808")');
});

Deno.test("datetime() refuses a leap second, a bad month and a colon in the offset", () => {
  assert.throws(() => call("datetime", "2016-12-31T23:59:60Z"), /invalid hour\/minute\/second: 23:59:60/);
  assert.throws(() => call("datetime", "2024-13-01"), /invalid date: 2024-13-01/);
  assert.throws(() => call("datetime", "2024-01-01T00:00:00+01:00"), /invalid millisecond and\/or offset pattern/);
});

Deno.test("datetime() values are equal when the instants are", () => {
  assert.equal(key("datetime", "2024-01-01"), key("datetime", "2024-01-01T00:00:00Z"));
  assert.equal(key("datetime", "2024-01-01T01:00:00+0100"), key("datetime", "2024-01-01T00:00:00.000Z"));
  assert.equal((call("datetime", "1970-01-02") as DateTime).epoch, 86400000n);
  assert.equal((call("datetime", "0000-01-01") as DateTime).epoch, -62167219200000n);
});

Deno.test("duration() refuses units out of order and i64 overflow", () => {
  assert.throws(() => call("duration", "2h1d"), /invalid duration pattern/);
  assert.throws(() => call("duration", "9223372036854775808ms"), /Duration overflows internal representation/);
  assert.equal((call("duration", "-9223372036854775808ms") as Duration).ms, I64_MIN);
  assert.equal(key("duration", "1h"), key("duration", "60m"));
});

Deno.test("toSeconds() and the other conversions truncate toward zero", () => {
  const ms = (text: string, method: string) => call(method, call("duration", text));
  assert.equal(ms("-90s", "toMinutes"), -1n);
  assert.equal(ms("90s", "toMinutes"), 1n);
  assert.equal(ms("-1ms", "toSeconds"), 0n);
  assert.equal(ms("47h59m", "toDays"), 1n);
  assert.equal(ms("-9223372036854775808ms", "toDays"), -106751991167n);
});

Deno.test("toDate() and toTime() split an instant before 1970 at midnight", () => {
  const instant = call("datetime", "1969-12-31T23:59:59.999Z");
  assert.equal(valueKey(call("toDate", instant)), key("datetime", "1969-12-31"));
  assert.equal(valueKey(call("toTime", instant)), key("duration", "23h59m59s999ms"));
  const earliest = call("offset", call("datetime", "1970-01-01"), call("duration", "-9223372036854775808ms"));
  assert.throws(() => call("toDate", earliest), /overflows when computing the date of/);
});

Deno.test("a method on the wrong extension type or arity is a Cedar error", () => {
  assert.throws(
    () => call("isIpv4", call("decimal", "1.0")),
    new CedarEvalError("type error: expected ipaddr, got decimal"),
  );
  assert.throws(
    () => call("isInRange", call("ip", "1.2.3.4")),
    new CedarEvalError(
      "wrong number of arguments provided to extension function `isInRange`: expected 2, got 1",
    ),
  );
  assert.throws(() => call("ip", 1n), new CedarEvalError("type error: expected string, got long"));
  assert.throws(() => call("unknown", "x"), /the expression contains unknown\(s\)/);
});

Deno.test("compareExtensionValues() orders datetimes and durations", () => {
  const d = (text: string) => call("datetime", text) as ExtensionValue;
  const t = (text: string) => call("duration", text) as ExtensionValue;
  assert.ok(compareExtensionValues(d("2024-01-01"), d("2024-01-02")) < 0);
  assert.ok(compareExtensionValues(d("2024-01-02"), d("2024-01-01")) > 0);
  assert.equal(compareExtensionValues(d("2024-01-01T01:00:00+0100"), d("2024-01-01")), 0);
  assert.ok(compareExtensionValues(t("-1ms"), t("0ms")) < 0);
  assert.equal(compareExtensionValues(t("1h"), t("60m")), 0);
  assert.ok(compareExtensionValues(t("9223372036854775807ms"), t("-9223372036854775808ms")) > 0);
});

Deno.test("compareExtensionValues() refuses decimals, addresses and mixed types as cedar-wasm does", () => {
  const v = (name: string, text: string) => call(name, text) as ExtensionValue;
  const refuse = (a: ExtensionValue, c: ExtensionValue, message: string) =>
    assert.throws(() => compareExtensionValues(a, c), new CedarEvalError(message));
  refuse(
    v("decimal", "1.0"),
    v("decimal", "2.0"),
    "type error: expected one of [long, datetime, duration], got decimal",
  );
  refuse(v("ip", "1.2.3.4"), v("decimal", "2.0"), "type error: expected one of [long, datetime, duration], got ipaddr");
  refuse(v("datetime", "2024-01-01"), v("duration", "1h"), "type error: expected datetime, got duration");
  refuse(v("duration", "1h"), v("datetime", "2024-01-01"), "type error: expected duration, got datetime");
  refuse(v("ip", "1.2.3.4"), v("datetime", "2024-01-01"), "type error: expected datetime, got ipaddr");
});

Deno.test("extensionFromJson() builds values from the __extn escape", () => {
  assert.equal(valueKey(extensionFromJson("ip", "10.0.0.1")), key("ip", "10.0.0.1/32"));
  assert.equal(valueKey(extensionFromJson("decimal", "1.50")), key("decimal", "1.5"));
  assert.equal(
    valueKey(extensionFromJsonArgs("offset", [
      { __extn: { fn: "datetime", arg: "1970-01-01" } },
      { __extn: { fn: "duration", arg: "86400000ms" } },
    ])),
    key("datetime", "1970-01-02"),
  );
  assert.equal(extensionFromJson("isIpv4", { __extn: { fn: "ip", arg: "1.2.3.4" } }), true);
  assert.equal(extensionFromJson("toDays", { __extn: { fn: "duration", args: ["2d"] } }), 2n);
  // an escape with both forms is read by its `arg`
  assert.equal(extensionFromJson("isIpv4", { __extn: { fn: "ip", arg: "1.2.3.4", args: ["::1"] } }), true);
});

Deno.test("extensionFromJson() refuses what cedar-wasm refuses", () => {
  assert.throws(() => extensionFromJson("ip", "10.0.0.300"), /invalid IP address: 10\.0\.0\.300/);
  assert.throws(() => extensionFromJson("ip", 1), new CedarEvalError("type error: expected string, got long"));
  assert.throws(
    () => extensionFromJson("ip", ["10.0.0.1"]),
    new CedarEvalError("type error: expected string, got set"),
  );
  assert.throws(() => extensionFromJson("nope", "x"), new CedarEvalError("extension function `nope` does not exist"));
  assert.throws(() => extensionFromJson("ipaddr", "1.2.3.4"), /does not exist/);
  assert.throws(
    () => extensionFromJsonArgs("ip", ["10.0.0.1", "x"]),
    /wrong number of arguments provided to extension function `ip`: expected 1, got 2/,
  );
  assert.throws(
    () => extensionFromJson("ip", { __extn: { fn: "decimal", arg: "1.0" } }),
    new CedarEvalError("type error: expected string, got decimal"),
  );
  assert.throws(
    () => extensionFromJson("ip", { __entity: { type: "A", id: "b" } }),
    new CedarEvalError("type error: expected string, got (entity of type `A`)"),
  );
  assert.throws(
    () => extensionFromJson("ip", { __extn: { arg: "1.2.3.4" } }),
    new CedarEvalError("type error: expected string, got record"),
  );
  assert.throws(() => extensionFromJson("ip", null), TypeError);
  assert.throws(() => extensionFromJson("ip", 1.5), TypeError);
});

Deno.test("extensionFromJson() agrees with cedar-wasm on entity attributes", () => {
  const escapes: [unknown, Expr][] = [
    [{ __extn: { fn: "ip", arg: "10.0.0.1" } }, ip("10.0.0.1")],
    [{ __extn: { fn: "ip", args: ["10.0.0.1/8"] } }, ip("10.0.0.1/8")],
    [{ __extn: { fn: "ip", arg: "1.2.3.4", args: ["5.6.7.8"] } }, ip("1.2.3.4")],
    [{ __extn: { fn: "ip", arg: "10.0.0.300" } }, ip("10.0.0.1")],
    [{ __extn: { fn: "decimal", arg: "-0.5" } }, dec("-0.5000")],
    [{ __extn: { fn: "datetime", arg: "2024-02-30" } }, dt("2024-01-01")],
    [{ __extn: { fn: "duration", arg: "1h30m" } }, dur("90m")],
    [
      {
        __extn: {
          fn: "offset",
          args: [{ __extn: { fn: "datetime", arg: "1970-01-01" } }, { __extn: { fn: "duration", arg: "-1ms" } }],
        },
      },
      dt("1969-12-31T23:59:59.999Z"),
    ],
    [{ __extn: { fn: "offset", args: ["1970-01-01", "1d"] } }, dt("1970-01-02")],
    [{ __extn: { fn: "toTime", arg: { __extn: { fn: "datetime", arg: "1970-01-02T01:00:00Z" } } } }, dur("1h")],
    [{ __extn: { fn: "isIpv6", arg: { __extn: { fn: "ip", arg: "::1" } } } }, b(true)],
    [{ __extn: { fn: "nope", arg: "x" } }, b(true)],
    [{ __extn: { fn: "ip", arg: ["1.2.3.4"] } }, b(true)],
    [{ __extn: { fn: "ip", args: [] } }, b(true)],
  ];
  const mismatches: string[] = [];
  for (const [escape, expected] of escapes) {
    const body = (escape as { __extn: { fn: string; arg?: unknown; args?: unknown[] } }).__extn;
    const answer = cedar.isAuthorized({
      principal: { type: "P", id: "p" },
      action: { type: "A", id: "a" },
      resource: { type: "R", id: "r" },
      context: {},
      policies: { staticPolicies: `permit (principal, action, resource) when { resource.v == ${expected.text} };` },
      entities: [{ uid: { type: "R", id: "r" }, attrs: { v: escape as never }, parents: [] }],
    });
    const want = answer.type === "success" ? answer.response.decision : "refused";
    let got: string;
    try {
      const value = "arg" in body
        ? extensionFromJson(body.fn, body.arg)
        : extensionFromJsonArgs(body.fn, body.args ?? []);
      got = valueKey(value) === valueKey(expected.run()) ? "allow" : "deny";
    } catch (error) {
      if (!(error instanceof CedarEvalError)) throw error;
      got = "refused";
    }
    if (want !== got) mismatches.push(`${JSON.stringify(escape)}: cedar-wasm ${want}, ours ${got}`);
  }
  assert.deepEqual(mismatches, []);
});
