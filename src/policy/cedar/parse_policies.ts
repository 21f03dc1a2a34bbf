// Cedar policy text to Cedar's JSON policy format (the EST), without
// cedar-wasm: what `policyToJson` returns for each policy, with one widening,
// integers are bigints. Accepts what cedar-wasm 4.13.0 accepts and refuses
// what it refuses, except past the bounds (nesting depth, size), which
// cedar-wasm does not have and dies of. The grammar and its checks follow
// cedar-policy-core's parser: `grammar.lalrpop`, `cst_to_ast.rs`, `unescape.rs`.
import { utf8Length } from "../_bounds.ts";
import { Parser } from "./_parse_grammar.ts";
import { CedarSyntaxError } from "./syntax_error.ts";

/** An entity reference as the scope writes it: `{ type: "Ns::User", id: "alice" }`. */
export interface EstEntityUid {
  /** The entity type, with its namespace. */
  type: string;
  /** The entity id. */
  id: string;
}

/**
 * A literal in an expression: a boolean, a Long, a string, or an entity
 * (`{ __entity: { type, id } }`). A Long is a `bigint` within i64, where
 * cedar-wasm's JSON has a `number` (inexact past 2^53).
 */
export type EstLiteral = boolean | bigint | string | { __entity: EstEntityUid };

/** An element of a `like` pattern: one character, or the wildcard `*`. */
export type EstPatternElem = "Wildcard" | { Literal: string };

/** The operands of a binary operator. */
export interface EstBinary {
  /** The left operand (a method's receiver). */
  left: EstExpr;
  /** The right operand (a method's argument). */
  right: EstExpr;
}

/**
 * A Cedar expression in the JSON policy format, as cedar-wasm's `Expr` but
 * with `bigint` Longs in `Value`. An extension function or method is
 * `{ name: [args] }`, a method's receiver first: `a.lessThan(b)` is
 * `{ lessThan: [a, b] }`, `ip("10.0.0.1")` is `{ ip: [{ Value: "10.0.0.1" }] }`.
 * `has` takes one attribute (a string) or, for `has a.b.c`, the path (an array).
 */
export type EstExpr =
  | { Value: EstLiteral }
  | { Var: "principal" | "action" | "resource" | "context" }
  | { Slot: "?principal" | "?resource" }
  | { "!": { arg: EstExpr } }
  | { neg: { arg: EstExpr } }
  | { "==": EstBinary }
  | { "!=": EstBinary }
  | { in: EstBinary }
  | { "<": EstBinary }
  | { "<=": EstBinary }
  | { ">": EstBinary }
  | { ">=": EstBinary }
  | { "&&": EstBinary }
  | { "||": EstBinary }
  | { "+": EstBinary }
  | { "-": EstBinary }
  | { "*": EstBinary }
  | { contains: EstBinary }
  | { containsAll: EstBinary }
  | { containsAny: EstBinary }
  | { isEmpty: { arg: EstExpr } }
  | { getTag: EstBinary }
  | { hasTag: EstBinary }
  | { ".": { left: EstExpr; attr: string } }
  | { has: { left: EstExpr; attr: string | string[] } }
  | { like: { left: EstExpr; pattern: EstPatternElem[] } }
  | { is: { left: EstExpr; entity_type: string; in?: EstExpr } }
  | { "if-then-else": { if: EstExpr; then: EstExpr; else: EstExpr } }
  | { Set: EstExpr[] }
  | { Record: Record<string, EstExpr> }
  | { [extension: string]: EstExpr[] };

/** The target of a scope constraint: an entity, or a template's slot. */
export type EstScopeTarget = { entity: EstEntityUid } | { slot: "?principal" | "?resource" };

/** The principal's or resource's scope constraint. */
export type EstScopeConstraint =
  | { op: "All" }
  | ({ op: "==" } & EstScopeTarget)
  | ({ op: "in" } & EstScopeTarget)
  | { op: "is"; entity_type: string; in?: EstScopeTarget };

/** The action's scope constraint: `in [a]` has one `entity`, as cedar-wasm emits it. */
export type EstActionConstraint =
  | { op: "All" }
  | { op: "=="; entity: EstEntityUid }
  | { op: "in"; entity: EstEntityUid }
  | { op: "in"; entities: EstEntityUid[] };

/** A `when` or `unless` clause. */
export interface EstClause {
  /** Which clause. */
  kind: "when" | "unless";
  /** Its condition. */
  body: EstExpr;
}

/** A policy or template in Cedar's JSON policy format (`bigint` Longs). */
export interface PolicyJson {
  /** `permit` or `forbid`. */
  effect: "permit" | "forbid";
  /** The principal's scope constraint. */
  principal: EstScopeConstraint;
  /** The action's scope constraint. */
  action: EstActionConstraint;
  /** The resource's scope constraint. */
  resource: EstScopeConstraint;
  /** The clauses, in source order. */
  conditions: EstClause[];
  /** The annotations, present when there is at least one; `@advice` with no value is `null`. */
  annotations?: Record<string, string | null>;
}

/** One policy of a policy set, as parsed. */
export interface ParsedPolicy {
  /** Cedar's id for it: `policy0`, `policy1`, ... in text order, templates and static policies counted together. */
  id: string;
  /** The policy in Cedar's JSON policy format. */
  json: PolicyJson;
  /** Whether it is a template (has `?principal` or `?resource` in its scope). */
  template: boolean;
  /** UTF-16 offset of its first annotation or of its effect. */
  start: number;
  /** UTF-16 offset just past its `;`. */
  end: number;
  /** 1-based line of `start`. */
  line: number;
  /** 1-based column of `start`, in UTF-16 code units. */
  column: number;
}

/** Bounds of {@linkcode parsePolicies}. */
export interface ParseOptions {
  /**
   * Deepest nesting: each `(`, `[`, `{`, argument list, `if`, unary operator,
   * member access (`.a`, `.m()`, `["a"]`) and binary operator counts a level
   * along the path from a condition to its deepest operand (a chain
   * `a || b || c` nests as Cedar's JSON does, the first operand deepest).
   * @default {64}
   */
  maxDepth?: number;
  /**
   * Largest text, in UTF-8 bytes.
   * @default {1048576}
   */
  maxBytes?: number;
}

/** Default of {@linkcode ParseOptions.maxDepth}. */
export const DEFAULT_MAX_DEPTH = 64;
/** Default of {@linkcode ParseOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/**
 * Parses a Cedar policy set into Cedar's JSON policy format, one entry per
 * policy or template in text order, each with Cedar's id and its place in
 * the text. Refuses what cedar-wasm 4.13.0 refuses (the first problem is
 * thrown), and text past the bounds.
 *
 * @param text Cedar policy text: zero or more policies and templates.
 * @param options The bounds: nesting depth and size.
 * @returns The policies.
 * @throws {CedarSyntaxError} When the text is not valid Cedar, or passes a bound.
 *
 * @example Parse a grant
 * ```ts
 * import { parsePolicies } from "./parse_policies.ts";
 * const [policy] = parsePolicies(
 *   `@id("grants/p1#0") permit (principal == Plugin::"p1", action == Action::"fs.read", resource)
 *    when { context.size < 10 };`,
 * );
 * policy!.id; // "policy0"
 * policy!.json.annotations; // { id: "grants/p1#0" }
 * policy!.json.principal; // { op: "==", entity: { type: "Plugin", id: "p1" } }
 * ```
 */
export function parsePolicies(text: string, options: ParseOptions = {}): ParsedPolicy[] {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (text.length > maxBytes || (text.length * 3 > maxBytes && utf8Length(text) > maxBytes)) {
    const bytes = utf8Length(text);
    throw new CedarSyntaxError(`policy text of ${bytes} bytes is over the limit of ${maxBytes} bytes`, {
      offset: 0,
      line: 1,
      column: 1,
    });
  }
  try {
    return new Parser(text, maxDepth).policies();
  } catch (error) {
    // A maxDepth beyond what the stack holds: refuse the text, never overflow.
    if (error instanceof RangeError) {
      throw new CedarSyntaxError(`policy text nested too deeply for the parser's stack (maxDepth ${maxDepth})`, {
        offset: 0,
        line: 1,
        column: 1,
        cause: error,
      });
    }
    throw error;
  }
}
