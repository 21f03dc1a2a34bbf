// Cedar's extension types (decimal, ipaddr, datetime, duration) as cedar-wasm
// 4.13 evaluates them: every function and method, the order `<` and friends
// use on extension values, and the JSON `__extn` escape.
import {
  CedarEvalError,
  CedarRecord,
  CedarSet,
  EntityRef,
  type ExtensionFunction,
  ExtensionValue,
  type Value,
} from "./value.ts";
import { DECIMAL_FUNCTIONS } from "./_decimal.ts";
import { IPADDR_FUNCTIONS } from "./_ipaddr.ts";
import { DateTime, DATETIME_FUNCTIONS, Duration } from "./_datetime.ts";
import { stringArgument, typeError } from "./_extension_errors.ts";

/**
 * Cedar's `unknown("name")` (the partial-evaluation extension cedar-wasm
 * carries). A concrete evaluation cannot go on past an unknown, so it is an
 * error, as cedar-wasm reports any residual left in a decision.
 */
const unknown: ExtensionFunction = (args) => {
  const name = stringArgument("unknown", args);
  throw new CedarEvalError(`the expression contains unknown(s): \`unknown(${JSON.stringify(name)})\``);
};

/**
 * Every extension function and method by its Cedar name, as the JSON policy
 * format names it: `{ "isInRange": [recv, arg] }` calls `isInRange` with the
 * receiver first. Each checks its arity and argument types and throws
 * {@linkcode CedarEvalError} with cedar-wasm's message when Cedar's evaluator
 * reports an error (a bad literal, a wrong type, an i64 overflow).
 *
 * @example Test an address against a range
 * ```ts
 * import { EXTENSION_FUNCTIONS } from "./extensions.ts";
 * import type { Value } from "./value.ts";
 * import assert from "node:assert/strict";
 *
 * const call = (name: string, ...args: Value[]): Value => EXTENSION_FUNCTIONS.get(name)!(args);
 * assert.equal(call("isInRange", call("ip", "10.1.2.3"), call("ip", "10.0.0.0/8")), true);
 * assert.throws(() => call("ip", "10.0.0.0/33"), /larger than the limit 32/);
 * ```
 */
export const EXTENSION_FUNCTIONS: ReadonlyMap<string, ExtensionFunction> = new Map([
  ...DECIMAL_FUNCTIONS,
  ...IPADDR_FUNCTIONS,
  ...DATETIME_FUNCTIONS,
  ["unknown", unknown],
]);

/**
 * Orders two extension values for `<`, `<=`, `>`, `>=`. Since Cedar 4.3 these
 * operators accept two `datetime`s or two `duration`s; `decimal` keeps its
 * `lessThan` methods and `ipaddr` has no order. Call it with the operator's
 * left operand first: the error names the operands as Cedar does.
 * @param a The left operand.
 * @param b The right operand.
 * @returns Negative, zero or positive as `a` is before, equal to or after `b`.
 * @throws {CedarEvalError} When the values are not both datetimes or both durations.
 *
 * @example Compare two instants
 * ```ts
 * import { compareExtensionValues, EXTENSION_FUNCTIONS } from "./extensions.ts";
 * import type { ExtensionValue } from "./value.ts";
 * import assert from "node:assert/strict";
 *
 * const datetime = (text: string) => EXTENSION_FUNCTIONS.get("datetime")!([text]) as ExtensionValue;
 * assert.ok(compareExtensionValues(datetime("2024-01-01"), datetime("2024-01-01T00:00:01Z")) < 0);
 * ```
 */
export function compareExtensionValues(a: ExtensionValue, b: ExtensionValue): number {
  if (a instanceof DateTime) {
    if (b instanceof DateTime) return a.epoch < b.epoch ? -1 : a.epoch > b.epoch ? 1 : 0;
    throw typeError("datetime", b);
  }
  if (a instanceof Duration) {
    if (b instanceof Duration) return a.ms < b.ms ? -1 : a.ms > b.ms ? 1 : 0;
    throw typeError("duration", b);
  }
  if (b instanceof DateTime || b instanceof Duration) throw typeError(b.extension, a);
  throw typeError("one of [long, datetime, duration]", a);
}

function call(fn: string, args: readonly unknown[]): Value {
  const f = EXTENSION_FUNCTIONS.get(fn);
  if (f === undefined) throw new CedarEvalError(`extension function \`${fn}\` does not exist`);
  return f(args.map(jsonValue));
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null;
}

/** The only key of an object, or undefined. */
function soleKey(json: Record<string, unknown>): string | undefined {
  let key: string | undefined;
  for (const k in json) {
    if (key !== undefined) return undefined;
    key = k;
  }
  return key;
}

/** A JSON argument as a value; nested escapes are evaluated, as Cedar evaluates them. */
function jsonValue(json: unknown): Value {
  switch (typeof json) {
    case "string":
    case "boolean":
    case "bigint":
      return json;
    case "number":
      if (Number.isSafeInteger(json)) return BigInt(json);
      throw new TypeError(`Cannot read ${json} as a Cedar value: a Long is an integer`);
  }
  if (json instanceof ExtensionValue || json instanceof EntityRef || json instanceof CedarSet) return json;
  if (json instanceof CedarRecord) return json;
  if (Array.isArray(json)) return new CedarSet(json.map(jsonValue));
  if (!isObject(json)) throw new TypeError(`Cannot read ${json} as a Cedar value: JSON nulls are not allowed in Cedar`);
  const only = soleKey(json);
  if (only === "__extn") {
    const body = json.__extn;
    if (isObject(body) && typeof body.fn === "string") {
      if ("arg" in body) return call(body.fn, [body.arg]);
      if (Array.isArray(body.args)) return call(body.fn, body.args);
    }
  } else if (only === "__entity") {
    const body = json.__entity;
    if (isObject(body) && typeof body.type === "string" && typeof body.id === "string") {
      return new EntityRef(body.type, body.id);
    }
  } else if (only === "__expr") {
    throw new TypeError("Cannot read an `__expr` escape: it is no longer supported");
  }
  // Not an escape after all: Cedar reads it as a record.
  return new CedarRecord(new Map(Object.entries(json).map(([k, v]) => [k, jsonValue(v)])));
}

/**
 * Evaluates Cedar's JSON escape `{ "__extn": { "fn": fn, "arg": arg } }`, as
 * found in entity attributes and context. `fn` may be any extension function
 * (`ip`, `decimal`, `datetime`, `duration`, and also `offset`, `toDate`,
 * `isIpv4`, ...), so the result is usually, but not always, an extension
 * value. `arg` is JSON (strings, integers, booleans, arrays, objects, nested
 * `__extn` and `__entity` escapes) or already a {@linkcode Value}.
 * @param fn The function's Cedar name.
 * @param arg Its one argument.
 * @returns What the call returns.
 * @throws {CedarEvalError} When cedar-wasm refuses the call: unknown function, wrong type, bad literal.
 * @throws {TypeError} When `arg` holds something that is not Cedar JSON (`null`, a fraction).
 *
 * @example Read an address from an entity attribute
 * ```ts
 * import { extensionFromJson } from "./extensions.ts";
 * import { valueKey } from "./value.ts";
 * import assert from "node:assert/strict";
 *
 * const address = extensionFromJson("ip", "10.0.0.1");
 * assert.equal(valueKey(address), valueKey(extensionFromJson("ip", "10.0.0.1/32")));
 * assert.throws(() => extensionFromJson("ip", "10.0.0.300"), /invalid IP address/);
 * ```
 */
export function extensionFromJson(fn: string, arg: unknown): Value {
  return call(fn, [arg]);
}

/**
 * Evaluates the multi-argument form `{ "__extn": { "fn": fn, "args": [...] } }`
 * (Cedar's canonical datetime is `offset(datetime("1970-01-01"), duration("…ms"))`).
 * When an escape carries both `arg` and `args`, Cedar takes `arg`.
 * @param fn The function's Cedar name.
 * @param args Its arguments, receiver first, as JSON or values.
 * @returns What the call returns.
 * @throws {CedarEvalError} When cedar-wasm refuses the call.
 * @throws {TypeError} When an argument is not Cedar JSON.
 *
 * @example Rebuild a datetime from its canonical form
 * ```ts
 * import { extensionFromJson, extensionFromJsonArgs } from "./extensions.ts";
 * import { valueKey } from "./value.ts";
 * import assert from "node:assert/strict";
 *
 * const instant = extensionFromJsonArgs("offset", [
 *   { __extn: { fn: "datetime", arg: "1970-01-01" } },
 *   { __extn: { fn: "duration", arg: "86400000ms" } },
 * ]);
 * assert.equal(valueKey(instant), valueKey(extensionFromJson("datetime", "1970-01-02")));
 * ```
 */
export function extensionFromJsonArgs(fn: string, args: readonly unknown[]): Value {
  return call(fn, args);
}
