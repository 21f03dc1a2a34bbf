// Placeholder until the extensions land (decimal, ipaddr, datetime, duration):
// the evaluator looks functions up here. Replaced whole by the extensions work.
import { CedarEvalError, type ExtensionFunction, type ExtensionValue } from "./value.ts";

/** Every extension function and method by its Cedar name (`ip`, `isInRange`, `decimal`, `lessThan`, ...). */
export const EXTENSION_FUNCTIONS: ReadonlyMap<string, ExtensionFunction> = new Map();

/**
 * Orders two extension values for `<`, `<=`, `>`, `>=`.
 * @param a The left value.
 * @param b The right value.
 * @returns Negative, zero or positive.
 * @throws {CedarEvalError} When the values are not of one ordered extension type.
 */
export function compareExtensionValues(a: ExtensionValue, b: ExtensionValue): number {
  throw new CedarEvalError(`cannot order ${a.extension} and ${b.extension}`);
}
