import { DEFAULT_LIMITS, type PluginLimits } from "../runtime/mod.ts";

/** Where the HTTP gateway listens and what it accepts. */
export interface ServerConfig {
  /** Interface to bind; loopback unless configured otherwise. @default {"127.0.0.1"} */
  host: string;
  /** TCP port, 0-65535; 0 takes any free port (the start banner prints the one taken). @default {8080} */
  port: number;
  /** Largest request body accepted, in bytes. @default {16777216} */
  maxBodyBytes: number;
  /**
   * Who may read `/metrics` (plugin names, call and decision counts): `"token"` asks for a bearer token and the
   * Cedar action `audit.read` on `Api::"keycard"`, like `/v1/audit`; `"open"` serves anyone who can connect.
   * @default {"token"}
   */
  metrics: "token" | "open";
  /**
   * What a route request with an encoded slash (`%2F`) in its path gets: `"refuse"` answers 400; `"keep"` matches
   * and forwards it still encoded, as a character of its segment. Encoded dot segments, backslashes and NUL are
   * always refused. @default {"refuse"}
   */
  encodedSlashes: "refuse" | "keep";
  /** How failed authentications (API, `/metrics`, `token` routes) are throttled per client address. */
  authThrottle: AuthThrottleConfig;
}

/**
 * Throttling of failed authentication: past `failures` in a window of `windowSeconds`, an address's failed
 * attempts get 429 with `Retry-After` until the window ends. A valid token always passes at once.
 */
export interface AuthThrottleConfig {
  /** Failed authentications of one address (an IPv6 /64 counts as one) per window before 429. @default {20} */
  failures: number;
  /** The window, in seconds. @default {60} */
  windowSeconds: number;
  /** Addresses tracked at once; past it, the oldest window is dropped. @default {10000} */
  addresses: number;
}

/** A plugin loaded at start. */
export interface PluginConfig {
  /**
   * Absolute path of the plugin: a directory with `plugin.yaml` (and `assembly/` source built by
   * `plugins/build.ts`), or a built `.wasm` file. In the file, relative to the config file's directory.
   */
  path: string;
}

/** An API client. Its token is stored only as a SHA-256 hash. */
export interface TokenConfig {
  /** The client's id (its Cedar `Client` principal): 1-128 letters, digits, `_`, `.` or `-`. */
  id: string;
  /** Lower-case hex SHA-256 of the token, 64 digits. */
  sha256: string;
  /** Roles of the client, e.g. `caller`; at least one. */
  roles: string[];
}

/** Rules of the plugin registry. */
export interface RegistryConfig {
  /** Refuse plugin installs without a signature by one of `trustedKeys`. @default {false} */
  requireSignature: boolean;
  /** Public keys whose signatures the registry accepts, as written (the registry defines their format). @default {[]} */
  trustedKeys: string[];
}

/** Bounds over all plugins together, as {@linkcode PluginHost} takes them. */
export interface ConcurrencyConfig {
  /** Calls running at once over all plugins. @default {16} */
  maxCalls: number;
  /** Calls waiting for a global slot; beyond, `SaturatedError`. @default {256} */
  queue: number;
  /**
   * How long a plugin instance may stay idle before its worker is ended (~13 MiB back); the next call starts one
   * again from a warm spare worker. Instances a plugin keeps warm (`limits.minInstances`) stay. @default {60000}
   */
  idleMs: number;
  /**
   * Workers alive at once, those hosting instances (a plugin's own, or an isolation group's) and warm spares
   * together: the bound on the gateway's memory (~13 MiB a worker). A new worker past it retires the least recently
   * used worker whose instances are all idle; when every worker is busy or kept warm, the call waits in the bounded
   * queues, within its deadline. @default {256}
   */
  maxWorkers: number;
}

/** The audit log's JSON-lines file and in-memory ring. */
export interface AuditConfig {
  /** Absolute path of the JSONL file. In the file, relative to `dataDir`. @default {"audit.jsonl"} */
  file: string;
  /** Size at which the file is rotated. @default {10485760} */
  maxBytes: number;
  /** Rotated files kept. @default {5} */
  maxFiles: number;
  /** Events kept in memory for queries. @default {10000} */
  ringSize: number;
}

/**
 * What is masked in audit events (file, `/v1/audit`, the live tail) and plugin log lines before they are stored
 * or streamed: each masked text becomes `mask`.
 */
export interface RedactConfig {
  /** What replaces each secret. @default {"[REDACTED]"} */
  mask: string;
  /**
   * Names of plugin config keys (a manifest's `config:`, which `env.get` serves, and a route hook's `config:`)
   * whose values are secrets: each such value is masked wherever it appears, as is and JSON-escaped or
   * URL-encoded. @default {[]}
   */
  configKeys: string[];
  /**
   * HTTP headers (lower-cased) whose values in routed requests are secrets: each value seen, and the credentials
   * of an `Authorization` scheme and each cookie's value, is masked wherever it appears afterwards.
   * @default {["authorization", "proxy-authorization", "cookie", "x-api-key"]}
   */
  headers: string[];
  /**
   * Regular expressions (JavaScript syntax, no flags, at most 256 characters) whose every match is masked; a
   * nested quantifier, a back-reference or a pattern matching the empty string is refused. @default {[]}
   */
  patterns: string[];
  /**
   * The shortest secret value masked (3-1024): a shorter config or header value is not masked, since masking it
   * would mask letters of ordinary words (the gateway logs each such config value's plugin and key). Patterns are
   * not bound by it. @default {4}
   */
  minLength: number;
}

/**
 * Which plugins share workers. A plugin no group names runs in workers of its own (`isolation: plugin`, the
 * default); the plugins of one group share that group's workers. They never share an instance: each keeps its own
 * wasm instance and memory, and a trap, deadline or memory overrun replaces only that plugin's instance. What they
 * do share is the worker's isolate (its thread and heap), so a group trades some containment for memory: group
 * plugins you would trust in one process together, such as one tenant's.
 */
export interface IsolationConfig {
  /**
   * The groups, in the order written. A plugin matched by patterns of two groups (`tenant-*` in one, `tenant-a` in
   * another) joins the first group in this order. @default {[]}
   */
  groups: IsolationGroupConfig[];
}

/** An isolation group: plugins that share its workers. */
export interface IsolationGroupConfig {
  /** The group's name, unique among groups: 1-64 letters, digits, `_`, `.` or `-`. */
  name: string;
  /** Workers the group's plugins share, 1-1024. @default {2} */
  workers: number;
  /**
   * Plugin name patterns, at least one: a plugin name in which `*` matches any run of characters, none included
   * (`tenant-*` takes `tenant-` and `tenant-a.b`; `*` takes every plugin). A pattern is listed in one group, once.
   * Configured plugins, stored ones and plugins installed over HTTP are matched by their manifest's name when
   * they load.
   */
  plugins: string[];
}

/**
 * Where shared state lives. `files` (the default): one machine's registry on disk, policy files in `policies`, plugin
 * KV in Deno KV, the audit log in JSON-lines files. `postgres`: a PostgreSQL database that several replicas share
 * (plugins, operator policy files, plugin KV, the audit log); each replica still keeps its own data dir (admin
 * token, compiled-module cache, audit spool, scratch space).
 */
export type StoreConfig = { kind: "files" } | PostgresStoreConfig;

/** `store: { kind: postgres, ... }` in `keycard.yaml`, or `KEYCARD_STORE_URL`. */
export interface PostgresStoreConfig {
  /** The PostgreSQL store. */
  kind: "postgres";
  /** `postgres://user[:password]@host[:port]/database`; the password never appears in messages or logs. */
  url: string;
  /**
   * This replica's name in the shared audit log (1-64 letters, digits, `_`, `.`, `-`). @default {a random id kept
   * in `<dataDir>/replica-id`, stable across restarts}
   */
  replica?: string;
  /** Audit events older than this many days are deleted from the database (by any replica, hourly). @default {30} */
  auditRetentionDays: number;
  /** Milliseconds one store operation may wait for the database before it fails (503 for a write). @default {5000} */
  timeoutMs: number;
}

/** Workers of an isolation group that leaves `workers` out. */
export const DEFAULT_GROUP_WORKERS = 2;

/** The requests a route takes. */
export interface RouteMatchConfig {
  /**
   * The path: exact (`/quote`), or a prefix ending in `/*` (`/api/orders/*` takes `/api/orders` and
   * everything below). Starts with `/`, has no other `*`, and lies outside the gateway's own paths
   * (`/v1/`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`).
   */
  path: string;
  /** The methods taken, upper-case, of GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS, without repeats; absent for any. */
  methods?: string[];
}

/** How long a route waits for its upstream. */
export interface RouteTimeoutsConfig {
  /** Time to connect to the upstream, in milliseconds, 1-600000. @default {2000} */
  connectMs: number;
  /** Time from sending the request to the response head, in milliseconds, 1-3600000. @default {10000} */
  responseMs: number;
}

/** A plugin export called on a route's request before it is served, or on its response after. */
export interface HookConfig {
  /** The plugin's name: 1-128 letters, digits, `_`, `.` or `-`, not starting with `.`. */
  plugin: string;
  /** Whether the hook sees the request (`"request"`) or the response (`"response"`). */
  on: "request" | "response";
  /** Order among the route's hooks on the same side: lower runs first. @default {0} */
  priority: number;
  /** When the hook fails: `"closed"` refuses the request, `"open"` goes on without it. @default {"closed"} */
  failure: "closed" | "open";
  /** The export called. @default {"on_request" or "on_response", after `on`} */
  export: string;
  /** Config passed to the plugin for this hook. @default {{}} */
  config: Record<string, string>;
}

/** A plugin export that serves a route's requests itself. */
export interface HandlerConfig {
  /** The plugin's name: 1-128 letters, digits, `_`, `.` or `-`, not starting with `.`. */
  plugin: string;
  /** The export called. @default {"handle"} */
  export: string;
  /**
   * The response's content type, e.g. `text/plain; charset=utf-8`; over the manifest export's `contentType`.
   * @default {the manifest export's, else "application/octet-stream"}
   */
  contentType?: string;
  /**
   * `true`: the export speaks keycard's JSON envelope (a `HookInput` in, `{status, headers, body}` out);
   * `false`: the request body in, the response body out. Over the manifest export's `envelope`.
   * @default {the manifest export's, else false}
   */
  envelope?: boolean;
}

/**
 * A route: requests matching `match` go to an upstream URL or to a plugin
 * handler (exactly one of `upstream` and `handler` is set), through the hooks.
 */
export interface RouteConfig {
  /** The route's name, unique among routes: 1-64 letters, digits, `_`, `.` or `-`. */
  name: string;
  /** The requests the route takes. */
  match: RouteMatchConfig;
  /**
   * The upstream, an `http:` or `https:` URL without a trailing `/`, query or fragment; the matched request
   * path is appended as is (`http://127.0.0.1:9001` + `/api/orders/7`). Absent when `handler` is set.
   */
  upstream?: string;
  /** The plugin export that serves the route. Absent when `upstream` is set. */
  handler?: HandlerConfig;
  /** `"token"` requires an API client's bearer token, `"public"` serves anyone. @default {"token"} */
  auth: "token" | "public";
  /** Upstream timeouts. */
  timeouts: RouteTimeoutsConfig;
  /** Hooks in the order written; callers order them by `priority`. @default {[]} */
  hooks: HookConfig[];
}

/**
 * The gateway configuration, fully resolved: every setting present, every
 * path absolute. {@linkcode loadConfig} builds it from `keycard.yaml`, the
 * defaults and `KEYCARD_*` overrides.
 */
export interface KeycardConfig {
  /** The HTTP listener. */
  server: ServerConfig;
  /** Absolute path of the state directory: registry, kv, audit, admin token, plugin data root. @default {".keycard"} */
  dataDir: string;
  /** Absolute path of the policy directory (`keycard.cedarschema` and operator `*.cedar` files). @default {"policies"} */
  policies: string;
  /**
   * Whether a configured plugin that cannot be read, built or loaded stops the start. When false, it is
   * reported (log, `/readyz` degraded, `GET /v1/plugins`) and the others serve. @default {false}
   */
  strictStart: boolean;
  /** Plugins loaded at start, in order. @default {[]} */
  plugins: PluginConfig[];
  /** API clients. @default {[]} */
  tokens: TokenConfig[];
  /** Plugin registry rules. */
  registry: RegistryConfig;
  /** Default limits of every plugin: {@linkcode DEFAULT_LIMITS} with the file's settings over them. */
  limits: PluginLimits;
  /**
   * The most a plugin's manifest may ask for: an install past one is refused (422), a configured or stored plugin
   * past one fails at start. {@linkcode DEFAULT_CEILINGS} with the file's settings over them; a ceiling the file
   * leaves out is at least the configured default limit.
   */
  ceilings: PluginLimits;
  /** Bounds over all plugins together. */
  concurrency: ConcurrencyConfig;
  /** Audit log settings. */
  audit: AuditConfig;
  /** Who decides, and how much of it cedar-wasm checks. */
  policyEngine: PolicyEngineConfig;
  /** Routes served by proxying to an upstream or calling a plugin, in the order written. @default {[]} */
  routes: RouteConfig[];
  /** Secrets masked in audit events and plugin logs. */
  redact: RedactConfig;
  /** Plugins that share workers (isolation groups); by default every plugin has workers of its own. */
  isolation: IsolationConfig;
  /** Where shared state lives: files on this machine (the default) or a PostgreSQL database replicas share. */
  store: StoreConfig;
}

/** `policyEngine` in `keycard.yaml`. */
export interface PolicyEngineConfig {
  /**
   * `typescript`: keycard's Cedar evaluator decides, cedar-wasm validates and checks a sample; `cedar-wasm`:
   * cedar-wasm decides every uncached request (slower; for comparison or as an escape hatch). @default {"typescript"}
   */
  evaluator: "typescript" | "cedar-wasm";
  /**
   * Share of the evaluator's uncached decisions that cedar-wasm decides again off the hot path (0 to 1); a
   * disagreement is logged, counted and audited, and the cached decision becomes a deny. @default {0.01}
   */
  shadowSample: number;
}

/**
 * The ceilings of plugin limits when `keycard.yaml` sets none: a plugin may ask for 5x the default deadline, 2x
 * its instances and queue, 2 instances kept warm, 4x its memory (64 MiB an instance), 16x its I/O sizes and 10x its host calls. With
 * the default 16 global call slots, one plugin can hold at most 4 of them, for 5 s each.
 *
 * @example Read a ceiling
 * ```ts
 * import { DEFAULT_CEILINGS } from "./config.ts";
 * DEFAULT_CEILINGS.instances; // 4
 * ```
 */
export const DEFAULT_CEILINGS: Readonly<PluginLimits> = Object.freeze({
  deadlineMs: 5000,
  memoryPages: 1024,
  inputBytes: 16 << 20,
  outputBytes: 16 << 20,
  hostCalls: 100_000,
  hostIoBytes: 16 << 20,
  instances: 4,
  queue: 64,
  minInstances: 2,
});

/**
 * The built-in defaults, used for every setting the config file leaves out
 * and as the whole configuration when the default `keycard.yaml` is absent.
 * Paths here are relative: `dataDir` and `policies` to the config file's
 * directory, `audit.file` to `dataDir`; {@linkcode loadConfig} makes them
 * absolute. No plugins, tokens or routes: the shipped `keycard.yaml` lists the
 * example plugins, and a missing file should not load code nobody named.
 *
 * @example Read a default
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * DEFAULT_CONFIG.server.host; // "127.0.0.1"
 * ```
 */
export const DEFAULT_CONFIG: Readonly<KeycardConfig> = _deepFreeze({
  server: {
    host: "127.0.0.1",
    port: 8080,
    maxBodyBytes: 16 << 20,
    metrics: "token",
    encodedSlashes: "refuse",
    authThrottle: { failures: 20, windowSeconds: 60, addresses: 10_000 },
  },
  dataDir: ".keycard",
  policies: "policies",
  strictStart: false,
  plugins: [],
  tokens: [],
  registry: { requireSignature: false, trustedKeys: [] },
  limits: { ...DEFAULT_LIMITS },
  ceilings: { ...DEFAULT_CEILINGS },
  concurrency: { maxCalls: 16, queue: 256, idleMs: 60_000, maxWorkers: 256 },
  audit: { file: "audit.jsonl", maxBytes: 10 << 20, maxFiles: 5, ringSize: 10_000 },
  policyEngine: { evaluator: "typescript", shadowSample: 0.01 },
  routes: [],
  redact: {
    mask: "[REDACTED]",
    configKeys: [],
    headers: ["authorization", "proxy-authorization", "cookie", "x-api-key"],
    patterns: [],
    minLength: 4,
  },
  isolation: { groups: [] },
  store: { kind: "files" },
});

function _deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) _deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
