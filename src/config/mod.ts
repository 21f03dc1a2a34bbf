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
export {
  type AuditConfig,
  type ConcurrencyConfig,
  DEFAULT_CONFIG,
  type HandlerConfig,
  type HookConfig,
  type KeycardConfig,
  type PluginConfig,
  type RegistryConfig,
  type RouteConfig,
  type RouteMatchConfig,
  type RouteTimeoutsConfig,
  type ServerConfig,
  type TokenConfig,
} from "./config.ts";
export { ConfigError, type ConfigErrorOptions } from "./config_error.ts";
export { CONFIG_ENV_VARS, loadConfig, type LoadConfigOptions, type LoadedConfig } from "./load_config.ts";
export { parseRoutes } from "./parse_routes.ts";
export type { PluginLimits } from "../runtime/mod.ts";
