// Cedar's `decimal`: a fixed-point number with four fraction digits, held as
// an i64 count of ten-thousandths (cedar-policy-core/src/extensions/decimal.rs).
import { type ExtensionFunction, ExtensionValue, type Value } from "./value.ts";
import { checkArity, extensionError, quote, stringArgument, typeError, utf8Length } from "./_extension_errors.ts";

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;
/** The largest integer part whose value times 10^4 still fits an i64, either sign. */
const MAX_INTEGER_PART = 922337203685477n;
const SCALE = [10000, 1000, 100, 10, 1];
const SCALE_BIG = [10000n, 1000n, 100n, 10n, 1n];
// Rust's `\d` is Unicode's Nd: only consulted once the ASCII fast path fails.
const UNICODE_DECIMAL = /^(-?\p{Nd}+)\.(\p{Nd}+)$/u;
const ASCII_INTEGER = /^-?[0-9]+$/;

/** A `decimal` value. */
export class Decimal extends ExtensionValue {
  override readonly extension = "decimal" as const;
  /** The number times 10^4, within i64. */
  readonly value: bigint;
  /** The constructor's argument, for display. */
  readonly source: string;

  /**
   * Wraps a value already checked to fit.
   * @param value Ten-thousandths.
   * @param source The literal it came from.
   */
  constructor(value: bigint, source: string) {
    super();
    this.value = value;
    this.source = source;
  }

  /** `decimal("1.0")` and `decimal("1.0000")` are equal: the key is the scaled integer. */
  override key(): string {
    return this.value.toString();
  }

  /** The Cedar expression that built it. */
  override toString(): string {
    return `decimal(${quote(this.source)})`;
  }
}

/** False past the end too, where `charCodeAt` gives NaN. */
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function failedParse(text: string): Error {
  return extensionError("decimal", `\`${text}\` is not a well-formed decimal value`);
}

function overflow(): Error {
  return extensionError("decimal", "overflow when converting to decimal");
}

/**
 * Parses a decimal literal: `-?digits.digits`, one to four fraction digits,
 * within i64 / 10^4. Errors come in Cedar's order: shape, integer part range,
 * fraction length, total range.
 * @param text The literal.
 * @returns The value.
 * @throws {CedarEvalError} On a malformed or out-of-range literal.
 */
export function parseDecimal(text: string): Decimal {
  const n = text.length;
  let i = text.charCodeAt(0) === 45 ? 1 : 0;
  const intStart = i;
  // Accumulated in a double while it stays exact; the digit count decides.
  let integer = 0;
  let lead = -1; // the first non-zero digit
  for (let c = text.charCodeAt(i); isDigit(c); c = text.charCodeAt(++i)) {
    integer = integer * 10 + c - 48;
    if (lead < 0 && c !== 48) lead = i;
  }
  const intEnd = i;
  if (intEnd === intStart || text.charCodeAt(i) !== 46) return parseUnicode(text);
  const fracStart = ++i;
  let fraction = 0;
  for (let c = text.charCodeAt(i); isDigit(c); c = text.charCodeAt(++i)) fraction = fraction * 10 + c - 48;
  if (i !== n || i === fracStart) return parseUnicode(text);
  const negative = intStart === 1;
  const fracLength = n - fracStart;
  if (lead < 0 || intEnd - lead <= 11) {
    // Below 10^15 all along: exact in a double.
    if (fracLength > 4) throw tooManyDigits(text);
    const scaled = integer * 10000 + fraction * (SCALE[fracLength] as number);
    return new Decimal(BigInt(negative ? -scaled : scaled), text);
  }
  const bigInteger = BigInt(text.slice(lead, intEnd));
  if (bigInteger > MAX_INTEGER_PART) throw overflow();
  if (fracLength > 4) throw tooManyDigits(text);
  const magnitude = bigInteger * 10000n + BigInt(text.slice(fracStart)) * (SCALE_BIG[fracLength] as bigint);
  const value = negative ? -magnitude : magnitude;
  if (value > I64_MAX || value < I64_MIN) throw overflow();
  return new Decimal(value, text);
}

function tooManyDigits(text: string): Error {
  return extensionError("decimal", `too many digits after the decimal in \`${text}\``);
}

// The shape holds with non-ASCII digits, which Rust's i64 parser then refuses:
// Cedar reports that as an overflow, unless the fraction is too long (in bytes).
function parseUnicode(text: string): never {
  const match = UNICODE_DECIMAL.exec(text);
  if (match === null) throw failedParse(text);
  const [, integer = "", fraction = ""] = match;
  if (!ASCII_INTEGER.test(integer)) throw overflow();
  const digits = BigInt(integer.charCodeAt(0) === 45 ? integer.slice(1) : integer);
  if (digits > MAX_INTEGER_PART) throw overflow();
  if (utf8Length(fraction) > 4) throw tooManyDigits(text);
  throw overflow();
}

function asDecimal(value: Value | undefined): Decimal {
  if (value instanceof Decimal) return value;
  throw typeError("decimal", value);
}

function comparison(name: string, test: (a: bigint, b: bigint) => boolean): ExtensionFunction {
  return (args) => {
    checkArity(name, 2, args);
    return test(asDecimal(args[0]).value, asDecimal(args[1]).value);
  };
}

/** The `decimal` extension's functions by Cedar name. */
export const DECIMAL_FUNCTIONS: ReadonlyArray<readonly [string, ExtensionFunction]> = [
  ["decimal", (args) => parseDecimal(stringArgument("decimal", args))],
  ["lessThan", comparison("lessThan", (a, b) => a < b)],
  ["lessThanOrEqual", comparison("lessThanOrEqual", (a, b) => a <= b)],
  ["greaterThan", comparison("greaterThan", (a, b) => a > b)],
  ["greaterThanOrEqual", comparison("greaterThanOrEqual", (a, b) => a >= b)],
];
