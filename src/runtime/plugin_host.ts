import { errorResponse, okResponse, REFUSED_CALLS } from "./_bridge.ts";
import { Dispatcher } from "./_dispatcher.ts";
import { WASI_FUNCTIONS } from "./_wasi.ts";
import { type CallOutcome, Instance, type InstanceSpec, WorkerShell } from "./_instance.ts";
import { type Release, Semaphore } from "./_semaphore.ts";
import { WasmFormatError } from "./_wasm_binary.ts";
import {
  HostCallError,
  PluginDeadlineError,
  PluginLimitError,
  PluginLoadError,
  PluginMemoryError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  SaturatedError,
} from "./errors.ts";
import { inspectModule, type ModuleInfo } from "./inspect_module.ts";
import { COMMAND_EXPORT, INIT_PREFIX, instrumentModule } from "./instrument_module.ts";
import { INIT_FUNCTIONS, isStartExport, planStartCode } from "./_start_code.ts";
import type { FailureKind } from "./_protocol.ts";

/** The bounds one plugin runs within. */
export interface PluginLimits {
  /** Wall-clock deadline of one call, time in the queue included. @default {1000} */
  deadlineMs: number;
  /** Linear memory cap in 64 KiB pages; Extism allocations get the same cap in bytes. @default {256} */
  memoryPages: number;
  /** Largest input of one call. @default {1048576} */
  inputBytes: number;
  /** Largest output of one call. @default {1048576} */
  outputBytes: number;
  /** Host-function calls allowed in one call; past it, host calls return a `limit` error. @default {10000} */
  hostCalls: number;
  /** Largest host-call request or response. @default {1048576} */
  hostIoBytes: number;
  /** Instances (worker isolates), so calls of this plugin that run at once. @default {2} */
  instances: number;
  /** Calls of this plugin that may wait for an instance; beyond, `SaturatedError`. @default {32} */
  queue: number;
  /**
   * Instances started at load and kept warm: never retired when idle nor to
   * make room (at most `instances`). 0 starts every instance on demand, at a
   * call; 1 is keycard's behaviour before on-demand instances (start code
   * faults show at load). @default {0}
   */
  minInstances: number;
}

/** Default limits of every plugin. */
export const DEFAULT_LIMITS: Readonly<PluginLimits> = Object.freeze({
  deadlineMs: 1000,
  memoryPages: 256,
  inputBytes: 1 << 20,
  outputBytes: 1 << 20,
  hostCalls: 10_000,
  hostIoBytes: 1 << 20,
  instances: 2,
  queue: 32,
  minInstances: 0,
});

/** What a host function learns about the call it serves. */
export interface HostCallContext<C = unknown> {
  /** The calling plugin. */
  plugin: PluginInfo;
  /** The export being run, or `"(init)"` during start code. */
  export: string;
  /** Unique id of the invocation, shared by all its host calls. */
  callId: string;
  /** What the invoker passed as `hostContext` (e.g. the HTTP caller). */
  hostContext: C | undefined;
  /** Aborts at the call's deadline. */
  signal: AbortSignal;
}

/** Host calls the runtime refused without calling their function; see {@linkcode HostFunction}. */
export interface HostCallRefusal {
  /** How many calls of this function were refused. */
  count: number;
  /** `limit`: past the `hostCalls` cap (counted in the worker, reported once at the end of the call); `deadline`: after the call's deadline. */
  code: "limit" | "deadline";
  /** Why, as the plugin was told. */
  message: string;
}

/**
 * A host function: request bytes in, result bytes out. Throw a
 * {@linkcode HostCallError} to hand the plugin an error value with a code;
 * anything thrown reaches the plugin as an error value, never as a trap.
 * Its optional `refused` property hears of the calls the runtime refused
 * without calling it (so that they can be audited and counted too).
 */
export type HostFunction<C = unknown> =
  & ((input: Uint8Array, context: HostCallContext<C>) => Uint8Array | Promise<Uint8Array>)
  & { refused?: (context: HostCallContext<C>, refusal: HostCallRefusal) => void };

/** Options of {@linkcode PluginHost}. */
export interface PluginHostOptions<C = unknown> {
  /** Host functions offered to plugins under `extism:host/user`, by import name. @default {{}} */
  hostFunctions?: Record<string, HostFunction<C>>;
  /** Limits every plugin gets unless its load options say otherwise. @default {DEFAULT_LIMITS} */
  limits?: Partial<PluginLimits>;
  /** Bounds over all plugins together. */
  concurrency?: {
    /** Calls running at once over all plugins. @default {16} */
    maxCalls?: number;
    /** Calls waiting for a global slot; beyond, `SaturatedError`. @default {256} */
    queue?: number;
    /** How long an instance may stay idle before its worker is ended (instances under `minInstances` stay). @default {60000} */
    idleMs?: number;
    /**
     * Workers alive at once: those hosting instances (one plugin's, or an
     * isolation group's) and warm spares together. A new worker past it
     * retires the least recently used worker whose instances are all idle and
     * not kept warm; when none can be retired, the call waits for one (within
     * its deadline). @default {256}
     */
    maxWorkers?: number;
  };
  /** Hears of each instance retired: after `idleMs` idle (`"idle"`), or to make room under `maxWorkers` (`"lru"`). */
  onRetire?: (event: { plugin: string; reason: "idle" | "lru" }) => void;
  /**
   * Hears once of a loaded plugin whose start code failed for good: a trap,
   * an exit or a memory overrun (deterministic), or its deadline twice in a
   * row. From then on every call to it fails at once with that error, without
   * starting a worker, until it is unloaded and loaded again. (With
   * `minInstances` of 1 or more the same fault fails `load()` instead.)
   */
  onStartFailure?: (event: { plugin: string; error: PluginRuntimeError }) => void;
  /** Booted workers kept warm so a load or a new instance does not wait for a worker start. @default {1} */
  spareWorkers?: number;
  /**
   * Isolation groups by name: the plugins loaded with `group: <name>` share
   * the group's workers, at most `workers` of them (each plugin keeps its own
   * instance and memory; at most one instance of a plugin per worker, so a
   * grouped plugin runs at most `workers` calls at once). A group not listed
   * gets the default. @default {{}}
   */
  groups?: Record<string, { workers?: number }>;
  /**
   * When a plugin's worker is ended and replaced by a fresh one, which frees
   * everything its isolate held. The worker already has V8 collect each
   * instance it drops (see _worker.ts); this bounds what a long-lived
   * isolate gathers besides (600,000 echo calls on 2 workers: RSS 214 to
   * 342 MiB without recycling, flat at ~230 MiB from 200,000 calls on with
   * a worker recycled every 20,000 calls; a recycle costs a worker boot,
   * off the call path when a spare worker is warm).
   */
  recycle?: {
    /** Instantiations in one worker (the first and each replacement) before the worker is replaced. @default {64} */
    instantiations?: number;
    /** Calls served by one worker before it is replaced. @default {20000} */
    calls?: number;
  };
}

/** Options of {@linkcode PluginHost.load}. */
export interface LoadOptions {
  /** The plugin's name, used in errors and host calls. */
  name: string;
  /** The plugin's version. @default {"0.0.0"} */
  version?: string;
  /** Limits for this plugin, over the host's defaults. */
  limits?: Partial<PluginLimits>;
  /** Configuration the plugin reads with Extism `config_get`. @default {{}} */
  config?: Record<string, string>;
  /**
   * Directories (data-root paths such as `/data/x`) a WASI plugin sees as
   * preopened; every file operation in them is still a host call decided by
   * Cedar. Usually the plugin's `fs.*` grant directories. @default {[]}
   */
  preopens?: string[];
  /**
   * The only exports that may be invoked (a manifest's declared exports);
   * any other name is "not found". Each must be a function the module
   * exports, or `load` fails. Naming `_start` makes it a WASI command's
   * program even when the module exports other functions.
   * @default {every function the module exports, start code aside}
   */
  exports?: readonly string[];
  /**
   * The isolation group whose workers the plugin shares (see
   * {@linkcode PluginHostOptions.groups}); left out, the plugin's instances
   * run in workers of their own (`isolation: plugin`).
   */
  group?: string;
}

/** A loaded plugin, as handed to `invoke`. */
export interface PluginInfo {
  /** The name it was loaded under; unique within a host. */
  readonly name: string;
  /** The version it was loaded with; `0.0.0` when none was given. */
  readonly version: string;
  /** Hex sha256 of the module as given. */
  readonly sha256: string;
  /**
   * Function names that may be invoked: the module's function exports (or the
   * declared ones), never start code (`_initialize`, `hs_init`, an
   * initializer `_start`). A WASI command lists `_start`.
   */
  readonly exports: readonly string[];
  /** What the module imports, as {@linkcode inspectModule} reports it. */
  readonly imports: ModuleInfo["imports"];
  /** The limits in force: the host's defaults with the load options' over them. */
  readonly limits: Readonly<PluginLimits>;
  /** The isolation group it shares workers with; absent for a plugin with workers of its own. */
  readonly group?: string;
}

/** Options of {@linkcode PluginHost.invoke}. */
export interface InvokeOptions<C = unknown> {
  /** Handed to every host function of this call as `context.hostContext`. */
  hostContext?: C;
  /** A deadline shorter than the plugin's limit. */
  deadlineMs?: number;
  /** An id for the call (defaults to a random UUID). */
  callId?: string;
}

/** Numbers for metrics and tests. */
export interface HostStats {
  /** Plugins loaded. */
  plugins: number;
  /** Worker instances over all plugins, idle or busy. */
  instances: number;
  /** Instances running a call now. */
  busy: number;
  /** Instances starting now (worker boot, instantiation, start code), counted in `instances` and `busy` too. */
  starting: number;
  /** Booted workers kept warm for the next load or instance. */
  spares: number;
  /** Calls waiting for a slot now, in the global and per-plugin queues. */
  queued: number;
  /** Workers that did not stop within the grace period after an interrupt; should stay 0. */
  stuckWorkers: number;
  /** Instances replaced after a trap, deadline or memory overrun. */
  replaced: number;
  /** Calls refused with `SaturatedError` since the host started. */
  rejected: number;
  /** Workers ended after their budget (`recycle`), so their memory is released. */
  recycled: number;
  /** Idle instances retired: after `idleMs`, or to make room under `maxWorkers`. */
  retired: number;
}

/** One plugin's share of the host, for metrics; see {@linkcode PluginHost.pluginStats}. */
export interface PluginStats {
  /** The plugin's name. */
  plugin: string;
  /** The isolation group it shares workers with; absent for a plugin with workers of its own. */
  group?: string;
  /** Live instances, idle or busy (each in a worker of its own, or in a worker of its group). */
  instances: number;
  /** Linear memory of its live instances, summed, as of each one's start or last call. */
  memoryBytes: number;
  /** Calls that ran on an instance and ended, failed ones included. */
  calls: number;
  /** Instances replaced after a trap, deadline or memory overrun. */
  replacements: number;
}

/** The host's workers, for metrics; see {@linkcode PluginHost.workerStats}. */
export interface WorkerStats {
  /** Worker isolates alive: those hosting plugin instances, and warm spares. */
  workers: number;
  /**
   * Plugin instances per worker hosting any, on average: 1 when every plugin
   * has workers of its own, more when isolation groups share theirs.
   */
  pluginsPerWorker: number;
  /** Each isolation group in use: its live workers and the plugins loaded in it. */
  groups: { group: string; workers: number; plugins: number }[];
  /**
   * An estimate, not a measurement: the process's RSS divided by `workers`.
   * Workers share the process, so no per-thread RSS exists; the main
   * thread's own memory is in it too, so it overstates a worker's cost.
   */
  rssShareBytes: number;
}

/** The functions of Extism's `extism:host/env` ABI that keycard provides to plugins. */
export const EXTISM_HOST_FUNCTIONS: ReadonlySet<string> = new Set([
  "alloc",
  "free",
  "load_u8",
  "load_u64",
  "store_u8",
  "store_u64",
  "input_offset",
  "input_length",
  "input_load_u8",
  "input_load_u64",
  "output_set",
  "error_set",
  "error_get",
  "config_get",
  "var_get",
  "var_set",
  "http_request",
  "http_status_code",
  "http_headers",
  "length",
  "length_unsafe",
  "log_warn",
  "log_info",
  "log_debug",
  "log_error",
  "log_trace",
  "get_log_level",
]);

/** Delay before a taken spare worker is replaced. */
const REFILL_DELAY_MS = 50;

/** How long a worker may take to stop after its interrupt before it is given up on. */
const STOP_GRACE_MS = 2000;

/** Workers of an isolation group the host's options do not size. */
const GROUP_WORKERS = 2;

/** An isolation group's workers and their bound. */
interface Group {
  readonly workers: number;
  readonly shells: Set<WorkerShell>;
}

/**
 * Where a new instance of a plugin goes: a worker of its group that hosts
 * none of it yet, `null` for a new worker (a spare or a fresh boot),
 * `undefined` when no worker is free now (every one busy or kept warm under
 * `maxWorkers`), `false` when its group's every worker already hosts it.
 */
type Placement = WorkerShell | null | undefined | false;

interface CallState {
  info: PluginInfo;
  export: string;
  callId: string;
  hostContext: unknown;
  signal: AbortSignal;
}

class PluginEntry {
  readonly info: PluginInfo;
  readonly spec: InstanceSpec;
  /** Whether `_start` is a WASI command's program (run on a fresh instance each time). */
  command = false;
  /** The declared exports, when the load options named them. */
  declared: readonly string[] | undefined;
  readonly semaphore: Semaphore;
  readonly instances = new Set<Instance>();
  readonly idle: Instance[] = [];
  waiters: Waiter[] = [];
  /** Instances being started for `waiters` (not for one call of its own). */
  pendingStarts = 0;
  averageMs = 1;
  unloaded = false;
  /** Calls that ran on an instance and ended. */
  calls = 0;
  /** Instances replaced after a failure. */
  replacements = 0;
  /** Set once its start code failed for good: every call fails with it at once. */
  startFailure: PluginRuntimeError | undefined;
  /** Start-code deadlines in a row (one may be a loaded machine; two are the plugin). */
  startDeadlines = 0;

  constructor(info: PluginInfo, spec: InstanceSpec) {
    this.info = info;
    this.spec = spec;
    this.semaphore = new Semaphore(info.limits.instances, info.limits.queue);
  }

  /** Its isolation group, if it shares one's workers. */
  group: Group | undefined;

  /** Instances it may have: its `instances`, and at most one per worker of its group. */
  get cap(): number {
    return Math.min(this.info.limits.instances, this.group?.workers ?? Infinity);
  }

  /** Instances kept warm, at most its cap. */
  get min(): number {
    return Math.min(this.info.limits.minInstances, this.cap);
  }
}

/** A call waiting for an instance of its plugin. */
interface Waiter {
  resolve: (instance: Instance) => void;
  reject: (reason: unknown) => void;
}

/**
 * Runs Extism plugins in Deno Worker isolates with no permissions. Every
 * call is bounded: deadline (the plugin is instrumented to stop itself),
 * memory cap, input/output sizes, host-call count, and per-plugin and global
 * semaphores with bounded queues. Host functions run on the main thread.
 *
 * @example Load and call a plugin
 * ```ts ignore
 * import { PluginHost } from "./plugin_host.ts";
 * const host = new PluginHost();
 * const wasm = await Deno.readFile("plugins/hello/build/plugin.wasm");
 * const plugin = await host.load(wasm, { name: "hello" });
 * const out = await host.invoke(plugin, "greet", new TextEncoder().encode("keycard"));
 * new TextDecoder().decode(out); // "Hello, keycard!"
 * await host.close();
 * ```
 */
export class PluginHost<C = unknown> {
  readonly #hostFunctionNames: string[];
  readonly #hostFunctions: HostFunction<C>[];
  readonly #limits: PluginLimits;
  readonly #global: Semaphore;
  readonly #spareTarget: number;
  readonly #spares: WorkerShell[] = [];
  readonly #entries = new Map<string, PluginEntry>();
  readonly #modules = new Map<
    string,
    Promise<{ module: WebAssembly.Module; initExports: string[]; command: boolean }>
  >();
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;
  #refillTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Cells shared by every worker: idle spinners and the doorbell. An idle
   * worker may spin only on a core left over by the main thread (measured:
   * one spinner on 2 cores is best), and the main thread spins only while
   * fewer calls run than there are cores.
   */
  readonly #shared = (() => {
    const buffer = new SharedArrayBuffer(8);
    const cores = navigator.hardwareConcurrency ?? 2;
    return {
      buffer,
      maxSpinners: Math.max(0, cores - 1),
      dispatcher: new Dispatcher(new Int32Array(buffer), (inFlight) => inFlight < cores),
    };
  })();
  #stats = { stuckWorkers: 0, replaced: 0, rejected: 0, recycled: 0, retired: 0 };
  readonly #recycle: { instantiations: number; calls: number };
  #starting = 0;
  readonly #idleMs: number;
  readonly #maxWorkers: number;
  readonly #onRetire: PluginHostOptions<C>["onRetire"];
  readonly #onStartFailure: PluginHostOptions<C>["onStartFailure"];
  /** Every instance alive, of loaded plugins and of plugins being unloaded. */
  readonly #live = new Set<Instance>();
  /** The plugin each live instance belongs to. */
  readonly #entryOf = new Map<Instance, PluginEntry>();
  /** Workers hosting instances (of one plugin, or of a group's plugins): with the spares, the workers alive. */
  readonly #shells = new Set<WorkerShell>();
  readonly #groups = new Map<string, Group>();
  readonly #groupOptions: Record<string, { workers?: number }>;
  /** Plugins with a call waiting for a worker under `maxWorkers`, first come first served (repeats allowed). */
  #roomQueue: PluginEntry[] = [];
  #draining = false;

  /**
   * Creates a host and starts warming its spare workers; no plugin is loaded yet.
   *
   * @param options Host functions, default limits, global bounds, spare workers.
   * @throws {RangeError} When a limit or a `recycle` budget is out of range.
   */
  constructor(options: PluginHostOptions<C> = {}) {
    const functions = options.hostFunctions ?? {};
    this.#hostFunctionNames = Object.keys(functions);
    this.#hostFunctions = Object.values(functions);
    this.#limits = checkLimits({ ...DEFAULT_LIMITS, ...options.limits });
    this.#global = new Semaphore(options.concurrency?.maxCalls ?? 16, options.concurrency?.queue ?? 256);
    this.#spareTarget = options.spareWorkers ?? 1;
    this.#idleMs = options.concurrency?.idleMs ?? 60_000;
    this.#maxWorkers = options.concurrency?.maxWorkers ?? 256;
    this.#onRetire = options.onRetire;
    this.#onStartFailure = options.onStartFailure;
    this.#groupOptions = { ...options.groups };
    for (const [group, value] of Object.entries(this.#groupOptions)) {
      const workers = value?.workers ?? GROUP_WORKERS;
      if (!Number.isInteger(workers) || workers < 1) {
        throw new RangeError(
          `Option "groups.${group}.workers" must be a positive integer, got ${JSON.stringify(value?.workers)}`,
        );
      }
    }
    for (const [key, value] of Object.entries({ idleMs: this.#idleMs, maxWorkers: this.#maxWorkers })) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`Option "concurrency.${key}" must be a positive integer, got ${JSON.stringify(value)}`);
      }
    }
    this.#recycle = {
      instantiations: options.recycle?.instantiations ?? 64,
      calls: options.recycle?.calls ?? 20_000,
    };
    for (const [key, value] of Object.entries(this.#recycle)) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`Option "recycle.${key}" must be a positive integer, got ${JSON.stringify(value)}`);
      }
    }
    this.#refillSpares();
  }

  /**
   * Checks, instruments and compiles (cached by sha256) a plugin, and starts
   * its `minInstances` (none by default: instances start at calls).
   *
   * @param wasm The module's bytes.
   * @param options Name, version, limits, configuration.
   * @returns The loaded plugin, ready to invoke.
   * @throws {PluginLoadError} When the module is malformed, imports anything
   * keycard does not provide, needs more memory than its cap, lacks a
   * declared export, or its start code (start section, `_initialize`, an
   * initializer `_start`, `hs_init`) traps, exits non-zero or passes the
   * deadline (seen at load only when `minInstances` starts an instance; else
   * the call that starts one gets the typed error); the error's `cause` is
   * then the typed runtime error. Also when `minInstances` finds no worker
   * free under `maxWorkers` (every one busy or kept warm).
   * @throws {TypeError} When a plugin of that name is already loaded.
   */
  async load(wasm: Uint8Array, options: LoadOptions): Promise<PluginInfo> {
    this.#assertOpen();
    const name = options.name;
    if (this.#entries.has(name)) throw new TypeError(`A plugin named "${name}" is already loaded`);
    const limits = checkLimits({ ...this.#limits, ...options.limits });
    if (options.group !== undefined && (typeof options.group !== "string" || options.group === "")) {
      throw new TypeError(`Option "group" of plugin "${name}" must be a non-empty string`);
    }
    const fail = (message: string, cause?: unknown): never => {
      throw new PluginLoadError(`Cannot load plugin "${name}": ${message}`, { plugin: name, cause });
    };
    let info: ModuleInfo;
    try {
      info = inspectModule(wasm);
    } catch (error) {
      return fail(error instanceof WasmFormatError ? error.message : String(error), error);
    }
    for (const imported of info.imports) {
      const known = imported.kind === "function" &&
        ((imported.module === "extism:host/env" && EXTISM_HOST_FUNCTIONS.has(imported.name)) ||
          (imported.module === "wasi_snapshot_preview1" && WASI_FUNCTIONS.has(imported.name)) ||
          (imported.module === "extism:host/user" && this.#hostFunctionNames.includes(imported.name)));
      if (!known) {
        fail(
          `import "${imported.module}" "${imported.name}" (${imported.kind}) is not provided by the host; ` +
            `plugins may import only Extism's "extism:host/env" functions, WASI preview 1 and keycard's host functions`,
        );
      }
    }
    const functions = info.exports.filter((e) => e.kind === "function").map((e) => e.name);
    const declared = options.exports === undefined ? undefined : [...new Set(options.exports)];
    for (const name of declared ?? []) {
      if (INIT_FUNCTIONS.includes(name) || name.startsWith("__keycard")) {
        fail(`declared export "${name}" is start code, which keycard runs at start and never on request`);
      }
      if (!functions.includes(name)) {
        fail(`declared export "${name}" is not a function the module exports (it exports ${quoteList(functions)})`);
      }
    }
    const plan = planStartCode(functions, declared?.includes("_start") ? true : undefined);
    const sha256 = await sha256Hex(wasm);
    const compiled = await this.#compile(wasm, sha256, limits.memoryPages, plan.command).catch((error) =>
      fail(error instanceof Error ? error.message : String(error), error)
    );
    const plugin: PluginInfo = Object.freeze({
      name,
      version: options.version ?? "0.0.0",
      sha256,
      exports: Object.freeze(
        (declared ?? functions).filter((e) => !isStartExport(e, plan)),
      ),
      imports: info.imports,
      limits: Object.freeze(limits),
      ...(options.group === undefined ? {} : { group: options.group }),
    });
    const entry: PluginEntry = new PluginEntry(plugin, {
      module: compiled.module,
      initExports: compiled.initExports,
      stopGraceMs: STOP_GRACE_MS,
      hostFunctions: this.#hostFunctionNames,
      config: { ...options.config },
      preopens: [...(options.preopens ?? [])],
      limits: {
        allocBytes: limits.memoryPages * 65536,
        inputBytes: limits.inputBytes,
        outputBytes: limits.outputBytes,
        hostCalls: limits.hostCalls,
        hostIoBytes: limits.hostIoBytes,
      },
      handleHostCall: (instance, fn, payload) => this.#handleHostCall(entry, instance, fn, payload),
      shared: this.#shared,
    });
    entry.command = compiled.command;
    entry.declared = declared;
    if (options.group !== undefined) entry.group = this.#group(options.group);
    const starts: Promise<Instance>[] = [];
    for (let i = 0; i < entry.min; i++) {
      const place = this.#room(entry);
      if (place === undefined || place === false) {
        for (const instance of [...entry.instances]) this.#drop(entry, instance);
        return fail(
          `no worker is free for its ${entry.min} warm instances (minInstances): all ${this.#maxWorkers} ` +
            `workers (concurrency.maxWorkers) are busy or kept warm`,
        );
      }
      starts.push(this.#startInstance(entry, place));
    }
    const started = await Promise.allSettled(starts);
    const failure = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failure) {
      for (const instance of [...entry.instances]) this.#drop(entry, instance);
      const reason = failure.reason;
      if (reason instanceof StartFailure) fail(`its ${reason.detail}`, reason.error);
      fail(`it failed to start: ${reason instanceof Error ? reason.message : String(reason)}`, reason);
    }
    if (this.#closed || this.#entries.has(name)) {
      for (const instance of [...entry.instances]) this.#drop(entry, instance);
      this.#assertOpen();
      throw new TypeError(`A plugin named "${name}" is already loaded`);
    }
    this.#entries.set(name, entry);
    for (const s of started) if (s.status === "fulfilled") this.#release(entry, s.value);
    return plugin;
  }

  /**
   * Runs one export of a loaded plugin.
   *
   * @param plugin The plugin (as `load` returned it) or its name.
   * @param exportName The function to call.
   * @param input The input bytes (or a string, UTF-8 encoded).
   * @param options Host context for host functions, a shorter deadline, a call id.
   * @returns The output bytes.
   * @throws {PluginNotFoundError} Unknown plugin or export.
   * @throws {PluginLimitError} Input or output too large.
   * @throws {SaturatedError} The plugin's or the host's queue is full (at once).
   * @throws {PluginDeadlineError} The deadline passed (the instance was replaced).
   * @throws {PluginTrapError} The plugin trapped (the instance was replaced).
   * @throws {PluginMemoryError} The plugin passed its memory cap (the instance was replaced).
   * @throws {PluginReportedError} The plugin reported an error of its own.
   */
  async invoke(
    plugin: PluginInfo | string,
    exportName: string,
    input: Uint8Array | string = new Uint8Array(),
    options: InvokeOptions<C> = {},
  ): Promise<Uint8Array> {
    this.#assertOpen();
    const started = performance.now();
    const name = typeof plugin === "string" ? plugin : plugin.name;
    const entry = this.#entries.get(name);
    const where = { plugin: name, export: exportName };
    if (!entry || (typeof plugin !== "string" && entry.info !== plugin)) {
      throw new PluginNotFoundError(`Plugin "${name}" is not loaded`, where);
    }
    if (!entry.info.exports.includes(exportName)) {
      const why = exportName.startsWith("__keycard") || entry.spec.initExports.includes(INIT_PREFIX + exportName)
        ? ": it is start code, which keycard runs once per instance at start and never on request"
        : entry.declared
        ? `: only its declared exports may be invoked (${quoteList(entry.declared)})`
        : "";
      throw new PluginNotFoundError(`Plugin "${name}" has no export "${exportName}"${why}`, where);
    }
    if (entry.startFailure) throw entry.startFailure;
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    const limits = entry.info.limits;
    if (bytes.length > limits.inputBytes) {
      throw new PluginLimitError(
        `Input of ${bytes.length} bytes to "${name}" "${exportName}" exceeds the limit of ${limits.inputBytes} bytes`,
        { ...where, limit: "inputBytes" },
      );
    }
    const deadlineMs = Math.min(options.deadlineMs ?? limits.deadlineMs, limits.deadlineMs);
    const deadlineAt = started + deadlineMs;
    const controller = new AbortController();
    const deadlineError = () =>
      new PluginDeadlineError(`Call of "${name}" "${exportName}" passed its ${deadlineMs} ms deadline`, {
        ...where,
        deadlineMs,
      });
    const queueTimer = setTimeout(() => controller.abort(deadlineError()), deadlineMs);
    const releases: Release[] = [];
    const task = (async () => {
      try {
        releases.push(await this.#admit(entry.semaphore, "plugin", where, entry, controller.signal));
        releases.push(await this.#admit(this.#global, "global", where, entry, controller.signal));
        const instance = await this.#acquire(entry, controller.signal);
        clearTimeout(queueTimer);
        return await this.#run(entry, instance, exportName, bytes, {
          deadlineAt,
          controller,
          deadlineError,
          state: {
            info: entry.info,
            export: exportName,
            callId: options.callId ?? crypto.randomUUID(),
            hostContext: options.hostContext,
            signal: controller.signal,
          },
        });
      } finally {
        clearTimeout(queueTimer);
        for (const release of releases.reverse()) release();
        const elapsed = performance.now() - started;
        entry.averageMs = entry.averageMs * 0.9 + elapsed * 0.1;
      }
    })();
    this.#running.add(task);
    task.then(() => this.#running.delete(task), () => this.#running.delete(task));
    return await task;
  }

  /**
   * Stops a plugin: waiting calls are refused, running ones finish, its
   * workers stop.
   *
   * @param plugin The plugin or its name.
   * @returns Whether a plugin of that name was loaded.
   */
  async unload(plugin: PluginInfo | string): Promise<boolean> {
    const name = typeof plugin === "string" ? plugin : plugin.name;
    const entry = this.#entries.get(name);
    if (!entry) return false;
    this.#entries.delete(name);
    entry.unloaded = true;
    const unloaded = new PluginNotFoundError(`Plugin "${name}" was unloaded`, { plugin: name });
    entry.semaphore.rejectAll(unloaded);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(unloaded);
    for (const instance of entry.idle.splice(0)) this.#drop(entry, instance);
    // Wait for running calls: each holds a plugin permit.
    const drained = Array.from({ length: entry.info.limits.instances }, () => entry.semaphore.acquire());
    await Promise.all(drained.map((p) => p?.catch(() => {})));
    for (const instance of [...entry.instances]) this.#drop(entry, instance);
    return true;
  }

  /** The loaded plugins. */
  plugins(): PluginInfo[] {
    return [...this.#entries.values()].map((e) => e.info);
  }

  /** Counters and gauges for metrics and tests. */
  stats(): HostStats {
    let idle = 0;
    let queued = this.#global.queued;
    for (const entry of this.#entries.values()) {
      idle += entry.idle.length;
      queued += entry.semaphore.queued;
    }
    return {
      plugins: this.#entries.size,
      instances: this.#live.size,
      busy: this.#live.size - idle,
      starting: this.#starting,
      spares: this.#spares.length,
      queued,
      ...this.#stats,
    };
  }

  /**
   * Per-plugin numbers: live instances, their linear memory, calls, replacements.
   *
   * @returns One row per loaded plugin, in load order.
   */
  pluginStats(): PluginStats[] {
    return [...this.#entries.values()].map((entry) => {
      let memoryBytes = 0;
      for (const instance of entry.instances) memoryBytes += instance.memoryBytes;
      return {
        plugin: entry.info.name,
        ...(entry.info.group === undefined ? {} : { group: entry.info.group }),
        instances: entry.instances.size,
        memoryBytes,
        calls: entry.calls,
        replacements: entry.replacements,
      };
    });
  }

  /**
   * The host's workers and an estimate of what each costs.
   *
   * @returns Live workers, plugins per worker, and the process RSS shared among them.
   */
  workerStats(): WorkerStats {
    const workers = this.#spares.length + this.#shells.size;
    const rss = Deno.memoryUsage().rss;
    const plugins = new Map<string, number>();
    for (const entry of this.#entries.values()) {
      if (entry.info.group !== undefined) plugins.set(entry.info.group, (plugins.get(entry.info.group) ?? 0) + 1);
    }
    return {
      workers,
      pluginsPerWorker: this.#shells.size === 0 ? 0 : this.#live.size / this.#shells.size,
      rssShareBytes: workers === 0 ? 0 : Math.round(rss / workers),
      groups: [...this.#groups].map(([group, { shells }]) => ({
        group,
        workers: shells.size,
        plugins: plugins.get(group) ?? 0,
      })),
    };
  }

  /** Refuses new calls, lets running ones finish (each within its deadline), then stops every worker. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing = new PluginRuntimeError("The plugin host is closing", { plugin: "*" });
    this.#global.rejectAll(closing);
    for (const entry of this.#entries.values()) {
      entry.semaphore.rejectAll(closing);
      for (const waiter of entry.waiters.splice(0)) waiter.reject(closing);
    }
    this.#roomQueue = [];
    await Promise.allSettled([...this.#running]);
    for (const entry of this.#entries.values()) {
      for (const instance of [...entry.instances]) this.#drop(entry, instance);
    }
    for (const instance of this.#live) {
      clearTimeout(instance.idleTimer);
      instance.terminate();
    }
    this.#live.clear();
    this.#entryOf.clear();
    for (const shell of this.#shells) shell.terminate();
    this.#shells.clear();
    this.#entries.clear();
    clearTimeout(this.#refillTimer);
    for (const shell of this.#spares.splice(0)) shell.terminate();
  }

  /** Closes the host, as {@linkcode PluginHost.close} does, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new PluginRuntimeError("The plugin host is closed", { plugin: "*" });
  }

  #compile(wasm: Uint8Array, sha256: string, maxPages: number, command: boolean) {
    const key = `${sha256}/${maxPages}/${command ? "command" : "library"}`;
    let compiled = this.#modules.get(key);
    if (!compiled) {
      compiled = (async () => {
        if (!WebAssembly.validate(wasm as BufferSource)) {
          // Compile only to get the engine's message.
          await WebAssembly.compile(wasm as BufferSource);
        }
        const instrumented = instrumentModule(wasm, { maxPages, command });
        const module = await WebAssembly.compile(instrumented.bytes as BufferSource);
        return { module, initExports: instrumented.initExports, command: instrumented.command };
      })();
      this.#modules.set(key, compiled);
      compiled.catch(() => this.#modules.delete(key));
    }
    return compiled;
  }

  #takeShell(): WorkerShell {
    const shell = this.#spares.shift() ?? new WorkerShell();
    // `new Worker()` blocks this thread for ~10 ms: refill after the load or
    // call that took the spare, not inside it.
    if (!this.#refillTimer) {
      this.#refillTimer = setTimeout(() => {
        this.#refillTimer = undefined;
        this.#refillSpares();
      }, REFILL_DELAY_MS);
    }
    return shell;
  }

  #refillSpares(): void {
    while (
      !this.#closed && this.#spares.length < this.#spareTarget &&
      this.#shells.size + this.#spares.length < this.#maxWorkers
    ) {
      const shell = new WorkerShell();
      shell.booted.catch(() => {
        const index = this.#spares.indexOf(shell);
        if (index >= 0) this.#spares.splice(index, 1);
      });
      this.#spares.push(shell);
    }
  }

  /** The isolation group of that name, created at its first plugin. */
  #group(name: string): Group {
    let group = this.#groups.get(name);
    if (!group) {
      group = { workers: this.#groupOptions[name]?.workers ?? GROUP_WORKERS, shells: new Set() };
      this.#groups.set(name, group);
    }
    return group;
  }

  /**
   * Where one more instance of `entry` goes (see {@linkcode Placement}). A
   * group spreads its plugins over up to `workers` workers, then shares the
   * least loaded one that hosts none of the plugin yet. A new worker past
   * `maxWorkers` retires the least recently used idle instance that is not
   * kept warm and is alone in its worker. Call `#startInstance` right after.
   */
  #room(entry: PluginEntry): Placement {
    const group = entry.group;
    if (!group) return this.#freeWorker(true) ? null : undefined;
    let best: WorkerShell | undefined;
    let active = 0;
    for (const shell of group.shells) {
      if (shell.draining) continue;
      active++;
      if (entry.instances.size > 0 && [...shell.instances].some((i) => i.spec === entry.spec)) continue;
      if (!best || shell.instances.size < best.instances.size) best = shell;
    }
    if (active < group.workers && this.#freeWorker(false)) return null;
    if (best) return best;
    if (active < group.workers && this.#freeWorker(true)) return null;
    return active >= group.workers ? false : undefined;
  }

  /** Whether a worker can be added under `maxWorkers` (a spare, or a new one), retiring an idle one if `retire`. */
  #freeWorker(retire: boolean): boolean {
    if (this.#spares.length > 0 || this.#shells.size + this.#spares.length < this.#maxWorkers) return true;
    if (!retire) return false;
    // The worker whose instances are all idle and none kept warm, used least recently (by its latest call): retiring
    // them all ends it (one instance for a plugin's own worker, every one in it for a group's).
    let victim: { shell: WorkerShell; lastUsed: number } | undefined;
    for (const shell of this.#shells) {
      let lastUsed = -Infinity;
      let free = shell.instances.size > 0;
      for (const instance of shell.instances) {
        const entry = this.#entryOf.get(instance);
        if (!entry || !entry.idle.includes(instance) || entry.instances.size <= entry.min) {
          free = false;
          break;
        }
        lastUsed = Math.max(lastUsed, instance.lastUsed);
      }
      if (free && (!victim || lastUsed < victim.lastUsed)) victim = { shell, lastUsed };
    }
    if (!victim) return false;
    for (const instance of [...victim.shell.instances]) this.#retire(this.#entryOf.get(instance)!, instance, "lru");
    return true;
  }

  #retire(entry: PluginEntry, instance: Instance, reason: "idle" | "lru"): void {
    this.#stats.retired++;
    // The room goes to whoever asked for it (lru), not to the queue.
    this.#drop(entry, instance, reason === "idle");
    try {
      this.#onRetire?.({ plugin: entry.info.name, reason });
    } catch {
      // A listener's failure is not the host's.
    }
  }

  /**
   * Ends an instance and its worker. The freed room goes to the calls waiting
   * for one (`drain`), and a call of this plugin left without an instance
   * gets a new one queued for it.
   */
  #drop(entry: PluginEntry, instance: Instance, drain = true): void {
    clearTimeout(instance.idleTimer);
    const index = entry.idle.indexOf(instance);
    if (index >= 0) entry.idle.splice(index, 1);
    entry.instances.delete(instance);
    this.#live.delete(instance);
    this.#entryOf.delete(instance);
    instance.terminate();
    // A worker of its own ends with it; a group's worker with its last instance.
    const shell = instance.shell;
    if (shell.instances.size === 0) this.#endShell(shell);
    if (this.#closed) return;
    if (!entry.unloaded && entry.waiters.length > entry.pendingStarts) this.#roomQueue.push(entry);
    if (drain) this.#drainRoom();
  }

  /** Ends a worker that hosts no instance any more. */
  #endShell(shell: WorkerShell): void {
    if (!shell.terminated) shell.terminate();
    this.#shells.delete(shell);
    if (shell.group !== undefined) this.#groups.get(shell.group)?.shells.delete(shell);
  }

  /**
   * Gives up on a worker that did not stop after an interrupt: every instance
   * it hosts is dropped with it (one for a plugin's own worker; a group's
   * plugins lose their instances in it, and their calls in flight fail).
   */
  #killShell(shell: WorkerShell): void {
    this.#stats.stuckWorkers++;
    shell.terminate();
    for (const instance of [...shell.instances]) {
      const entry = this.#entryOf.get(instance);
      if (entry) this.#drop(entry, instance, false);
      else instance.terminate();
    }
    this.#endShell(shell);
    this.#drainRoom();
  }

  /** Starts instances for waiting calls, first come first served, while there is room. */
  #drainRoom(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#roomQueue.length > 0 && !this.#closed) {
        const entry = this.#roomQueue[0]!;
        const place = entry.unloaded || entry.waiters.length <= entry.pendingStarts ||
            entry.instances.size >= entry.cap
          ? false
          : this.#room(entry);
        // No more instances of it: its calls wait for one of its own to free.
        if (place === false) {
          this.#roomQueue.shift();
          continue;
        }
        if (place === undefined) break;
        this.#roomQueue.shift();
        entry.pendingStarts++;
        this.#startInstance(entry, place).then((instance) => {
          entry.pendingStarts--;
          this.#release(entry, instance);
        }, (error) => {
          entry.pendingStarts--;
          entry.waiters.shift()?.reject(startError(entry, error));
        });
      }
    } finally {
      this.#draining = false;
    }
  }

  async #startInstance(entry: PluginEntry, place: WorkerShell | null): Promise<Instance> {
    let shell = place;
    if (!shell) {
      shell = this.#takeShell();
      this.#shells.add(shell);
      if (entry.info.group !== undefined) {
        shell.group = entry.info.group;
        entry.group!.shells.add(shell);
      }
    }
    const instance = new Instance(shell, entry.spec);
    entry.instances.add(instance);
    this.#live.add(instance);
    this.#entryOf.set(instance, entry);
    this.#starting++;
    const outcome = await instance.instantiate(entry.info.limits.deadlineMs).finally(() => this.#starting--);
    if (!outcome.ok) {
      if (outcome.stuck) this.#killShell(instance.shell);
      else this.#drop(entry, instance);
      const failure = new StartFailure(entry.info, outcome);
      entry.startDeadlines = outcome.kind === "deadline" ? entry.startDeadlines + 1 : 0;
      // A loaded plugin (not one being loaded: load() reports its own) whose start code fails for good.
      const forGood = outcome.kind !== "deadline" || entry.startDeadlines >= 2;
      if (forGood && entry.startFailure === undefined && this.#entries.get(entry.info.name) === entry) {
        entry.startFailure = failure.error;
        for (const waiter of entry.waiters.splice(0)) waiter.reject(failure.error);
        this.#onStartFailure?.({ plugin: entry.info.name, error: failure.error });
      }
      throw failure;
    }
    entry.startDeadlines = 0;
    return instance;
  }

  #admit(
    semaphore: Semaphore,
    scope: "plugin" | "global",
    where: { plugin: string; export: string },
    entry: PluginEntry,
    signal: AbortSignal,
  ): Promise<Release> {
    const waiting = semaphore.acquire(signal);
    if (waiting) return waiting;
    this.#stats.rejected++;
    const retryAfterMs = Math.ceil(
      Math.min(5000, Math.max(10, entry.averageMs * (semaphore.queued + 1) / semaphore.permits)),
    );
    throw new SaturatedError(
      scope === "plugin"
        ? `Plugin "${where.plugin}" is saturated: ${semaphore.permits} calls running and ${semaphore.queued} queued`
        : `The plugin host is saturated: ${semaphore.permits} calls running and ${semaphore.queued} queued`,
      { ...where, scope, retryAfterMs },
    );
  }

  /**
   * An idle instance, a new one while under the plugin's cap and there is
   * room under `maxWorkers`, or the next one freed or started for it.
   */
  #acquire(entry: PluginEntry, signal: AbortSignal): Promise<Instance> {
    // A call admitted just before close() or unload() gets no instance: no one would serve its wait.
    if (this.#closed) return Promise.reject(new PluginRuntimeError("The plugin host is closing", { plugin: "*" }));
    if (entry.unloaded) {
      const name = entry.info.name;
      return Promise.reject(new PluginNotFoundError(`Plugin "${name}" was unloaded`, { plugin: name }));
    }
    const idle = entry.idle.pop();
    if (idle) {
      clearTimeout(idle.idleTimer);
      return Promise.resolve(idle);
    }
    let underCap = entry.instances.size < entry.cap;
    const place = underCap && this.#roomQueue.length === 0 ? this.#room(entry) : undefined;
    if (place === false) underCap = false;
    if (place !== undefined && place !== false) {
      const starting = this.#startInstance(entry, place).catch((error) => {
        throw startError(entry, error);
      });
      // A cold start (a worker boot, on a loaded machine) may outlast the
      // caller's deadline: the caller hears at its deadline, and the instance
      // still starts and serves the next call.
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          reject(signal.reason);
          starting.then((instance) => this.#release(entry, instance), () => {});
        };
        signal.addEventListener("abort", onAbort, { once: true });
        starting.then((instance) => {
          signal.removeEventListener("abort", onAbort);
          resolve(instance);
        }, (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        });
      });
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        entry.waiters = entry.waiters.filter((w) => w !== waiter);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: (instance) => {
          signal.removeEventListener("abort", onAbort);
          resolve(instance);
        },
        reject: (reason) => {
          signal.removeEventListener("abort", onAbort);
          reject(reason);
        },
      };
      entry.waiters.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
      // Under its own cap, the call waits for room under `maxWorkers` too.
      if (underCap) {
        this.#roomQueue.push(entry);
        this.#drainRoom();
      }
    });
  }

  /** Hands a free instance to the next waiting call, or keeps it idle until `idleMs` passes. */
  #release(entry: PluginEntry, instance: Instance): void {
    if (entry.unloaded || this.#closed) return this.#drop(entry, instance);
    if (instance.shell.draining || instance.shell.calls >= this.#recycle.calls) {
      return this.#recycleWorker(entry, instance);
    }
    const waiter = entry.waiters.shift();
    if (waiter) return waiter.resolve(instance);
    instance.lastUsed = performance.now();
    entry.idle.push(instance);
    clearTimeout(instance.idleTimer);
    instance.idleTimer = setTimeout(() => {
      instance.idleTimer = undefined;
      if (entry.idle.includes(instance) && entry.instances.size > entry.min) this.#retire(entry, instance, "idle");
    }, this.#idleMs);
    Deno.unrefTimer(instance.idleTimer);
    // Another plugin's call may be waiting for room this instance can make.
    if (this.#roomQueue.length > 0) this.#drainRoom();
  }

  /**
   * Gives an instance a fresh plugin instance in the same worker, or drops
   * it: after a failure (counted in `replaced`), or after a WASI command ran
   * (a program runs once per instance, as wasi-libc's `_start` insists).
   */
  #replace(entry: PluginEntry, instance: Instance, failed = true): void {
    if (failed) {
      this.#stats.replaced++;
      entry.replacements++;
    }
    if (entry.unloaded || this.#closed) return this.#drop(entry, instance);
    if (instance.shell.draining || instance.shell.instantiations >= this.#recycle.instantiations) {
      return this.#recycleWorker(entry, instance);
    }
    instance.instantiate(entry.info.limits.deadlineMs).then((outcome) => {
      if (outcome.ok) {
        this.#release(entry, instance);
      } else if (outcome.stuck) {
        this.#killShell(instance.shell);
      } else {
        // A waiting call gets a new instance from #drop.
        this.#drop(entry, instance);
      }
    });
  }

  /**
   * Ends an instance's worker (all the memory its isolate holds goes with
   * it). A waiting call gets a new instance, from a spare worker; so does a
   * plugin kept warm (`minInstances`); otherwise the next call starts one.
   */
  #recycleWorker(entry: PluginEntry, instance: Instance): void {
    const shell = instance.shell;
    const affected = new Set([entry]);
    if (!shell.draining) {
      this.#stats.recycled++;
      shell.draining = true;
      // A group's worker takes no new instance and ends with its last one: its idle ones go now, busy ones as they
      // finish.
      for (const other of [...shell.instances]) {
        const owner = this.#entryOf.get(other);
        if (other === instance || !owner || !owner.idle.includes(other)) continue;
        affected.add(owner);
        this.#drop(owner, other, false);
      }
    }
    this.#drop(entry, instance);
    for (const owner of affected) this.#warm(owner);
  }

  /** Starts instances of a plugin kept warm (`minInstances`) until it has them. */
  #warm(entry: PluginEntry): void {
    while (!entry.unloaded && !this.#closed && entry.instances.size < entry.min) {
      const place = this.#room(entry);
      if (place === undefined || place === false) return;
      this.#startInstance(entry, place).then((fresh) => this.#release(entry, fresh), () => {});
    }
  }

  async #run(
    entry: PluginEntry,
    instance: Instance,
    exportName: string,
    input: Uint8Array,
    call: {
      deadlineAt: number;
      controller: AbortController;
      deadlineError: () => PluginDeadlineError;
      state: CallState;
    },
  ): Promise<Uint8Array> {
    const where = { plugin: entry.info.name, export: exportName };
    const remaining = call.deadlineAt - performance.now();
    if (remaining <= 0) {
      this.#release(entry, instance);
      throw call.deadlineError();
    }
    instance.current = call.state;
    const program = entry.command && exportName === "_start";
    let stopTimer: ReturnType<typeof setTimeout> | undefined;
    const outcome = new Promise<CallOutcome>((resolve) => {
      instance.call(program ? COMMAND_EXPORT : exportName, input, remaining, () => {
        call.controller.abort(call.deadlineError());
        // The caller hears now; the worker stops at its next check. If it
        // still runs this call after the grace period, the worker is given up
        // on; a call waiting behind another plugin's call in a group's worker
        // waits on that call's own deadline (and is then skipped, not run).
        resolve({ ok: false, kind: "deadline", message: "deadline" });
        const giveUp = () => {
          if (instance.running) this.#killShell(instance.shell);
          else stopTimer = setTimeout(giveUp, STOP_GRACE_MS);
        };
        stopTimer = setTimeout(giveUp, STOP_GRACE_MS);
      }).then((result) => {
        clearTimeout(stopTimer);
        instance.current = undefined;
        // Ended with its worker (given up on, or the host closed): nothing to replace.
        if (instance.terminated) {
          // Already dropped.
        } else if (result.ok || result.kind === "reported" || result.kind === "output") {
          if (call.controller.signal.aborted) this.#replace(entry, instance);
          else if (program) this.#replace(entry, instance, false);
          else this.#release(entry, instance);
        } else {
          this.#replace(entry, instance);
        }
        resolve(result);
      });
    });
    const result = await outcome;
    entry.calls++;
    if (result.ok) return result.output;
    switch (result.kind) {
      case "deadline":
        throw call.deadlineError();
      case "memory":
        throw new PluginMemoryError(
          `Plugin "${where.plugin}" "${exportName}" exceeded its memory cap of ${
            entry.info.limits.memoryPages * 64
          } KiB: ${result.message}`,
          { ...where, limitBytes: entry.info.limits.memoryPages * 65536 },
        );
      case "output":
        throw new PluginLimitError(`Plugin "${where.plugin}" "${exportName}": ${result.message}`, {
          ...where,
          limit: "outputBytes",
        });
      case "reported":
        throw new PluginReportedError(`Plugin "${where.plugin}" "${exportName}" failed: ${result.message}`, {
          ...where,
          detail: result.message,
        });
      case "exit":
        throw new PluginTrapError(
          `Plugin "${where.plugin}" "${exportName}" exited with code ${result.message}: ` +
            `a WASI exit code other than 0 is a failure`,
          where,
        );
      default:
        throw new PluginTrapError(`Plugin "${where.plugin}" "${exportName}" trapped: ${result.message}`, where);
    }
  }

  /** Tells a host function of calls refused without it; its failure never reaches the plugin. */
  #refused(hostFunction: HostFunction<C> | undefined, context: HostCallContext<C>, refusal: HostCallRefusal): void {
    try {
      hostFunction?.refused?.(context, refusal);
    } catch {
      // The refusal stands either way.
    }
  }

  #handleHostCall(
    entry: PluginEntry,
    instance: Instance,
    fn: number,
    payload: Uint8Array,
  ): Uint8Array | Promise<Uint8Array> {
    const hostFunction = this.#hostFunctions[fn];
    if (!hostFunction && fn !== REFUSED_CALLS) return errorResponse("unknown_function", `No host function #${fn}`);
    const state = instance.current as CallState | undefined;
    const signal = state?.signal ?? AbortSignal.timeout(entry.info.limits.deadlineMs);
    const context: HostCallContext<C> = {
      plugin: entry.info,
      export: state?.export ?? "(init)",
      callId: state?.callId ?? "init",
      hostContext: state?.hostContext as C | undefined,
      signal,
    };
    if (!hostFunction) {
      const message = `The call made more than ${entry.info.limits.hostCalls} host calls`;
      for (const [index, count] of JSON.parse(new TextDecoder().decode(payload)) as [number, number][]) {
        this.#refused(this.#hostFunctions[index], context, { count, code: "limit", message });
      }
      return okResponse(new Uint8Array());
    }
    if (signal.aborted) {
      const message = "The call passed its deadline";
      this.#refused(hostFunction, context, { count: 1, code: "deadline", message });
      return errorResponse("deadline", message);
    }
    let result: Uint8Array | Promise<Uint8Array>;
    try {
      result = hostFunction(payload, context);
    } catch (error) {
      return hostFailure(error);
    }
    if (result instanceof Uint8Array) return okResponse(result);
    // An async host function: answer at the deadline at the latest.
    return new Promise<Uint8Array>((resolve) => {
      const onAbort = () => resolve(errorResponse("deadline", "The call passed its deadline"));
      signal.addEventListener("abort", onAbort, { once: true });
      result.then(okResponse, hostFailure).then((response) => {
        signal.removeEventListener("abort", onAbort);
        resolve(response);
      });
    });
  }
}

/** Start code failed: `detail` reads after "its", `error` is the typed error a call waiting for the instance gets. */
class StartFailure extends Error {
  readonly detail: string;
  readonly error: PluginRuntimeError;

  constructor(plugin: PluginInfo, outcome: { kind: FailureKind; message: string; start?: string }) {
    const what = outcome.start === undefined ? "instantiation" : `start code "${outcome.start}"`;
    const deadlineMs = plugin.limits.deadlineMs;
    const limitBytes = plugin.limits.memoryPages * 65536;
    const detail = outcome.kind === "deadline"
      ? `${what} passed its ${deadlineMs} ms deadline (start code runs under the call deadline)`
      : outcome.kind === "memory"
      ? `${what} exceeded the memory cap of ${limitBytes / 1024} KiB: ${outcome.message}`
      : outcome.kind === "exit"
      ? `${what} exited with code ${outcome.message}: a WASI exit code other than 0 is a failure`
      : `${what} trapped: ${outcome.message}`;
    super(detail);
    this.name = "StartFailure";
    this.detail = detail;
    const message = `Plugin "${plugin.name}" failed to start: its ${detail}`;
    const options = { plugin: plugin.name };
    this.error = outcome.kind === "deadline"
      ? new PluginDeadlineError(message, { ...options, deadlineMs })
      : outcome.kind === "memory"
      ? new PluginMemoryError(message, { ...options, limitBytes })
      : new PluginTrapError(message, options);
  }
}

/** The error a call gets when the instance started for it failed to start. */
function startError(entry: PluginEntry, error: unknown): unknown {
  if (error instanceof StartFailure) return error.error;
  return new PluginTrapError(
    `Plugin "${entry.info.name}" failed to start: ${error instanceof Error ? error.message : String(error)}`,
    { plugin: entry.info.name, cause: error },
  );
}

function quoteList(names: readonly string[]): string {
  return names.length === 0 ? "none" : names.map((n) => `"${n}"`).join(", ");
}

function hostFailure(error: unknown): Uint8Array {
  if (error instanceof HostCallError) return errorResponse(error.code, error.message);
  return errorResponse("io", error instanceof Error ? error.message : String(error));
}

function checkLimits(limits: PluginLimits): PluginLimits {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < (key === "queue" || key === "minInstances" ? 0 : 1)) {
      throw new RangeError(
        `Limit "${key}" must be a ${
          key === "queue" || key === "minInstances" ? "non-negative" : "positive"
        } integer, got ${JSON.stringify(value)}`,
      );
    }
  }
  if (limits.memoryPages > 65536) throw new RangeError(`Limit "memoryPages" must be at most 65536 (4 GiB)`);
  return limits;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
