// The fuzzer's randomness and mutators: a small seeded PRNG (so a seed names a run exactly), byte mutations for
// modules (bit flips, interesting values, truncation, insertion, deletion, duplication, LEB128 size corruption,
// section splicing between modules), text mutations for YAML and Cedar (dictionary tokens, line shuffles, nesting
// bombs, splices between texts), and JSON mutations that replace values with hostile ones.

/** A seeded pseudo-random generator (mulberry32): the same seed gives the same cases on every machine. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

/** The seed of case `index` of a run seeded `seed`: each case can be replayed alone. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x20, 0x0b, 0x41, 0x10];

/** Sections of a wasm module after its 8-byte header, as [start, end) byte ranges (empty when it does not parse). */
export function wasmSections(bytes: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  let at = 8;
  while (at < bytes.length) {
    const start = at;
    at++; // id
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined || shift > 28) return out;
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    at += size >>> 0;
    if (at > bytes.length) return out;
    out.push([start, at]);
  }
  return out;
}

/** One random mutation of bytes; `corpus` supplies other modules for splicing. */
export function mutateBytes(rng: Rng, input: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array {
  const bytes = input.slice();
  const at = () => rng.int(Math.max(1, bytes.length));
  switch (rng.int(9)) {
    case 0: { // bit flips
      for (let i = 1 + rng.int(8); i > 0; i--) {
        const p = at();
        if (p < bytes.length) bytes[p]! ^= 1 << rng.int(8);
      }
      return bytes;
    }
    case 1: { // interesting bytes
      for (let i = 1 + rng.int(4); i > 0; i--) {
        const p = at();
        if (p < bytes.length) bytes[p] = rng.pick(INTERESTING);
      }
      return bytes;
    }
    case 2: // truncation
      return bytes.slice(0, at());
    case 3: { // insertion of random bytes
      const p = at();
      return concat(bytes.subarray(0, p), rng.bytes(1 + rng.int(16)), bytes.subarray(p));
    }
    case 4: { // deletion of a range
      const p = at();
      return concat(bytes.subarray(0, p), bytes.subarray(p + 1 + rng.int(32)));
    }
    case 5: { // duplication of a range
      const p = at();
      const chunk = bytes.subarray(p, p + 1 + rng.int(64));
      return concat(bytes.subarray(0, p), chunk, bytes.subarray(p));
    }
    case 6: { // a section size made huge or small (LEB128 corruption)
      const sections = wasmSections(bytes);
      if (sections.length === 0) return mutateBytes(rng, input, corpus);
      const [start] = rng.pick(sections);
      const huge = rng.int(2) === 0;
      const size = huge ? [0xff, 0xff, 0xff, 0xff, 0x0f] : [rng.int(4)];
      return concat(bytes.subarray(0, start + 1), Uint8Array.from(size), skipLeb(bytes, start + 1));
    }
    case 7: { // a section from another module spliced in (or one dropped, or one repeated)
      const sections = wasmSections(bytes);
      const donor = wasmSections(rng.pick(corpus));
      const from = rng.pick(corpus);
      if (sections.length === 0 || donor.length === 0) return mutateBytes(rng, input, corpus);
      const [s, e] = rng.pick(sections);
      const [ds, de] = donor[rng.int(donor.length)]!;
      const piece = from.subarray(ds, de);
      switch (rng.int(3)) {
        case 0:
          return concat(bytes.subarray(0, s), piece, bytes.subarray(e));
        case 1:
          return concat(bytes.subarray(0, s), bytes.subarray(e));
        default:
          return concat(bytes.subarray(0, e), bytes.subarray(s, e), bytes.subarray(e));
      }
    }
    default: { // several mutations at once
      let out: Uint8Array = bytes;
      for (let i = 2 + rng.int(3); i > 0; i--) out = mutateBytes(rng, out, corpus);
      return out;
    }
  }
}

function skipLeb(bytes: Uint8Array, at: number): Uint8Array {
  while (at < bytes.length && bytes[at]! & 0x80) at++;
  return bytes.subarray(at + 1);
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Tokens that break parsers: YAML and Cedar syntax, aliases, tags, numbers at the edges, odd characters. */
const TOKENS = [
  "\n",
  " ",
  "\t",
  ":",
  "- ",
  "{",
  "}",
  "[",
  "]",
  "(",
  ")",
  ",",
  ";",
  '"',
  "'",
  "#",
  "&a",
  "*a",
  "!!binary ",
  "!!js ",
  "<<: *a",
  "---",
  "...",
  "|",
  ">",
  "? ",
  "~",
  "null",
  "true",
  "0x",
  "1e999",
  "-0",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "NaN",
  ".inf",
  "\u0000",
  "\u001b",
  "\ufeff",
  "\u202e",
  "\ud800",
  "\u00e9",
  "💥",
  "permit",
  "forbid",
  "when",
  "unless",
  "principal",
  "action",
  "resource",
  "context",
  "in",
  "==",
  "like",
  "has",
  "is",
  "if",
  "then",
  "else",
  "&&",
  "||",
  "!",
  "@id(",
  '@id("x")',
  "Action::",
  'Action::"fs.read"',
  'Plugin::"',
  "::",
  "ip(",
  "decimal(",
  ".contains(",
  ".isInRange(",
  "[1,[2,[3]]]",
  '{"a":{"b":{}}}',
  "name:",
  "version:",
  "exports:",
  "grants:",
  "limits:",
  "capabilities:",
  "samples:",
  "fs.read:",
  "dir:",
  "../",
  "/etc",
  "http.request:",
  "host:",
  "port:",
  "65536",
  "memoryPages: 99999",
  "deadlineMs: -1",
  "__proto__:",
  "constructor:",
  "%",
  "\\",
  "\\u0000",
];

/** One random mutation of text; `corpus` supplies other texts for splicing. */
export function mutateText(rng: Rng, input: string, corpus: readonly string[]): string {
  const at = () => rng.int(input.length + 1);
  switch (rng.int(10)) {
    case 0: { // a token inserted
      const p = at();
      return input.slice(0, p) + rng.pick(TOKENS) + input.slice(p);
    }
    case 1: { // a range replaced by a token
      const p = at();
      return input.slice(0, p) + rng.pick(TOKENS) + input.slice(p + 1 + rng.int(8));
    }
    case 2: { // a range deleted
      const p = at();
      return input.slice(0, p) + input.slice(p + 1 + rng.int(16));
    }
    case 3: { // lines shuffled, dropped or repeated
      const lines = input.split("\n");
      const i = rng.int(lines.length);
      const j = rng.int(lines.length);
      const op = rng.int(3);
      if (op === 0) [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      else if (op === 1) lines.splice(i, 1);
      else lines.splice(i, 0, lines[j]!);
      return lines.join("\n");
    }
    case 4: { // an indentation change
      const lines = input.split("\n");
      const i = rng.int(lines.length);
      lines[i] = rng.int(2) ? `  ${lines[i]}` : lines[i]!.replace(/^ {1,2}/, "");
      return lines.join("\n");
    }
    case 5: { // a splice with another text of the corpus
      const other = rng.pick(corpus);
      const p = at();
      const q = rng.int(other.length + 1);
      return input.slice(0, p) + other.slice(q);
    }
    case 6: { // a nesting bomb: brackets or YAML flow collections deep enough to overflow a naive parser
      const depth = rng.pick([33, 64, 150, 400, 2000]);
      const [open, close] = rng.pick([["(", ")"], ["[", "]"], ["{", "}"], ["!(", ")"], ["- ", ""]]);
      const p = at();
      return input.slice(0, p) + open.repeat(depth) + "1" + close.repeat(depth) + input.slice(p);
    }
    case 7: { // a YAML alias bomb
      const bomb = [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
        "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
      ].join("\n");
      return rng.int(2) ? `${bomb}\n${input}` : `${input}\n${bomb}`;
    }
    case 8: { // a long run of one character
      const p = at();
      return input.slice(0, p) + rng.pick(["a", "(", "\\", '"', " ", "\n", "9"]).repeat(1 + rng.int(70_000)) +
        input.slice(p);
    }
    default: {
      let out = input;
      for (let i = 2 + rng.int(3); i > 0; i--) out = mutateText(rng, out, corpus);
      return out;
    }
  }
}

/** Hostile JSON values: deep nesting, edge numbers, odd strings, prototype keys. */
function hostileValue(rng: Rng): unknown {
  switch (rng.int(12)) {
    case 0:
      return null;
    case 1:
      return rng.pick([0, -1, 1e308, -1e308, 9007199254740993, 2 ** 63, -(2 ** 63), 0.5]);
    case 2:
      return rng.pick(["", "\u0000", "a".repeat(70_000), "\ud800", "💥", 'Action::"x"', "../..", "*", "__proto__"]);
    case 3:
      return [];
    case 4:
      return {};
    case 5: {
      let v: unknown = 1;
      for (let i = rng.pick([10, 31, 32, 33, 100, 5000]); i > 0; i--) v = rng.int(2) ? [v] : { a: v };
      return v;
    }
    case 6:
      return { type: rng.pick(["", "Plugin", "Client", "File", "Action", "X::Y"]), id: rng.pick(["", "x", "\u0000"]) };
    case 7:
      return { __extn: { fn: rng.pick(["ip", "decimal", "nope"]), arg: rng.pick(["127.0.0.1", "1.2", "x", 1]) } };
    case 8:
      return { __entity: { type: "Plugin", id: "x" } };
    case 9:
      return Array.from({ length: rng.pick([1, 100, 10_000]) }, () => ({ type: "Dir", id: "/" }));
    case 10:
      return true;
    default:
      return { "__proto__": { polluted: true }, constructor: { prototype: { polluted: true } } };
  }
}

/** One random mutation of a JSON value (structure), or of its text. */
export function mutateJson(rng: Rng, input: unknown, corpus: readonly unknown[]): string {
  if (rng.int(4) === 0) return mutateText(rng, JSON.stringify(input), corpus.map((c) => JSON.stringify(c)));
  const copy = structuredClone(input) as Record<string, unknown>;
  const mutations = 1 + rng.int(3);
  for (let m = 0; m < mutations; m++) {
    // Walk to a random node and replace, delete or add a member.
    let node: Record<string, unknown> = copy;
    for (let depth = rng.int(4); depth > 0; depth--) {
      const keys = Object.keys(node).filter((k) => typeof node[k] === "object" && node[k] !== null);
      if (keys.length === 0) break;
      node = node[rng.pick(keys)] as Record<string, unknown>;
    }
    const keys = Object.keys(node);
    const op = rng.int(3);
    if (op === 0 && keys.length > 0) node[rng.pick(keys)] = hostileValue(rng);
    else if (op === 1 && keys.length > 0) delete node[rng.pick(keys)];
    else {node[rng.pick(["principal", "action", "resource", "context", "attrs", "parents", "type", "id", "x"])] =
        hostileValue(rng);}
  }
  return JSON.stringify(copy);
}
