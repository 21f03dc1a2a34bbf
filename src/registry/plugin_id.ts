// The one rule for plugin names and versions: the stores, the registry and the HTTP API all check with it.
import semver from "semver";
import { quote } from "./_quote.ts";
import { PluginIdError } from "./errors.ts";

// The imports map carries no @types/semver, so the function used is typed here.
const _semver = semver as { parse(version: string): { version: string; build: readonly string[] } | null };

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** What a plugin name may be, as error messages state it. */
export const PLUGIN_NAME_RULE = "a name is 1-128 letters, digits, '_', '.' or '-' and does not start with '.'";
/** What a plugin version may be, as error messages state it. */
export const PLUGIN_VERSION_RULE = 'a version is a semantic version such as "1.2.3" or "1.2.3-rc.1"';

/**
 * Checks a plugin name. A name becomes a directory name and a Cedar entity id,
 * so `.`, `..` and hidden names (the stores' own scratch directories start
 * with `.`) are refused, as are slashes, spaces, control characters and
 * anything outside ASCII letters, digits, `_`, `.` and `-`.
 *
 * @param name The name to check.
 * @returns The name, unchanged.
 * @throws {TypeError} When the name is not a string.
 * @throws {PluginIdError} When the name breaks the rule (`field` is `"name"`).
 *
 * @example Refuse a path
 * ```ts
 * import { checkPluginName, PluginIdError } from "./mod.ts";
 * checkPluginName("hello"); // "hello"
 * try {
 *   checkPluginName("..");
 * } catch (error) {
 *   if (error instanceof PluginIdError) error.field; // "name"
 * }
 * ```
 */
export function checkPluginName(name: unknown): string {
  if (typeof name !== "string") throw new TypeError(`Plugin name ${quote(name)} is not a string`);
  if (!NAME.test(name) || name.startsWith(".")) {
    throw new PluginIdError(`Plugin name ${quote(name)} is invalid: ${PLUGIN_NAME_RULE}`, {
      field: "name",
      value: name,
    });
  }
  return name;
}

/**
 * Checks a version: valid semver, written canonically (no "v" prefix, no
 * spaces, no leading zeros), so that one version has one directory name.
 * Build metadata is kept.
 *
 * @param version The version to check.
 * @param name The plugin's name, quoted in the message when given.
 * @returns The version, unchanged.
 * @throws {TypeError} When the version is not a string.
 * @throws {PluginIdError} When the version is not a canonical semantic version (`field` is `"version"`).
 *
 * @example Refuse a path as a version
 * ```ts
 * import { checkPluginVersion } from "./mod.ts";
 * checkPluginVersion("1.2.3-rc.1"); // "1.2.3-rc.1"
 * try {
 *   checkPluginVersion("../../x", "hello");
 * } catch (error) {
 *   (error as Error).message; // 'Version "../../x" of plugin "hello" is invalid: a version is a semantic version ...'
 * }
 * ```
 */
export function checkPluginVersion(version: unknown, name?: string): string {
  const of = name === undefined ? "" : ` of plugin ${quote(name)}`;
  if (typeof version !== "string") throw new TypeError(`Version ${quote(version)}${of} is not a string`);
  const parsed = _semver.parse(version);
  const canonical = parsed && (parsed.build.length ? `${parsed.version}+${parsed.build.join(".")}` : parsed.version);
  if (canonical !== version) {
    throw new PluginIdError(`Version ${quote(version)}${of} is invalid: ${PLUGIN_VERSION_RULE}`, {
      field: "version",
      value: version,
    });
  }
  return version;
}
