// Cedar's `datetime` (milliseconds since the Unix epoch, no leap seconds) and
// `duration` (milliseconds), both i64, as in
// cedar-policy-core/src/extensions/datetime.rs.
import { type ExtensionFunction, ExtensionValue, type Value } from "./value.ts";
import { checkArity, extensionError, stringArgument, typeError } from "./_extension_errors.ts";

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;
const DAY_MS = 86400000n;
/** Below this every partial sum of a duration is an exact double. */
const EXACT_LIMIT = 2 ** 52;
/** Milliseconds per unit: d, h, m, s, ms. */
const UNIT_MS = [86400000, 3600000, 60000, 1000, 1];
const UNIT_MS_BIG = [86400000n, 3600000n, 60000n, 1000n, 1n];

/** A `datetime` value. */
export class DateTime extends ExtensionValue {
  override readonly extension = "datetime" as const;
  /** Milliseconds since 1970-01-01T00:00:00Z, within i64. */
  readonly epoch: bigint;

  /**
   * Wraps an instant.
   * @param epoch Milliseconds since the epoch.
   */
  constructor(epoch: bigint) {
    super();
    this.epoch = epoch;
  }

  /** Equal exactly when the instants are: offsets and formats do not matter. */
  override key(): string {
    return this.epoch.toString();
  }

  /** Cedar's canonical expression for it: `datetime("1970-01-01").offset(duration("…ms"))`. */
  override toString(): string {
    return `datetime("1970-01-01").offset(duration("${this.epoch}ms"))`;
  }
}

/** A `duration` value. */
export class Duration extends ExtensionValue {
  override readonly extension = "duration" as const;
  /** Milliseconds, within i64. */
  readonly ms: bigint;

  /**
   * Wraps a length of time.
   * @param ms Milliseconds.
   */
  constructor(ms: bigint) {
    super();
    this.ms = ms;
  }

  /** Equal exactly when the lengths are: `1h` equals `60m`. */
  override key(): string {
    return this.ms.toString();
  }

  /** Cedar's canonical expression for it: `duration("…ms")`. */
  override toString(): string {
    return `duration("${this.ms}ms")`;
  }
}

function digits(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return -1; // also past the end, where c is NaN
    value = value * 10 + c - 48;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function datetimeError(message: string): Error {
  return extensionError("datetime", message);
}

/**
 * Parses `YYYY-MM-DD`, optionally followed by `Thh:mm:ss`, optional `.SSS`,
 * then `Z` or `+hhmm`/`-hhmm`. Syntax is checked before meaning, left to
 * right, then the date, the time and the offset, as Cedar does.
 * @param text The literal.
 * @returns The instant.
 * @throws {CedarEvalError} When Cedar refuses the text.
 */
export function parseDatetime(text: string): DateTime {
  const n = text.length;
  const year = n >= 10 ? digits(text, 0, 4) : -1;
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  if (year < 0 || month < 0 || day < 0 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) {
    throw datetimeError("invalid date pattern");
  }
  const dateValid = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
  if (n === 10) {
    if (!dateValid) throw datetimeError(`invalid date: ${text}`);
    return new DateTime(BigInt(daysFromCivil(year, month, day) * 86400000));
  }
  const hour = n >= 19 ? digits(text, 11, 13) : -1;
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  if (
    hour < 0 || minute < 0 || second < 0 || text.charCodeAt(10) !== 84 || text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58
  ) {
    throw datetimeError("invalid hour/minute/second pattern");
  }
  let pos = 19;
  let millis = 0;
  if (text.charCodeAt(pos) === 46) {
    millis = n >= 23 ? digits(text, 20, 23) : -1;
    pos = 23;
  }
  let offsetSign = 0;
  let offsetHours = 0;
  let offsetMinutes = 0;
  const marker = text.charCodeAt(pos);
  if (marker === 43 || marker === 45) {
    offsetSign = marker === 43 ? 1 : -1;
    offsetHours = n === pos + 5 ? digits(text, pos + 1, pos + 3) : -1;
    offsetMinutes = digits(text, pos + 3, pos + 5);
  } else if (marker !== 90 || n !== pos + 1) offsetHours = -1;
  if (millis < 0 || offsetHours < 0 || offsetMinutes < 0) {
    throw datetimeError("invalid millisecond and/or offset pattern");
  }
  if (!dateValid) throw datetimeError(`invalid date: ${text.slice(0, 10)}`);
  if (hour >= 24 || minute >= 60 || second >= 60) {
    throw datetimeError(`invalid hour/minute/second: ${text.slice(11, 19)}`);
  }
  if (offsetHours >= 24 || offsetMinutes >= 60) {
    throw datetimeError(`invalid offset range: ${offsetHours}${offsetMinutes}`);
  }
  // Within ±2^48 for years 0000 to 9999: exact in a double.
  const epoch = daysFromCivil(year, month, day) * 86400000 + hour * 3600000 + minute * 60000 + second * 1000 +
    millis - offsetSign * (offsetHours * 3600000 + offsetMinutes * 60000);
  return new DateTime(BigInt(epoch));
}

function invalidDuration(): Error {
  return extensionError("duration", "invalid duration pattern");
}

// Scratch token boundaries of the duration being parsed: at most one per unit.
const tokenStart = [0, 0, 0, 0, 0];
const tokenEnd = [0, 0, 0, 0, 0];
const tokenUnit = [0, 0, 0, 0, 0];

/**
 * Parses a duration: an optional `-`, then quantities with units `d`, `h`,
 * `m`, `s`, `ms`, each at most once and in that order (`1d2h3m4s5ms`).
 * @param text The literal.
 * @returns The duration.
 * @throws {CedarEvalError} On a malformed literal or one beyond i64 milliseconds.
 */
export function parseDuration(text: string): Duration {
  const n = text.length;
  const negative = text.charCodeAt(0) === 45;
  let pos = negative ? 1 : 0;
  if (pos === n) throw invalidDuration();
  let count = 0;
  let nextUnit = 0;
  let total = 0;
  let exact = true;
  while (pos < n) {
    const first = pos;
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c < 48 || c > 57) break;
      pos++;
    }
    if (pos === first) throw invalidDuration();
    const last = pos;
    const c = text.charCodeAt(pos);
    let unit: number;
    if (c === 100) unit = 0;
    else if (c === 104) unit = 1;
    else if (c === 109) unit = text.charCodeAt(pos + 1) === 115 ? 4 : 2;
    else if (c === 115) unit = 3;
    else throw invalidDuration();
    if (unit < nextUnit) throw invalidDuration();
    nextUnit = unit + 1;
    pos += unit === 4 ? 2 : 1;
    tokenStart[count] = first;
    tokenEnd[count] = last;
    tokenUnit[count] = unit;
    count++;
    if (last - first > 15) exact = false;
    else total += Number(text.slice(first, last)) * (UNIT_MS[unit] as number);
  }
  if (exact && total < EXACT_LIMIT) return new Duration(BigInt(negative ? -total : total));
  let big = 0n;
  for (let i = 0; i < count; i++) {
    big += BigInt(text.slice(tokenStart[i], tokenEnd[i])) * (UNIT_MS_BIG[tokenUnit[i] as number] as bigint);
  }
  if (negative ? -big < I64_MIN : big > I64_MAX) {
    throw extensionError("duration", "Duration overflows internal representation");
  }
  return new Duration(negative ? -big : big);
}

function asDatetime(value: Value | undefined): DateTime {
  if (value instanceof DateTime) return value;
  throw typeError("datetime", value);
}

function asDuration(value: Value | undefined): Duration {
  if (value instanceof Duration) return value;
  throw typeError("duration", value);
}

function durationToLong(name: string, divisor: bigint): ExtensionFunction {
  return (args) => {
    checkArity(name, 1, args);
    const ms = asDuration(args[0]).ms;
    return divisor === 1n ? ms : ms / divisor; // bigint division truncates toward zero, as Rust's does
  };
}

/** Milliseconds since midnight: the Euclidean remainder by a day. */
function timeOfDay(epoch: bigint): bigint {
  const rem = epoch % DAY_MS;
  return rem < 0n ? rem + DAY_MS : rem;
}

/** The `datetime` extension's functions (both types) by Cedar name. */
export const DATETIME_FUNCTIONS: ReadonlyArray<readonly [string, ExtensionFunction]> = [
  ["datetime", (args) => parseDatetime(stringArgument("datetime", args))],
  ["duration", (args) => parseDuration(stringArgument("duration", args))],
  ["offset", (args) => {
    checkArity("offset", 2, args);
    const datetime = asDatetime(args[0]);
    const duration = asDuration(args[1]);
    const epoch = datetime.epoch + duration.ms;
    if (epoch > I64_MAX || epoch < I64_MIN) {
      throw extensionError("offset", `overflows when adding an offset: ${datetime}+(${duration.ms}ms)`);
    }
    return new DateTime(epoch);
  }],
  ["durationSince", (args) => {
    checkArity("durationSince", 2, args);
    const later = asDatetime(args[0]);
    const earlier = asDatetime(args[1]);
    const ms = later.epoch - earlier.epoch;
    if (ms > I64_MAX || ms < I64_MIN) {
      throw extensionError(
        "durationSince",
        `overflows when computing the duration between ${later} and ${earlier}`,
      );
    }
    return new Duration(ms);
  }],
  ["toDate", (args) => {
    checkArity("toDate", 1, args);
    const datetime = asDatetime(args[0]);
    const epoch = datetime.epoch - timeOfDay(datetime.epoch);
    if (epoch < I64_MIN) throw extensionError("toDate", `overflows when computing the date of ${datetime}`);
    return new DateTime(epoch);
  }],
  ["toTime", (args) => {
    checkArity("toTime", 1, args);
    return new Duration(timeOfDay(asDatetime(args[0]).epoch));
  }],
  ["toMilliseconds", durationToLong("toMilliseconds", 1n)],
  ["toSeconds", durationToLong("toSeconds", 1000n)],
  ["toMinutes", durationToLong("toMinutes", 60000n)],
  ["toHours", durationToLong("toHours", 3600000n)],
  ["toDays", durationToLong("toDays", DAY_MS)],
];
