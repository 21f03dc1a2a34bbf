// What the compiled closures share at run time: Cedar's type names and error
// messages (worded as cedar-wasm words them, so reports read the same), value
// equality and the hierarchy test.
import { typeName } from "./_extension_errors.ts";
import { CedarEvalError, CedarRecord, CedarSet, EntityRef, ExtensionValue, type Value, valueKey } from "./value.ts";

/** The smallest Long, -2^63. */
export const LONG_MIN = -(2n ** 63n);
/** The largest Long, 2^63 - 1. */
export const LONG_MAX = 2n ** 63n - 1n;

/** What the evaluator needs of an entity: attributes, tags and every ancestor's key. */
export interface EntityData {
  /** The entity's uid. */
  readonly uid: EntityRef;
  /** Its attributes. */
  readonly attrs: ReadonlyMap<string, Value>;
  /** Its tags (empty when it has none). */
  readonly tags: ReadonlyMap<string, Value>;
  /** `key` of every ancestor, transitively; never the entity itself. */
  readonly ancestors: ReadonlySet<string>;
}

/** Looks entities up by `EntityRef.key`. */
export interface EntityLookup {
  /** The entity of this key, or undefined when the request did not supply it. */
  get(key: string): EntityData | undefined;
}

/** The request as the compiled closures see it. */
export interface Env {
  /** The request's principal. */
  readonly principal: EntityRef;
  /** The request's action. */
  readonly action: EntityRef;
  /** The request's resource. */
  readonly resource: EntityRef;
  /** The request's context. */
  readonly context: CedarRecord;
  /** The request's entities. */
  readonly entities: EntityLookup;
}

/** `(entity of type \`any_entity_type\`)`: how Cedar names "any entity" in type errors. */
export const ANY_ENTITY = "(entity of type `any_entity_type`)";

export { typeName };

/** A type error: `type error: expected long, got string`. */
export function typeError(expected: string | readonly string[], actual: Value): CedarEvalError {
  const wanted = typeof expected === "string"
    ? expected
    : expected.length === 1
    ? expected[0]!
    : `one of [${expected.join(", ")}]`;
  return new CedarEvalError(`type error: expected ${wanted}, got ${typeName(actual)}`);
}

// Rust's `str::escape_debug` (Cedar prints entity ids with it): quotes,
// backslashes and the usual control escapes, other unprintable characters as
// `\u{hex}`, and a combining mark at the start. An approximation of Rust's
// printable table by Unicode category.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/u;
const COMBINING = /\p{M}/u;
const SIMPLE_ESCAPES: Record<string, string> = {
  "\0": "\\0",
  "\t": "\\t",
  "\r": "\\r",
  "\n": "\\n",
  "\\": "\\\\",
  "'": "\\'",
  '"': '\\"',
};

/** An entity uid as Cedar's messages print it: `User::"alice"`. */
export function displayEntity(ref: EntityRef): string {
  let out = "";
  let first = true;
  for (const char of ref.id) {
    const simple = SIMPLE_ESCAPES[char];
    if (simple !== undefined) out += simple;
    else if (UNPRINTABLE.test(char) || (first && COMBINING.test(char))) {
      out += `\\u{${char.codePointAt(0)!.toString(16)}}`;
    } else out += char;
    first = false;
  }
  return `${ref.type}::"${out}"`;
}

/** Whether two values are equal by Cedar's `==`: structural, never an error. */
export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof EntityRef) return b instanceof EntityRef && a.key === b.key;
  if (a instanceof CedarSet) {
    if (!(b instanceof CedarSet) || a.keys.size !== b.keys.size) return false;
    for (const key of a.keys) if (!b.keys.has(key)) return false;
    return true;
  }
  if (a instanceof CedarRecord) {
    if (!(b instanceof CedarRecord) || a.fields.size !== b.fields.size) return false;
    for (const [name, field] of a.fields) {
      const other = b.fields.get(name);
      if (other === undefined || !valueEquals(field, other)) return false;
    }
    return true;
  }
  if (a instanceof ExtensionValue) {
    return b instanceof ExtensionValue && a.extension === b.extension && a.key() === b.key();
  }
  return false;
}

/** Whether a set holds a value, by Cedar's `==`. */
export function setHas(set: CedarSet, value: Value): boolean {
  return set.keys.has(valueKey(value));
}

/** `child in parent` for two entities: equal, or `parent` is an ancestor of `child` in the request's entities. */
export function entityIn(entities: EntityLookup, child: EntityRef, parent: EntityRef): boolean {
  if (child.key === parent.key) return true;
  const data = entities.get(child.key);
  return data !== undefined && data.ancestors.has(parent.key);
}

/** Cedar's `left in right`, with its type errors. */
export function evalIn(entities: EntityLookup, left: Value, right: Value): boolean {
  if (!(left instanceof EntityRef)) throw typeError(ANY_ENTITY, left);
  if (right instanceof EntityRef) return entityIn(entities, left, right);
  if (right instanceof CedarSet) {
    // Every member must be an entity, even after a match (Cedar checks them all first).
    for (const item of right.items) if (!(item instanceof EntityRef)) throw typeError(ANY_ENTITY, item);
    if (right.keys.has(`E${left.key}`)) return true;
    const data = entities.get(left.key);
    if (data === undefined || data.ancestors.size === 0) return false;
    for (const item of right.items) if (data.ancestors.has((item as EntityRef).key)) return true;
    return false;
  }
  throw typeError(["set", ANY_ENTITY], right);
}

/** Names of the ordered extension types: `<` and friends work on them. */
const ORDERED_EXTENSIONS = new Set(["datetime", "duration"]);

/**
 * Orders two values for `<`, `<=`, `>`, `>=` with Cedar's type errors: Longs,
 * or two values of one ordered extension type.
 */
export function compareValues(
  a: Value,
  b: Value,
  compareExtensions: (a: ExtensionValue, b: ExtensionValue) => number,
): number {
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  const aOrdered = a instanceof ExtensionValue && ORDERED_EXTENSIONS.has(a.extension);
  const bOrdered = b instanceof ExtensionValue && ORDERED_EXTENSIONS.has(b.extension);
  if (aOrdered && bOrdered && (a as ExtensionValue).extension === (b as ExtensionValue).extension) {
    return compareExtensions(a as ExtensionValue, b as ExtensionValue);
  }
  if (typeof a === "bigint") throw typeError("long", b);
  if (typeof b === "bigint") throw typeError("long", a);
  if (aOrdered) throw typeError((a as ExtensionValue).extension, b);
  if (bOrdered) throw typeError((b as ExtensionValue).extension, a);
  throw typeError(["long", "datetime", "duration"], a);
}

/** A checked i64 result, or Cedar's overflow error. */
export function checkedLong(result: bigint, verb: string, a: bigint, b: bigint): bigint {
  if (result > LONG_MAX || result < LONG_MIN) {
    throw new CedarEvalError(`integer overflow while attempting to ${verb} the values \`${a}\` and \`${b}\``);
  }
  return result;
}
