/**
 * Errors the plugin runtime raises. Each names the plugin (and the export for
 * call errors) so that the HTTP edge can translate it without guessing.
 *
 * @module
 */

/** Options shared by the runtime's error constructors. */
export interface PluginErrorOptions {
  /** The plugin's name. */
  plugin: string;
  /** The export being called, when the error belongs to a call. */
  export?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Base class of every error a plugin load or call raises.
 *
 * @example Catch any plugin failure
 * ```ts
 * import { PluginRuntimeError } from "./errors.ts";
 * const error = new PluginRuntimeError("Plugin failed", { plugin: "hello" });
 * error.plugin; // "hello"
 * ```
 */
export class PluginRuntimeError extends Error {
  /** The plugin's name. */
  readonly plugin: string;
  /** The export being called, or undefined for load errors. */
  readonly export: string | undefined;

  /**
   * Builds the error; `cause` in the options becomes the standard `cause`.
   *
   * @param message Sentence-case message quoting the plugin and export.
   * @param options Plugin, export and cause.
   */
  constructor(message: string, options: PluginErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PluginRuntimeError";
    this.plugin = options.plugin;
    this.export = options.export;
  }
}

/**
 * The module was refused before anything ran: malformed wasm, an import the
 * host does not provide, a memory larger than the cap.
 *
 * @example
 * ```ts
 * import { PluginLoadError } from "./errors.ts";
 * new PluginLoadError('Cannot load plugin "x": bad', { plugin: "x" }).name; // "PluginLoadError"
 * ```
 */
export class PluginLoadError extends PluginRuntimeError {
  /**
   * Builds the error for a module refused at load.
   *
   * @param message What was refused and why.
   * @param options Plugin and cause.
   */
  constructor(message: string, options: PluginErrorOptions) {
    super(message, options);
    this.name = "PluginLoadError";
  }
}

/**
 * The plugin trapped (unreachable, out-of-bounds access, stack overflow, a
 * host-ABI misuse). The instance was replaced.
 *
 * @example
 * ```ts
 * import { PluginTrapError } from "./errors.ts";
 * new PluginTrapError("trapped", { plugin: "x", export: "run" }).export; // "run"
 * ```
 */
export class PluginTrapError extends PluginRuntimeError {
  /**
   * Builds the error for a trapped call.
   *
   * @param message The trap, quoting plugin and export.
   * @param options Plugin, export, cause.
   */
  constructor(message: string, options: PluginErrorOptions) {
    super(message, options);
    this.name = "PluginTrapError";
  }
}

/**
 * The call did not finish within its deadline (time in the queue included).
 * A running instance was interrupted and replaced.
 *
 * @example
 * ```ts
 * import { PluginDeadlineError } from "./errors.ts";
 * new PluginDeadlineError("late", { plugin: "x", export: "run", deadlineMs: 100 }).deadlineMs; // 100
 * ```
 */
export class PluginDeadlineError extends PluginRuntimeError {
  /** The deadline the call had, in milliseconds. */
  readonly deadlineMs: number;
  /**
   * Builds the error for a call past its deadline.
   *
   * @param message What timed out.
   * @param options Plugin, export and the deadline.
   */
  constructor(message: string, options: PluginErrorOptions & { deadlineMs: number }) {
    super(message, options);
    this.name = "PluginDeadlineError";
    this.deadlineMs = options.deadlineMs;
  }
}

/**
 * The plugin went past its memory cap: linear memory growth or Extism
 * allocations. The instance was replaced.
 *
 * @example
 * ```ts
 * import { PluginMemoryError } from "./errors.ts";
 * new PluginMemoryError("too big", { plugin: "x", export: "run", limitBytes: 1 }).limitBytes; // 1
 * ```
 */
export class PluginMemoryError extends PluginRuntimeError {
  /** The cap that was hit, in bytes. */
  readonly limitBytes: number;
  /**
   * Builds the error for a call past its memory cap.
   *
   * @param message What overran.
   * @param options Plugin, export and the cap.
   */
  constructor(message: string, options: PluginErrorOptions & { limitBytes: number }) {
    super(message, options);
    this.name = "PluginMemoryError";
    this.limitBytes = options.limitBytes;
  }
}

/**
 * A size or count limit other than memory: input or output bytes. The
 * instance stays healthy.
 *
 * @example
 * ```ts
 * import { PluginLimitError } from "./errors.ts";
 * new PluginLimitError("big", { plugin: "x", export: "run", limit: "inputBytes" }).limit; // "inputBytes"
 * ```
 */
export class PluginLimitError extends PluginRuntimeError {
  /** Which limit: `inputBytes` or `outputBytes`. */
  readonly limit: "inputBytes" | "outputBytes";
  /**
   * Builds the error for an input or output past its size limit.
   *
   * @param message Which limit and the sizes.
   * @param options Plugin, export, limit.
   */
  constructor(message: string, options: PluginErrorOptions & { limit: "inputBytes" | "outputBytes" }) {
    super(message, options);
    this.name = "PluginLimitError";
    this.limit = options.limit;
  }
}

/**
 * The plugin ran and reported an error of its own (Extism `error_set`).
 *
 * @example
 * ```ts
 * import { PluginReportedError } from "./errors.ts";
 * new PluginReportedError("no", { plugin: "x", export: "run", detail: "no" }).detail; // "no"
 * ```
 */
export class PluginReportedError extends PluginRuntimeError {
  /** The plugin's own message. */
  readonly detail: string;
  /**
   * Builds the error for a failure the plugin reported itself.
   *
   * @param message Quoting plugin, export and detail.
   * @param options Plugin, export, detail.
   */
  constructor(message: string, options: PluginErrorOptions & { detail: string }) {
    super(message, options);
    this.name = "PluginReportedError";
    this.detail = options.detail;
  }
}

/**
 * The plugin, or the export, is not there (or was unloaded).
 *
 * @example
 * ```ts
 * import { PluginNotFoundError } from "./errors.ts";
 * new PluginNotFoundError("missing", { plugin: "x", export: "nope" }).name; // "PluginNotFoundError"
 * ```
 */
export class PluginNotFoundError extends PluginRuntimeError {
  /**
   * Builds the error for a missing plugin or export.
   *
   * @param message What is missing.
   * @param options Plugin and export.
   */
  constructor(message: string, options: PluginErrorOptions) {
    super(message, options);
    this.name = "PluginNotFoundError";
  }
}

/**
 * The plugin's or the host's queue is full: the call was refused at once.
 *
 * @example
 * ```ts
 * import { SaturatedError } from "./errors.ts";
 * const error = new SaturatedError("full", { plugin: "x", export: "run", scope: "plugin", retryAfterMs: 50 });
 * error.retryAfterMs; // 50
 * ```
 */
export class SaturatedError extends PluginRuntimeError {
  /** A hint of when to try again, in milliseconds. */
  readonly retryAfterMs: number;
  /** Which bound was full: this plugin's or the whole host's. */
  readonly scope: "plugin" | "global";
  /**
   * Builds the error for a call refused because a queue was full.
   *
   * @param message Which queue was full.
   * @param options Plugin, export, scope and the hint.
   */
  constructor(
    message: string,
    options: PluginErrorOptions & { retryAfterMs: number; scope: "plugin" | "global" },
  ) {
    super(message, options);
    this.name = "SaturatedError";
    this.retryAfterMs = options.retryAfterMs;
    this.scope = options.scope;
  }
}

/**
 * An error a host function throws to hand the plugin an error value with a
 * code; any other thrown error reaches the plugin as code `io`.
 *
 * @example Deny from a host function
 * ```ts
 * import { HostCallError } from "./errors.ts";
 * const error = new HostCallError("denied", 'Cannot read "/etc/passwd": denied by default');
 * error.code; // "denied"
 * ```
 */
export class HostCallError extends Error {
  /** Stable code the plugin sees: `denied`, `invalid`, `not_found`, `limit`, `unavailable`, `io`, ... */
  readonly code: string;
  /**
   * Builds the error a host function throws; the plugin sees `code` and `message`.
   *
   * @param code The error code.
   * @param message The message the plugin sees.
   * @param options The cause.
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostCallError";
    this.code = code;
  }
}
