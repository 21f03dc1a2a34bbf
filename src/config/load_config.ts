import { dirname, resolve } from "node:path";
import { parseYaml } from "./_parse_yaml.ts";
import { CONFIG_FILE_SCHEMA, type ConfigFile, host, storeUrl } from "./_schema.ts";
import type { PluginLimits } from "../runtime/mod.ts";
import { DEFAULT_CEILINGS, DEFAULT_CONFIG, DEFAULT_GROUP_WORKERS, type KeycardConfig } from "./config.ts";
import { ConfigError } from "./config_error.ts";

/**
 * The environment variables {@linkcode loadConfig} reads, for a task's
 * `--allow-env` list. Without permission for one, it is treated as unset.
 */
export const CONFIG_ENV_VARS: readonly string[] = Object.freeze([
  "KEYCARD_CONFIG",
  "KEYCARD_HOST",
  "KEYCARD_PORT",
  "KEYCARD_DATA_DIR",
  "KEYCARD_ADMIN_TOKEN",
  "KEYCARD_STORE_URL",
]);

/** What `source` is when the default config file is absent. */
const BUILT_IN = "(built-in defaults)";
const DEFAULT_FILE = "keycard.yaml";
/** Shortest admin token accepted from `KEYCARD_ADMIN_TOKEN`. */
const MIN_ADMIN_TOKEN = 16;

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * The config file, relative to `cwd`. A file named here or by `KEYCARD_CONFIG` must exist.
   *
   * @default {env.KEYCARD_CONFIG, else "keycard.yaml" (built-in defaults when that is absent)}
   */
  path?: string;
  /**
   * The `KEYCARD_*` variables. Tests pass an object; the default reads only
   * {@linkcode CONFIG_ENV_VARS}, each only when this process may (no prompt).
   *
   * @default {the process environment}
   */
  env?: Record<string, string | undefined>;
  /** Directory that `path` and `KEYCARD_DATA_DIR` are relative to. @default {Deno.cwd()} */
  cwd?: string;
}

/** What {@linkcode loadConfig} returns. */
export interface LoadedConfig {
  /** The resolved configuration. */
  config: KeycardConfig;
  /** The admin token from `KEYCARD_ADMIN_TOKEN`, when set; never written anywhere by this module. */
  adminToken?: string;
  /** Absolute path of the file read, or `"(built-in defaults)"` when the default file is absent. */
  source: string;
}

/**
 * Loads the gateway configuration: reads `keycard.yaml`, validates it, fills
 * in {@linkcode DEFAULT_CONFIG}, applies the `KEYCARD_*` overrides and makes
 * every path absolute.
 *
 * - Relative `dataDir`, `policies` and plugin paths resolve against the config
 *   file's directory, not the working directory; `audit.file` against `dataDir`.
 * - When no file is named (no `path`, no `KEYCARD_CONFIG`) and `keycard.yaml`
 *   is absent from `cwd`, the result is the built-in defaults resolved
 *   against `cwd`. A file that is named must exist.
 * - Overrides: `KEYCARD_CONFIG` (the file, when `path` is not given),
 *   `KEYCARD_HOST`, `KEYCARD_PORT` (an integer from 0 to 65535; 0 takes any free port),
 *   `KEYCARD_DATA_DIR` (relative to `cwd`), `KEYCARD_STORE_URL` (the PostgreSQL store at that URL,
 *   over the file's `store`), `KEYCARD_ADMIN_TOKEN` (at least
 *   16 characters; returned as `adminToken`). Empty values count as unset.
 *
 * @param options The file, the environment and the working directory.
 * @returns The resolved configuration, the admin token when set, and where the configuration came from.
 * @throws {ConfigError} On YAML syntax errors, unknown keys, settings of the wrong type or range, routes that
 * break a rule of `parseRoutes`, isolation groups that repeat a name or a plugin name pattern (all with line,
 * column and path), and bad `KEYCARD_*` values (naming the variable).
 * @throws {Deno.errors.NotFound} When the file named by `path` or `KEYCARD_CONFIG` does not exist.
 *
 * @example Load a config file with an override
 * ```ts
 * import { loadConfig } from "./load_config.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/keycard.yaml`, "server:\n  port: 9090\ndataDir: state\n");
 * const { config } = await loadConfig({ path: `${dir}/keycard.yaml`, env: { KEYCARD_HOST: "0.0.0.0" } });
 * config.server.host; // "0.0.0.0"
 * config.audit.file; // `${dir}/state/audit.jsonl`
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? _processEnv();
  const cwd = options.cwd ?? Deno.cwd();
  const named = options.path ?? _value(env.KEYCARD_CONFIG);
  const file = named ?? DEFAULT_FILE;
  const absolute = resolve(cwd, file);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(absolute);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || named !== undefined) {
      const by = options.path === undefined ? "KEYCARD_CONFIG" : "the path option";
      throw error instanceof Deno.errors.NotFound
        ? new Deno.errors.NotFound(`Cannot read config "${file}" named by ${by}: no such file`, { cause: error })
        : error;
    }
  }
  const shown = text === undefined ? BUILT_IN : file;
  const input: ConfigFile = text === undefined
    ? {}
    : parseYaml(text, file, CONFIG_FILE_SCHEMA, "the file must be a map of settings");

  const host = _value(env.KEYCARD_HOST);
  if (host !== undefined) input.server = { ...input.server, host: _checkHost(host, shown) };
  const port = _value(env.KEYCARD_PORT);
  if (port !== undefined) input.server = { ...input.server, port: _checkPort(port, shown) };
  const dataDir = _value(env.KEYCARD_DATA_DIR);
  if (dataDir !== undefined) input.dataDir = resolve(cwd, dataDir);
  const adminToken = _value(env.KEYCARD_ADMIN_TOKEN);
  if (adminToken !== undefined) _checkAdminToken(adminToken, shown);
  const storeUrl = _value(env.KEYCARD_STORE_URL);
  if (storeUrl !== undefined) input.store = { ...input.store, kind: "postgres", url: _checkStoreUrl(storeUrl, shown) };

  return {
    config: _resolve(input, dirname(absolute), shown),
    ...(adminToken === undefined ? {} : { adminToken }),
    source: text === undefined ? BUILT_IN : absolute,
  };
}

function _checkHost(value: string, file: string): string {
  const result = host().safeParse(value);
  if (!result.success) {
    throw new ConfigError(result.error.issues[0]?.message ?? "invalid", {
      file,
      variable: "KEYCARD_HOST",
      path: "server.host",
    });
  }
  return result.data;
}

function _checkPort(value: string, file: string): number {
  const port = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(`expected an integer from 0 to 65535, got ${JSON.stringify(value)}`, {
      file,
      variable: "KEYCARD_PORT",
      path: "server.port",
    });
  }
  return port;
}

function _checkStoreUrl(value: string, file: string): string {
  const result = storeUrl().safeParse(value);
  if (!result.success) {
    throw new ConfigError(result.error.issues[0]?.message ?? "invalid", {
      file,
      variable: "KEYCARD_STORE_URL",
      path: "store.url",
    });
  }
  return value;
}

function _checkAdminToken(value: string, file: string): void {
  // The token itself never appears in a message.
  if (value.length < MIN_ADMIN_TOKEN || /\s/.test(value)) {
    throw new ConfigError(
      `expected at least ${MIN_ADMIN_TOKEN} characters without spaces, got ${value.length} characters`,
      { file, variable: "KEYCARD_ADMIN_TOKEN" },
    );
  }
}

/** Empty environment values count as unset. */
function _value(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Reads the variables of {@linkcode CONFIG_ENV_VARS} this process may read, without prompting for the others. */
function _processEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const variable of CONFIG_ENV_VARS) {
    try {
      if (Deno.permissions.querySync({ name: "env", variable }).state === "granted") {
        env[variable] = Deno.env.get(variable);
      }
    } catch {
      // No access: the variable is treated as unset.
    }
  }
  return env;
}

/** The validated file over the defaults, with every path made absolute. */
function _resolve(input: ConfigFile, baseDir: string, file: string): KeycardConfig {
  const defaults = DEFAULT_CONFIG;
  const dataDir = resolve(baseDir, input.dataDir ?? defaults.dataDir);
  const audit = { ...defaults.audit, ..._defined(input.audit) };
  const limits = { ...defaults.limits, ..._defined(input.limits) };
  return {
    server: {
      ...defaults.server,
      ..._defined(input.server),
      authThrottle: { ...defaults.server.authThrottle, ..._defined(input.server?.authThrottle) },
    },
    dataDir,
    policies: resolve(baseDir, input.policies ?? defaults.policies),
    strictStart: input.strictStart ?? defaults.strictStart,
    plugins: (input.plugins ?? []).map((plugin) => ({ path: resolve(baseDir, plugin.path) })),
    tokens: (input.tokens ?? []).map((token) => ({ id: token.id, sha256: token.sha256, roles: [...token.roles] })),
    registry: {
      requireSignature: input.registry?.requireSignature ?? defaults.registry.requireSignature,
      trustedKeys: [...(input.registry?.trustedKeys ?? defaults.registry.trustedKeys)],
    },
    limits,
    ceilings: _ceilings(limits, input.ceilings, file),
    concurrency: { ...defaults.concurrency, ..._defined(input.concurrency) },
    audit: { ...audit, file: resolve(dataDir, audit.file) },
    policyEngine: { ...defaults.policyEngine, ..._defined(input.policyEngine) },
    routes: input.routes ?? [],
    redact: {
      mask: input.redact?.mask ?? defaults.redact.mask,
      configKeys: [...(input.redact?.configKeys ?? defaults.redact.configKeys)],
      headers: [...new Set(input.redact?.headers ?? defaults.redact.headers)],
      patterns: [...(input.redact?.patterns ?? defaults.redact.patterns)],
      minLength: input.redact?.minLength ?? defaults.redact.minLength,
    },
    isolation: {
      groups: (input.isolation?.groups ?? []).map((group) => ({
        name: group.name,
        workers: group.workers ?? DEFAULT_GROUP_WORKERS,
        plugins: [...group.plugins],
      })),
    },
    store: input.store?.kind === "postgres" && input.store.url !== undefined
      ? {
        kind: "postgres",
        url: input.store.url,
        ...(input.store.replica === undefined ? {} : { replica: input.store.replica }),
        auditRetentionDays: input.store.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS,
        timeoutMs: input.store.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
      }
      : { kind: "files" },
  };
}

const DEFAULT_AUDIT_RETENTION_DAYS = 30;
const DEFAULT_STORE_TIMEOUT_MS = 5000;

/**
 * The ceilings: the file's, else the default ceiling or the configured default limit, whichever is higher (an
 * operator who raised a default did not mean to refuse every plugin that keeps it). A ceiling set below the
 * default limit is refused: every plugin would start past it.
 */
function _ceilings(limits: PluginLimits, set: ConfigFile["ceilings"], file: string): PluginLimits {
  const ceilings = { ...limits };
  for (const key of Object.keys(limits) as (keyof PluginLimits)[]) {
    const ceiling = set?.[key];
    if (ceiling === undefined) ceilings[key] = Math.max(DEFAULT_CEILINGS[key], limits[key]);
    else if (ceiling < limits[key]) {
      throw new ConfigError(
        `expected a ceiling of at least the default limit "limits.${key}" (${limits[key]}), got ${ceiling}`,
        { file, path: `ceilings.${key}` },
      );
    } else ceilings[key] = ceiling;
  }
  return ceilings;
}

/** The entries of a section that are set; `null` (an empty YAML section) sets nothing. */
function _defined<T extends object>(
  section: T | null | undefined,
): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(section ?? {}).filter(([, value]) => value !== undefined)) as Partial<
    { [K in keyof T]: Exclude<T[K], undefined> }
  >;
}
