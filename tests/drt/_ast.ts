// The generator's policy syntax tree and its printer to Cedar text. The tree is ours, not Cedar's EST: it keeps what
// the text should look like (bracket or dot access, `-1` as a literal or a negation, redundant parentheses), so that
// both parsers are fed the many spellings of one expression, and so that a disagreement can be shrunk node by node.
import type { Random } from "./_random.ts";

/** A policy expression as the generator builds it. */
export type Expr =
  | { k: "lit"; v: boolean | bigint | string }
  | { k: "entity"; type: string; id: string }
  | { k: "var"; name: "principal" | "action" | "resource" | "context" }
  | { k: "unary"; op: "!" | "-"; arg: Expr }
  | { k: "binary"; op: BinaryOp; left: Expr; right: Expr }
  | { k: "has"; arg: Expr; attrs: string[] }
  | { k: "like"; arg: Expr; pattern: PatternElem[] }
  | { k: "is"; arg: Expr; type: string; in?: Expr }
  | { k: "ite"; cond: Expr; then: Expr; else: Expr }
  | { k: "set"; items: Expr[] }
  | { k: "record"; fields: [string, Expr][] }
  | { k: "attr"; arg: Expr; name: string; bracket?: boolean }
  | { k: "method"; name: string; recv: Expr; args: Expr[] }
  | { k: "call"; name: string; args: Expr[] }
  | { k: "paren"; arg: Expr };

/** Binary operators, each at its level of Cedar's grammar. */
export type BinaryOp = "||" | "&&" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "+" | "-" | "*";

/** One element of a `like` pattern: a wildcard, or literal text (a literal `*` prints as `\*`). */
export type PatternElem = { wildcard: true } | { text: string };

/** A scope constraint of principal or resource. */
export type EntityScope =
  | { op: "all" }
  | { op: "=="; entity: EntityLit }
  | { op: "in"; entity: EntityLit }
  | { op: "is"; type: string; in?: EntityLit };

/** The action's scope constraint. */
export type ActionScope =
  | { op: "all" }
  | { op: "=="; entity: EntityLit }
  | { op: "in"; entity: EntityLit }
  | { op: "inSet"; entities: EntityLit[] };

/** An entity uid literal. */
export interface EntityLit {
  type: string;
  id: string;
}

/** A whole policy. */
export interface Policy {
  annotations: [string, string | undefined][];
  effect: "permit" | "forbid";
  principal: EntityScope;
  action: ActionScope;
  resource: EntityScope;
  conditions: { kind: "when" | "unless"; body: Expr }[];
}

const RESERVED = new Set(["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]);

/** True when `name` can be written as a bare identifier (`.name`, `has name`, a record key). */
export function isIdentifier(name: string): boolean {
  return /^[_a-zA-Z][_a-zA-Z0-9]*$/.test(name) && !RESERVED.has(name);
}

/** Writes a string literal's body, escaping as Cedar does; `style` picks among the escapes Cedar accepts. */
export function escapeString(text: string, style = 0, inPattern = false): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "*" && inPattern) out += "\\*";
    else if (ch === "\n") out += style % 3 === 1 ? "\\u{a}" : "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\0") out += "\\0";
    else if (ch === "'") out += style % 2 === 1 ? "\\'" : "'";
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else if (code > 0x7f && style % 4 >= 2) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return out;
}

/** `Type::"id"`. */
export function printEntity(e: EntityLit, style = 0): string {
  return `${e.type}::"${escapeString(e.id, style)}"`;
}

// Grammar levels: a child printed below the level its position needs is parenthesized.
const enum Level {
  Expr = 0,
  Or = 1,
  And = 2,
  Rel = 3,
  Add = 4,
  Mult = 5,
  Unary = 6,
  Member = 7,
  Primary = 8,
}

function levelOf(e: Expr): Level {
  switch (e.k) {
    case "ite":
      return Level.Expr;
    case "binary":
      return e.op === "||"
        ? Level.Or
        : e.op === "&&"
        ? Level.And
        : e.op === "+" || e.op === "-"
        ? Level.Add
        : e.op === "*"
        ? Level.Mult
        : Level.Rel;
    case "has":
    case "like":
    case "is":
      return Level.Rel;
    case "unary":
      return Level.Unary;
    case "lit":
      return typeof e.v === "bigint" && e.v < 0n ? Level.Unary : Level.Primary;
    case "attr":
    case "method":
      return Level.Member;
    default:
      return Level.Primary;
  }
}

/** Prints expressions and policies; `style` (any integer) varies spacing and escapes without changing meaning. */
export class Printer {
  #style: number;
  #count = 0;

  constructor(style = 0) {
    this.#style = style >>> 0;
  }

  // A cheap, deterministic stream of stylistic choices, so that reprinting a shrunk tree stays close.
  #bit(n = 2): number {
    this.#count++;
    const x = Math.imul(this.#style ^ Math.imul(this.#count, 0x9e3779b1), 0x85ebca6b) >>> 0;
    return (x >>> 13) % n;
  }

  #sp(): string {
    return this.#bit(8) === 0 ? "  " : this.#bit(10) === 0 ? "\n  " : " ";
  }

  #at(e: Expr, min: Level): string {
    const text = this.expr(e);
    return levelOf(e) < min ? `(${text})` : text;
  }

  /** Cedar text of an expression. */
  expr(e: Expr): string {
    const sp = () => this.#sp();
    switch (e.k) {
      case "lit":
        if (typeof e.v === "string") return `"${escapeString(e.v, this.#bit(4))}"`;
        return String(e.v);
      case "entity":
        return printEntity(e, this.#bit(4));
      case "var":
        return e.name;
      case "paren":
        return `(${this.expr(e.arg)})`;
      case "unary": {
        // Cedar allows up to four prefix operators in a row; a fifth needs parentheses (`--1` is -(−1)).
        let chain = 1;
        for (let a = e.arg; a.k === "unary"; a = a.arg) chain++;
        const arg = e.arg.k === "unary" && chain <= 4 ? this.expr(e.arg) : this.#at(
          e.arg,
          e.op === "-" && e.arg.k === "lit" && typeof e.arg.v === "bigint" ? Level.Primary : Level.Member,
        );
        return `${e.op}${arg}`;
      }
      case "binary": {
        const level = levelOf(e);
        const [l, r] = level === Level.Rel ? [Level.Add, Level.Add] : [level, level + 1 as Level];
        return `${this.#at(e.left, l)}${sp()}${e.op}${sp()}${this.#at(e.right, r)}`;
      }
      case "has": {
        const arg = this.#at(e.arg, Level.Add);
        if (e.attrs.length === 1 && !isIdentifier(e.attrs[0]!)) {
          return `${arg} has "${escapeString(e.attrs[0]!)}"`;
        }
        if (e.attrs.length === 1 && this.#bit(4) === 0) return `${arg} has "${escapeString(e.attrs[0]!)}"`;
        return `${arg} has ${e.attrs.join(".")}`;
      }
      case "like": {
        const body = e.pattern.map((p) => "wildcard" in p ? "*" : escapeString(p.text, this.#bit(4), true)).join("");
        return `${this.#at(e.arg, Level.Add)} like "${body}"`;
      }
      case "is": {
        const head = `${this.#at(e.arg, Level.Add)} is ${e.type}`;
        return e.in === undefined ? head : `${head} in ${this.#at(e.in, Level.Add)}`;
      }
      case "ite":
        return `if ${this.expr(e.cond)} then ${this.expr(e.then)} else ${this.expr(e.else)}`;
      case "set":
        return `[${e.items.map((i) => this.expr(i)).join(`,${sp()}`)}]`;
      case "record":
        return `{${
          e.fields.map(([name, value]) =>
            `${isIdentifier(name) && this.#bit(3) !== 0 ? name : `"${escapeString(name)}"`}: ${this.expr(value)}`
          ).join(`,${sp()}`)
        }}`;
      case "attr": {
        const recv = this.#recv(e.arg);
        return e.bracket || !isIdentifier(e.name) ? `${recv}["${escapeString(e.name)}"]` : `${recv}.${e.name}`;
      }
      case "method":
        return `${this.#recv(e.recv)}.${e.name}(${e.args.map((a) => this.expr(a)).join(", ")})`;
      case "call":
        return `${e.name}(${e.args.map((a) => this.expr(a)).join(", ")})`;
    }
  }

  #recv(e: Expr): string {
    // A negative literal as a receiver is parenthesized: `-1.x` would read as -(1.x).
    return levelOf(e) < Level.Member ? `(${this.expr(e)})` : this.expr(e);
  }

  #entityScope(name: string, s: EntityScope): string {
    switch (s.op) {
      case "all":
        return name;
      case "==":
        return `${name} == ${printEntity(s.entity, this.#bit(4))}`;
      case "in":
        return `${name} in ${printEntity(s.entity, this.#bit(4))}`;
      case "is":
        return s.in === undefined ? `${name} is ${s.type}` : `${name} is ${s.type} in ${printEntity(s.in)}`;
    }
  }

  #actionScope(s: ActionScope): string {
    switch (s.op) {
      case "all":
        return "action";
      case "==":
        return `action == ${printEntity(s.entity)}`;
      case "in":
        return `action in ${printEntity(s.entity)}`;
      case "inSet":
        return `action in [${s.entities.map((e) => printEntity(e)).join(", ")}]`;
    }
  }

  /** Cedar text of a policy, ending in `;`. */
  policy(p: Policy): string {
    const annotations = p.annotations.map(([key, value]) =>
      value === undefined ? `@${key}\n` : `@${key}("${escapeString(value, this.#bit(4))}")\n`
    ).join("");
    const nl = this.#bit(2) === 0 ? "\n  " : " ";
    const head = `${annotations}${p.effect}${this.#bit(3) === 0 ? " " : ""}(${nl}${
      this.#entityScope("principal", p.principal)
    },${nl}${this.#actionScope(p.action)},${nl}${this.#entityScope("resource", p.resource)}${nl === " " ? "" : "\n"})`;
    const comment = this.#bit(12) === 0 ? " // a comment; with ) and } inside\n" : "";
    const conditions = p.conditions.map((c) => `\n${c.kind} {${this.#sp()}${this.expr(c.body)}${this.#sp()}}`).join(
      "",
    );
    return `${head}${comment}${conditions};`;
  }
}

/** Prints a policy set: the policies' texts, one after another. */
export function printPolicies(policies: readonly Policy[], style: number): string {
  const printer = new Printer(style);
  return policies.map((p) => printer.policy(p)).join("\n\n") + "\n";
}

/** Each immediate sub-expression of `e`, for shrinking. */
export function children(e: Expr): Expr[] {
  switch (e.k) {
    case "lit":
    case "entity":
    case "var":
      return [];
    case "unary":
    case "paren":
      return [e.arg];
    case "binary":
      return [e.left, e.right];
    case "has":
    case "like":
    case "attr":
      return [e.arg];
    case "is":
      return e.in === undefined ? [e.arg] : [e.arg, e.in];
    case "ite":
      return [e.cond, e.then, e.else];
    case "set":
      return e.items;
    case "record":
      return e.fields.map(([, v]) => v);
    case "method":
      return [e.recv, ...e.args];
    case "call":
      return e.args;
  }
}

/** Simpler versions of `e` (each child in its place, then the leaves `true`/`false`), smallest first. */
export function* shrinkExpr(e: Expr): Generator<Expr> {
  if (e.k === "lit" && (e.v === true || e.v === false)) return;
  yield { k: "lit", v: true };
  yield { k: "lit", v: false };
  for (const c of children(e)) yield c;
  // Shrink inside: each child replaced by one of its own shrinks.
  const kids = children(e);
  for (let i = 0; i < kids.length; i++) {
    for (const smaller of shrinkExpr(kids[i]!)) yield replaceChild(e, i, smaller);
  }
}

function replaceChild(e: Expr, i: number, c: Expr): Expr {
  switch (e.k) {
    case "unary":
    case "paren":
    case "has":
    case "like":
    case "attr":
      return { ...e, arg: c };
    case "binary":
      return i === 0 ? { ...e, left: c } : { ...e, right: c };
    case "is":
      return i === 0 ? { ...e, arg: c } : { ...e, in: c };
    case "ite":
      return i === 0 ? { ...e, cond: c } : i === 1 ? { ...e, then: c } : { ...e, else: c };
    case "set":
      return { ...e, items: e.items.map((x, j) => j === i ? c : x) };
    case "record":
      return { ...e, fields: e.fields.map(([n, v], j) => [n, j === i ? c : v]) };
    case "method":
      return i === 0 ? { ...e, recv: c } : { ...e, args: e.args.map((x, j) => j === i - 1 ? c : x) };
    case "call":
      return { ...e, args: e.args.map((x, j) => j === i ? c : x) };
    default:
      return e;
  }
}

/** Draws a random printer style. */
export function randomStyle(rng: Random): number {
  return rng.u32();
}
