import { ConfigError } from "../config/mod.ts";
import { PolicyValidationError } from "../policy/mod.ts";
import { StoreSchemaError, StoreUnavailableError } from "../store/mod.ts";

/**
 * The one line to print for an error a user can fix (a bad config file or
 * `KEYCARD_*` value, an invalid policy file, a file that is missing or unreadable, a shared store that cannot be
 * reached or was migrated by a newer keycard), or
 * `undefined` for anything else, which is a bug and keeps its stack trace.
 *
 * @param error What was thrown.
 * @returns The message, or `undefined`.
 *
 * @example A config error becomes its message
 * ```ts
 * import { ConfigError } from "../config/mod.ts";
import { PolicyValidationError } from "../policy/mod.ts";
 * import { userError } from "./user_error.ts";
 * userError(new ConfigError("expected true or false, got 3", { file: "keycard.yaml", path: "strictStart" }));
 * // 'Invalid config "keycard.yaml": "strictStart" expected true or false, got 3'
 * userError(new TypeError("a bug")); // undefined
 * ```
 */
export function userError(error: unknown): string | undefined {
  if (error instanceof ConfigError || error instanceof PolicyValidationError) return error.message;
  // The shared store cannot be reached or its schema does not fit: the message names the URL (no password).
  if (error instanceof StoreUnavailableError || error instanceof StoreSchemaError) return error.message;
  if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
    return (error as Error).message;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `${error.message} (the server runs with the permissions derived from its config: start it with deno task start)`;
  }
  return undefined;
}
