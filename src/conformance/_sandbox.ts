// The world a conformance run happens in: a PluginHost of its own whose host
// functions are decided by a PolicyEngine holding the base policies (and, when
// asked, the plugin's compiled grants), so that every host call is decided,
// recorded and counted. Files and keys live in a fresh dir under the caller's
// temp dir, removed after.
//
// Why lazy: a cold process spends ~200-350 ms warming cedar-wasm and opening
// Deno KV, which a plugin that cannot make a host call never needs. The world
// (engine, data root, KV, audit) is built before the plugin loads when its
// imports can reach a host function, and otherwise only if a call ever asks.
import { type AuditEvent, AuditLog } from "../audit/mod.ts";
import {
  type CallerContext,
  createHostFunctions,
  FsCapability,
  type HostFunctionsOptions,
  KvStore,
} from "../host/mod.ts";
import { PolicyEngine, type PolicySource } from "../policy/mod.ts";
import { type HostFunction, PluginHost, type PluginLimits } from "../runtime/mod.ts";

/**
 * The sandbox's resolver: no name resolves, so nothing is ever contacted. A
 * call its grants permit by name fails as unavailable after that decision
 * (answering a documentation address instead made base.cedar forbid every
 * granted name at the address phase, so no HTTP plugin passed `--grants`).
 */
function noNetwork(): Promise<string[]> {
  return Promise.reject(Object.assign(new Error("no network"), { code: "no network in the conformance sandbox" }));
}

/** Engines by schema and sources: validated once per process, shared by runs (a decision changes nothing). */
const engines = new Map<string, Promise<PolicyEngine>>();
const MAX_ENGINES = 8;

/** What a sandbox is built from. */
export interface _SandboxOptions {
  /** The limits every plugin in the host gets. */
  limits: PluginLimits;
  /** The plugin's configuration variables, for `env.get`. */
  config: Readonly<Record<string, string>>;
  /** The Cedar schema text. */
  schema: string;
  /** The policies in force: the base set, plus the compiled grants when the run uses them. */
  policies: readonly PolicySource[];
  /** The parent of the sandbox's data dir; undefined for the system's temp dir. */
  tempDir: string | undefined;
}

/** A plugin host with keycard's host functions, and every audit event it recorded. */
export interface _Sandbox extends AsyncDisposable {
  /** Runs the plugin under test; its host functions are keycard's. */
  host: PluginHost<CallerContext>;
  /** The import names of keycard's host functions (`keycard_fs_read`, ...). */
  hostFunctionNames: readonly string[];
  /** Every decision the host functions made, in order. */
  events: readonly AuditEvent[];
  /** Builds the world now (engine, data root, KV), so that no call waits for it. */
  prepare(): Promise<void>;
}

/** The names of keycard's host functions: creating the table touches none of its options. */
const HOST_FUNCTION_NAMES: readonly string[] = Object.freeze(
  Object.keys(createHostFunctions({} as HostFunctionsOptions)),
);

/**
 * Returns the engine for a schema and policy set, validated once per process.
 *
 * @throws {PolicyValidationError} When the schema or a policy is invalid (nothing is cached then).
 */
function _engine(schema: string, policies: readonly PolicySource[]): Promise<PolicyEngine> {
  const key = JSON.stringify([schema, policies.map((p) => [p.name, p.text])]);
  let engine = engines.get(key);
  if (engine === undefined) {
    engine = PolicyEngine.create({ schema, sources: [...policies] });
    engines.set(key, engine);
    engine.catch(() => engines.delete(key));
    if (engines.size > MAX_ENGINES) engines.delete(engines.keys().next().value!);
  }
  return engine;
}

/**
 * Opens a sandbox. Nothing is written until the world is built (see
 * `prepare`); then only under `tempDir`.
 *
 * @param options Limits, configuration, policies and temp dir.
 * @returns The sandbox; dispose of it to stop its workers and remove its files.
 */
export function _openSandbox(options: _SandboxOptions): _Sandbox {
  const events: AuditEvent[] = [];
  const cleanups: (() => unknown)[] = [];
  let world: Promise<Record<string, HostFunction<CallerContext>>> | undefined;

  const build = async (): Promise<Record<string, HostFunction<CallerContext>>> => {
    const engine = await _engine(options.schema, options.policies);
    if (options.tempDir !== undefined) await Deno.mkdir(options.tempDir, { recursive: true });
    const dir = await Deno.makeTempDir({
      prefix: "keycard-conform-",
      ...(options.tempDir === undefined ? {} : { dir: options.tempDir }),
    });
    cleanups.push(() => Deno.remove(dir, { recursive: true }));
    await Deno.mkdir(`${dir}/files`);
    const fs = await FsCapability.open(`${dir}/files`);
    const kv = await KvStore.open(`${dir}/kv.sqlite`);
    cleanups.push(() => kv.close());
    // Every decision its own event: the footprint is read at once, not after an aggregation window.
    const audit = new AuditLog({ ringSize: 1, aggregate: false });
    cleanups.push(() => audit.close());
    audit.subscribe((event) => events.push(event));
    return createHostFunctions({
      engine,
      audit,
      fs,
      kv,
      env: () => options.config,
      logSink: () => {},
      http: { resolve: noNetwork, timeoutMs: options.limits.deadlineMs },
    });
  };
  const prepare = () => world ??= build();

  const hostFunctions = Object.fromEntries(
    HOST_FUNCTION_NAMES.map((name): [string, HostFunction<CallerContext>] => {
      const call: HostFunction<CallerContext> = async (input, context) => (await prepare())[name]!(input, context);
      // Calls refused past the hostCalls cap are counted too; a refusal implies a call, so the world exists.
      call.refused = (context, refusal) => void prepare().then((world) => world[name]!.refused?.(context, refusal));
      return [name, call];
    }),
  );
  // One instance kept warm: start code faults show at load, and no call's deadline pays a worker boot.
  const host = new PluginHost<CallerContext>({
    hostFunctions,
    limits: { ...options.limits, minInstances: 1 },
    spareWorkers: 0,
  });

  return {
    host,
    hostFunctionNames: HOST_FUNCTION_NAMES,
    events,
    prepare: async () => void await prepare(),
    [Symbol.asyncDispose]: async () => {
      // Workers stop first; a world still being built is waited for, so that its files are removed too.
      await host.close().catch(() => {});
      await world?.catch(() => {});
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch {
          // Cleanup goes on: a temp dir left behind must not hide the report.
        }
      }
    },
  };
}
