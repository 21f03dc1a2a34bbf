// Cedar's JSON value format (entity attributes, tags, context, literals of
// the JSON policy format) to evaluator values, accepting and refusing what
// cedar-wasm 4.13 accepts and refuses without a schema.
import { EXTENSION_FUNCTIONS } from "./extensions.ts";
import { LONG_MAX, LONG_MIN } from "./_eval_runtime.ts";
import { CedarEvalError, CedarRecord, CedarSet, EntityRef, type Value } from "./value.ts";

const RESERVED = new Set(["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]);
const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*(?:::[_a-zA-Z][_a-zA-Z0-9]*)*$/;
/** Type names already checked, so a request's three uids cost a map lookup; bounded against hostile input. */
const VALID_TYPES = new Set<string>();
const VALID_TYPES_MAX = 4096;

/**
 * Checks an entity type name as Cedar does: identifiers joined by `::`, no
 * spaces, none of Cedar's reserved words, no `__cedar` namespace.
 * @throws {TypeError} When the name is not a valid entity type.
 */
export function checkEntityType(type: string): void {
  if (VALID_TYPES.has(type)) return;
  if (!NAME.test(type)) throw new TypeError(`Entity type ${JSON.stringify(type)} is not a valid Cedar name`);
  for (const part of type.split("::")) {
    if (RESERVED.has(part)) {
      throw new TypeError(`Entity type ${JSON.stringify(type)} uses the reserved identifier "${part}"`);
    }
  }
  if (VALID_TYPES.size < VALID_TYPES_MAX) VALID_TYPES.add(type);
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}

// Interned references: a request's principal, action and the parents of its
// resource recur from request to request, and building a key costs a
// JSON.stringify. Bounded: cleared whole when full.
const INTERNED = new Map<string, Map<string, EntityRef>>();
const INTERNED_MAX = 16384;
let interned = 0;

/**
 * The reference of a type and id, shared while it stays in a bounded cache.
 * @param type An entity type.
 * @param id Any id.
 * @returns The reference.
 * @throws {TypeError} When the type is not a valid entity type.
 */
export function internEntityRef(type: string, id: string): EntityRef {
  let ids = INTERNED.get(type);
  if (ids === undefined) {
    // Only checked types are interned: a known type needs no check.
    checkEntityType(type);
    if (INTERNED.size >= 256) {
      INTERNED.clear();
      interned = 0;
    }
    INTERNED.set(type, ids = new Map());
  }
  let ref = ids.get(id);
  if (ref === undefined) {
    if (++interned > INTERNED_MAX) {
      INTERNED.clear();
      INTERNED.set(type, ids = new Map());
      interned = 1;
    }
    ids.set(id, ref = new EntityRef(type, id));
  }
  return ref;
}

/**
 * An entity uid in either JSON form, `{ type, id }` or `{ __entity: { type, id } }`.
 * @param json The uid.
 * @param where What it is, for messages: `principal`, `uid of an entity`.
 * @param intern Whether to share the reference through the bounded intern table: for uids that recur (principals,
 * actions, parents), not for the many that do not (a request's resource: its insert costs more than it saves).
 * @returns The reference.
 * @throws {TypeError} When it is not a uid or its type is not a valid name.
 */
export function entityRefFromJson(json: unknown, where: string, intern = true): EntityRef {
  let uid = json;
  if (isObject(uid) && isObject(uid.__entity)) uid = uid.__entity;
  if (!isObject(uid) || typeof uid.type !== "string" || typeof uid.id !== "string") {
    throw new TypeError(`Expected an entity uid { type, id } as ${where}, got ${describe(json)}`);
  }
  if (intern) return internEntityRef(uid.type, uid.id);
  checkEntityType(uid.type);
  return new EntityRef(uid.type, uid.id);
}

/** A Long from a JSON number as cedar-wasm reads one: through its shortest decimal form. */
function longFromNumber(value: number): bigint | undefined {
  if (Number.isSafeInteger(value)) return BigInt(value);
  if (!Number.isInteger(value)) return undefined;
  const text = String(value);
  if (text.includes("e")) return undefined;
  const long = BigInt(text);
  return long < LONG_MIN || long > LONG_MAX ? undefined : long;
}

function describe(json: unknown): string {
  if (typeof json === "bigint") return `${json}`;
  try {
    const text = JSON.stringify(json);
    if (text === undefined) return String(json);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(json);
  }
}

/**
 * Calls an extension function on JSON arguments, as an `__extn` escape asks.
 * @throws {TypeError} When the function is unknown or refuses its arguments.
 */
function callExtension(fn: string, args: readonly unknown[]): Value {
  const extension = EXTENSION_FUNCTIONS.get(fn);
  if (extension === undefined) throw new TypeError(`extension function \`${fn}\` does not exist`);
  const values = args.map(valueFromJson);
  try {
    return extension(values);
  } catch (error) {
    if (error instanceof CedarEvalError) throw new TypeError(error.message, { cause: error });
    throw error;
  }
}

/**
 * Rethrows a {@linkcode valueFromJson} error with where the value was.
 * Messages are built only on failure: a request's entities are parsed on
 * every uncached decision.
 * @param where Where the value was: `attribute "x" of User::"a"`.
 * @param error What was thrown.
 * @throws {TypeError} Always: the error, located.
 */
export function rethrowAt(where: string, error: unknown): never {
  if (error instanceof TypeError) throw new TypeError(`In ${where}, ${error.message}`, { cause: error.cause });
  throw error;
}

/**
 * A Cedar value from its JSON form: booleans, strings, integer numbers in
 * i64 (or bigints), arrays as sets, objects as records, `{ __entity }` and
 * `{ __extn: { fn, arg } | { fn, args } }` escapes. An escape with another
 * key beside it, or whose payload does not fit, is a record, as in cedar-wasm.
 * @param json The JSON value.
 * @returns The value.
 * @throws {TypeError} On `null`, a non-integer or out-of-range number, an
 * invalid entity type, the retired `__expr` escape, or a failing extension call.
 */
export function valueFromJson(json: unknown): Value {
  switch (typeof json) {
    case "string":
    case "boolean":
      return json;
    case "number": {
      const long = longFromNumber(json);
      if (long === undefined) throw new TypeError(`${json} is not an integer in the range of a Cedar Long`);
      return long;
    }
    case "bigint":
      if (json < LONG_MIN || json > LONG_MAX) {
        throw new TypeError(`${json} is not an integer in the range of a Cedar Long`);
      }
      return json;
    case "object":
      break;
    default:
      throw new TypeError(`${typeof json} is not a Cedar value`);
  }
  if (json === null) throw new TypeError("found a `null`; JSON `null`s are not allowed in Cedar");
  if (Array.isArray(json)) return new CedarSet(json.map(valueFromJson));
  const object = json as Record<string, unknown>;
  const keys = Object.keys(object);
  const only = keys.length === 1 ? keys[0] : undefined;
  if (only === "__entity") {
    const uid = object.__entity;
    if (isObject(uid) && typeof uid.type === "string" && typeof uid.id === "string") {
      return internEntityRef(uid.type, uid.id);
    }
  } else if (only === "__extn") {
    const call = object.__extn;
    if (isObject(call) && typeof call.fn === "string") {
      if ("arg" in call) return callExtension(call.fn, [call.arg]);
      if (Array.isArray(call.args)) return callExtension(call.fn, call.args);
    }
  } else if (only === "__expr" && typeof object.__expr === "string") {
    throw new TypeError("the `__expr` escape is no longer supported");
  }
  return recordOf(object, keys);
}

/**
 * A record from a JSON object, each field by {@linkcode valueFromJson}.
 * @throws {TypeError} As {@linkcode valueFromJson}.
 */
export function recordFromJson(object: Record<string, unknown>): CedarRecord {
  return recordOf(object, Object.keys(object));
}

function recordOf(object: Record<string, unknown>, keys: readonly string[]): CedarRecord {
  const fields = new Map<string, Value>();
  for (let i = 0; i < keys.length; i++) fields.set(keys[i]!, valueFromJson(object[keys[i]!]));
  return new CedarRecord(fields);
}

/**
 * A request's context: a record, from its JSON form or as is.
 * @throws {TypeError} When it is not an object, or a field is malformed.
 */
export function contextFromJson(json: unknown): CedarRecord {
  if (json instanceof CedarRecord) return json;
  if (!isObject(json)) throw new TypeError(`Expected the context to be a record, got ${describe(json)}`);
  let value: Value;
  try {
    value = valueFromJson(json);
  } catch (error) {
    rethrowAt("the context", error);
  }
  if (!(value instanceof CedarRecord)) {
    throw new TypeError(`Expected the context to be a record, got ${describe(json)}`);
  }
  return value;
}
