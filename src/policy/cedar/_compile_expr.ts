// Cedar expressions of the JSON policy format (EST) compiled once into
// closures over the request, with Cedar's evaluation order, short-circuits
// and errors (evaluator.rs). Subtrees that read nothing of the request are
// evaluated once at compile time, unless they error: the error is then
// raised at run time, where Cedar raises it.
import type { Clause, Expr, PatternElem } from "@cedar-policy/cedar-wasm/web";
import { compareExtensionValues, EXTENSION_FUNCTIONS } from "./extensions.ts";
import {
  ANY_ENTITY,
  checkedLong,
  compareValues,
  displayEntity,
  type Env,
  evalIn,
  LONG_MIN,
  setHas,
  typeError,
  valueEquals,
} from "./_eval_runtime.ts";
import { compileLike } from "./_like_matcher.ts";
import { checkEntityType, valueFromJson } from "./_json_values.ts";
import { CedarEvalError, CedarRecord, CedarSet, EntityRef, type Value } from "./value.ts";

/** A compiled expression: its value for a request, or a thrown {@linkcode CedarEvalError}. */
export type Evaluate = (env: Env) => Value;

interface Node {
  readonly evaluate: Evaluate;
  /** Whether the node reads nothing of the request (and may be folded). */
  readonly pure: boolean;
  /** The node's value when it was folded to a constant. */
  readonly constant?: Value;
}

// Pure nodes are folded by evaluating them against no request at all.
const NO_ENV = undefined as unknown as Env;

function constant(value: Value): Node {
  return { evaluate: () => value, pure: true, constant: value };
}

/** A node of these children: folded when they are all constants and it does not raise. */
function node(evaluate: Evaluate, children: readonly Node[], reads = false): Node {
  if (reads || !children.every((child) => child.constant !== undefined)) {
    return { evaluate, pure: !reads && children.every((child) => child.pure) };
  }
  try {
    return constant(evaluate(NO_ENV));
  } catch (error) {
    if (error instanceof CedarEvalError) return { evaluate, pure: true };
    throw error;
  }
}

function isPrimitive(value: Value): value is boolean | bigint | string {
  const type = typeof value;
  return type === "boolean" || type === "bigint" || type === "string";
}

function asBool(value: Value): boolean {
  if (typeof value !== "boolean") throw typeError("bool", value);
  return value;
}

function asLong(value: Value): bigint {
  if (typeof value !== "bigint") throw typeError("long", value);
  return value;
}

function asString(value: Value): string {
  if (typeof value !== "string") throw typeError("string", value);
  return value;
}

function asSet(value: Value): CedarSet {
  if (!(value instanceof CedarSet)) throw typeError("set", value);
  return value;
}

function asEntity(value: Value): EntityRef {
  if (!(value instanceof EntityRef)) throw typeError(ANY_ENTITY, value);
  return value;
}

function getAttr(env: Env, value: Value, attr: string): Value {
  if (value instanceof EntityRef) {
    const entity = env.entities.get(value.key);
    if (entity === undefined) throw new CedarEvalError(`entity \`${displayEntity(value)}\` does not exist`);
    const found = entity.attrs.get(attr);
    if (found === undefined) {
      throw new CedarEvalError(`\`${displayEntity(value)}\` does not have the attribute \`${attr}\``);
    }
    return found;
  }
  if (value instanceof CedarRecord) return recordAttr(value, attr);
  throw typeError(["record", ANY_ENTITY], value);
}

function recordAttr(record: CedarRecord, attr: string): Value {
  const found = record.fields.get(attr);
  if (found === undefined) throw new CedarEvalError(`record does not have the attribute \`${attr}\``);
  return found;
}

function hasAttr(env: Env, value: Value, attr: string): boolean {
  if (value instanceof EntityRef) {
    const entity = env.entities.get(value.key);
    return entity !== undefined && entity.attrs.has(attr);
  }
  if (value instanceof CedarRecord) return value.fields.has(attr);
  throw typeError(["record", ANY_ENTITY], value);
}

function tagTarget(entityValue: Value, tagValue: Value): [EntityRef, string] {
  return [asEntity(entityValue), asString(tagValue)];
}

/** Code-point order, as Rust orders the keys of a record (UTF-16 order differs above the surrogates). */
function codePointCompare(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function binary(expr: unknown, op: string): [Expr, Expr] {
  const args = expr as { left?: Expr; right?: Expr };
  if (args === null || typeof args !== "object" || args.left === undefined || args.right === undefined) {
    throw new TypeError(`Operator "${op}" needs "left" and "right"`);
  }
  return [args.left, args.right];
}

function unary(expr: unknown, op: string): Expr {
  const args = expr as { arg?: Expr };
  if (args === null || typeof args !== "object" || args.arg === undefined) {
    throw new TypeError(`Operator "${op}" needs "arg"`);
  }
  return args.arg;
}

/** The operands of a chain of one boolean operator, `((a && b) && c)` as `[a, b, c]`. */
function chain(expr: Expr, op: "&&" | "||", out: Expr[]): Expr[] {
  const inner = (expr as Record<string, unknown>)[op];
  if (inner !== undefined && Object.keys(expr).length === 1) {
    const [left, right] = binary(inner, op);
    chain(left, op, out);
    chain(right, op, out);
  } else {
    out.push(expr);
  }
  return out;
}

function compileBoolChain(expr: Expr, op: "&&" | "||"): Node {
  const operands = chain(expr, op, []).map(compile);
  const stop = op === "||"; // the value that ends the chain
  // Constant operands up front decide or drop out; a non-boolean constant errors when reached.
  const kept: Node[] = [];
  for (const operand of operands) {
    if (operand.constant === !stop) continue;
    if (operand.constant === stop && kept.length === 0) return constant(stop);
    kept.push(operand);
    if (operand.constant === stop) break;
  }
  if (kept.length === 0) return constant(!stop);
  const evaluators = kept.map((operand) => operand.evaluate);
  const pure = kept.every((operand) => operand.pure);
  if (evaluators.length === 1) {
    const only = evaluators[0]!;
    return { evaluate: (env) => asBool(only(env)), pure };
  }
  if (evaluators.length === 2) {
    const [first, second] = evaluators as [Evaluate, Evaluate];
    return {
      evaluate: (env) => {
        const a = first(env);
        if (a === stop) return stop;
        if (a !== !stop) throw typeError("bool", a);
        const b = second(env);
        if (typeof b !== "boolean") throw typeError("bool", b);
        return b;
      },
      pure,
    };
  }
  return {
    evaluate: (env) => {
      for (let i = 0; i < evaluators.length; i++) {
        const value = evaluators[i]!(env);
        if (value === stop) return stop;
        if (value !== !stop) throw typeError("bool", value);
      }
      return !stop;
    },
    pure,
  };
}

function compileValue(json: unknown): Node {
  try {
    return constant(valueFromJson(json));
  } catch (error) {
    // An extension literal that fails (`ip("x")` as `__extn`) fails each evaluation, as in Cedar.
    if (error instanceof TypeError && error.cause instanceof CedarEvalError) {
      const failure = error.cause;
      return {
        evaluate: () => {
          throw failure;
        },
        pure: true,
      };
    }
    throw error;
  }
}

function compileVar(name: unknown): Node {
  switch (name) {
    case "principal":
      return { evaluate: (env) => env.principal, pure: false };
    case "action":
      return { evaluate: (env) => env.action, pure: false };
    case "resource":
      return { evaluate: (env) => env.resource, pure: false };
    case "context":
      return { evaluate: (env) => env.context, pure: false };
  }
  throw new TypeError(`Unknown variable ${JSON.stringify(name)}`);
}

function varName(expr: Expr): string | undefined {
  const name = (expr as { Var?: unknown }).Var;
  return typeof name === "string" && Object.keys(expr).length === 1 ? name : undefined;
}

/**
 * `principal.x`, `resource.x`, `action.x` and `context.x` shared by every
 * policy compiled with one cache, each read once per request (base.cedar
 * reads `resource.ipv4` fifteen times).
 */
export type AttributeReads = Map<string, Node>;

let attributeReads: AttributeReads | undefined;

/** Remembers the value of the last request (an `Env` is made per request); an error is not remembered. */
function perRequest(read: Evaluate): Evaluate {
  let lastEnv: Env | undefined;
  let lastValue: Value = false;
  return (env) => {
    if (env === lastEnv) return lastValue;
    const value = read(env);
    lastEnv = env;
    lastValue = value;
    return value;
  };
}

function compileVarAttr(source: string, attr: string): Node | undefined {
  let read: Evaluate;
  // One closure per variable: a keyed `env[source]` would go megamorphic.
  switch (source) {
    case "context":
      read = (env) => recordAttr(env.context, attr);
      break;
    case "principal":
      read = (env) => getAttr(env, env.principal, attr);
      break;
    case "resource":
      read = (env) => getAttr(env, env.resource, attr);
      break;
    case "action":
      read = (env) => getAttr(env, env.action, attr);
      break;
    default:
      return undefined;
  }
  if (attributeReads === undefined) return { evaluate: read, pure: false };
  const key = `${source}.${JSON.stringify(attr)}`;
  let shared = attributeReads.get(key);
  if (shared === undefined) attributeReads.set(key, shared = { evaluate: perRequest(read), pure: false });
  return shared;
}

function compileGetAttr(leftExpr: Expr, attr: string): Node {
  const source = varName(leftExpr);
  const direct = source === undefined ? undefined : compileVarAttr(source, attr);
  if (direct !== undefined) return direct;
  const left = compile(leftExpr);
  const inner = left.evaluate;
  return node((env) => getAttr(env, inner(env), attr), [left], left.constant instanceof EntityRef || !left.pure);
}

function compileHas(leftExpr: Expr, attrs: readonly string[]): Node {
  const left = compile(leftExpr);
  const inner = left.evaluate;
  if (attrs.length === 1) {
    const attr = attrs[0]!;
    return node((env) => hasAttr(env, inner(env), attr), [left], !left.pure || left.constant instanceof EntityRef);
  }
  // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
  const last = attrs.length - 1;
  return {
    evaluate: (env) => {
      let value = inner(env);
      for (let i = 0; i <= last; i++) {
        if (!hasAttr(env, value, attrs[i]!)) return false;
        if (i < last) value = getAttr(env, value, attrs[i]!);
      }
      return true;
    },
    pure: false,
  };
}

function compileEquals(leftExpr: Expr, rightExpr: Expr, negate: boolean): Node {
  const left = compile(leftExpr);
  const right = compile(rightExpr);
  const a = left.evaluate;
  const b = right.evaluate;
  // A primitive constant equals only itself: `===` is Cedar's `==`.
  if (right.constant !== undefined && isPrimitive(right.constant) && left.constant === undefined) {
    const value = right.constant;
    return { evaluate: negate ? (env) => a(env) !== value : (env) => a(env) === value, pure: left.pure };
  }
  if (right.constant instanceof EntityRef && left.constant === undefined) {
    const key = right.constant.key;
    return {
      evaluate: negate
        ? (env) => {
          const value = a(env);
          return !(value instanceof EntityRef && value.key === key);
        }
        : (env) => {
          const value = a(env);
          return value instanceof EntityRef && value.key === key;
        },
      pure: left.pure,
    };
  }
  if (left.constant !== undefined && isPrimitive(left.constant) && right.constant === undefined) {
    const value = left.constant;
    return { evaluate: negate ? (env) => value !== b(env) : (env) => value === b(env), pure: right.pure };
  }
  return node(
    negate ? (env) => !valueEquals(a(env), b(env)) : (env) => valueEquals(a(env), b(env)),
    [left, right],
  );
}

function compileContains(leftExpr: Expr, rightExpr: Expr): Node {
  const left = compile(leftExpr);
  const right = compile(rightExpr);
  const a = left.evaluate;
  const b = right.evaluate;
  const set = left.constant;
  if (set instanceof CedarSet && right.constant === undefined && set.items.every(isPrimitive)) {
    // A set of literals: a JS Set answers for primitives (bigints compare by value).
    const members = new Set(set.items);
    return {
      evaluate: (env) => {
        const value = b(env);
        return isPrimitive(value) ? members.has(value) : false;
      },
      pure: right.pure,
    };
  }
  return node((env) => {
    const container = a(env);
    const value = b(env);
    return setHas(asSet(container), value);
  }, [left, right]);
}

function compileArithmetic(op: "+" | "-" | "*", leftExpr: Expr, rightExpr: Expr): Node {
  const left = compile(leftExpr);
  const right = compile(rightExpr);
  const a = left.evaluate;
  const b = right.evaluate;
  const evaluate: Evaluate = op === "+"
    ? (env) => {
      const x = a(env);
      const y = b(env);
      const i = asLong(x);
      const j = asLong(y);
      return checkedLong(i + j, "add", i, j);
    }
    : op === "-"
    ? (env) => {
      const x = a(env);
      const y = b(env);
      const i = asLong(x);
      const j = asLong(y);
      return checkedLong(i - j, "subtract", i, j);
    }
    : (env) => {
      const x = a(env);
      const y = b(env);
      const i = asLong(x);
      const j = asLong(y);
      return checkedLong(i * j, "multiply", i, j);
    };
  return node(evaluate, [left, right]);
}

function compileCompare(op: "<" | "<=" | ">" | ">=", leftExpr: Expr, rightExpr: Expr): Node {
  const left = compile(leftExpr);
  const right = compile(rightExpr);
  const a = left.evaluate;
  const b = right.evaluate;
  let evaluate: Evaluate;
  switch (op) {
    case "<":
      evaluate = (env) => {
        const x = a(env);
        const y = b(env);
        if (typeof x === "bigint" && typeof y === "bigint") return x < y;
        return compareValues(x, y, compareExtensionValues) < 0;
      };
      break;
    case "<=":
      evaluate = (env) => {
        const x = a(env);
        const y = b(env);
        if (typeof x === "bigint" && typeof y === "bigint") return x <= y;
        return compareValues(x, y, compareExtensionValues) <= 0;
      };
      break;
    case ">":
      evaluate = (env) => {
        const x = a(env);
        const y = b(env);
        if (typeof x === "bigint" && typeof y === "bigint") return x > y;
        return compareValues(x, y, compareExtensionValues) > 0;
      };
      break;
    case ">=":
      evaluate = (env) => {
        const x = a(env);
        const y = b(env);
        if (typeof x === "bigint" && typeof y === "bigint") return x >= y;
        return compareValues(x, y, compareExtensionValues) >= 0;
      };
      break;
  }
  return node(evaluate, [left, right]);
}

function compileIs(args: unknown): Node {
  const { left: leftExpr, entity_type: type, in: inExpr } = args as { left?: Expr; entity_type?: unknown; in?: Expr };
  if (leftExpr === undefined || typeof type !== "string") throw new TypeError(`"is" needs "left" and "entity_type"`);
  checkEntityType(type);
  const left = compile(leftExpr);
  const a = left.evaluate;
  if (inExpr === undefined) return node((env) => asEntity(a(env)).type === type, [left]);
  // `e is T in x` is `e is T && e in x`.
  const container = compile(inExpr);
  const b = container.evaluate;
  return {
    evaluate: (env) => {
      const entity = asEntity(a(env));
      if (entity.type !== type) return false;
      return evalIn(env.entities, entity, b(env));
    },
    pure: false,
  };
}

function compileExtensionCall(name: string, argsJson: unknown): Node {
  const fn = EXTENSION_FUNCTIONS.get(name);
  if (fn === undefined) throw new TypeError(`Unknown extension function or operator "${name}"`);
  if (!Array.isArray(argsJson)) throw new TypeError(`Extension function "${name}" needs an array of arguments`);
  const args = (argsJson as Expr[]).map(compile);
  const evaluators = args.map((arg) => arg.evaluate);
  let evaluate: Evaluate;
  if (evaluators.length === 1) {
    const only = evaluators[0]!;
    evaluate = (env) => fn([only(env)]);
  } else if (evaluators.length === 2) {
    const [first, second] = evaluators as [Evaluate, Evaluate];
    const argument = args[1]!.constant;
    // `x.isInRange(ip("10.0.0.0/8"))`: the folded argument is passed as is.
    evaluate = argument !== undefined ? (env) => fn([first(env), argument]) : (env) => {
      const x = first(env);
      return fn([x, second(env)]);
    };
  } else {
    evaluate = (env) => fn(evaluators.map((arg) => arg(env)));
  }
  return node(evaluate, args);
}

function compile(expr: Expr): Node {
  if (expr === null || typeof expr !== "object" || Array.isArray(expr)) {
    throw new TypeError(`Expected an expression object, got ${JSON.stringify(expr)}`);
  }
  const keys = Object.keys(expr);
  if (keys.length !== 1) throw new TypeError(`Expected an expression with one key, got ${JSON.stringify(keys)}`);
  const kind = keys[0]!;
  const body = (expr as Record<string, unknown>)[kind];
  switch (kind) {
    case "Value":
      return compileValue(body);
    case "Var":
      return compileVar(body);
    case "Slot":
      throw new TypeError(`Templates are not supported: found slot ${JSON.stringify(body)}`);
    case "!": {
      const arg = compile(unary(body, kind));
      const a = arg.evaluate;
      return node((env) => !asBool(a(env)), [arg]);
    }
    case "neg": {
      const arg = compile(unary(body, kind));
      const a = arg.evaluate;
      return node((env) => {
        const value = asLong(a(env));
        if (value === LONG_MIN) {
          throw new CedarEvalError(`integer overflow while attempting to negate the value \`${value}\``);
        }
        return -value;
      }, [arg]);
    }
    case "==":
    case "!=": {
      const [left, right] = binary(body, kind);
      return compileEquals(left, right, kind === "!=");
    }
    case "<":
    case "<=":
    case ">":
    case ">=": {
      const [left, right] = binary(body, kind);
      return compileCompare(kind, left, right);
    }
    case "+":
    case "-":
    case "*": {
      const [left, right] = binary(body, kind);
      return compileArithmetic(kind, left, right);
    }
    case "&&":
    case "||":
      return compileBoolChain(expr, kind);
    case "in": {
      const [leftExpr, rightExpr] = binary(body, kind);
      const left = compile(leftExpr);
      const right = compile(rightExpr);
      const a = left.evaluate;
      const b = right.evaluate;
      return node(
        (env) => {
          const x = a(env);
          return evalIn(env.entities, x, b(env));
        },
        [left, right],
        true,
      );
    }
    case "contains": {
      const [left, right] = binary(body, kind);
      return compileContains(left, right);
    }
    case "containsAll":
    case "containsAny": {
      const [leftExpr, rightExpr] = binary(body, kind);
      const left = compile(leftExpr);
      const right = compile(rightExpr);
      const a = left.evaluate;
      const b = right.evaluate;
      const all = kind === "containsAll";
      return node((env) => {
        const x = a(env);
        const y = b(env);
        const container = asSet(x);
        const wanted = asSet(y);
        if (all) {
          for (const key of wanted.keys) if (!container.keys.has(key)) return false;
          return true;
        }
        for (const key of wanted.keys) if (container.keys.has(key)) return true;
        return false;
      }, [left, right]);
    }
    case "isEmpty": {
      const arg = compile(unary(body, kind));
      const a = arg.evaluate;
      return node((env) => asSet(a(env)).items.length === 0, [arg]);
    }
    case "getTag":
    case "hasTag": {
      const [leftExpr, rightExpr] = binary(body, kind);
      const left = compile(leftExpr);
      const right = compile(rightExpr);
      const a = left.evaluate;
      const b = right.evaluate;
      if (kind === "hasTag") {
        return {
          evaluate: (env) => {
            const x = a(env);
            const [entity, tag] = tagTarget(x, b(env));
            const data = env.entities.get(entity.key);
            return data !== undefined && data.tags.has(tag);
          },
          pure: false,
        };
      }
      return {
        evaluate: (env) => {
          const x = a(env);
          const [entity, tag] = tagTarget(x, b(env));
          const data = env.entities.get(entity.key);
          if (data === undefined) throw new CedarEvalError(`entity \`${displayEntity(entity)}\` does not exist`);
          const found = data.tags.get(tag);
          if (found === undefined) {
            throw new CedarEvalError(`\`${displayEntity(entity)}\` does not have the tag \`${tag}\``);
          }
          return found;
        },
        pure: false,
      };
    }
    case ".": {
      const { left, attr } = body as { left?: Expr; attr?: unknown };
      if (left === undefined || typeof attr !== "string") throw new TypeError(`"." needs "left" and "attr"`);
      return compileGetAttr(left, attr);
    }
    case "has": {
      const { left, attr } = body as { left?: Expr; attr?: unknown };
      const attrs = typeof attr === "string" ? [attr] : attr;
      if (
        left === undefined || !Array.isArray(attrs) || attrs.length === 0 ||
        !attrs.every((name) => typeof name === "string")
      ) {
        throw new TypeError(`"has" needs "left" and "attr"`);
      }
      return compileHas(left, attrs as string[]);
    }
    case "like": {
      const { left: leftExpr, pattern } = body as { left?: Expr; pattern?: PatternElem[] };
      if (leftExpr === undefined || !Array.isArray(pattern)) throw new TypeError(`"like" needs "left" and "pattern"`);
      const matches = compileLike(pattern);
      const left = compile(leftExpr);
      const a = left.evaluate;
      return node((env) => matches(asString(a(env))), [left]);
    }
    case "is":
      return compileIs(body);
    case "if-then-else": {
      const { if: ifExpr, then: thenExpr, else: elseExpr } = body as { if?: Expr; then?: Expr; else?: Expr };
      if (ifExpr === undefined || thenExpr === undefined || elseExpr === undefined) {
        throw new TypeError(`"if-then-else" needs "if", "then" and "else"`);
      }
      const test = compile(ifExpr);
      const yes = compile(thenExpr);
      const no = compile(elseExpr);
      if (typeof test.constant === "boolean") return test.constant ? yes : no;
      const t = test.evaluate;
      const y = yes.evaluate;
      const n = no.evaluate;
      return node((env) => asBool(t(env)) ? y(env) : n(env), [test, yes, no]);
    }
    case "Set": {
      if (!Array.isArray(body)) throw new TypeError(`"Set" needs an array`);
      const items = (body as Expr[]).map(compile);
      const evaluators = items.map((item) => item.evaluate);
      return node((env) => new CedarSet(evaluators.map((item) => item(env))), items);
    }
    case "Record": {
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw new TypeError(`"Record" needs an object`);
      }
      // Cedar evaluates a record's fields in key order.
      const names = Object.keys(body).sort(codePointCompare);
      const fields = names.map((name) => compile((body as Record<string, Expr>)[name]!));
      const evaluators = fields.map((field) => field.evaluate);
      return node((env) => {
        const map = new Map<string, Value>();
        for (let i = 0; i < names.length; i++) map.set(names[i]!, evaluators[i]!(env));
        return new CedarRecord(map);
      }, fields);
    }
    default:
      return compileExtensionCall(kind, body);
  }
}

/**
 * Compiles one expression of Cedar's JSON policy format.
 * @param expr The expression; integer literals may be numbers or bigints.
 * @returns Its evaluation against a request.
 * @throws {TypeError} On a malformed expression, a slot, or an unknown
 * extension function.
 */
export function compileExpr(expr: Expr): Evaluate {
  return compile(expr).evaluate;
}

/**
 * Compiles a policy's `when` and `unless` clauses into one test, in order:
 * each body must be a boolean (else a type error), `unless` negates.
 * @param clauses The clauses.
 * @param reads Attribute reads to share with the other policies of a set
 * (each is then evaluated once per request), or none.
 * @returns The test, or undefined when no clause can fail (none, or all constant true).
 * @throws {TypeError} As {@linkcode compileExpr}.
 */
export function compileConditions(
  clauses: readonly Clause[],
  reads?: AttributeReads,
): ((env: Env) => boolean) | undefined {
  attributeReads = reads;
  try {
    return compileClauses(clauses);
  } finally {
    attributeReads = undefined;
  }
}

function compileClauses(clauses: readonly Clause[]): ((env: Env) => boolean) | undefined {
  const tests: Evaluate[] = [];
  for (const clause of clauses) {
    if (clause === null || typeof clause !== "object" || clause.body === undefined) {
      throw new TypeError(`Expected a clause { kind, body }, got ${JSON.stringify(clause)}`);
    }
    if (clause.kind !== "when" && clause.kind !== "unless") {
      throw new TypeError(`Unknown clause kind ${JSON.stringify((clause as { kind: unknown }).kind)}`);
    }
    const body = clause.kind === "when" ? clause.body : { "!": { arg: clause.body } } as Expr;
    const compiled = compile(body);
    if (compiled.constant === true) continue;
    if (compiled.constant === false) {
      tests.push(() => false);
      break;
    }
    tests.push(compiled.evaluate);
  }
  if (tests.length === 0) return undefined;
  if (tests.length === 1) {
    const only = tests[0]!;
    return (env) => {
      const value = only(env);
      if (typeof value !== "boolean") throw typeError("bool", value);
      return value;
    };
  }
  return (env) => {
    for (let i = 0; i < tests.length; i++) {
      const value = tests[i]!(env);
      if (value === false) return false;
      if (value !== true) throw typeError("bool", value);
    }
    return true;
  };
}
