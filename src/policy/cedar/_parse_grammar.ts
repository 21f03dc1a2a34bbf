// The recursive-descent parser behind parsePolicies: Cedar's grammar
// (cedar-policy-core `grammar.lalrpop`) with its CST-to-JSON checks
// (`cst_to_ast.rs`) applied as each construct is read. Where Cedar's
// grammar accepts a shape that its conversion always refuses (a `has` whose
// right side is not an attribute path, a scope that is not an entity, a
// reserved word as a name), this parser refuses it while reading.
//
// An operand that may still be taken for something other than an expression
// (a name: an `is` type or a record key; a string: an attribute or a
// pattern; a bare integer under unary minus) travels as an Item until the
// construct around it decides, as Cedar's `ExprOrSpecial` does.
import {
  ANDAND,
  AT,
  BANG,
  COLON,
  COLONCOLON,
  COMMA,
  describeKind,
  DOT,
  EOF,
  EQ,
  EQEQ,
  GE,
  GT,
  IDENT,
  LBRACE,
  LBRACKET,
  LE,
  Lexer,
  LPAREN,
  LT,
  MINUS,
  NE,
  NUMBER,
  OROR,
  PERCENT,
  PLUS,
  quote,
  RBRACE,
  RBRACKET,
  RPAREN,
  SEMI,
  SLASH,
  SLOT,
  STAR,
  STRING,
  syntaxError,
} from "./_lexer.ts";
import { unescapePattern, unescapeString } from "./_parse_unescape.ts";
import type {
  EstActionConstraint,
  EstClause,
  EstEntityUid,
  EstExpr,
  EstPatternElem,
  EstScopeConstraint,
  EstScopeTarget,
  ParsedPolicy,
  PolicyJson,
} from "./parse_policies.ts";

// Item kinds.
const EXPR = 0;
const VAR = 1;
const NAME = 2;
const STR = 3;
const BOOL = 4;
const NUM = 5;

const I64_MAX = 9223372036854775807n;
const U64_MAX = 18446744073709551615n;

// Identifiers Cedar refuses as names, attributes and methods (`to_valid_ident`).
const RESERVED = new Set(["true", "false", "if", "then", "else", "in", "is", "has", "like"]);
const VARS = new Set(["principal", "action", "resource", "context"]);
// Cedar 4.13's extension functions (function style) and methods (method style).
const EXTENSION_FUNCTIONS = new Set(["ip", "decimal", "datetime", "duration", "unknown"]);
const EXTENSION_METHODS = new Set([
  "isIpv4",
  "isIpv6",
  "isLoopback",
  "isMulticast",
  "isInRange",
  "lessThan",
  "lessThanOrEqual",
  "greaterThan",
  "greaterThanOrEqual",
  "offset",
  "durationSince",
  "toDate",
  "toTime",
  "toDays",
  "toHours",
  "toMinutes",
  "toSeconds",
  "toMilliseconds",
]);
const BINARY_METHODS = new Set(["contains", "containsAll", "containsAny", "getTag", "hasTag"]);
const RELATIONS: Record<number, string> = { [EQEQ]: "==", [NE]: "!=", [LT]: "<", [LE]: "<=", [GT]: ">", [GE]: ">=" };

/** An operand not yet committed to being an expression. `h` is its nesting height. */
class Item {
  constructor(
    /** EXPR, VAR, NAME, STR, BOOL or NUM. */
    readonly k: number,
    /** The expression (for a NUM, its value unchecked against i64). */
    readonly e: EstExpr | undefined,
    /** Offset in the text. */
    readonly at: number,
    /** Nesting height: levels below it, counted as ParseOptions.maxDepth counts them. */
    readonly h: number,
    /** A NAME's path, a STR's raw contents. */
    readonly s: string,
    /** A STR's contents hold a backslash or carriage return. */
    readonly escaped: boolean,
  ) {}
}

function expr(e: EstExpr, at: number, h: number): Item {
  return new Item(EXPR, e, at, h, "", false);
}

/** Sets a key on a plain object, `__proto__` included, as JSON.parse would. */
function define<T>(object: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else object[key] = value;
}

function sortedRecord<T>(entries: [string, T][]): Record<string, T> {
  if (entries.length > 1) entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const record: Record<string, T> = {};
  for (const [key, value] of entries) define(record, key, value);
  return record;
}

/** Parses one text; `policies()` once. */
export class Parser {
  readonly #lx: Lexer;
  readonly #text: string;
  readonly #maxDepth: number;
  #depth = 0;
  #template = false;
  // Where line/column were last computed, to number policies in one pass.
  #lineAt = 0;
  #line = 1;
  #lineStart = 0;

  /**
   * Prepares a parse.
   * @param text The policy text.
   * @param maxDepth The nesting bound.
   */
  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
    this.#lx = new Lexer(text);
  }

  /**
   * Parses every policy of the text.
   * @returns The policies, in text order.
   */
  policies(): ParsedPolicy[] {
    const lx = this.#lx;
    lx.next();
    const policies: ParsedPolicy[] = [];
    while (lx.kind !== EOF) {
      const start = lx.start;
      this.#template = false;
      const json = this.#policy();
      const line = this.#lineOf(start);
      policies.push({
        id: `policy${policies.length}`,
        json,
        template: this.#template,
        start,
        end: lx.end,
        line,
        column: start - this.#lineStart + 1,
      });
      lx.next();
    }
    return policies;
  }

  // ---- errors

  #fail(offset: number, detail: string): never {
    throw syntaxError(this.#text, offset, detail);
  }

  /** The current token, quoted for a message. */
  #found(): string {
    const lx = this.#lx;
    if (lx.kind === EOF) return "end of input";
    return quote(this.#text.slice(lx.start, lx.end));
  }

  #expected(what: string): never {
    this.#fail(this.#lx.start, `expected ${what}, found ${this.#found()}`);
  }

  #expect(kind: number, context: string): void {
    if (this.#lx.kind !== kind) this.#expected(`${describeKind(kind)} ${context}`);
    this.#lx.next();
  }

  #isKeyword(word: string): boolean {
    return this.#lx.kind === IDENT && this.#lx.value === word;
  }

  #enter(levels: number): void {
    this.#depth += levels;
    if (this.#depth > this.#maxDepth) {
      this.#fail(this.#lx.start, `nesting deeper than the limit of ${this.#maxDepth} levels`);
    }
  }

  /** Refuses a node whose height, at the current depth, passes the bound. */
  #height(h: number, at: number): number {
    if (this.#depth + h > this.#maxDepth) {
      this.#fail(at, `expression nested deeper than the limit of ${this.#maxDepth} levels`);
    }
    return h;
  }

  /** The line of an offset at or after the last one asked; `#lineStart` is then its line's start. */
  #lineOf(offset: number): number {
    const text = this.#text;
    let line = this.#line;
    let lineStart = this.#lineStart;
    for (let i = text.indexOf("\n", this.#lineAt); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
      line++;
      lineStart = i + 1;
    }
    this.#lineAt = offset;
    this.#line = line;
    this.#lineStart = lineStart;
    return line;
  }

  // ---- policies

  #policy(): PolicyJson {
    const lx = this.#lx;
    let annotations: [string, string | null][] | undefined;
    while (lx.kind === AT) {
      const at = lx.start;
      lx.next();
      if (lx.kind !== IDENT) this.#expected(`an annotation name after "@"`);
      const key = lx.value;
      lx.next();
      let value: string | null = null;
      if (lx.kind === LPAREN) {
        lx.next();
        if (lx.kind !== STRING) this.#expected(`a string literal as the value of annotation @${key}`);
        value = this.#string();
        if (lx.kind !== RPAREN) this.#expected(`")" after the value of annotation @${key}`);
        lx.next();
      }
      annotations ??= [];
      if (annotations.some(([k]) => k === key)) this.#fail(at, `duplicate annotation @${key}`);
      annotations.push([key, value]);
    }
    if (lx.kind !== IDENT) this.#expected(annotations ? `"permit" or "forbid" after the annotations` : `a policy`);
    const effect = lx.value;
    if (effect !== "permit" && effect !== "forbid") {
      this.#fail(lx.start, `invalid policy effect ${quote(effect)}: expected "permit" or "forbid"`);
    }
    lx.next();
    if (lx.kind !== LPAREN) this.#expected(`"(" after "${effect}"`);
    lx.next();
    const principal = this.#scopeVariable("principal");
    this.#expect(COMMA, "after the principal's constraint");
    const action = this.#actionScope();
    this.#expect(COMMA, "after the action's constraint");
    const resource = this.#scopeVariable("resource");
    if (lx.kind === COMMA) lx.next();
    if (lx.kind === IDENT) this.#fail(lx.start, `extra element in the scope: ${this.#found()}`);
    this.#expect(RPAREN, "to close the scope");
    const conditions: EstClause[] = [];
    while (lx.kind === IDENT) {
      const kind = lx.value;
      if (kind !== "when" && kind !== "unless") {
        if (kind === "permit" || kind === "forbid") this.#expected(`";" to end the policy`);
        this.#fail(lx.start, `invalid policy condition ${quote(kind)}: expected "when" or "unless"`);
      }
      lx.next();
      if (lx.kind !== LBRACE) this.#expected(`"{" after "${kind}"`);
      lx.next();
      if (lx.kind === RBRACE) this.#fail(lx.start, `the ${kind} condition is empty`);
      const body = this.#toExpr(this.#expr());
      if (lx.kind !== RBRACE) this.#expected(`"}" to close the ${kind} condition`);
      lx.next();
      conditions.push({ kind, body });
    }
    if (lx.kind !== SEMI) {
      this.#expected(conditions.length ? `";" or another condition` : `";" or a condition ("when", "unless")`);
    }
    const json: PolicyJson = { effect, principal, action, resource, conditions };
    if (annotations) json.annotations = sortedRecord(annotations);
    return json;
  }

  // ---- scope

  #scopeVariable(name: "principal" | "resource"): EstScopeConstraint {
    const lx = this.#lx;
    if (lx.kind !== IDENT || lx.value !== name) this.#expected(`"${name}"`);
    lx.next();
    if (lx.kind === COLON) this.#fail(lx.start, `type constraints using ":" are not supported; use "is"`);
    let entityType: string | undefined;
    if (this.#isKeyword("is")) {
      lx.next();
      entityType = this.#isType(name);
    }
    if (lx.kind === EQEQ) {
      if (entityType !== undefined) this.#fail(lx.start, `"is" cannot be used together with "==" in the scope`);
      lx.next();
      const target = this.#scopeTarget(name);
      return "slot" in target ? { op: "==", slot: target.slot } : { op: "==", entity: target.entity };
    }
    if (this.#isKeyword("in")) {
      lx.next();
      const target = this.#scopeTarget(name);
      if (entityType !== undefined) return { op: "is", entity_type: entityType, in: target };
      return "slot" in target ? { op: "in", slot: target.slot } : { op: "in", entity: target.entity };
    }
    this.#badScopeOperator();
    return entityType === undefined ? { op: "All" } : { op: "is", entity_type: entityType };
  }

  #badScopeOperator(): void {
    const lx = this.#lx;
    if (lx.kind === EQ) this.#fail(lx.start, `"=" is not a valid operator in Cedar; use "=="`);
    if (RELATIONS[lx.kind] !== undefined) {
      this.#fail(lx.start, `invalid operator in the policy scope: ${this.#found()}; use "==" or "in"`);
    }
  }

  /** `== E` or `in E` of the principal or resource: an entity or the matching slot, in parentheses or not. */
  #scopeTarget(name: "principal" | "resource"): EstScopeTarget {
    const lx = this.#lx;
    const parens = this.#openParens();
    let target: EstScopeTarget;
    if (lx.kind === SLOT) {
      const slot = name === "principal" ? "?principal" : "?resource";
      if (lx.value !== slot) this.#fail(lx.start, `expected an entity or the slot ${slot}, found ${lx.value}`);
      this.#template = true;
      lx.next();
      target = { slot };
    } else {
      target = { entity: this.#scopeEntity(name) };
    }
    this.#closeParens(parens);
    this.#scopeEnd();
    return target;
  }

  #actionScope(): EstActionConstraint {
    const lx = this.#lx;
    if (lx.kind !== IDENT || lx.value !== "action") this.#expected(`"action"`);
    lx.next();
    if (lx.kind === COLON) this.#fail(lx.start, `type constraints using ":" are not supported`);
    if (this.#isKeyword("is")) this.#fail(lx.start, `"is" cannot appear in the action scope`);
    if (lx.kind === EQEQ) {
      lx.next();
      const parens = this.#openParens();
      const entity = this.#actionEntity();
      this.#closeParens(parens);
      this.#scopeEnd();
      return { op: "==", entity };
    }
    if (!this.#isKeyword("in")) {
      this.#badScopeOperator();
      return { op: "All" };
    }
    lx.next();
    const parens = this.#openParens();
    if (lx.kind !== LBRACKET) {
      const entity = this.#actionEntity();
      this.#closeParens(parens);
      this.#scopeEnd();
      return { op: "in", entity };
    }
    this.#enter(1);
    lx.next();
    const entities: EstEntityUid[] = [];
    while (lx.kind !== RBRACKET) {
      const inner = this.#openParens();
      entities.push(this.#actionEntity());
      this.#closeParens(inner);
      if (lx.kind === COMMA) lx.next();
      else if (lx.kind !== RBRACKET) this.#expected(`"," or "]" in the list of actions`);
    }
    lx.next();
    this.#depth--;
    this.#closeParens(parens);
    this.#scopeEnd();
    // Cedar's JSON writes a list of one action as the action itself.
    return entities.length === 1 ? { op: "in", entity: entities[0]! } : { op: "in", entities };
  }

  /** Reads any number of `(` around a scope constraint's entity; returns how many. */
  #openParens(): number {
    const lx = this.#lx;
    let parens = 0;
    while (lx.kind === LPAREN) {
      this.#enter(1);
      parens++;
      lx.next();
    }
    return parens;
  }

  #closeParens(parens: number): void {
    for (let i = 0; i < parens; i++) this.#expect(RPAREN, "to close the parenthesis");
    this.#depth -= parens;
  }

  #actionEntity(): EstEntityUid {
    const lx = this.#lx;
    if (lx.kind === SLOT) {
      this.#fail(lx.start, `expected an action entity, found the slot ${lx.value}: the action takes no slot`);
    }
    const at = lx.start;
    const entity = this.#scopeEntity("action");
    const type = entity.type;
    if (type !== "Action" && !type.endsWith("::Action")) {
      this.#fail(at, `expected an entity of type Action, found ${quote(this.#text.slice(at, lx.start).trim())}`);
    }
    return entity;
  }

  /** An entity literal in the scope of `variable`. */
  #scopeEntity(variable: string): EstEntityUid {
    const lx = this.#lx;
    const what = () =>
      variable === "action" ? `an action entity such as Action::"read"` : `an entity or the slot ?${variable}`;
    if (lx.kind !== IDENT) this.#expected(what());
    const at = lx.start;
    const path = this.#path();
    if (lx.kind !== COLONCOLON) {
      this.#fail(at, `expected ${what()}, found the name ${quote(path)}: an entity takes an id, as in ${path}::"id"`);
    }
    return this.#entityUid(path, at);
  }

  /** After a scope constraint's entity: only the next scope element or the end of the scope may follow. */
  #scopeEnd(): void {
    const kind = this.#lx.kind;
    if (kind !== COMMA && kind !== RPAREN) {
      this.#expected(`"," or ")" after the scope constraint (a scope constraint is one entity)`);
    }
  }

  // ---- names

  /**
   * Reads a name `A::B::C` (stopping before `::"id"`), each part neither
   * reserved nor `__cedar`; the current token is an identifier.
   */
  #path(): string {
    const lx = this.#lx;
    let path = lx.value;
    this.#checkIdent(path, lx.start);
    lx.next();
    while (lx.kind === COLONCOLON && lx.peek() === IDENT) {
      lx.next();
      this.#checkIdent(lx.value, lx.start);
      path += `::${lx.value}`;
      lx.next();
    }
    return path;
  }

  /** A name's part, an attribute or a method: not reserved, not `__cedar`. */
  #checkIdent(id: string, at: number): void {
    if (RESERVED.has(id)) this.#fail(at, `this identifier is reserved and cannot be used: ${id}`);
    if (id === "__cedar") this.#fail(at, `the name __cedar is reserved`);
  }

  /** `::"id"` after a type's path (the current token is `::`). */
  #entityUid(type: string, at: number): EstEntityUid {
    const lx = this.#lx;
    const next = lx.peek();
    if (next === LBRACE) this.#fail(at, `invalid entity literal: ${type}::{...}; write ${type}::"id"`);
    if (next !== STRING) {
      lx.next();
      this.#expected(`an identifier or an entity id (a string) after "::"`);
    }
    lx.next();
    return { type, id: this.#string() };
  }

  /** The current string literal's value; moves past it. */
  #string(): string {
    const lx = this.#lx;
    let value = lx.value;
    if (lx.escaped) {
      const base = lx.start + 1;
      value = unescapeString(value, (index, detail) => this.#fail(base + index, detail));
    }
    lx.next();
    return value;
  }

  // ---- expressions

  #toExpr(item: Item): EstExpr {
    if (item.k === EXPR) return item.e!;
    switch (item.k) {
      case STR:
        return { Value: this.#unescape(item) };
      case NAME:
        this.#fail(
          item.at,
          `invalid variable ${quote(item.s)}: the variables are principal, action, resource and context` +
            (item.s.includes("::") ? "" : `; to write a string, quote it: "${item.s}"`),
        );
        break;
      case NUM: {
        const value = (item.e as { Value: bigint }).Value;
        if (value > I64_MAX) this.#fail(item.at, `integer literal ${value} is too large: the largest is ${I64_MAX}`);
      }
    }
    return item.e!;
  }

  #unescape(item: Item): string {
    if (!item.escaped) return item.s;
    return unescapeString(item.s, (index, detail) => this.#fail(item.at + 1 + index, detail));
  }

  /** Expr := 'if' Expr 'then' Expr 'else' Expr | Or */
  #expr(): Item {
    const lx = this.#lx;
    if (!this.#isKeyword("if")) return this.#or();
    const at = lx.start;
    lx.next();
    this.#enter(1);
    const c = this.#expr();
    const cond = this.#toExpr(c);
    if (!this.#isKeyword("then")) this.#expected(`"then" in the if expression`);
    lx.next();
    const t = this.#expr();
    const then = this.#toExpr(t);
    if (!this.#isKeyword("else")) this.#expected(`"else" in the if expression`);
    lx.next();
    const e = this.#expr();
    const otherwise = this.#toExpr(e);
    this.#depth--;
    return expr({ "if-then-else": { if: cond, then, else: otherwise } }, at, Math.max(c.h, t.h, e.h) + 1);
  }

  #or(): Item {
    const lx = this.#lx;
    const first = this.#and();
    if (lx.kind !== OROR) return first;
    let left = this.#toExpr(first);
    let h = first.h;
    while (lx.kind === OROR) {
      lx.next();
      const right = this.#and();
      left = { "||": { left, right: this.#toExpr(right) } };
      h = Math.max(h, right.h) + 1;
    }
    return expr(left, first.at, this.#height(h, first.at));
  }

  #and(): Item {
    const lx = this.#lx;
    const first = this.#relation();
    if (lx.kind !== ANDAND) return first;
    let left = this.#toExpr(first);
    let h = first.h;
    while (lx.kind === ANDAND) {
      lx.next();
      const right = this.#relation();
      left = { "&&": { left, right: this.#toExpr(right) } };
      h = Math.max(h, right.h) + 1;
    }
    return expr(left, first.at, this.#height(h, first.at));
  }

  /** Relation := Add [RelOp Add] | Add 'has' Attrs | Add 'like' Pattern | Add 'is' Type ['in' Add] */
  #relation(): Item {
    const lx = this.#lx;
    const first = this.#add();
    const kind = lx.kind;
    let op = RELATIONS[kind];
    if (op === undefined && kind === IDENT) {
      switch (lx.value) {
        case "in":
          op = "in";
          break;
        case "has":
          return this.#has(first);
        case "like":
          return this.#like(first);
        case "is":
          return this.#is(first);
      }
    }
    if (op === undefined) {
      if (kind === EQ) this.#fail(lx.start, `"=" is not a valid operator in Cedar; use "=="`);
      return first;
    }
    const left = this.#toExpr(first);
    lx.next();
    const second = this.#add();
    const right = this.#toExpr(second);
    if (RELATIONS[lx.kind] !== undefined || lx.kind === EQ || this.#isKeyword("in")) {
      this.#fail(
        lx.start,
        `multiple relational operators (==, <, in, ...) must be parenthesized to make the order explicit`,
      );
    }
    const h = this.#height(Math.max(first.h, second.h) + 1, first.at);
    return expr({ [op]: { left, right } } as EstExpr, first.at, h);
  }

  #has(target: Item): Item {
    const lx = this.#lx;
    const left = this.#toExpr(target);
    const at = lx.start;
    lx.next();
    let attr: string | string[];
    if (lx.kind === STRING) {
      attr = this.#string();
    } else if (lx.kind === IDENT) {
      const first = lx.value;
      const start = lx.start;
      this.#checkIdent(first, start);
      lx.next();
      if (lx.kind === COLONCOLON) {
        this.#fail(start, `a name with a namespace (${first}::...) cannot be used as an attribute`);
      }
      const path = [first];
      while (lx.kind === DOT) {
        lx.next();
        if (lx.kind !== IDENT) this.#expected(`an attribute name after "."`);
        this.#checkIdent(lx.value, lx.start);
        path.push(lx.value);
        lx.next();
      }
      attr = path.length === 1 ? first : path;
    } else {
      this.#expected(`an attribute (an identifier, a path a.b.c or a string) after "has"`);
    }
    this.#operandEnd(at, `invalid right side of "has": expected an attribute, a path a.b.c or a string`);
    return expr({ has: { left, attr } }, target.at, this.#height(target.h + 1, target.at));
  }

  #like(target: Item): Item {
    const lx = this.#lx;
    const left = this.#toExpr(target);
    const at = lx.start;
    lx.next();
    if (lx.kind !== STRING) this.#expected(`a pattern (a string literal) after "like"`);
    const base = lx.start + 1;
    const pattern: EstPatternElem[] = unescapePattern(lx.value, (index, detail) => this.#fail(base + index, detail));
    lx.next();
    this.#operandEnd(at, `the right side of "like" must be a pattern literal`);
    return expr({ like: { left, pattern } }, target.at, this.#height(target.h + 1, target.at));
  }

  #is(target: Item): Item {
    const lx = this.#lx;
    const left = this.#toExpr(target);
    lx.next();
    const entityType = this.#isType(undefined);
    if (!this.#isKeyword("in")) {
      const h = this.#height(target.h + 1, target.at);
      return expr({ is: { left, entity_type: entityType } }, target.at, h);
    }
    lx.next();
    const scope = this.#add();
    const inExpr = this.#toExpr(scope);
    const h = this.#height(Math.max(target.h, scope.h) + 1, target.at);
    return expr({ is: { left, entity_type: entityType, in: inExpr } }, target.at, h);
  }

  /** The entity type after `is`: a name, `principal` and the other variables included. */
  #isType(variable: string | undefined): string {
    const lx = this.#lx;
    const at = lx.start;
    const lhs = variable ?? "the left side";
    if (lx.kind !== IDENT || lx.value === "true" || lx.value === "false" || lx.value === "if") {
      this.#expected(`an entity type name after "is" (${lhs} is Type)`);
    }
    const path = this.#path();
    if (lx.kind === COLONCOLON) {
      this.#fail(at, `the right side of "is" must be an entity type name, not an entity or other expression`);
    }
    this.#operandEnd(at, `the right side of "is" must be an entity type name`);
    return path;
  }

  /** After the right side of `has`, `like` or `is`: nothing that would make it a larger operand. */
  #operandEnd(at: number, detail: string): void {
    switch (this.#lx.kind) {
      case DOT:
      case LBRACKET:
      case LPAREN:
      case COLONCOLON:
      case PLUS:
      case MINUS:
      case STAR:
      case SLASH:
      case PERCENT:
        this.#fail(at, `${detail}, found ${this.#found()} after it`);
    }
  }

  #add(): Item {
    const lx = this.#lx;
    const first = this.#mult();
    if (lx.kind !== PLUS && lx.kind !== MINUS) return first;
    let left = this.#toExpr(first);
    let h = first.h;
    while (lx.kind === PLUS || lx.kind === MINUS) {
      const plus = lx.kind === PLUS;
      lx.next();
      const operand = this.#mult();
      const right = this.#toExpr(operand);
      left = plus ? { "+": { left, right } } : { "-": { left, right } };
      h = Math.max(h, operand.h) + 1;
    }
    return expr(left, first.at, this.#height(h, first.at));
  }

  #mult(): Item {
    const lx = this.#lx;
    const first = this.#unary();
    if (lx.kind !== STAR) {
      this.#noDivision();
      return first;
    }
    let left = this.#toExpr(first);
    let h = first.h;
    while (lx.kind === STAR) {
      lx.next();
      const operand = this.#unary();
      left = { "*": { left, right: this.#toExpr(operand) } };
      h = Math.max(h, operand.h) + 1;
      this.#noDivision();
    }
    return expr(left, first.at, this.#height(h, first.at));
  }

  #noDivision(): void {
    const lx = this.#lx;
    if (lx.kind === SLASH) this.#fail(lx.start, `division is not supported in Cedar`);
    if (lx.kind === PERCENT) this.#fail(lx.start, `remainder (%) is not supported in Cedar`);
  }

  /** Unary := ['!' x1-4 | '-' x1-4] Member */
  #unary(): Item {
    const lx = this.#lx;
    const kind = lx.kind;
    if (kind !== BANG && kind !== MINUS) return this.#member();
    const at = lx.start;
    let n = 0;
    while (lx.kind === kind) {
      if (++n > 4) this.#fail(at, `too many occurrences of "${kind === BANG ? "!" : "-"}" in a row: at most 4`);
      lx.next();
    }
    this.#enter(n);
    const operand = this.#member();
    this.#depth -= n;
    let e: EstExpr;
    let rest = n;
    if (kind === MINUS && operand.k === NUM) {
      // `-5` is the literal -5; only the other dashes negate (`--5` is neg(-5)).
      const value = (operand.e as { Value: bigint }).Value;
      if (value > I64_MAX + 1n) {
        this.#fail(operand.at, `integer literal ${value} is too large: the smallest is -${I64_MAX + 1n}`);
      }
      e = { Value: -value };
      rest--;
    } else {
      e = this.#toExpr(operand);
    }
    for (let i = 0; i < rest; i++) e = kind === BANG ? { "!": { arg: e } } : { neg: { arg: e } };
    return expr(e, at, operand.h + n);
  }

  /** Member := Primary { '.' Ident ['(' Args ')'] | '[' String ']' | '(' Args ')' } */
  #member(): Item {
    const lx = this.#lx;
    const primary = this.#primary();
    let kind = lx.kind;
    if (kind !== DOT && kind !== LBRACKET && kind !== LPAREN) return primary;
    let head: EstExpr;
    let h = primary.h;
    if (primary.k === NAME) {
      if (kind === LPAREN) {
        const [args, argsH] = this.#args();
        head = this.#call(primary, args);
        h = argsH + 1;
      } else if (kind === DOT) {
        lx.next();
        const field = lx.kind === IDENT ? lx.value : "";
        if (lx.kind === IDENT && lx.peek() === LPAREN) {
          this.#fail(
            primary.at,
            `${quote(primary.s)} is not an expression and has no methods: ${primary.s}.${field}(...)`,
          );
        }
        this.#fail(
          primary.at,
          `invalid member access ${quote(`${primary.s}.${field}`)}: ${primary.s} has no fields or methods`,
        );
      } else {
        this.#fail(primary.at, `invalid indexing ${quote(`${primary.s}[...]`)}: ${primary.s} has no fields`);
      }
    } else {
      if (kind === LPAREN) {
        this.#fail(
          lx.start,
          `only a function can be called, as in ip("10.0.0.1"); found a call of ${
            quote(this.#text.slice(primary.at, lx.start).trim())
          }`,
        );
      }
      head = this.#toExpr(primary);
    }
    for (kind = lx.kind; kind === DOT || kind === LBRACKET || kind === LPAREN; kind = lx.kind) {
      if (kind === DOT) {
        lx.next();
        if (lx.kind !== IDENT) this.#expected(`an attribute or method name after "."`);
        const id = lx.value;
        const idAt = lx.start;
        this.#checkIdent(id, idAt);
        lx.next();
        if (lx.kind === LPAREN) {
          const [args, argsH] = this.#args();
          head = this.#method(head, id, args, idAt);
          h = Math.max(h, argsH) + 1;
        } else {
          head = { ".": { left: head, attr: id } };
          h++;
        }
      } else if (kind === LBRACKET) {
        lx.next();
        if (lx.kind !== STRING) this.#expected(`a string literal inside [...], as in context["attr"]`);
        const attr = this.#string();
        this.#expect(RBRACKET, "after the attribute name in [...]");
        head = { ".": { left: head, attr } };
        h++;
      } else {
        this.#fail(
          lx.start,
          `only a function can be called, as in ip("10.0.0.1"); found a call of the result of a call or method`,
        );
      }
    }
    return expr(head, primary.at, this.#height(h, primary.at));
  }

  /** `( Expr, ... )`; returns the arguments and their greatest height plus one. */
  #args(): [EstExpr[], number] {
    const lx = this.#lx;
    lx.next();
    this.#enter(1);
    const args: EstExpr[] = [];
    let h = 0;
    while (lx.kind !== RPAREN) {
      const arg = this.#expr();
      args.push(this.#toExpr(arg));
      if (arg.h > h) h = arg.h;
      if (lx.kind === COMMA) lx.next();
      else if (lx.kind !== RPAREN) this.#expected(`"," or ")" in the argument list`);
    }
    lx.next();
    this.#depth--;
    return [args, h];
  }

  #call(name: Item, args: EstExpr[]): EstExpr {
    const fn = name.s;
    if (!fn.includes("::") && (EXTENSION_METHODS.has(fn) || BINARY_METHODS.has(fn) || fn === "isEmpty")) {
      this.#fail(name.at, `${quote(fn)} is a method, not a function: write x.${fn}(...)`);
    }
    if (!EXTENSION_FUNCTIONS.has(fn)) {
      this.#fail(
        name.at,
        `${quote(fn)} is not a valid function: the functions are ip, decimal, datetime, duration and unknown`,
      );
    }
    return { [fn]: args };
  }

  #method(receiver: EstExpr, id: string, args: EstExpr[], at: number): EstExpr {
    if (BINARY_METHODS.has(id)) {
      if (args.length !== 1) this.#fail(at, `call to ${id} requires exactly 1 argument, but got ${args.length}`);
      return { [id]: { left: receiver, right: args[0]! } } as EstExpr;
    }
    if (id === "isEmpty") {
      if (args.length !== 0) this.#fail(at, `call to isEmpty requires exactly 0 arguments, but got ${args.length}`);
      return { isEmpty: { arg: receiver } };
    }
    if (EXTENSION_METHODS.has(id)) return { [id]: [receiver, ...args] };
    if (EXTENSION_FUNCTIONS.has(id)) this.#fail(at, `${quote(id)} is a function, not a method: write ${id}(...)`);
    return this.#fail(at, `${quote(id)} is not a valid method`);
  }

  #primary(): Item {
    const lx = this.#lx;
    const at = lx.start;
    switch (lx.kind) {
      case NUMBER: {
        let digits = lx.value;
        let zeros = 0;
        while (zeros < digits.length - 1 && digits.charCodeAt(zeros) === 48) zeros++;
        if (zeros) digits = digits.slice(zeros);
        const value = digits.length > 20 ? U64_MAX + 1n : BigInt(digits);
        if (value > U64_MAX) {
          this.#fail(at, `integer literal ${quote(lx.value)} is too large: the largest is ${I64_MAX}`);
        }
        lx.next();
        return new Item(NUM, { Value: value }, at, 0, "", false);
      }
      case STRING: {
        const item = new Item(STR, undefined, at, 0, lx.value, lx.escaped);
        lx.next();
        return item;
      }
      case IDENT:
        return this.#namePrimary();
      case LPAREN: {
        lx.next();
        this.#enter(1);
        const inner = this.#expr();
        const e = this.#toExpr(inner);
        this.#expect(RPAREN, "to close the parenthesis");
        this.#depth--;
        return expr(e, at, inner.h + 1);
      }
      case LBRACKET:
        return this.#set();
      case LBRACE:
        return this.#record();
      case SLOT:
        if (lx.value === "?principal" || lx.value === "?resource") {
          this.#fail(at, `found the template slot ${lx.value} in a condition: slots are allowed only in the scope`);
        }
        return this.#fail(
          at,
          `${quote(lx.value)} is not a valid template slot: the slots are ?principal and ?resource`,
        );
      default:
        return this.#expected("an expression");
    }
  }

  #namePrimary(): Item {
    const lx = this.#lx;
    const at = lx.start;
    const word = lx.value;
    if (word === "true" || word === "false") {
      lx.next();
      if (lx.kind === COLONCOLON) this.#fail(at, `this identifier is reserved and cannot be used: ${word}`);
      return new Item(BOOL, { Value: word === "true" }, at, 0, word, false);
    }
    if (word === "if") {
      this.#fail(at, `an if expression cannot be an operand here; put it in parentheses: (if ... then ... else ...)`);
    }
    const path = this.#path();
    if (lx.kind === COLONCOLON) {
      const entity = this.#entityUid(path, at);
      return expr({ Value: { __entity: entity } }, at, 0);
    }
    if (path === word && VARS.has(word)) {
      return new Item(VAR, { Var: word as "principal" }, at, 0, word, false);
    }
    return new Item(NAME, undefined, at, 0, path, false);
  }

  #set(): Item {
    const lx = this.#lx;
    const at = lx.start;
    lx.next();
    this.#enter(1);
    const elements: EstExpr[] = [];
    let h = 0;
    while (lx.kind !== RBRACKET) {
      const element = this.#expr();
      elements.push(this.#toExpr(element));
      if (element.h > h) h = element.h;
      if (lx.kind === COMMA) lx.next();
      else if (lx.kind !== RBRACKET) this.#expected(`"," or "]" in the set`);
    }
    lx.next();
    this.#depth--;
    return expr({ Set: elements }, at, h + 1);
  }

  #record(): Item {
    const lx = this.#lx;
    const at = lx.start;
    lx.next();
    this.#enter(1);
    const entries: [string, EstExpr][] = [];
    const keys = new Set<string>();
    let h = 0;
    while (lx.kind !== RBRACE) {
      const keyAt = lx.start;
      if (this.#isKeyword("if") && lx.peek() === COLON) {
        this.#fail(keyAt, `this identifier is reserved and cannot be used: if`);
      }
      const key = this.#attribute(this.#expr());
      if (lx.kind !== COLON) this.#expected(`":" after the record key ${quote(key)}`);
      lx.next();
      const value = this.#expr();
      if (keys.has(key)) this.#fail(keyAt, `duplicate key ${quote(key)} in record literal`);
      keys.add(key);
      entries.push([key, this.#toExpr(value)]);
      if (value.h > h) h = value.h;
      if (lx.kind === COMMA) lx.next();
      else if (lx.kind !== RBRACE) this.#expected(`"," or "}" in the record`);
    }
    lx.next();
    this.#depth--;
    return expr({ Record: sortedRecord(entries) }, at, h + 1);
  }

  /** A record key: an identifier (a variable's name included) or a string literal. */
  #attribute(item: Item): string {
    switch (item.k) {
      case VAR:
        return item.s;
      case NAME:
        if (item.s.includes("::")) this.#fail(item.at, `${quote(item.s)} cannot be a record key: it has a namespace`);
        return item.s;
      case STR:
        return this.#unescape(item);
      case BOOL:
        return this.#fail(item.at, `this identifier is reserved and cannot be used: ${item.s}`);
      default:
        return this.#fail(
          item.at,
          `invalid record key ${
            quote(this.#text.slice(item.at, this.#lx.start).trim())
          }: use an identifier or a string literal`,
        );
    }
  }
}
