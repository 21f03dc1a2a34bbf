/** Why {@linkcode Registry.install} refused a plugin. */
export type RegistryErrorCode =
  /** The module's SHA-256 is not the one expected (HTTP 422 at the edge). */
  | "sha256_mismatch"
  /** Signatures are required and none was given (HTTP 422 at the edge). */
  | "signature_required"
  /** The signature is malformed or no trusted key verifies it (HTTP 422 at the edge). */
  | "signature_invalid"
  /** The version is installed with other bytes or another manifest, and `overwrite` is off (HTTP 409 at the edge). */
  | "version_exists";

/**
 * The registry refused to install a plugin. `code` says why; callers (and
 * the HTTP edge, which maps it to a status) branch on it, not on the message.
 *
 * @example
 * ```ts
 * import { RegistryError } from "./errors.ts";
 * const error = new RegistryError('Plugin "a@1.0.0" is installed with other bytes', {
 *   code: "version_exists",
 *   plugin: "a",
 *   version: "1.0.0",
 * });
 * error.code; // "version_exists"
 * ```
 */
export class RegistryError extends Error {
  /** Why the install was refused. */
  readonly code: RegistryErrorCode;
  /** The plugin's name. */
  readonly plugin: string;
  /** The plugin's version. */
  readonly version: string;

  /**
   * Builds the error.
   *
   * @param message What was refused and by which rule, quoting the values.
   * @param options The code, the plugin's name and version, and the cause if any.
   */
  constructor(
    message: string,
    options: { code: RegistryErrorCode; plugin: string; version: string; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RegistryError";
    this.code = options.code;
    this.plugin = options.plugin;
    this.version = options.version;
  }
}

/**
 * A plugin name or version breaks the naming rule (see
 * `checkPluginName`): a bad argument, so a `RangeError`, and a
 * class of its own so that the HTTP edge answers it with 400, by class.
 *
 * @example
 * ```ts
 * import { checkPluginName, PluginIdError } from "./mod.ts";
 * try {
 *   checkPluginName(".hidden");
 * } catch (error) {
 *   if (error instanceof PluginIdError) [error.field, error.value]; // ["name", ".hidden"]
 * }
 * ```
 */
export class PluginIdError extends RangeError {
  /** Which part is wrong. */
  readonly field: "name" | "version";
  /** The value refused, as given. */
  readonly value: string;

  /**
   * Builds the error.
   *
   * @param message What was refused and by which rule, quoting the value.
   * @param options The field and the value refused.
   */
  constructor(message: string, options: { field: "name" | "version"; value: string }) {
    super(message);
    this.name = "PluginIdError";
    this.field = options.field;
    this.value = options.value;
  }
}
