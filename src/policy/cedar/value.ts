// The values of Cedar's evaluation, shared by the parser, the evaluator and the
// extensions. Representation chosen for speed of the common cases: booleans
// and strings are JS primitives, Long is a bigint (Cedar's i64, checked on
// every arithmetic step), entities carry their canonical key.

/** An evaluation error: the policy that raised it is skipped and reported. */
export class CedarEvalError extends Error {
  /**
   * Builds the error.
   * @param message What went wrong, e.g. `integer overflow while attempting to add`.
   */
  constructor(message: string) {
    super(message);
    this.name = "CedarEvalError";
  }
}

/** An entity reference, `Type::"id"`. Compare with `key`. */
export class EntityRef {
  /** The entity type, with its namespace: `Ns::Plugin`. */
  readonly type: string;
  /** The entity id, any string. */
  readonly id: string;
  /** `Type::"id"` with the id JSON-escaped: unique per entity. */
  readonly key: string;
  /**
   * Builds a reference.
   * @param type The entity type.
   * @param id The entity id.
   */
  constructor(type: string, id: string) {
    this.type = type;
    this.id = id;
    this.key = `${type}::${JSON.stringify(id)}`;
  }
}

/** A Cedar set: distinct values (by {@linkcode valueKey}), order irrelevant. */
export class CedarSet {
  /** The members, without duplicates. */
  readonly items: readonly Value[];
  /** `valueKey` of each member, for membership tests. */
  readonly keys: ReadonlySet<string>;
  /**
   * Builds a set, dropping duplicates.
   * @param items The members.
   */
  constructor(items: Iterable<Value>) {
    const keys = new Set<string>();
    const unique: Value[] = [];
    for (const item of items) {
      const key = valueKey(item);
      if (!keys.has(key)) {
        keys.add(key);
        unique.push(item);
      }
    }
    this.items = unique;
    this.keys = keys;
  }
}

/** A Cedar record: named attributes. */
export class CedarRecord {
  /** The attributes. */
  readonly fields: ReadonlyMap<string, Value>;
  /**
   * Builds a record.
   * @param fields The attributes.
   */
  constructor(fields: ReadonlyMap<string, Value>) {
    this.fields = fields;
  }
}

/** The value of an extension type: `decimal`, `ipaddr`, `datetime`, `duration`. */
export abstract class ExtensionValue {
  /** The extension type's name, as Cedar's error messages and schemas spell it. */
  abstract readonly extension: "decimal" | "ipaddr" | "datetime" | "duration";
  /** A canonical form: two values are Cedar-equal exactly when their keys are equal. */
  abstract key(): string;
}

/** Any Cedar value. Long is a bigint within i64. */
export type Value = boolean | bigint | string | EntityRef | CedarSet | CedarRecord | ExtensionValue;

/**
 * A canonical string of a value: equal keys exactly when Cedar's `==` holds.
 * Used for set membership and decision-cache keys.
 * @param value Any value.
 * @returns Its key.
 */
export function valueKey(value: Value): string {
  switch (typeof value) {
    case "boolean":
      return value ? "T" : "F";
    case "bigint":
      return `L${value}`;
    case "string":
      return `S${JSON.stringify(value)}`;
  }
  if (value instanceof EntityRef) return `E${value.key}`;
  if (value instanceof CedarSet) return `[${[...value.keys].sort().join(",")}]`;
  if (value instanceof CedarRecord) {
    return `{${
      [...value.fields].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
        .map(([name, field]) => `${JSON.stringify(name)}:${valueKey(field)}`).join(",")
    }}`;
  }
  return `X${value.extension}:${value.key()}`;
}

/**
 * One extension function or method, as the evaluator calls it: `ip("10.0.0.1")`
 * is `{ name: "ip", args: ["10.0.0.1"] }`, `a.isInRange(b)` is
 * `{ name: "isInRange", args: [a, b] }` (the receiver first, as in Cedar's JSON
 * policy format). Arguments are already evaluated; a wrong type or arity, or a
 * bad literal, throws {@linkcode CedarEvalError} with Cedar's meaning.
 */
export type ExtensionFunction = (args: readonly Value[]) => Value;
