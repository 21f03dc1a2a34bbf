// The plugin isolate: a Deno Worker started with no permissions at all. It
// runs Extism plugins in foreground mode, each instance in a slot of its own
// (one slot for `isolation: plugin`; one per plugin of an isolation group
// sharing the worker): each slot has its own wasm instance, linear memory,
// interrupt flag, limits, host-call bridge and call channel, so a trap,
// deadline or memory overrun drops only that slot's instance. Its only way
// out is the host-call bridge. It never decides anything: the main thread does.

/// <reference lib="deno.worker" />
import process from "node:process";
import { BlockOverrun, BlockTable } from "./_blocks.ts";
import { BridgeClient, errorResponse, REFUSED_CALLS } from "./_bridge.ts";
import { type ChannelResult, ChannelServer } from "./_channel.ts";
import { MAIL, QUIT, RUNNING, WORK } from "./_protocol.ts";
import {
  HTTP_IMPORT_MODULE,
  INIT_PREFIX,
  INTERRUPT,
  INTERRUPT_EXPORT,
  START_EXPORT,
  TRAP_REASON,
  WASI_IMPORT_MODULE,
} from "./instrument_module.ts";
import { WasiExit, wasiImports } from "./_wasi.ts";
import type { WorkerReply, WorkerRequest } from "./_protocol.ts";
import type { CallContext } from "@extism/extism";

// The Extism SDK reads two environment variables while it loads; this worker
// has no env permission, so it must see an empty environment instead.
Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true });
const { createPlugin } = await import("@extism/extism");
type Plugin = Awaited<ReturnType<typeof createPlugin>>;

/** One plugin instance and everything it owns; see the header. */
interface Slot {
  id: number;
  plugin: Plugin | undefined;
  interrupt: Int32Array | undefined;
  limits: { allocBytes: number; outputBytes: number; hostCalls: number; hostIoBytes: number };
  // Per-call state, reset by every call.
  blocks: BlockTable;
  memoryOverrun: string;
  hostCalls: number;
  /** Host calls refused past the `hostCalls` cap, by function index, until reportRefused() sends them. */
  refused: Map<number, number>;
  reportRefused: () => void;
  /** The instance's linear memory. */
  linear: WebAssembly.Memory | undefined;
  channel: ChannelServer;
}

/** The slots serving calls, by id. */
const slots = new Map<number, Slot>();

function refuse(slot: Slot, fn: number): void {
  slot.refused.set(fn, (slot.refused.get(fn) ?? 0) + 1);
}

/** A console that prints nothing: Extism's SDK logs its own complaints to it. */
type Logger = NonNullable<NonNullable<Parameters<typeof createPlugin>[1]>["logger"]>;
const SILENT = Object.fromEntries(
  ["trace", "debug", "info", "warn", "error", "log"].map((name) => [name, () => {}]),
) as unknown as Logger;

function post(reply: WorkerReply): void {
  self.postMessage(reply);
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error !== null) {
    // Extism rejects some traps with plain objects.
    const message = (error as { message?: unknown }).message;
    return typeof message === "string" ? message : JSON.stringify(error);
  }
  return String(error);
}

/**
 * Dropped instances' linear memories go back to the system only when V8
 * collects. V8 does not count wasm memory as external memory, and this
 * isolate allocates next to nothing, so its GC would not run for hundreds of
 * dropped instances (measured: +320 MiB RSS per 20 dropped 16 MiB instances,
 * until a GC took it all back). With `--expose-gc` (every keycard process
 * has it) the worker runs a full GC of its small heap (~1-3 ms); without it,
 * allocating 256 MiB of untouched ArrayBuffers (counted as external memory,
 * never resident) sets one off, less completely: 3,000 fill-16-MiB-and-trap
 * replacements swung RSS over 192-215 MiB with `gc()`, 206-305 MiB with the
 * ArrayBuffers. Done once this much dropped memory is waiting, so a WASI
 * command (a fresh instance per call) does not pay a GC per call.
 */
const COLLECT_AFTER_BYTES = 16 << 20;
/** The bytes of dropped instances' linear memories not yet collected. */
let droppedBytes = 0;

/** Drops a slot's instance for good (after a trap, or when the main thread asks). */
function dropInstance(slot: Slot): void {
  slots.delete(slot.id);
  droppedBytes += slot.linear?.buffer.byteLength ?? 0;
  slot.linear = undefined;
  slot.plugin = undefined;
  if (droppedBytes < COLLECT_AFTER_BYTES) return;
  droppedBytes = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) return gc();
  // Without --expose-gc: external-memory pressure makes V8 collect.
  for (let i = 0; i < 4; i++) void new ArrayBuffer(64 << 20);
}

/**
 * Creates a slot's instance and runs its start code.
 * @param own The worker's own cells (its quit flag is read while a host call waits).
 * @param host The host's shared cells (the doorbell the slot's channel rings).
 */
async function instantiate(
  request: Extract<WorkerRequest, { type: "instantiate" }>,
  own: Int32Array,
  host: Int32Array,
): Promise<void> {
  const slot: Slot = {
    id: request.slot,
    plugin: undefined,
    interrupt: undefined,
    limits: request.limits,
    blocks: new BlockTable(request.limits.allocBytes),
    memoryOverrun: "",
    hostCalls: 0,
    refused: new Map(),
    reportRefused: () => {},
    linear: undefined,
    channel: new ChannelServer(request.channel, host, () => slot.linear?.buffer.byteLength ?? 0),
  };
  const limits = slot.limits;
  const table = slot.blocks;
  // A block past the cap fails the call as a memory overrun, with its reason.
  const guarded = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof BlockOverrun) slot.memoryOverrun = error.message;
      throw error;
    }
  };
  const channel = slot.channel;
  const bridge = new BridgeClient(request.bridge, () => channel.ring());
  const interrupted = () => {
    if (slot.interrupt === undefined) return Atomics.load(own, QUIT) !== 0;
    // The worker is being ended: the instance stops at its next check, as at a deadline.
    if (Atomics.load(own, QUIT) !== 0) Atomics.store(slot.interrupt, INTERRUPT.flag / 4, 1);
    return Atomics.load(slot.interrupt, INTERRUPT.flag / 4) !== 0;
  };
  // Refusals past the cap go to the host in one bridge call at the end of the
  // call (or start code), so that they are audited and counted while a plugin
  // looping past the cap costs the main thread nothing per call.
  slot.reportRefused = () => {
    if (slot.refused.size === 0) return;
    const counts = new TextEncoder().encode(JSON.stringify([...slot.refused]));
    slot.refused = new Map();
    bridge.call(REFUSED_CALLS, counts, interrupted);
  };
  const user: Record<string, (ctx: CallContext, offset: bigint) => bigint> = {};
  request.hostFunctions.forEach((name, index) => {
    user[name] = (ctx, offset) => {
      const payload = ctx.read(offset)?.bytes() ?? new Uint8Array();
      let response: Uint8Array;
      if (++slot.hostCalls > limits.hostCalls) {
        refuse(slot, index);
        response = errorResponse("limit", `The call made more than ${limits.hostCalls} host calls`);
      } else {
        response = bridge.call(index, payload, interrupted);
      }
      return guarded(() => table.store(ctx, response));
    };
  });
  const env: Record<string, (ctx: CallContext, ...args: bigint[]) => bigint | number> = {
    // Extism's own alloc checks its page limit only after allocating (and not
    // at all by default), and its block table never reuses an index (see
    // _blocks.ts): refuse first, reuse freed slots, remember why a call failed.
    alloc: (ctx: CallContext, size: bigint): bigint => {
      const n = Number(size);
      if (!(n >= 0) || n > limits.allocBytes) {
        slot.memoryOverrun = `Extism alloc of ${n} bytes would exceed the ${limits.allocBytes}-byte cap`;
        throw new RangeError(slot.memoryOverrun);
      }
      return guarded(() => table.alloc(ctx, n));
    },
    free: (ctx: CallContext, address: bigint): bigint => {
      table.free(ctx, address);
      return 0n; // ignored: free returns nothing
    },
    load_u8: (ctx: CallContext, address: bigint): number => table.loadU8(ctx, address),
    load_u64: (ctx: CallContext, address: bigint): bigint => table.loadU64(ctx, address),
  };
  const http = request.hostFunctions.indexOf("keycard_http_request");
  const log = request.hostFunctions.indexOf("keycard_log_write");
  for (const level of ["trace", "debug", "info", "warn", "error"]) {
    // Extism's log_<level>(message block): through keycard_log_write, so that
    // it is decided, audited and rate-capped like the plugin's other logs.
    env[`log_${level}`] = (ctx: CallContext, offset: bigint): bigint => {
      const message = ctx.read(offset)?.string() ?? "";
      if (log >= 0 && ++slot.hostCalls <= limits.hostCalls) {
        bridge.call(log, new TextEncoder().encode(JSON.stringify({ level, message })), interrupted);
      } else if (log >= 0) {
        refuse(slot, log);
      }
      return 0n;
    };
  }
  let linearMemory: WebAssembly.Memory | undefined;
  const wasiNames = WebAssembly.Module.imports(request.module).filter((i) => i.module === WASI_IMPORT_MODULE).map((
    i,
  ) => i.name);
  const wasi = wasiImports(wasiNames, {
    memory: () => linearMemory,
    variables: Object.keys(request.config),
    preopens: request.preopens,
    call: (name, json, body) => {
      const fn = request.hostFunctions.indexOf(name);
      if (fn < 0) return undefined;
      if (++slot.hostCalls > limits.hostCalls) {
        refuse(slot, fn);
        return undefined;
      }
      const head = new TextEncoder().encode(JSON.stringify(json));
      if (!body) return bridge.call(fn, head, interrupted);
      const payload = new Uint8Array(head.length + 1 + body.length);
      payload.set(head);
      payload.set(body, head.length + 1);
      return bridge.call(fn, payload, interrupted);
    },
  });
  let exports: WebAssembly.Exports;
  let plugin: Plugin;
  try {
    plugin = await createPlugin({ wasm: [{ module: request.module }] }, {
      useWasi: false,
      runInWorker: false,
      config: request.config,
      functions: {
        "extism:host/user": user,
        "extism:host/env": env,
        [HTTP_IMPORT_MODULE]: extismHttp(
          slot,
          bridge,
          http,
          interrupted,
          (ctx, bytes) => guarded(() => table.store(ctx, bytes)),
        ),
        // deno-lint-ignore no-explicit-any
        [WASI_IMPORT_MODULE]: wasi as Record<string, (ctx: CallContext, ...args: any[]) => any>,
      },
      // Extism's own logger stays silent; the log_* imports go to keycard's
      // log.write (decided and audited). "trace" makes PDKs send every level.
      logLevel: "trace",
      logger: SILENT,
      memory: { maxVarBytes: limits.hostIoBytes },
    });
    const instance = await plugin.getInstance();
    exports = instance.exports;
    linearMemory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : undefined;
    slot.linear = linearMemory;
    const memory = instance.exports[INTERRUPT_EXPORT] as WebAssembly.Memory;
    slot.interrupt = new Int32Array(memory.buffer);
    post({ type: "interrupt", slot: slot.id, buffer: memory.buffer as SharedArrayBuffer });
  } catch (error) {
    dropInstance(slot);
    post({ type: "failed", slot: slot.id, kind: classify(slot), message: describe(error) });
    return;
  }
  // Start code runs only now: the interrupt flag is with the main thread (its
  // deadline can stop it) and WASI calls can see the linear memory.
  for (const name of request.initExports) {
    const start = name === START_EXPORT ? "start section" : name.slice(INIT_PREFIX.length);
    try {
      (exports[name] as () => void)();
    } catch (error) {
      // proc_exit(0) ends that start function, successfully.
      if (error instanceof WasiExit && error.code === 0) continue;
      slot.reportRefused();
      dropInstance(slot);
      const exit = error instanceof WasiExit;
      post({
        type: "failed",
        slot: slot.id,
        kind: exit ? "exit" : classify(slot),
        message: exit ? String(error.code) : describe(error),
        start,
      });
      return;
    }
  }
  slot.reportRefused();
  slot.plugin = plugin;
  slots.set(slot.id, slot);
  post({ type: "ready", slot: slot.id, memoryBytes: slot.linear?.buffer.byteLength ?? 0 });
}

/**
 * Extism's built-in `http_request` ({"url","method","headers"} block plus a
 * body block) routed through keycard's own `keycard_http_request`, so that
 * it is authorized and audited hop by hop like every other host call. A
 * refusal fails the call, as Extism's own disallowed-host error does.
 */
function extismHttp(
  slot: Slot,
  bridge: BridgeClient,
  fn: number,
  interrupted: () => boolean,
  store: (ctx: CallContext, bytes: Uint8Array) => bigint,
) {
  let status = 0;
  let headers: string | undefined;
  return {
    http_request: (ctx: CallContext, requestOffset: bigint, bodyOffset: bigint): bigint => {
      const head = ctx.read(requestOffset)?.bytes() ?? new Uint8Array();
      const body = bodyOffset ? ctx.read(bodyOffset)?.bytes() : undefined;
      const payload = new Uint8Array(head.length + (body ? body.length + 1 : 0));
      payload.set(head);
      if (body) payload.set(body, head.length + 1);
      status = 0;
      headers = undefined;
      if (fn < 0) throw new Error("http_request is not available: the host offers no keycard_http_request");
      const response = ++slot.hostCalls > slot.limits.hostCalls
        ? (refuse(slot, fn), errorResponse("limit", `The call made more than ${slot.limits.hostCalls} host calls`))
        : bridge.call(fn, payload, interrupted);
      const text = new TextDecoder();
      if (response[0] !== 0) {
        const error = JSON.parse(text.decode(response.subarray(1))) as { code: string; message: string };
        throw new Error(`http_request failed: ${error.code}: ${error.message}`);
      }
      const nul = response.indexOf(0, 1);
      const meta = JSON.parse(text.decode(response.subarray(1, nul))) as {
        status: number;
        headers: Record<string, string>;
      };
      status = meta.status;
      headers = JSON.stringify(meta.headers);
      return store(ctx, response.subarray(nul + 1));
    },
    http_status_code: (): number => status,
    http_headers: (ctx: CallContext): bigint =>
      headers === undefined ? 0n : store(ctx, new TextEncoder().encode(headers)),
  };
}

function classify(slot: Slot): "deadline" | "memory" | "trap" {
  const interrupt = slot.interrupt;
  if (interrupt && Atomics.load(interrupt, INTERRUPT.flag / 4) !== 0) return "deadline";
  if (slot.memoryOverrun || (interrupt && Atomics.load(interrupt, INTERRUPT.reason / 4) === TRAP_REASON.memory)) {
    return "memory";
  }
  return "trap";
}

async function call(slot: Slot, name: string, input: Uint8Array): Promise<ChannelResult & { stop?: boolean }> {
  const plugin = slot.plugin;
  if (!plugin) return { ok: false, kind: "trap", message: "The plugin instance is not ready", stop: true };
  // A call whose deadline passed while it waited behind another slot's call
  // in this worker is not started: its flag is up and the instance is replaced.
  if (slot.interrupt && Atomics.load(slot.interrupt, INTERRUPT.flag / 4) !== 0) {
    return { ok: false, kind: "deadline", message: "The call passed its deadline before it started", stop: true };
  }
  slot.blocks.reset();
  slot.memoryOverrun = "";
  slot.hostCalls = 0;
  try {
    const output = await plugin.call(name, input);
    const bytes = output ? output.bytes() : new Uint8Array();
    await plugin.reset();
    if (slot.memoryOverrun) return { ok: false, kind: "memory", message: slot.memoryOverrun, stop: true };
    if (bytes.length > slot.limits.outputBytes) {
      return {
        ok: false,
        kind: "output",
        message: `Output of ${bytes.length} bytes exceeds the limit of ${slot.limits.outputBytes} bytes`,
      };
    }
    return { ok: true, output: bytes };
  } catch (error) {
    if (error instanceof WasiExit) {
      // proc_exit: 0 is success (Extism keeps no output of a call that unwound), anything else fails.
      if (error.code === 0) {
        await plugin.reset();
        return { ok: true, output: new Uint8Array() };
      }
      return { ok: false, kind: "exit", message: String(error.code), stop: true };
    }
    const message = describe(error);
    const prefix = "Plugin-originated error: ";
    if (message.startsWith(prefix) && !slot.memoryOverrun) {
      await plugin.reset();
      return { ok: false, kind: "reported", message: message.slice(prefix.length) };
    }
    const kind = classify(slot);
    // A trapped instance is never used again.
    return {
      ok: false,
      kind,
      message: kind === "memory" && slot.memoryOverrun ? slot.memoryOverrun : message,
      stop: true,
    };
  }
}

/**
 * How long an idle worker polls for the next call before it sleeps, in ms.
 * Only while a spin slot is free: idle spinners beyond the spare cores slow
 * every other thread down (on 2 cores, calls alternating between two plugins
 * took ~115 µs with every worker spinning, ~13 µs with one spin slot and
 * ~30-50 µs with none).
 */
const WORKER_SPIN_MS = 0.1;

/** The worker's own cells (see _protocol.ts), known from the first instantiation on. */
let workerCells: Int32Array | undefined;
/** The host's shared cells and spin slots. */
let shared: { cells: Int32Array; maxSpinners: number } | undefined;
/** Messages taken so far, against the main thread's count of messages posted. */
let handled = 0;
/** Messages being handled (an instantiation awaits): the call loop must not block the event loop then. */
let handling = 0;
let serving = false;

/**
 * Serves every slot's calls until a message waits: drains each slot with a
 * call waiting, without sleeping between calls, and sleeps on the worker's
 * work cell only when none waits. Returns (to take messages) when the main
 * thread posted one; the message's handler starts it again.
 */
async function serve(): Promise<void> {
  const cells = workerCells;
  if (serving || !cells || !shared || handling > 0) return;
  serving = true;
  try {
    for (;;) {
      // A message waits (its handler starts this loop again), or one is being handled: an instantiation that awaits
      // must not find the thread asleep in Atomics.wait.
      if (Atomics.load(cells, MAIL) !== handled || handling > 0) return;
      const work = Atomics.load(cells, WORK);
      let served = false;
      for (const slot of slots.values()) {
        const request = slot.channel.take();
        if (!request) continue;
        served = true;
        if (request.leave) {
          dropInstance(slot);
          slot.channel.finish(request.seq, undefined);
          continue;
        }
        let result: ChannelResult & { stop?: boolean };
        Atomics.store(cells, RUNNING, slot.id);
        try {
          result = await call(slot, request.name, request.input);
        } finally {
          slot.reportRefused();
          Atomics.store(cells, RUNNING, 0);
        }
        if (result.stop) dropInstance(slot);
        slot.channel.finish(request.seq, result);
      }
      if (served) continue;
      if (Atomics.add(shared.cells, 0, 1) < shared.maxSpinners) {
        const until = performance.now() + WORKER_SPIN_MS;
        while (Atomics.load(cells, WORK) === work && performance.now() < until) { /* spin */ }
      }
      Atomics.sub(shared.cells, 0, 1);
      Atomics.wait(cells, WORK, work);
    }
  } finally {
    serving = false;
  }
}

// Reports what this isolate could do outside the bridge: every probe must
// fail with NotCapable. Used by the isolation tests.
async function selfcheck(): Promise<void> {
  const probes: Record<string, () => unknown> = {
    read: () => Deno.readTextFileSync("deno.json"),
    write: () => Deno.writeTextFileSync("plugins/.selfcheck", "x"),
    net: () => Deno.connect({ hostname: "127.0.0.1", port: 9 }),
    env: () => Deno.env.get("CI"),
    run: () => new Deno.Command("true").outputSync(),
    sys: () => Deno.hostname(),
    ffi: () => Deno.dlopen("libc.so.6", {}),
  };
  const results: Record<string, string> = {};
  for (const [name, probe] of Object.entries(probes)) {
    try {
      await probe();
      results[name] = "allowed";
    } catch (error) {
      results[name] = error instanceof Error ? error.name : String(error);
    }
  }
  post({ type: "selfcheck", results });
}

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  handled++;
  handling++;
  try {
    if (request.type === "selfcheck") await selfcheck();
    else {
      workerCells ??= new Int32Array(request.cells);
      shared ??= { cells: new Int32Array(request.shared), maxSpinners: request.maxSpinners };
      Atomics.store(workerCells, RUNNING, request.slot);
      try {
        await instantiate(request, workerCells, shared.cells);
      } finally {
        Atomics.store(workerCells, RUNNING, 0);
      }
    }
  } finally {
    handling--;
    void serve();
  }
};

post({ type: "booted" });
