// Random Cedar policy texts for the parser's differential tests: policies
// from a grammar that strays on purpose (reserved words, bad escapes, wrong
// scopes, unknown methods, out-of-range integers), and token-level mutations
// of valid ones. Shallow by construction: cedar-wasm, the oracle, dies of
// deep nesting.

/** A seeded generator of floats in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function chance(random: Random, p: number): boolean {
  return random() < p;
}

const STRING_PIECES = [
  "a",
  "b",
  "fs.read",
  "/data/p1",
  " ",
  "é",
  "😀",
  "*",
  "\\n",
  "\\t",
  "\\r",
  "\\\\",
  '\\"',
  "\\'",
  "\\0",
  "\\x41",
  "\\x7f",
  "\\u{1F600}",
  "\\u{2a}",
  "\\u{0_41}",
];
const BAD_STRING_PIECES = ["\\q", "\\x80", "\\u{D800}", "\\u{110000}", "\\u{}", "\\u{1234567}", "\\u41", "\r"];
const IDENTS = ["a", "b", "size", "owner", "tags", "_x", "x1", "principal", "context", "permit", "when", "Action"];
const RESERVED = ["if", "then", "else", "in", "is", "has", "like", "true", "false", "__cedar"];
const TYPES = ["User", "Plugin", "Dir", "Ns::User", "A::B::C", "Action", "Ns::Action"];
const NUMBERS = [
  "0",
  "1",
  "5",
  "10",
  "007",
  "9007199254740993",
  "9223372036854775807",
  "9223372036854775808",
  "18446744073709551615",
  "18446744073709551616",
];
const METHODS = [
  "contains",
  "containsAll",
  "containsAny",
  "isEmpty",
  "getTag",
  "hasTag",
  "lessThan",
  "isInRange",
  "isIpv4",
  "toDays",
  "offset",
  "foo",
  "ip",
];
const FUNCTIONS = ["ip", "decimal", "datetime", "duration", "Ns::ip", "foo", "contains", "lessThan"];

function str(random: Random, pattern = false): string {
  let s = "";
  const n = Math.floor(random() * 4);
  for (let i = 0; i < n; i++) {
    if (chance(random, 0.01)) s += pick(random, BAD_STRING_PIECES);
    else if (pattern && chance(random, 0.2)) s += "\\*";
    else s += pick(random, STRING_PIECES);
  }
  return `"${s}"`;
}

function ident(random: Random): string {
  return chance(random, 0.02) ? pick(random, RESERVED) : pick(random, IDENTS);
}

function entity(random: Random): string {
  return `${pick(random, TYPES)}::${str(random)}`;
}

function atom(random: Random): string {
  if (chance(random, 0.03)) return pick(random, ["a", "?principal", "?resource", "Ns::x", "9223372036854775808"]);
  switch (Math.floor(random() * 8)) {
    case 0:
      return pick(random, NUMBERS.slice(0, 7));
    case 1:
      return str(random);
    case 2:
      return pick(random, ["true", "false"]);
    case 3:
      return pick(random, ["principal", "action", "resource", "context"]);
    case 4:
      return entity(random);
    case 5:
      return `context.${ident(random)}`;
    case 6:
      return `${pick(random, ["ip", "decimal", "datetime", "duration"])}(${str(random)})`;
    default:
      return `principal.${ident(random)}`;
  }
}

/**
 * A random expression of nesting at most `depth` levels (about). An
 * `operand` is under an operator, where an `if` needs parentheses.
 */
export function randomExpr(random: Random, depth: number, operand = false): string {
  if (depth <= 0 || chance(random, 0.15)) return atom(random);
  const sub = () => randomExpr(random, depth - 1, true);
  const any = () => randomExpr(random, depth - 1);
  // Relations do not chain: as an operand, one takes parentheses (mostly).
  const relation = (text: string) => (operand && chance(random, 0.95) ? `(${text})` : text);
  switch (Math.floor(random() * 16)) {
    case 0:
    case 1: {
      const op = pick(random, ["||", "&&", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*"]);
      return relation(`${sub()} ${op} ${sub()}`);
    }
    case 2:
      return `${pick(random, ["!", "-"]).repeat(1 + Math.floor(random() * 4.2))}${sub()}`;
    case 3: {
      const path = [ident(random)];
      while (chance(random, 0.3)) path.push(ident(random));
      return relation(`${sub()} has ${chance(random, 0.3) ? str(random) : path.join(".")}`);
    }
    case 4:
      return relation(`${sub()} like ${str(random, true)}`);
    case 5:
      return relation(`${sub()} is ${pick(random, TYPES)}${chance(random, 0.4) ? ` in ${sub()}` : ""}`);
    case 6: {
      const ite = `if ${any()} then ${any()} else ${any()}`;
      return operand && chance(random, 0.95) ? `(${ite})` : ite;
    }
    case 7:
      return `${sub()}.${ident(random)}`;
    case 8:
      return `${sub()}[${str(random)}]`;
    case 9: {
      const args = Array.from({ length: Math.floor(random() * 3) }, any);
      return `${sub()}.${pick(random, METHODS)}(${args.join(", ")})`;
    }
    case 10: {
      const items = Array.from({ length: Math.floor(random() * 4) }, any);
      return `[${items.join(", ")}${items.length && chance(random, 0.1) ? "," : ""}]`;
    }
    case 11: {
      const fields = Array.from(
        { length: Math.floor(random() * 4) },
        () => `${chance(random, 0.3) ? str(random) : ident(random)}: ${any()}`,
      );
      return `{${fields.join(", ")}}`;
    }
    case 12:
    case 13:
      return `(${any()})`;
    case 14: {
      const args = Array.from({ length: Math.floor(random() * 3) }, any);
      return `${pick(random, FUNCTIONS)}(${args.join(", ")})`;
    }
    default:
      return `-${pick(random, NUMBERS.slice(0, chance(random, 0.9) ? 8 : NUMBERS.length))}`;
  }
}

function scope(random: Random, variable: "principal" | "resource"): string {
  const slot = chance(random, 0.9) ? `?${variable}` : pick(random, ["?principal", "?resource", "?other"]);
  switch (Math.floor(random() * 10)) {
    case 0:
    case 1:
    case 8:
      return variable;
    case 2:
      return `${variable} == ${entity(random)}`;
    case 3:
      return `${variable} in ${entity(random)}`;
    case 4:
      return `${variable} is ${pick(random, TYPES)}`;
    case 5:
      return `${variable} is ${pick(random, TYPES)} in ${chance(random, 0.3) ? slot : entity(random)}`;
    case 6:
      return `${variable} ${pick(random, ["==", "in"])} ${slot}`;
    case 7:
      return chance(random, 0.3)
        ? `${variable} ${pick(random, ["==", "in", "<", "="])} ${randomExpr(random, 1)}`
        : `${variable} in (${entity(random)})`;
    default:
      return `${variable} == ${entity(random)}`;
  }
}

function actionScope(random: Random): string {
  const action = () => `${chance(random, 0.95) ? pick(random, ["Action", "Ns::Action"]) : "User"}::${str(random)}`;
  switch (Math.floor(random() * 7)) {
    case 0:
    case 1:
      return "action";
    case 2:
      return `action == ${action()}`;
    case 3:
      return `action in ${action()}`;
    case 4:
      return `action in [${Array.from({ length: Math.floor(random() * 4) }, action).join(", ")}]`;
    case 5:
      return `action ${pick(random, ["==", "in", "is"])} ${randomExpr(random, 1)}`;
    default:
      return "action";
  }
}

/** A random policy or template, valid more often than not. */
export function randomPolicy(random: Random): string {
  let text = "";
  const annotations = Math.floor(random() * 3);
  for (let i = 0; i < annotations; i++) {
    const key = chance(random, 0.1) ? pick(random, ["if", "id", "principal", "__cedar"]) : ["id", "advice", "x"][i]!;
    text += chance(random, 0.3) ? `@${key} ` : `@${key}(${str(random)})\n`;
  }
  text += chance(random, 0.97) ? pick(random, ["permit", "forbid"]) : pick(random, ["Permit", "allow"]);
  text += ` (${scope(random, "principal")}, ${actionScope(random)}, ${scope(random, "resource")}${
    chance(random, 0.05) ? "," : ""
  })`;
  const conditions = Math.floor(random() * 3);
  for (let i = 0; i < conditions; i++) {
    text += `\n  ${chance(random, 0.97) ? pick(random, ["when", "unless"]) : "advice"} { ${randomExpr(random, 4)} }`;
  }
  return `${text};`;
}

const TOKEN = /\s+|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|\?[A-Za-z_]\w*|[A-Za-z_]\w*|\d+|::|==|!=|<=|>=|&&|\|\||[^]/gu;
const INSERTS = [
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  ",",
  ";",
  ":",
  "::",
  ".",
  "@",
  "!",
  "-",
  "+",
  "*",
  "/",
  "%",
  "=",
  "==",
  "<",
  "&&",
  "||",
  "|",
  "?principal",
  "?x",
  '"s"',
  '"\\*"',
  '"',
  "1",
  "9223372036854775808",
  "principal",
  "action",
  "resource",
  "context",
  "permit",
  "when",
  "unless",
  "if",
  "then",
  "else",
  "in",
  "has",
  "like",
  "is",
  "true",
  "__cedar",
  "User",
  "Action",
  "isEmpty",
  "contains",
  "ip",
  "//",
  "#",
  "\u00a0",
  "é",
];

/** A copy of `text` with one to three tokens deleted, inserted, swapped or replaced. */
export function mutate(random: Random, text: string): string {
  const tokens = text.match(TOKEN) ?? [];
  const edits = 1 + Math.floor(random() * 3);
  for (let e = 0; e < edits && tokens.length > 0; e++) {
    const i = Math.floor(random() * tokens.length);
    switch (Math.floor(random() * 4)) {
      case 0:
        tokens.splice(i, 1);
        break;
      case 1:
        tokens.splice(i, 0, pick(random, INSERTS), " ");
        break;
      case 2:
        if (i + 2 < tokens.length) [tokens[i], tokens[i + 2]] = [tokens[i + 2]!, tokens[i]!];
        break;
      default:
        tokens[i] = pick(random, INSERTS);
    }
  }
  return tokens.join("");
}
