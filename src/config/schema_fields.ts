/**
 * The zod building blocks of keycard's YAML schemas (`keycard.yaml` and
 * `plugin.yaml`): every leaf says what it expects and quotes what came, maps
 * refuse unknown keys, an empty YAML value counts as an empty list.
 */
import { z } from "zod";

/**
 * Renders a value for an error message: strings quoted (and shortened), collections named.
 *
 * @param value The offending value.
 * @returns Its rendering, e.g. `"eighty"`, `a map`, `nothing`.
 *
 * @example
 * ```ts
 * import { show } from "./schema_fields.ts";
 * show("eighty"); // '"eighty"'
 * show([1]); // "a list"
 * ```
 */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

/**
 * A zod error param that says what was expected and what came.
 *
 * @param expected What a valid value is, e.g. `"true or false"`.
 * @returns The param for a zod schema.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { expect } from "./schema_fields.ts";
 * z.boolean(expect("true or false")).safeParse("yes").error?.issues[0]?.message; // 'expected true or false, got "yes"'
 * ```
 */
export function expect(expected: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) =>
      issue.input === undefined
        ? `is required: expected ${expected}`
        : `expected ${expected}, got ${show(issue.input)}`,
  };
}

/**
 * An integer within a range; without `max`, up to the largest safe integer.
 *
 * @param min The smallest value.
 * @param max The largest value.
 * @returns The schema.
 *
 * @example
 * ```ts
 * import { integer } from "./schema_fields.ts";
 * integer(0, 65535).safeParse(8080).success; // true
 * ```
 */
export function integer(min: number, max?: number): z.ZodInt {
  const message = expect(max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`);
  return z.int(message).min(min, message).max(max ?? Number.MAX_SAFE_INTEGER, message);
}

/**
 * A non-empty string matching a pattern.
 *
 * @param expected What a valid value is, for the message.
 * @param pattern The pattern. @default {no leading or trailing white space, not empty}
 * @returns The schema.
 *
 * @example
 * ```ts
 * import { text } from "./schema_fields.ts";
 * text("a word", /^\w+$/).safeParse("two words").success; // false
 * ```
 */
export function text(expected: string, pattern: RegExp = /^\S(?:.*\S)?$/s): z.ZodString {
  const message = expect(expected);
  return z.string(message).regex(pattern, message);
}

/**
 * A map with exactly these optional keys; others are refused to catch typos.
 *
 * @param shape The keys and their schemas.
 * @param expected What the map is, for the message. @default {"a map"}
 * @returns The schema.
 *
 * @example
 * ```ts
 * import { map, text } from "./schema_fields.ts";
 * map({ name: text("a name") }).safeParse({ nmae: "x" }).success; // false
 * ```
 */
export function map<S extends z.ZodRawShape>(shape: S, expected = "a map"): z.ZodObject<S, z.core.$strict> {
  const keys = Object.keys(shape).map((key) => `"${key}"`).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `(expected one of ${keys})`
        : issue.input === undefined
        ? `is required: expected ${expected}`
        : `expected ${expected}, got ${show(issue.input)}`,
  });
}

/**
 * A list of items; an empty YAML value (`tokens:`) counts as an empty list.
 *
 * @param item The schema of each item.
 * @returns The schema, which yields an array.
 *
 * @example
 * ```ts
 * import { list, text } from "./schema_fields.ts";
 * list(text("a name")).parse(null); // []
 * ```
 */
export function list<T extends z.ZodType>(item: T) {
  return z.array(item, expect("a list")).nullable().transform((items) => items ?? []);
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

/**
 * A media type as a Content-Type value takes it (RFC 9110 8.3.1): `type/subtype`, then `; name=value` parameters.
 *
 * @example
 * ```ts
 * import { MEDIA_TYPE } from "./schema_fields.ts";
 * MEDIA_TYPE.test("text/plain; charset=utf-8"); // true
 * MEDIA_TYPE.test("text/plain\r\nx-injected: 1"); // false
 * ```
 */
export const MEDIA_TYPE: RegExp = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\[\\t\\x20-\\x7e])*"))*$`,
);
