/**
 * Errors of policy loading and grant compilation.
 *
 * @module
 */

/** One problem found in a policy source. */
export interface PolicyProblem {
  /** The source: a file name such as `base.cedar`, or `grants/<plugin>`. */
  source: string;
  /** 1-based line in the source, when known. */
  line?: number;
  /** 1-based column in the source, when known. */
  column?: number;
  /** The policy's id, when the problem belongs to one policy. */
  policyId?: string;
  /** What is wrong, as the Cedar parser or validator put it. */
  message: string;
}

/**
 * A policy set was refused: a parse error, a schema violation or a duplicate
 * id. The first problem is in `source`/`line`/`column`; all are in
 * `problems`. The running set stays in force.
 *
 * @example
 * ```ts
 * import { PolicyValidationError } from "./errors.ts";
 * const error = new PolicyValidationError([{ source: "ops.cedar", line: 3, column: 7, message: "unexpected token" }]);
 * error.message; // 'Invalid policy in "ops.cedar" at line 3, column 7: unexpected token'
 * ```
 */
export class PolicyValidationError extends SyntaxError {
  /** Every problem found. */
  readonly problems: readonly PolicyProblem[];
  /** Source of the first problem. */
  readonly source: string;
  /** Line of the first problem, when known. */
  readonly line: number | undefined;
  /** Column of the first problem, when known. */
  readonly column: number | undefined;

  /**
   * Builds the error from the problems found; the message names the first.
   *
   * @param problems At least one problem.
   * @param options The cause.
   */
  constructor(problems: PolicyProblem[], options?: ErrorOptions) {
    const first = problems[0] ?? { source: "(unknown)", message: "Invalid policy set" };
    const where = first.line === undefined ? "" : ` at line ${first.line}, column ${first.column ?? 1}`;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
    super(`Invalid policy in "${first.source}"${where}: ${first.message}${more}`, options);
    this.name = "PolicyValidationError";
    this.problems = problems;
    this.source = first.source;
    this.line = first.line;
    this.column = first.column;
  }
}

/**
 * A grant in a manifest or built in code is malformed: an unknown kind, a
 * missing or mistyped field.
 *
 * @example
 * ```ts
 * import { GrantError } from "./errors.ts";
 * new GrantError('Grant 1 of plugin "x": unknown kind "fs.rm"', { plugin: "x", index: 1 }).index; // 1
 * ```
 */
export class GrantError extends TypeError {
  /** The plugin whose grant it is. */
  readonly plugin: string;
  /** 0-based position of the grant in the list. */
  readonly index: number;
  /**
   * Builds the error for one grant of one plugin.
   *
   * @param message What is wrong, quoting the value.
   * @param options Plugin and index, and the cause if any.
   */
  constructor(message: string, options: { plugin: string; index: number; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GrantError";
    this.plugin = options.plugin;
    this.index = options.index;
  }
}
