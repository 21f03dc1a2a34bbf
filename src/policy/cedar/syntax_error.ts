/** Where a {@linkcode CedarSyntaxError} points. */
export interface CedarSyntaxErrorOptions extends ErrorOptions {
  /** UTF-16 offset of the offending text. */
  offset: number;
  /** 1-based line of `offset`. */
  line: number;
  /** 1-based column of `offset`, in UTF-16 code units. */
  column: number;
}

/**
 * Cedar policy text that cannot be parsed: a token Cedar does not know, a
 * construct out of place, a reserved identifier, a bad escape, an integer out
 * of range, or text past the parser's bounds (nesting depth, size). `line`,
 * `column` and `offset` point at the offending text.
 *
 * @example Build one
 * ```ts
 * import { CedarSyntaxError } from "./syntax_error.ts";
 * const error = new CedarSyntaxError('expected ";" after the policy, found "permit"', {
 *   offset: 41,
 *   line: 2,
 *   column: 1,
 * });
 * error.message; // 'Invalid Cedar at line 2, column 1: expected ";" after the policy, found "permit"'
 * ```
 */
export class CedarSyntaxError extends SyntaxError {
  /** 1-based line of the offending text. */
  readonly line: number;
  /** 1-based column of the offending text, in UTF-16 code units. */
  readonly column: number;
  /** UTF-16 offset of the offending text. */
  readonly offset: number;
  /** What is wrong, without the position. */
  readonly detail: string;

  /**
   * Builds the error; the message names the position.
   *
   * @param detail What is wrong, quoting what was found and saying what was expected.
   * @param options Where: offset, line and column; and the cause, if any.
   */
  constructor(detail: string, options: CedarSyntaxErrorOptions) {
    super(
      `Invalid Cedar at line ${options.line}, column ${options.column}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "CedarSyntaxError";
    this.line = options.line;
    this.column = options.column;
    this.offset = options.offset;
    this.detail = detail;
  }
}
