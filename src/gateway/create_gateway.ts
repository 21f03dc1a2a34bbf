import { createHash } from "node:crypto";
import { join } from "node:path";
import { AuditLog } from "../audit/mod.ts";
import { isolationGroupOf, type KeycardConfig, type RouteConfig } from "../config/mod.ts";
import { runConformance } from "../conformance/mod.ts";
import {
  conformAndPropose,
  explainRequest,
  parseRequestFile,
  planPolicyChange,
  PolicyTestError,
  proposeGrants,
} from "../lifecycle/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability } from "../host/mod.ts";
import {
  AuthThrottle,
  type Client,
  createApp,
  type GatewayServices,
  Metrics,
  type PluginView,
  type PolicySourceView,
  ProblemError,
} from "../http/mod.ts";
import {
  clientEntity,
  type Entity,
  normalizeDataPath,
  pluginEntity,
  PolicyEngine,
  type PolicySource,
  PolicyValidationError,
  type ShadowDisagreement,
  type ShadowOutcome,
} from "../policy/mod.ts";
import { type Manifest, parseManifest, Registry, RegistryError, type StoredPlugin } from "../registry/mod.ts";
import { DEFAULT_LIMITS, PluginHost, PluginRuntimeError } from "../runtime/mod.ts";
import { describeExceeded, exceededCeilings } from "./_ceilings.ts";
import { readConfiguredPlugin, StartError } from "./read_configured_plugin.ts";
import { RouteRunner } from "./route_runner.ts";
import { createRedaction } from "./_redaction.ts";
import { grantSource, readPolicyDir } from "../lifecycle/policies_in_force.ts";
import { openStateStore } from "./_state_store.ts";
import type { Change } from "../store/mod.ts";
import type { Hono } from "hono";

/** Options of {@linkcode createGateway}. */
export interface GatewayOptions {
  /** The admin token (from `KEYCARD_ADMIN_TOKEN` or the data dir); its client is `admin` with role `admin`. */
  adminToken?: string;
  /** Spare workers kept warm by the plugin host. @default {1} */
  spareWorkers?: number;
  /** Receives one line for each configured plugin that failed at start and was skipped. @default {console.error} */
  log?: (line: string) => void;
}

/** A configured or installed plugin that could not be read or loaded at start. */
export interface StartFailure {
  /** The plugin's name, when its manifest could be read. */
  plugin?: string;
  /** The configured path, for a configured plugin. */
  path?: string;
  /** Why, naming the plugin. */
  error: string;
}

/** A running gateway's parts. */
export interface Gateway {
  /** The Hono app: serve `app.fetch`. */
  app: Hono<{ Variables: { client: Client } }>;
  /** What the app serves (also handy in tests). */
  services: GatewayServices;
  /** Call counters and histograms behind /metrics. */
  metrics: Metrics;
  /**
   * Replaces the route table at once (requests in flight finish on theirs).
   * @throws {TypeError} When a hook or handler names a plugin or export that is not loaded; nothing changes.
   */
  setRoutes(routes: readonly RouteConfig[]): void;
  /** The route table in force. */
  routes(): readonly RouteConfig[];
  /** Plugins that failed at start and were skipped (empty unless the start is degraded). */
  startFailures(): readonly StartFailure[];
  /** Stops the plugin host (running calls finish), flushes the audit log, closes the store. */
  close(): Promise<void>;
}

function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Serializes mutations (installs, removals, policy writes): each sees the previous one's result. */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}

/**
 * Assembles keycard from its configuration: the registry (seeded with the
 * configured plugins), the Cedar engine (operator policies plus every
 * installed plugin's grants), the audit log, the host functions, the plugin
 * host, and the HTTP app over them.
 *
 * @param config The loaded configuration.
 * @param options The admin token and runtime options.
 * @returns The gateway; serve `gateway.app.fetch`.
 * @throws {PolicyValidationError} When the policies or grants are invalid.
 * @throws {ManifestError} When a configured plugin's manifest is invalid.
 *
 * @example Start a gateway
 * ```ts ignore
 * import { loadConfig } from "../config/mod.ts";
 * import { createGateway } from "./create_gateway.ts";
 * const { config, adminToken } = await loadConfig();
 * const gateway = await createGateway(config, { adminToken });
 * Deno.serve({ hostname: config.server.host, port: config.server.port }, gateway.app.fetch);
 * ```
 */
export async function createGateway(config: KeycardConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const dataRoot = join(config.dataDir, "files");
  await Deno.mkdir(dataRoot, { recursive: true });
  // Secrets (redact:) are masked before an audit event or a plugin's log line is stored or streamed.
  const redaction = createRedaction(config.redact, options.log ?? console.error);
  const audit = new AuditLog({
    ringSize: config.audit.ringSize,
    file: { path: config.audit.file, maxBytes: config.audit.maxBytes, maxFiles: config.audit.maxFiles },
    ...redaction.audit,
  });
  const log = options.log ?? console.error;
  const metrics = new Metrics();
  // Files on this machine, or PostgreSQL shared by replicas (connected and migrated here; a clear error if not).
  let store;
  try {
    store = await openStateStore(config, { observe: (op, seconds) => metrics.observeStore(op, seconds), log });
  } catch (error) {
    await audit.close();
    throw error;
  }
  store.attachAudit(audit);
  const kv = store.kv;
  const registry = new Registry(store.plugins, config.registry);
  let ready = false;

  // Clients: configured tokens (stored hashed) and the admin token.
  const clients = new Map<string, Client>();
  for (const token of config.tokens) clients.set(token.sha256.toLowerCase(), { id: token.id, roles: token.roles });
  if (options.adminToken) clients.set(sha256Hex(options.adminToken), { id: "admin", roles: ["admin"] });

  // A plugin that fails at start is reported and skipped, unless the operator asked for a strict start.
  const failures: StartFailure[] = [];
  /** Forgets what a plugin failed with, once a version of it is in force. */
  const clearFailures = (name: string): void => {
    for (let i = failures.length - 1; i >= 0; i--) if (failures[i]!.plugin === name) failures.splice(i, 1);
  };
  let started: PluginHost<CallerContext> | undefined;
  const failed = async (failure: StartFailure, cause: unknown) => {
    if (config.strictStart) {
      // The start is refused: release what is open so that the caller may exit or retry cleanly.
      await started?.close();
      await audit.close();
      await store.close();
      throw cause instanceof StartError
        ? cause
        : new StartError(failure.error, { path: failure.path ?? "", ...failure, cause });
    }
    failures.push(failure);
    log(`keycard: skipped: ${failure.error}`);
  };

  // cedar-wasm and the evaluator differed on a sampled decision: a log line and an audit event (the engine
  // counts it and makes the cached decision a deny).
  const shadowDisagreement = (event: ShadowDisagreement) => {
    const principal = event.request.principal.uid;
    const resource = `${event.request.resource.uid.type}::${JSON.stringify(event.request.resource.uid.id)}`;
    const said = (o: ShadowOutcome) => `${o.decision} [${o.policies.join(", ")}] errors [${o.erroring.join(", ")}]`;
    const message = `cedar-wasm disagreed with the evaluator on ${principal.type}::${JSON.stringify(principal.id)} ` +
      `${event.request.action} ${resource} (policy set ${event.version}): evaluator ${said(event.ours)}, ` +
      `cedar-wasm ${said(event.theirs)}`;
    log(redaction.line(`keycard: ${message}`));
    audit.record({
      time: new Date().toISOString(),
      callId: "shadow",
      plugin: principal.type === "Plugin" ? principal.id : "",
      version: "",
      action: event.request.action,
      resource,
      decision: "deny",
      policies: [...event.theirs.policies],
      errors: [message],
      caller: null,
      durationUs: 0,
      reason: "shadow verification: cedar-wasm disagreed",
    });
  };

  // Seed the registry with the configured plugins (operator-trusted: no conformance run).
  for (const { path } of config.plugins) {
    try {
      await seed(registry, path);
    } catch (error) {
      const plugin = error instanceof StartError ? error.plugin : undefined;
      await failed({ path, ...(plugin ? { plugin } : {}), error: (error as Error).message }, error);
    }
  }

  // The same reading as `deno task policy` (src/lifecycle/policies_in_force.ts), so that its tests test this set.
  const { schema, files: operatorSources, trusted } = await readPolicyDir(config.policies);
  const manifests = new Map<string, Manifest>();
  for (const summary of await registry.list()) {
    const stored = await registry.get(summary.name);
    if (stored) manifests.set(stored.manifest.name, stored.manifest);
  }
  // Grants compiled by keycard are valid by construction under the schema they were written for (a test
  // validates every grant form against it): under that schema they skip validation, under another they do not.
  const grantSources = (list: Map<string, Manifest>): PolicySource[] =>
    [...list.values()].map((m) => grantSource(m, trusted));
  // With a shared store, the database's files (seeded from this directory by the first replica ever started).
  let files = await store.policyFiles(operatorSources);
  // A plugin whose grants do not validate is skipped like one that fails to load, and the set is loaded again
  // without it; the operator's own files must be valid (PolicyValidationError).
  const createEngine = async (): Promise<PolicyEngine> => {
    for (;;) {
      try {
        return await PolicyEngine.create({
          schema,
          sources: [...files, ...grantSources(manifests)],
          evaluator: config.policyEngine.evaluator,
          shadowSample: config.policyEngine.shadowSample,
          validationCache: join(config.dataDir, "policy-cache"),
          onShadowDisagreement: shadowDisagreement,
        });
      } catch (error) {
        if (!(error instanceof PolicyValidationError)) throw error;
        const refused = [...manifests.keys()].filter((name) =>
          error.problems.some((p) => p.source === `grants/${name}`)
        );
        if (refused.length === 0) throw error;
        for (const name of refused) {
          manifests.delete(name);
          const why = new PolicyValidationError(error.problems.filter((p) => p.source === `grants/${name}`)).message;
          await failed({ plugin: name, error: `Plugin "${name}" has invalid grants: ${why}` }, error);
        }
      }
    }
  };
  const engine = await createEngine();
  redaction.track(manifests.values(), config.routes);

  const host = started = new PluginHost<CallerContext>({
    limits: config.limits,
    concurrency: config.concurrency,
    spareWorkers: options.spareWorkers ?? 1,
    // Each isolation group's plugins share its workers (never an instance); other plugins have workers of their own.
    groups: Object.fromEntries(config.isolation.groups.map((g) => [g.name, { workers: g.workers }])),
    // Instances start at a plugin's first call, so a start-code fault shows there: the plugin is then reported
    // and skipped as one that fails at start is (degraded in /readyz, failed in /v1/plugins), and unloaded.
    onStartFailure: ({ plugin, error }) => {
      failures.push({ plugin, error: error.message });
      log(`keycard: skipped: ${error.message}`);
      void host.unload(plugin).catch(() => {});
    },
    hostFunctions: createHostFunctions({
      engine,
      audit,
      kv,
      fs: await FsCapability.open(dataRoot),
      env: (plugin) => manifests.get(plugin)?.config ?? {},
      ...redaction.host,
    }),
  });

  async function load(stored: StoredPlugin): Promise<void> {
    const m = stored.manifest;
    // A plugin installed or configured before the ceilings were lowered does not run past them.
    const exceeded = exceededCeilings(m.limits, config.ceilings);
    if (exceeded.length > 0) throw new RangeError(describeExceeded(m.name, exceeded));
    // Matched by name at every load: configured, stored and installed plugins alike.
    const group = isolationGroupOf(config, m.name);
    await host.load(stored.wasm, {
      name: m.name,
      version: m.version,
      ...(group === undefined ? {} : { group }),
      // A strict start proves every plugin's start code before serving: one warm instance each.
      limits: config.strictStart ? { ...m.limits, minInstances: Math.max(1, m.limits?.minInstances ?? 0) } : m.limits,
      config: m.config,
      preopens: preopensOf(m),
      // A manifest that declares exports makes them the only ones callable; the rest answer 404.
      ...(m.exports.length > 0 ? { exports: m.exports.map((e) => e.name) } : {}),
    });
  }
  for (const name of manifests.keys()) {
    const stored = await registry.get(name);
    if (!stored) continue;
    try {
      await load(stored);
    } catch (error) {
      await failed({ plugin: name, error: `Plugin "${name}" failed to load: ${(error as Error).message}` }, error);
    }
  }

  /** A plugin as the API shows it; `withReport` adds its stored conformance report (one plugin's page, not lists). */
  async function view(name: string, version?: string, withReport = false): Promise<PluginView | undefined> {
    const stored = await registry.get(name, version);
    if (!stored) return undefined;
    const summary = (await registry.list()).find((s) => s.name === name);
    const loaded = host.plugins().find((p) => p.name === name && p.sha256 === stored.sha256);
    const m = stored.manifest;
    return {
      name,
      version: m.version,
      versions: [...(summary?.versions ?? [m.version])].reverse(), // highest first
      sha256: stored.sha256,
      ...(m.description ? { description: m.description } : {}),
      exports: loaded ? [...loaded.exports] : m.exports.map((e) => e.name),
      grants: m.grants,
      capabilities: m.capabilities,
      installedAt: stored.installedAt,
      // What the runtime runs it with when loaded; else what it would get.
      isolation: isolationOf(loaded ? loaded.group : isolationGroupOf(config, name)),
      ...(loaded ? { state: "loaded" as const } : {
        state: "failed" as const,
        error: failures.find((f) => f.plugin === name)?.error ?? `Plugin "${name}" is not loaded`,
      }),
      limits: loaded ? loaded.limits : { ...DEFAULT_LIMITS, ...config.limits, ...m.limits },
      ...(withReport && stored.report ? { report: stored.report } : {}),
    };
  }

  /** Makes the host and the engine follow the registry's latest version of `name`. */
  async function follow(name: string): Promise<void> {
    const latest = await registry.get(name);
    const loaded = host.plugins().find((p) => p.name === name);
    // Already in force (a replica hearing of its own write): nothing to swap.
    if (
      latest && loaded?.sha256 === latest.sha256 && manifests.has(name) &&
      JSON.stringify(manifests.get(name)) === JSON.stringify(latest.manifest)
    ) return;
    const next = new Map(manifests);
    if (latest) next.set(name, latest.manifest);
    else next.delete(name);
    engine.load([...files, ...grantSources(next)]);
    manifests.clear();
    for (const [k, v] of next) manifests.set(k, v);
    redaction.track(manifests.values(), runner.routes());
    if (loaded && loaded.sha256 !== latest?.sha256) await host.unload(name);
    if (latest && loaded?.sha256 !== latest.sha256) {
      await load(latest);
      // A version that loads clears what an earlier one failed with.
      clearFailures(name);
    }
  }

  const mutate = serial();
  /**
   * Where conformance runs: the configured schema and base policies (not the operator's permits, so an
   * empty grant stays empty), scratch space under the data dir, the configured limits.
   */
  const sandbox = () => {
    const base = files.filter((f) => f.name === "base.cedar");
    return {
      schema,
      limits: config.limits,
      tempDir: join(config.dataDir, "tmp"),
      ...(base.length ? { policies: base } : {}),
    };
  };

  /**
   * Refuses a new set of operator files that is invalid, or that would leave
   * no admin able to write policies (nobody could undo it over the API). The
   * set is tried on the side: the set in force is untouched.
   */
  function trial(next: PolicySource[]): void {
    // No store keeps a NUL in text (PostgreSQL refuses it): a clear 400 whichever store is in use.
    const nul = next.find((f) => f.text.includes("\0"));
    if (nul) throw new ProblemError("bad-request", `Policy file "${nul.name}" holds a NUL character`);
    const [decision] = engine.check([...next, ...grantSources(manifests)], [{
      principal: clientEntity({ id: "admin", roles: ["admin"] }),
      action: "policy.write",
      resource: { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] },
      context: {},
    }]);
    if (decision?.decision !== "allow") {
      throw new ProblemError(
        "conflict",
        `The change would leave no admin able to write policies (${decision?.reason}): keep a permit for policy.write`,
      );
    }
  }

  const services: GatewayServices = {
    authenticate: (token) => clients.get(sha256Hex(token)),
    authorize: (request) => {
      const decision = engine.authorize(request);
      // The engine could not decide (cedar-wasm is being replaced): a 503, never a 403 that blames the client.
      if (decision.unavailable !== undefined) throw new ProblemError("not-ready", decision.reason);
      return decision;
    },
    pluginResource(name): Entity {
      const loaded = host.plugins().find((p) => p.name === name);
      return pluginEntity({ name, version: loaded?.version ?? "", sha256: loaded?.sha256 ?? "" });
    },
    invoke: (plugin, exportName, input, invokeOptions) => host.invoke(plugin, exportName, input, invokeOptions),
    plugins: {
      async list() {
        const out: PluginView[] = [];
        for (const summary of await registry.list()) {
          const v = await view(summary.name);
          if (v) out.push(v);
        }
        // Configured plugins that never reached the registry (no build, a manifest it refused) are listed too.
        for (const failure of failures) {
          if (failure.plugin && !out.some((v) => v.name === failure.plugin)) out.push(unregistered(failure, config));
        }
        return out;
      },
      get: async (name, version) => {
        const failure = failures.find((f) => f.plugin === name);
        return await view(name, version, true) ??
          (failure && version === undefined ? unregistered(failure, config) : undefined);
      },
      install: (name, wasm, manifestText) =>
        mutate(async () => {
          const manifest = parseManifest(manifestText, "manifest");
          // A NUL in a manifest's text cannot be stored (PostgreSQL refuses it) nor shown safely: refused up front.
          if (JSON.stringify(manifest).includes("\\u0000")) {
            throw new ProblemError("invalid-manifest", `Manifest of plugin "${name}" holds a NUL character`);
          }
          if (manifest.name !== name) {
            throw new ProblemError(
              "bad-request",
              `Manifest names plugin "${manifest.name}" but the URL names "${name}"`,
            );
          }
          // A manifest may raise its limits up to the operator's ceilings, never past: refused before anything runs.
          const exceeded = exceededCeilings(manifest.limits, config.ceilings);
          if (exceeded.length > 0) {
            throw new ProblemError("limit-exceeds-ceiling", describeExceeded(name, exceeded), {
              plugin: name,
              exceeded,
              requestedLimits: { ...manifest.limits },
            });
          }
          // Grants must compile and validate before anything runs or is stored.
          engine.check([...files, ...grantSources(new Map(manifests).set(name, manifest))]);
          // The operator approves the plugin's grants by installing it: it runs under them.
          const run = sandbox();
          const report = await runConformance(wasm, { manifest, grants: true, ...run });
          if (!report.passed) {
            throw new ProblemError("not-conformant", `Plugin "${name}" failed conformance`, { report });
          }
          // What the run needed, against what the manifest grants (wider grants are warnings): kept with the report.
          const proposal = await proposeGrants(name, report.footprint, {
            manifest,
            schema: run.schema,
            ...(run.policies ? { policies: run.policies } : {}),
          }).catch(() => undefined);
          let stored: StoredPlugin;
          try {
            // Kept with the version: the plugin's page shows it later, on every replica and after restarts.
            stored = await registry.install(wasm, manifest, {
              report: { ...report, ...(proposal ? { proposal: { ...proposal, runs: 1 } } : {}) },
            });
          } catch (error) {
            if (error instanceof RegistryError) {
              throw new ProblemError(error.code === "version_exists" ? "conflict" : "not-conformant", error.message, {
                code: error.code,
              });
            }
            throw error;
          }
          try {
            await follow(name);
          } catch (error) {
            await registry.remove(name, stored.manifest.version);
            await follow(name);
            // A module that passed conformance but does not load under the gateway's own limits is the
            // plugin's fault, answered as such; nothing stays installed.
            if (error instanceof PluginRuntimeError) {
              throw new ProblemError("not-conformant", `Plugin "${name}" did not load: ${error.message}`);
            }
            throw error;
          }
          return { plugin: (await view(name, manifest.version, true))!, report };
        }),
      remove: (name, version) =>
        mutate(async () => {
          const removed = await registry.remove(name, version);
          if (removed.length > 0) await follow(name);
          return removed;
        }),
    },
    policies: {
      version: () => engine.version,
      stats: () => engine.stats(),
      sources: (): PolicySourceView[] =>
        engine.sources().map((s) => ({
          name: s.name,
          kind: s.name.startsWith("grants/") ? "grant" : "file",
          text: s.text,
        })),
      list: () => engine.policies(),
      put: (name, text) =>
        mutate(async () => {
          const next = [...files.filter((f) => f.name !== name), { name, text }];
          trial(next); // throws on an invalid set or a lock-out: nothing changed
          await store.writePolicies({ put: [{ name, text }], remove: [] });
          const version = engine.load([...next, ...grantSources(manifests)]);
          files = next;
          return version;
        }),
      remove: (name) =>
        mutate(async () => {
          if (!files.some((f) => f.name === name)) return false;
          const next = files.filter((f) => f.name !== name);
          trial(next);
          await store.writePolicies({ put: [], remove: [name] });
          engine.load([...next, ...grantSources(manifests)]);
          files = next;
          return true;
        }),
      explain(requestText) {
        let spec;
        try {
          spec = parseRequestFile(requestText, "request");
        } catch (error) {
          if (!(error instanceof PolicyTestError)) throw error;
          throw new ProblemError("bad-request", error.message, {
            ...(error.line === undefined ? {} : { line: error.line, column: error.column ?? 1 }),
          });
        }
        // Over HTTP (the API, the console) a request is bounded as /v1/authorize bounds its body; the CLI is not.
        if (nestsDeeper(spec, MAX_EXPLAIN_DEPTH)) {
          throw new ProblemError("bad-request", `The request nests deeper than ${MAX_EXPLAIN_DEPTH} levels`);
        }
        const known = new Map(host.plugins().map((p) => [p.name, { version: p.version, sha256: p.sha256 }]));
        return explainRequest(spec, engine, known);
      },
      // Validated as a write would be (an invalid set or a lock-out throws), then replayed on the side: nothing changes.
      plan: (change, window) =>
        mutate(async () => {
          const names = new Set([...Object.keys(change.files), ...(change.remove ?? [])]);
          const next = [
            ...files.filter((f) => !names.has(f.name)),
            ...Object.entries(change.files).map(([name, text]) => ({ name, text })),
          ];
          trial(next);
          // Every replica's events with a shared store; else this one's audit files.
          const recorded = await store.auditEvents(audit, window);
          return planPolicyChange(recorded.events, {
            engine,
            candidate: [...next, ...grantSources(manifests)],
            audit: { ...recorded, window },
          });
        }),
    },
    conformance: async (wasm, manifestText, options) =>
      await (options?.propose ? conformAndPropose : runConformance)(wasm, {
        ...(manifestText ? { manifest: parseManifest(manifestText, "manifest") } : {}),
        ...sandbox(),
      }),
    audit,
    ...(store.auditQuery ? { auditQuery: store.auditQuery } : {}),
    ...(store.kind === "postgres" ? { store: () => store.view()! } : {}),
    stats: () => host.stats(),
    pluginStats: () => host.pluginStats(),
    workerStats: () => host.workerStats(),
    // Not ready while the policy engine cannot decide: /readyz answers the 503 problem with the engine's reason.
    // While the TypeScript evaluator decides, a cedar-wasm being replaced only holds up policy writes.
    ready: () => {
      const health = engine.health();
      if (ready && !health.ready && !health.deciding) {
        throw new ProblemError("not-ready", `The policy engine cannot decide: ${health.reason}`);
      }
      return ready;
    },
    startFailures: () => failures,
    maxBodyBytes: config.server.maxBodyBytes,
    // One count of failed authentications per address for the API, /metrics and token routes.
    authThrottle: new AuthThrottle({
      failures: config.server.authThrottle.failures,
      windowMs: config.server.authThrottle.windowSeconds * 1000,
      maxAddresses: config.server.authThrottle.addresses,
    }),
    metricsAccess: config.server.metrics,
    // Replicas on one database share console sessions: a console behind a load balancer needs no sticky sessions.
    ...(store.consoleSessions ? { consoleSessions: store.consoleSessions } : {}),
  };
  const runner = new RouteRunner({
    authenticate: services.authenticate,
    authorize: services.authorize,
    invoke: services.invoke,
    // A handler's content type and envelope when its route leaves them out.
    exportInfo: (plugin, name) => manifests.get(plugin)?.exports.find((e) => e.name === name),
    maxBodyBytes: config.server.maxBodyBytes,
    audit,
    metrics,
    ...(services.authThrottle ? { throttle: services.authThrottle } : {}),
    encodedSlashes: config.server.encodedSlashes,
  });
  /** Checks that every hook and handler names a loaded plugin and export, then swaps the table in. */
  const setRoutes = (routes: readonly RouteConfig[]): void => {
    for (const route of routes) {
      for (const step of [...route.hooks, ...(route.handler ? [route.handler] : [])]) {
        const plugin = host.plugins().find((p) => p.name === step.plugin);
        if (!plugin) throw new TypeError(`Route "${route.name}" uses plugin "${step.plugin}", which is not installed`);
        if (!plugin.exports.includes(step.export)) {
          throw new TypeError(
            `Route "${route.name}" uses export "${step.export}", which plugin "${step.plugin}" lacks`,
          );
        }
      }
    }
    redaction.track(manifests.values(), routes);
    runner.setRoutes(routes);
  };
  // A route over a plugin that failed at start is not served; the others are.
  const serving = config.routes.filter((route) => {
    const missing = [...route.hooks, ...(route.handler ? [route.handler] : [])]
      .find((step) => !host.plugins().some((p) => p.name === step.plugin));
    if (missing === undefined || !failures.some((f) => f.plugin === missing.plugin)) return true;
    failures.push({ error: `Route "${route.name}" is not served: plugin "${missing.plugin}" did not load` });
    log(`keycard: skipped: route "${route.name}": plugin "${missing.plugin}" did not load`);
    return false;
  });
  setRoutes(serving);
  services.route = (request, remote) => {
    redaction.observe(request);
    return runner.handle(request, remote);
  };
  const { app } = createApp(services, metrics);

  /**
   * What the plugins and operator policy files of this replica follow: each plugin's change number in the shared
   * store, as of the last time this replica loaded (or failed to load) it.
   */
  const followed = new Map<string, number>();
  for (const [name, head] of await store.pluginHeads()) followed.set(name, head.change);
  /**
   * Brings this replica to what the shared store holds, as a local write would: a plugin whose latest version
   * changed is loaded (or unloaded) and its grants swapped in; changed operator files are swapped in at once.
   * Runs after every change any replica makes, and after a reconnect (catching up on what was missed).
   */
  const catchUp = (changes: Change[]) =>
    mutate(async () => {
      const heads = await store.pluginHeads();
      for (const name of new Set([...heads.keys(), ...followed.keys()])) {
        const head = heads.get(name);
        if (followed.get(name) === head?.change) continue;
        try {
          await follow(name);
          // In force as the store holds it (a repaired row included): what an earlier version failed with is gone.
          clearFailures(name);
        } catch (error) {
          const message = `Plugin "${name}" failed to load: ${(error as Error).message}`;
          if (!failures.some((f) => f.plugin === name && f.error === message)) {
            failures.push({ plugin: name, error: message });
            log(`keycard: skipped: ${message}`);
          }
        }
        if (head) followed.set(name, head.change);
        else followed.delete(name);
      }
      const next = await store.policyChanges();
      if (next) {
        try {
          engine.load([...next, ...grantSources(manifests)]);
          files = next;
        } catch (error) {
          log(
            `keycard: store: the operator policy files changed elsewhere do not load here: ${(error as Error).message}`,
          );
        }
      }
      const now = Date.now();
      for (const change of changes) metrics.observePropagation((now - change.at) / 1000);
    });
  await store.follow(catchUp, (error) => log(`keycard: store: ${(error as Error).message ?? String(error)}`));
  ready = true;
  return {
    app,
    services,
    metrics,
    setRoutes,
    routes: () => runner.routes(),
    startFailures: () => failures,
    async close() {
      ready = false;
      engine.close();
      await host.close();
      await audit.close();
      await store.close();
    },
  };
}

/** How a plugin view shows a plugin's isolation: `"plugin"` (workers of its own) or its group. */
function isolationOf(group: string | undefined): PluginView["isolation"] {
  return group === undefined ? "plugin" : { group };
}

/** Deepest nesting of a request explained over HTTP (cedar-wasm's stack is shallow: see shared/NOTES.md). */
const MAX_EXPLAIN_DEPTH = 32;

/** Whether arrays and objects nest more than `max` levels in a value; never descends further than that. */
function nestsDeeper(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (max === 0) return true;
  return Object.values(value).some((item) => nestsDeeper(item, max - 1));
}

/** The view of a configured plugin that failed before it reached the registry. */
function unregistered(failure: StartFailure, config: KeycardConfig): PluginView {
  return {
    name: failure.plugin!,
    version: "",
    versions: [],
    sha256: "",
    exports: [],
    grants: [],
    capabilities: [],
    installedAt: "",
    isolation: isolationOf(isolationGroupOf(config, failure.plugin!)),
    state: "failed",
    error: failure.error,
    limits: { ...DEFAULT_LIMITS, ...config.limits },
  };
}

/** A WASI plugin's preopened directories: the directories of its `fs.*` grants. */
function preopensOf(manifest: Manifest): string[] {
  const dirs = new Set<string>();
  for (const grant of manifest.grants) {
    for (const [kind, options] of Object.entries(grant)) {
      const dir = (options as { dir?: unknown } | null)?.dir;
      if (kind.startsWith("fs.") && typeof dir === "string") {
        try {
          dirs.add(normalizeDataPath(dir));
        } catch {
          // compileGrants refuses such a grant before the plugin loads
        }
      }
    }
  }
  return [...dirs];
}

/** Installs a configured plugin into the registry unless that exact module and version is there already. */
async function seed(registry: Registry, path: string): Promise<void> {
  const { wasm, manifest } = await readConfiguredPlugin(path);
  const current = await registry.get(manifest.name, manifest.version);
  if (current?.sha256 === sha256Hex(wasm)) return;
  try {
    await registry.install(wasm, manifest, { overwrite: true });
  } catch (cause) {
    throw new StartError(`Cannot install plugin "${manifest.name}" from "${path}": ${(cause as Error).message}`, {
      path,
      plugin: manifest.name,
      cause,
    });
  }
}
