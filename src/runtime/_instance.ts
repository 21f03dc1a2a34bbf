// Plugin workers and instances on the main thread's side. A worker shell is
// one Deno worker isolate; an instance is one plugin instance in a slot of a
// worker, with its bridge server, call channel and interrupt flag. A worker
// hosts one instance (`isolation: plugin`) or the instances of several plugins
// of one isolation group, never two of one plugin.

import { BridgeServer, createBridgeBuffer } from "./_bridge.ts";
import { ChannelClient, createChannelBuffer } from "./_channel.ts";
import { BELL, type Dispatcher } from "./_dispatcher.ts";
import { type FailureKind, MAIL, QUIT, RUNNING, WORK, type WorkerReply, type WorkerRequest } from "./_protocol.ts";
import { INTERRUPT } from "./instrument_module.ts";

const WORKER_URL = new URL("./_worker.ts", import.meta.url);

/** Every Deno permission, each denied: a key left out would be inherited. */
const NO_PERMISSIONS = {
  env: false,
  ffi: false,
  import: false,
  net: false,
  read: false,
  run: false,
  sys: false,
  write: false,
} as const;

/** A worker isolate: booted (Extism loaded), hosting plugin instances in slots, or kept warm as a spare. */
export class WorkerShell {
  readonly worker: Worker;
  readonly booted: Promise<void>;
  /** The worker's own cells: [WORK] rung for every call, [MAIL] messages posted, [RUNNING] (see _protocol.ts). */
  readonly cells = new Int32Array(new SharedArrayBuffer(16));
  /** The isolation group it serves; undefined for a worker of one plugin's own. */
  group: string | undefined;
  /** The plugin instances it hosts, starting ones included. */
  readonly instances = new Set<Instance>();
  /** Instantiations in it so far, over all its slots (the first of each and each replacement). */
  instantiations = 0;
  /** Calls it has served, over all its slots. */
  calls = 0;
  /** Past its budget: it takes no new instance and ends once its last one is gone. */
  draining = false;
  #listener: ((reply: WorkerReply) => void) | undefined;
  readonly #slots = new Map<number, (reply: WorkerReply) => void>();
  #nextSlot = 1;
  #terminated = false;

  constructor() {
    this.worker = new Worker(WORKER_URL, {
      type: "module",
      name: "keycard plugin",
      deno: { permissions: NO_PERMISSIONS },
    } as WorkerOptions);
    this.booted = new Promise((resolve, reject) => {
      this.worker.onmessage = (event: MessageEvent<WorkerReply>) => {
        const reply = event.data;
        if (reply.type === "booted") resolve();
        else if ("slot" in reply) this.#slots.get(reply.slot)?.(reply);
        else this.#listener?.(reply);
      };
      this.worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`Plugin worker failed to start: ${event.message}`));
      };
    });
  }

  /** Whether it was terminated. */
  get terminated(): boolean {
    return this.#terminated;
  }

  /** Hears the replies that belong to no slot (a selfcheck). */
  listen(listener: (reply: WorkerReply) => void): void {
    this.#listener = listener;
  }

  /** A new slot id, never used before in this worker, with the listener of its replies. */
  openSlot(listener: (reply: WorkerReply) => void): number {
    const slot = this.#nextSlot++;
    this.#slots.set(slot, listener);
    return slot;
  }

  /** Forgets a slot's listener. */
  closeSlot(slot: number): void {
    this.#slots.delete(slot);
  }

  /** Posts a message; the worker leaves its call loop to take it. */
  send(request: WorkerRequest, transfer: Transferable[] = []): void {
    // Counted before it is posted, so the worker never sees a message it was not told of.
    Atomics.add(this.cells, MAIL, 1);
    this.worker.postMessage(request, transfer);
    Atomics.add(this.cells, WORK, 1);
    Atomics.notify(this.cells, WORK, 1);
  }

  terminate(): void {
    this.#terminated = true;
    this.#listener = undefined;
    this.#slots.clear();
    // A worker asleep in Atomics.wait does not notice terminate(), and the
    // process would wait for its thread at exit: a message counted but never
    // posted sends it out of its call loop, to the event loop, for good; the
    // quit flag ends a wait for a host-call answer (see QUIT).
    Atomics.store(this.cells, QUIT, 1);
    Atomics.add(this.cells, MAIL, 1);
    Atomics.add(this.cells, WORK, 1);
    Atomics.notify(this.cells, WORK);
    this.worker.terminate();
  }
}

/** What an instance needs to (re)instantiate its plugin. */
export interface InstanceSpec {
  module: WebAssembly.Module;
  /** Hidden exports of start code, run in this order at every instantiation. */
  initExports: string[];
  /** How long a worker may take to stop after its interrupt before it is given up on. */
  stopGraceMs: number;
  hostFunctions: string[];
  config: Record<string, string>;
  preopens: string[];
  limits: { allocBytes: number; inputBytes: number; outputBytes: number; hostCalls: number; hostIoBytes: number };
  /** Shared by every worker of the host: idle spinners and the doorbell (see _dispatcher.ts). */
  shared: { buffer: SharedArrayBuffer; maxSpinners: number; dispatcher: Dispatcher };
  /** Answers one host call of this instance. */
  handleHostCall: (instance: Instance, fn: number, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}

/**
 * The outcome of one call (or instantiation) as the worker reported it.
 * `start` names the start code that failed; `stuck` says the worker never
 * stopped after its interrupt and was given up on.
 */
export type CallOutcome =
  | { ok: true; output: Uint8Array }
  | { ok: false; kind: FailureKind; message: string; start?: string; stuck?: boolean };

/** A plugin instance in a slot of a worker; one call at a time. */
export class Instance {
  readonly shell: WorkerShell;
  readonly spec: InstanceSpec;
  /** Data of the call in flight, read by host calls. */
  current: unknown;
  /** The live plugin instance's linear memory, as of its start or its last call; 0 while there is none. */
  memoryBytes = 0;
  /** When it last became idle (performance.now()), for retiring the least recently used. */
  lastUsed = 0;
  /** Retires it when it stays idle for the host's `idleMs`. */
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  #slot = 0;
  #server: BridgeServer | undefined;
  #interrupt: Int32Array | undefined;
  #pending: ((reply: WorkerReply) => void) | undefined;
  #channel: ChannelClient | undefined;
  #expired = false;
  #terminated = false;
  /** The channel of an instantiation in flight, until the worker reports its end. */
  #starting: SharedArrayBuffer | undefined;
  readonly #handler = (fn: number, payload: Uint8Array) => this.spec.handleHostCall(this, fn, payload);

  constructor(shell: WorkerShell, spec: InstanceSpec) {
    this.shell = shell;
    this.spec = spec;
    shell.instances.add(this);
  }

  #listen = (reply: WorkerReply): void => {
    if (reply.type === "interrupt") {
      this.#interrupt = new Int32Array(reply.buffer);
      if (this.#expired) this.interrupt();
      return;
    }
    const channel = this.#starting;
    this.#starting = undefined;
    if (!this.#terminated) return this.#pending?.(reply);
    // Ended while it was starting: an instance that started anyway is dropped from its worker's slots.
    if (reply.type === "ready" && channel) new ChannelClient(channel, this.shell.cells).leave();
    if ("slot" in reply) this.shell.closeSlot(reply.slot);
  };

  /** Whether the worker runs this instance's code now (a call or its start), not another slot's. */
  get running(): boolean {
    return this.#slot !== 0 && Atomics.load(this.shell.cells, RUNNING) === this.#slot;
  }

  /**
   * Instantiates the plugin in the worker (again, after a failure) and runs
   * its start code. Raises the interrupt flag if that passes `deadlineMs`.
   */
  async instantiate(deadlineMs: number): Promise<CallOutcome> {
    await this.shell.booted;
    // The host may have closed while the worker booted: start nothing then.
    if (this.#terminated) return { ok: false, kind: "trap", message: "The plugin instance was terminated" };
    this.shell.instantiations++;
    // The instance before (if any) is dropped; the new one gets a slot of its own.
    this.#channel?.leave();
    this.#channel = undefined;
    this.#server?.stop();
    this.shell.closeSlot(this.#slot);
    this.#slot = this.shell.openSlot(this.#listen);
    this.#interrupt = undefined;
    this.memoryBytes = 0;
    const channel = createChannelBuffer(Math.max(this.spec.limits.inputBytes, this.spec.limits.outputBytes));
    const bridge = createBridgeBuffer(this.spec.limits.hostIoBytes);
    const server = new BridgeServer(bridge);
    this.#server = server;
    void server.serve(this.#handler);
    this.#starting = channel;
    const reply = await this.#exchange(deadlineMs, {
      type: "instantiate",
      slot: this.#slot,
      module: this.spec.module,
      bridge,
      channel,
      cells: this.shell.cells.buffer as SharedArrayBuffer,
      shared: this.spec.shared.buffer,
      maxSpinners: this.spec.shared.maxSpinners,
      hostFunctions: this.spec.hostFunctions,
      initExports: this.spec.initExports,
      config: this.spec.config,
      preopens: this.spec.preopens,
      limits: this.spec.limits,
    });
    // From here on, host calls are answered by the call loop (see call()).
    server.stop();
    if (reply.type === "ready") {
      this.#channel = new ChannelClient(channel, this.shell.cells);
      this.memoryBytes = reply.memoryBytes;
      return { ok: true, output: new Uint8Array() };
    }
    if (reply.type === "failed") {
      const outcome: CallOutcome = { ok: false, kind: reply.kind, message: reply.message };
      if ("start" in reply && reply.start !== undefined) outcome.start = reply.start;
      if ("stuck" in reply) outcome.stuck = true;
      return outcome;
    }
    return { ok: false, kind: "trap", message: `Unexpected reply ${reply.type}` };
  }

  /**
   * Runs one export. Resolves when the worker answers; `onDeadline` runs if
   * `deadlineMs` passes first (the flag is raised, the worker still answers
   * once the plugin traps).
   */
  async call(
    name: string,
    input: Uint8Array,
    deadlineMs: number,
    onDeadline: () => void,
  ): Promise<CallOutcome> {
    const channel = this.#channel;
    const server = this.#server;
    if (!channel || !server) return { ok: false, kind: "trap", message: "The plugin instance is not ready" };
    this.shell.calls++;
    this.#expired = false;
    const timer = setTimeout(() => {
      this.#expired = true;
      this.interrupt();
      onDeadline();
    }, Math.max(0, deadlineMs));
    try {
      const result = await channel.call(name, input, server, this.#handler, this.spec.shared.dispatcher);
      // After a trap the worker has left its call loop and waits for messages.
      if (!result.ok && result.kind !== "reported" && result.kind !== "output") {
        this.#channel = undefined;
        this.memoryBytes = 0;
      } else {
        this.memoryBytes = channel.memoryBytes;
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether it was ended for good. */
  get terminated(): boolean {
    return this.#terminated;
  }

  /** Raises the interrupt flag: the plugin traps at its next function entry or loop header. */
  interrupt(): void {
    if (this.#interrupt) Atomics.store(this.#interrupt, INTERRUPT.flag / 4, 1);
  }

  /**
   * Ends the instance for good: its slot is dropped, and a worker of its own
   * (not one of a group, which the host ends with its last instance) stops.
   */
  terminate(): void {
    this.#terminated = true;
    // An instantiation in flight is stopped too: its flag goes up as soon as the worker reports it.
    this.#expired = true;
    this.interrupt();
    this.#channel?.leave();
    this.#channel = undefined;
    this.#server?.stop();
    // While it starts, its slot keeps listening (see #listen) so that it can be dropped once it reports.
    if (!this.#starting) this.shell.closeSlot(this.#slot);
    this.shell.instances.delete(this);
    if (this.shell.group === undefined) this.shell.terminate();
    // The host's dispatcher polls its calls again: a call of this instance in flight ends now.
    const cells = new Int32Array(this.spec.shared.buffer);
    Atomics.add(cells, BELL, 1);
    Atomics.notify(cells, BELL);
    this.#pending?.({ type: "failed", slot: this.#slot, kind: "trap", message: "The plugin instance was terminated" });
  }

  #exchange(
    deadlineMs: number,
    request: WorkerRequest,
  ): Promise<WorkerReply | { type: "failed"; kind: FailureKind; message: string; stuck: true }> {
    this.#expired = false;
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      // The deadline counts from when the worker starts the instantiation: in a
      // group's worker it may first finish another plugin's call (bounded by
      // that call's own deadline), so the clock is wound again until it has.
      const expire = () => {
        if (!this.#interrupt && !this.running) {
          timer = setTimeout(expire, Math.max(1, deadlineMs));
          return;
        }
        this.#expired = true;
        this.interrupt();
        timer = setTimeout(giveUp, this.spec.stopGraceMs);
      };
      // Instrumented code stops at its next check; a worker still running
      // this start code after the grace period is given up on (the host stops it).
      const giveUp = () => {
        if (!this.running) {
          timer = setTimeout(giveUp, this.spec.stopGraceMs);
          return;
        }
        this.#pending = undefined;
        resolve({ type: "failed", kind: "deadline", message: "The worker did not stop", stuck: true });
      };
      timer = setTimeout(expire, Math.max(0, deadlineMs));
      this.#pending = (reply) => {
        if (reply.type === "booted" || reply.type === "interrupt") return;
        clearTimeout(timer);
        this.#pending = undefined;
        resolve(reply);
      };
      this.shell.send(request);
    });
  }
}
