import type { AuditEvent, AuditLog, AuditQuery } from "../audit/mod.ts";
import type { AuditWindow, Explanation, PlanReport } from "../lifecycle/mod.ts";
import type { AuthorizationRequest, Decision, PolicyEngineStats, PolicyInfo } from "../policy/mod.ts";
import type { HostStats, InvokeOptions, PluginLimits, PluginStats, WorkerStats } from "../runtime/mod.ts";
import type { AuthThrottle } from "./auth_throttle.ts";
import type { ConsoleSessions } from "../console/session_store.ts";

/** An authenticated API client. */
export interface Client {
  /** The client's id: Cedar's `Client::"<id>"` and `context.caller` of its plugin calls. */
  id: string;
  /** Roles, read by `policies/api.cedar` (`admin`, `caller`, ...). */
  roles: readonly string[];
}

/** An installed plugin as the API shows it. */
export interface PluginView {
  name: string;
  /** The version shown (the latest unless asked for another). */
  version: string;
  /** Every installed version, highest first. */
  versions: string[];
  sha256: string;
  description?: string;
  /** Exported functions. */
  exports: string[];
  /** Grants from its manifest, as written there. */
  grants: unknown[];
  /** Actions its manifest says it may attempt. */
  capabilities: string[];
  installedAt: string;
  /**
   * How its instances are isolated: `"plugin"`, in workers of its own (the default), or `{ group }`, in the workers
   * it shares with the other plugins of that isolation group (`isolation.groups` in keycard.yaml), each with an
   * instance of its own.
   */
  isolation: "plugin" | { group: string };
  /** `"loaded"` when the version shown is serving, `"failed"` when it did not load at start (see `error`). */
  state: "loaded" | "failed";
  /** Why the plugin is not serving, when `state` is `"failed"`. */
  error?: string;
  /**
   * The limits it runs under: the runtime's when loaded, else the configured defaults with its manifest's `limits`
   * over them (what it would get).
   */
  limits: Readonly<PluginLimits>;
  /**
   * The conformance report its install passed, kept with the version (`GET /v1/plugins/<name>` only, not lists);
   * absent for a plugin seeded from keycard.yaml.
   */
  report?: Record<string, unknown>;
}

/** A conformance report (see src/conformance). */
export interface ReportLike {
  /** Whether every check passed. */
  passed: boolean;
}

/** A policy source as the API shows it. */
export interface PolicySourceView {
  /** `base.cedar`, or `grants/<plugin>` for compiled grants. */
  name: string;
  /** `file` for operator files under policies/, `grant` for compiled grants. */
  kind: "file" | "grant";
  text: string;
}

/** The shared store as /readyz shows it. */
export type StoreView = { kind: "files" } | {
  kind: "postgres";
  /** `up` while the database answers (the change feed's connection is open); `down` while it does not. */
  state: "up" | "down";
  /** This replica's name in the shared audit log. */
  replica: string;
  /** Audit events waiting in the local spool for the database. */
  spooled: number;
  /** Why it is down, or the most recent store error. */
  error?: string;
};

/**
 * What the HTTP layer needs from the rest of keycard. The gateway provides
 * it; the HTTP layer knows nothing of Extism, registry storage or files.
 */
export interface GatewayServices {
  /** Resolves a bearer token to its client, or undefined. */
  authenticate(token: string): Client | undefined;
  /** Decides an API action (or any dry-run request) with the Cedar engine. */
  authorize(request: AuthorizationRequest): Decision;
  /** The Cedar entity of a plugin as an API resource, if installed. */
  pluginResource(name: string): AuthorizationRequest["resource"];
  /** Runs an export. */
  invoke(plugin: string, exportName: string, input: Uint8Array, options: InvokeOptions<{ caller?: string }>): Promise<
    Uint8Array
  >;
  plugins: {
    list(): Promise<PluginView[]>;
    get(name: string, version?: string): Promise<PluginView | undefined>;
    /** Runs conformance, then installs: `{ plugin, report }`; throws a 422 problem with the report when not conformant. */
    install(name: string, wasm: Uint8Array, manifestText: string): Promise<{ plugin: PluginView; report: ReportLike }>;
    /** Removes all versions or one; returns the removed versions. */
    remove(name: string, version?: string): Promise<string[]>;
  };
  policies: {
    version(): number;
    /** The engine's counters (evaluator, fallbacks, shadow verification), for /metrics. */
    stats?(): PolicyEngineStats;
    sources(): PolicySourceView[];
    list(): PolicyInfo[];
    /** Validates and swaps in an operator policy file; returns the new version. */
    put(name: string, text: string): Promise<number>;
    /** Removes an operator policy file; false when there is none. */
    remove(name: string): Promise<boolean>;
    /**
     * Plans a change of operator files (`files` written, `remove` removed) against the recorded audit, validated
     * as a write would be; nothing changes.
     */
    plan?(change: { files: Record<string, string>; remove?: string[] }, window: AuditWindow): Promise<PlanReport>;
    /**
     * Decides a request, given as `deno task policy explain` takes it (YAML or JSON: a Cedar request, or a host call
     * as a plugin makes it, an HTTP fetch decided in its two phases), with the policies in force, and explains each
     * decision with its deciding policies; a 400 problem with line and column for a request it cannot read.
     */
    explain?(requestText: string): Explanation;
  };
  /** Runs the conformance suite without installing; with `propose`, the report has the least grant (`proposal`). */
  conformance(wasm: Uint8Array, manifestText?: string, options?: { propose?: boolean }): Promise<ReportLike>;
  audit: AuditLog;
  /**
   * Queries the shared audit log (every replica's events, each with its `replica`), in place of this process's
   * ring. @default {none} (`audit.query` answers)
   */
  auditQuery?(filters: AuditQuery): Promise<(AuditEvent & { replica?: string })[]>;
  /** Where shared state lives and whether it answers, for /readyz and /metrics. @default {none} (files) */
  store?(): StoreView;
  /** Runtime gauges for /metrics. */
  stats(): HostStats;
  /** Per-plugin instances, memory, calls and replacements, for /metrics. @default {none} (not rendered) */
  pluginStats?(): PluginStats[];
  /** Workers and each one's estimated share of the process RSS, for /metrics. @default {none} (not rendered) */
  workerStats?(): WorkerStats;
  /** Policies and configured plugins loaded. */
  ready(): boolean;
  /** Configured or installed plugins (and routes) that failed at start and were skipped: the start is degraded. */
  startFailures?(): readonly { plugin?: string; path?: string; error: string }[];
  /** Where the operator console keeps its sessions when replicas share them (PostgreSQL); else in memory. */
  consoleSessions?: ConsoleSessions;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Counts failed authentications per client address; past its limit they are answered 429. @default {none} */
  authThrottle?: AuthThrottle;
  /** `"token"`: `/metrics` needs a bearer token and Cedar's `audit.read`; `"open"`: anyone. @default {"token"} */
  metricsAccess?: "token" | "open";
  /** Answers a request through a configured route (hooks, upstream, handler), or undefined when none matches. */
  route?(request: Request, remote: string): Promise<Response | undefined>;
}
