import { dirname, join } from "node:path";
import { CONFIG_ENV_VARS, type KeycardConfig } from "../config/mod.ts";
import { POSTGRES_ENV_VARS } from "../store/mod.ts";

/**
 * The environment variables the server reads besides {@linkcode CONFIG_ENV_VARS}:
 * `CI` (AssemblyScript's compiler, when a test builds), `LOG_TOKENS` and
 * `LOG_STREAM` (read by yaml at import).
 */
const SERVER_ENV = ["CI", "LOG_TOKENS", "LOG_STREAM"] as const;

/** The Deno permissions the gateway server runs with, derived from its configuration. */
export interface ServerPermissions {
  /** Paths the server may read: the code, the config file, data dir, policies and plugin paths. */
  read: string[];
  /** Paths the server may write: the data dir (with its temp area), the policies dir, the audit file's dir. */
  write: string[];
  /**
   * Network access. Always the whole network: the listener, route upstreams and the plugins'
   * HTTP, whose destinations are decided by Cedar per request (after DNS, on the pinned address),
   * which Deno's host list cannot express.
   */
  net: true;
  /** Environment variables the server may read (with the PostgreSQL store, the client's `PG*` as well). */
  env: string[];
  /** Where conformance sandboxes and other scratch files go: `<dataDir>/tmp`. */
  tempDir: string;
}

/** Options of {@linkcode serverPermissions}. */
export interface ServerPermissionsOptions {
  /** The keycard checkout (its source, `deno.json`, the shipped `policies/` used by conformance). */
  repo: string;
  /** The config file read, absolute; absent when the built-in defaults are in force. */
  configFile?: string;
}

/**
 * Derives the least Deno permissions the gateway server needs to run the
 * given configuration, wherever its paths are: read the code, the config
 * file, the data dir, the policies dir and each configured plugin path
 * (a directory, or a `.wasm` and its sibling `.yaml`); write the data dir
 * (registry, key-value store, audit log, admin token and `tmp/`, where
 * conformance sandboxes live), the policies dir (`PUT /v1/policies`) and the
 * audit file's directory; the network (see {@linkcode ServerPermissions.net});
 * and only the environment variables it reads. Plugin workers hold none of
 * these: they run with every permission denied.
 *
 * @param config The configuration in force (paths absolute, as `loadConfig` returns them).
 * @param options The checkout and the config file.
 * @returns The permission set; {@linkcode permissionFlags} turns it into `deno run` flags.
 * @throws {RangeError} When a path contains a comma, which Deno's permission lists cannot hold.
 *
 * @example Permissions of a config with its data dir outside the checkout
 * ```ts
 * import { DEFAULT_CONFIG } from "../config/mod.ts";
 * import { serverPermissions } from "./server_permissions.ts";
 * const config = { ...DEFAULT_CONFIG, dataDir: "/var/lib/keycard", policies: "/etc/keycard/policies" };
 * const permissions = serverPermissions({ ...config, audit: { ...config.audit, file: "/var/lib/keycard/audit.jsonl" } }, {
 *   repo: "/opt/keycard",
 * });
 * permissions.write; // ["/var/lib/keycard", "/etc/keycard/policies"]
 * ```
 */
export function serverPermissions(config: KeycardConfig, options: ServerPermissionsOptions): ServerPermissions {
  const pluginPaths = config.plugins.flatMap(({ path }) =>
    path.endsWith(".wasm") ? [path, path.replace(/\.wasm$/, ".yaml")] : [path]
  );
  const auditDir = dirname(config.audit.file);
  const write = unique([config.dataDir, config.policies, auditDir]);
  const read = unique([
    options.repo,
    ...(options.configFile ? [options.configFile] : []),
    ...write,
    ...pluginPaths,
  ]);
  for (const path of [...read, ...write]) {
    if (path.includes(",")) {
      throw new RangeError(
        `Cannot grant the server access to ${JSON.stringify(path)}: Deno's permission lists cannot hold a comma`,
      );
    }
  }
  return {
    read,
    write,
    net: true,
    // The PostgreSQL client reads PG* variables for what the store URL leaves out.
    env: [...CONFIG_ENV_VARS, ...SERVER_ENV, ...(config.store.kind === "postgres" ? POSTGRES_ENV_VARS : [])],
    tempDir: join(config.dataDir, "tmp"),
  };
}

/**
 * Turns a permission set into `deno run` flags, one per kind, in a fixed order.
 *
 * @param permissions From {@linkcode serverPermissions}.
 * @returns The flags, e.g. `["--allow-read=/opt/keycard,...", "--allow-write=...", "--allow-net", "--allow-env=..."]`.
 *
 * @example Flags for a permission set
 * ```ts
 * import { permissionFlags } from "./server_permissions.ts";
 * permissionFlags({ read: ["/a"], write: ["/b"], net: true, env: ["CI"], tempDir: "/b/tmp" });
 * // ["--allow-read=/a", "--allow-write=/b", "--allow-net", "--allow-env=CI"]
 * ```
 */
export function permissionFlags(permissions: ServerPermissions): string[] {
  return [
    `--allow-read=${permissions.read.join(",")}`,
    `--allow-write=${permissions.write.join(",")}`,
    "--allow-net",
    `--allow-env=${permissions.env.join(",")}`,
  ];
}

/** The paths in order, without repeats or paths inside an earlier one. */
function unique(paths: string[]): string[] {
  const out: string[] = [];
  for (const path of paths) {
    if (!out.some((kept) => path === kept || path.startsWith(kept.endsWith("/") ? kept : `${kept}/`))) out.push(path);
  }
  return out;
}
