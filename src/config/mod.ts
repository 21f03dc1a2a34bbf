/**
 * The gateway configuration: `keycard.yaml` loaded, validated (unknown keys
 * and bad values refused with line and column), completed with defaults,
 * overridden by `KEYCARD_*` environment variables, and resolved to absolute
 * paths. {@linkcode parseRoutes} validates a routes document by the same
 * rules as the file's `routes`.
 *
 * @example Load the configuration
 * ```ts
 * import { ConfigError, loadConfig } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/keycard.yaml`, "server:\n  port: eighty\n");
 * try {
 *   await loadConfig({ path: `${dir}/keycard.yaml`, env: {} });
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   error.path; // "server.port"
 *   error.line; // 2
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import type { z } from "zod";
import type { PluginLimits } from "../runtime/mod.ts";
import { CONFIG_FILE_SCHEMA } from "./_schema.ts";

export {
  type AuditConfig,
  type AuthThrottleConfig,
  type ConcurrencyConfig,
  DEFAULT_CEILINGS,
  DEFAULT_CONFIG,
  type HandlerConfig,
  type HookConfig,
  type IsolationConfig,
  type IsolationGroupConfig,
  type KeycardConfig,
  type PluginConfig,
  type PolicyEngineConfig,
  type PostgresStoreConfig,
  type RedactConfig,
  type RegistryConfig,
  type RouteConfig,
  type RouteMatchConfig,
  type RouteTimeoutsConfig,
  type ServerConfig,
  type StoreConfig,
  type TokenConfig,
} from "./config.ts";
export { ConfigError, type ConfigErrorOptions } from "./config_error.ts";
export { CONFIG_ENV_VARS, loadConfig, type LoadConfigOptions, type LoadedConfig } from "./load_config.ts";
export { isolationGroupOf } from "./isolation_group_of.ts";
export { parseRoutes } from "./parse_routes.ts";
export { configuredPaths } from "./plugin_paths.ts";
// The one YAML + zod path, shared with plugin.yaml (src/registry/parse_manifest.ts).
export { parseYaml, type ParseYamlOptions } from "./_parse_yaml.ts";
export { expect, integer, list, map, MEDIA_TYPE, show as showYamlValue, text } from "./schema_fields.ts";
export type { PluginLimits } from "../runtime/mod.ts";

/**
 * The zod schema of a `limits` map, as `keycard.yaml` and `plugin.yaml` take
 * it: every key optional, unknown keys refused, each value an integer in its
 * range (`memoryPages` from 1 to 65536, `deadlineMs` at least 1, ...).
 *
 * @example Validate limits
 * ```ts
 * import { PLUGIN_LIMITS_SCHEMA } from "./mod.ts";
 * PLUGIN_LIMITS_SCHEMA.safeParse({ memoryPages: 70000 }).success; // false
 * ```
 */
export const PLUGIN_LIMITS_SCHEMA: z.ZodType<Partial<PluginLimits>> = CONFIG_FILE_SCHEMA.shape.limits.unwrap()
  .unwrap();
