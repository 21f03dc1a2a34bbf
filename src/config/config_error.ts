/** Where a {@linkcode ConfigError} points. */
export interface ConfigErrorOptions extends ErrorOptions {
  /** The config file as named (e.g. `keycard.yaml`), or `(built-in defaults)` when none was read. */
  file: string;
  /** 1-based line of the offending YAML node, when the problem is in the file. */
  line?: number;
  /** 1-based column of the offending YAML node, when the problem is in the file. */
  column?: number;
  /** Dotted path of the offending setting, e.g. `server.port` or `tokens[0].sha256`. */
  path?: string;
  /** The environment variable that carried the bad value, e.g. `KEYCARD_PORT`. */
  variable?: string;
}

/**
 * The gateway configuration cannot be used: a YAML syntax error, a setting of
 * the wrong type or range, an unknown key, or a bad `KEYCARD_*` override.
 * `line` and `column` point at the offending YAML node when the problem is in
 * the file; `variable` names the environment variable otherwise.
 *
 * @example Catch a bad setting
 * ```ts
 * import { ConfigError } from "./config_error.ts";
 * const error = new ConfigError('expected an integer from 1 to 65535, got "eighty"', {
 *   file: "keycard.yaml",
 *   line: 3,
 *   column: 9,
 *   path: "server.port",
 * });
 * error.message; // 'Invalid config "keycard.yaml" at line 3, column 9: "server.port" expected an integer ...'
 * ```
 */
export class ConfigError extends SyntaxError {
  /** The config file as named, or `(built-in defaults)` when none was read. */
  readonly file: string;
  /** 1-based line of the offending YAML node, when known. */
  readonly line: number | undefined;
  /** 1-based column of the offending YAML node, when known. */
  readonly column: number | undefined;
  /** Dotted path of the offending setting (`server.port`), when the problem is one setting's. */
  readonly path: string | undefined;
  /** The `KEYCARD_*` environment variable that carried the bad value, when it came from the environment. */
  readonly variable: string | undefined;

  /**
   * Builds the error; the message names the file or variable, the position and the setting.
   *
   * @param detail What is wrong, quoting the value: `expected an integer from 1 to 65535, got "eighty"`.
   * @param options Where: the file, and line, column, path and variable when known.
   */
  constructor(detail: string, options: ConfigErrorOptions) {
    const setting = options.path ? `"${options.path}" ` : "";
    const message = options.variable === undefined
      ? `Invalid config "${options.file}"${
        options.line === undefined ? "" : ` at line ${options.line}, column ${options.column ?? 1}`
      }: ${setting}${detail}`
      : `Invalid environment variable ${options.variable}${
        options.path ? ` (overrides "${options.path}")` : ""
      }: ${detail}`;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConfigError";
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
    this.path = options.path;
    this.variable = options.variable;
  }
}
