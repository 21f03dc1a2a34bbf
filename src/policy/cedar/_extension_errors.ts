// The errors extension functions raise, worded as cedar-wasm 4.13 words them so
// that a decision's diagnostics read the same whichever engine produced them.
import { CedarEvalError, CedarRecord, CedarSet, EntityRef, ExtensionValue, type Value } from "./value.ts";

/**
 * Names a value's type the way Cedar's type errors do.
 * @param value Any value (undefined only when an arity check was skipped).
 * @returns `bool`, `long`, `string`, `set`, `record`, ``(entity of type `T`)`` or the extension's name.
 */
export function typeName(value: Value | undefined): string {
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "bigint":
      return "long";
    case "string":
      return "string";
  }
  if (value instanceof ExtensionValue) return value.extension;
  if (value instanceof EntityRef) return `(entity of type \`${value.type}\`)`;
  if (value instanceof CedarSet) return "set";
  if (value instanceof CedarRecord) return "record";
  return "undefined";
}

/**
 * Builds a type error: `type error: expected ipaddr, got string`.
 * @param expected The type the function wanted.
 * @param got The value it was given.
 * @returns The error, for the caller to throw.
 */
export function typeError(expected: string, got: Value | undefined): CedarEvalError {
  return new CedarEvalError(`type error: expected ${expected}, got ${typeName(got)}`);
}

/**
 * Throws when a call has the wrong number of arguments (the receiver counts).
 * @param name The function's Cedar name.
 * @param expected How many arguments it takes.
 * @param args The arguments given.
 * @throws {CedarEvalError} When `args.length` is not `expected`.
 */
export function checkArity(name: string, expected: number, args: readonly Value[]): void {
  if (args.length !== expected) {
    throw new CedarEvalError(
      `wrong number of arguments provided to extension function \`${name}\`: expected ${expected}, got ${args.length}`,
    );
  }
}

/**
 * Builds the error of a failed extension function: a bad literal or an overflow.
 * @param extension The name Cedar reports: `decimal`, `ipaddr`, `datetime`, `duration` or the method's.
 * @param message What went wrong.
 * @returns The error, for the caller to throw.
 */
export function extensionError(extension: string, message: string): CedarEvalError {
  return new CedarEvalError(`error while evaluating \`${extension}\` extension function: ${message}`);
}

/**
 * Reads the single string argument of a constructor.
 * @param name The constructor's Cedar name.
 * @param args The arguments given.
 * @returns The string.
 * @throws {CedarEvalError} On a wrong arity or a non-string argument.
 */
export function stringArgument(name: string, args: readonly Value[]): string {
  checkArity(name, 1, args);
  const arg = args[0];
  if (typeof arg !== "string") throw typeError("string", arg);
  return arg;
}

/**
 * The length of a string in UTF-8 bytes, as Rust's `str::len` counts it.
 * @param text Any string.
 * @returns Its UTF-8 length.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 2; // a surrogate pair: two UTF-16 units, four bytes
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * Quotes a string as Cedar prints a string literal inside an expression.
 * @param text Any string.
 * @returns `"text"` with quotes and backslashes escaped.
 */
export function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, "\\$&")}"`;
}
