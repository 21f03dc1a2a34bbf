// The call channel from the main thread to one plugin instance (a slot of a
// worker). postMessage costs hundreds of microseconds a round trip in Deno; a
// SharedArrayBuffer costs tens. A worker serves all its slots from one loop
// (see _worker.ts): it sleeps on its own work cell, which every call sent to
// any of its slots rings, and drains every slot with a call waiting before it
// sleeps again. The main thread waits for results on the host's doorbell.
//
// Int32 header, then data:
//   [0] request sequence (main)     [1] done sequence (worker)
//   [2] command: 1 call, 2 leave     [3] export name length
//   [4] input length                 [5] outcome code
//   [6] result length                [7] linear memory pages after the call
// The worker rings its host's shared doorbell (see _dispatcher.ts) on results.
//   bytes 32.. export name + input, then the result (output or message)

import type { BridgeHandler, BridgeServer } from "./_bridge.ts";
import { BELL, type Dispatcher } from "./_dispatcher.ts";
import { type FailureKind, WORK } from "./_protocol.ts";

const HEADER = 32;
const REQUEST = 0;
const DONE = 1;
const COMMAND = 2;
const NAME_LENGTH = 3;
const INPUT_LENGTH = 4;
const OUTCOME = 5;
const RESULT_LENGTH = 6;
const MEMORY_PAGES = 7;
const COMMAND_CALL = 1;
const COMMAND_LEAVE = 2;

const OUTCOMES: readonly ("ok" | FailureKind)[] = ["ok", "trap", "deadline", "memory", "output", "reported", "exit"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a worker reports for one call. */
export type ChannelResult =
  | { ok: true; output: Uint8Array }
  | { ok: false; kind: FailureKind; message: string };

/** Creates a channel buffer able to carry `maxBytes` of input or output plus a name. */
export function createChannelBuffer(maxBytes: number): SharedArrayBuffer {
  const max = HEADER + 1024 + maxBytes;
  return new SharedArrayBuffer(Math.min(max, HEADER + 64 * 1024), { maxByteLength: max });
}

function fit(buffer: SharedArrayBuffer, bytes: number): void {
  const needed = HEADER + bytes;
  if (needed > buffer.byteLength) {
    buffer.grow(Math.min(buffer.maxByteLength, Math.max(needed, buffer.byteLength * 2)));
  }
}

/** The main thread's end: sends calls, awaits results. */
export class ChannelClient {
  readonly buffer: SharedArrayBuffer;
  #header: Int32Array;
  #worker: Int32Array;
  #abandoned = false;

  /** @param worker The worker's own cells, whose work cell this channel rings with every call. */
  constructor(buffer: SharedArrayBuffer, worker: Int32Array) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER / 4);
    this.#worker = worker;
  }

  /**
   * Sends one call and resolves with the worker's result. While it runs,
   * host-call requests are answered through `bridge` on this thread; the
   * dispatcher wakes this call whenever a worker rings.
   */
  async call(
    name: string,
    input: Uint8Array,
    bridge: BridgeServer,
    handler: BridgeHandler,
    dispatcher: Dispatcher,
  ): Promise<ChannelResult> {
    const nameBytes = encoder.encode(name);
    fit(this.buffer, nameBytes.length + input.length);
    const data = new Uint8Array(this.buffer, HEADER, nameBytes.length + input.length);
    data.set(nameBytes);
    data.set(input, nameBytes.length);
    const header = this.#header;
    header[COMMAND] = COMMAND_CALL;
    header[NAME_LENGTH] = nameBytes.length;
    header[INPUT_LENGTH] = input.length;
    const seq = this.#send();
    await dispatcher.until(() => {
      if (this.#abandoned) return true;
      // A host call in flight answers the worker itself (sync handlers at once).
      if (bridge.pending) void bridge.poll(handler);
      return Atomics.load(header, DONE) === seq;
    });
    if (Atomics.load(header, DONE) !== seq) {
      return { ok: false, kind: "trap", message: "The plugin instance was terminated" };
    }
    return this.#result();
  }

  /**
   * The instance's linear memory in bytes, as the worker reported it with
   * the last result: one header cell written per call, so per-plugin memory
   * gauges cost no message and no round trip.
   */
  get memoryBytes(): number {
    return Atomics.load(this.#header, MEMORY_PAGES) * 65536;
  }

  #result(): ChannelResult {
    const header = this.#header;
    const outcome = OUTCOMES[header[OUTCOME]!] ?? "trap";
    const result = new Uint8Array(this.buffer, HEADER, header[RESULT_LENGTH]!).slice();
    if (outcome === "ok") return { ok: true, output: result };
    return { ok: false, kind: outcome, message: decoder.decode(result) };
  }

  /** Asks the worker to drop this slot's instance; a call in flight ends as terminated. */
  leave(): void {
    this.#abandoned = true;
    this.#header[COMMAND] = COMMAND_LEAVE;
    this.#send();
  }

  #send(): number {
    const seq = (this.#header[REQUEST]! + 1) | 0;
    Atomics.store(this.#header, REQUEST, seq);
    // The worker sleeps on its own work cell, not on this slot's.
    Atomics.add(this.#worker, WORK, 1);
    Atomics.notify(this.#worker, WORK, 1);
    return seq;
  }
}

/** One call the worker took from a slot's channel. */
export type ChannelRequest = { seq: number; leave: true } | {
  seq: number;
  leave: false;
  name: string;
  input: Uint8Array;
};

/** The worker's end of one slot's channel: takes calls and writes their results. */
export class ChannelServer {
  #buffer: SharedArrayBuffer;
  #header: Int32Array;
  #seen: number;
  #cells: Int32Array;
  #memoryBytes: () => number;

  /**
   * @param cells The host's shared cells, whose doorbell wakes the main thread.
   * @param memoryBytes Read after each call and reported with its result.
   */
  constructor(buffer: SharedArrayBuffer, cells: Int32Array, memoryBytes: () => number) {
    this.#buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER / 4);
    this.#cells = cells;
    this.#memoryBytes = memoryBytes;
    // Start from the last request answered, not the last sent: the main
    // thread may send the first call before the worker looks.
    this.#seen = Atomics.load(this.#header, DONE);
  }

  /** Whether a call waits. */
  get pending(): boolean {
    return Atomics.load(this.#header, REQUEST) !== this.#seen;
  }

  /** Takes the waiting call, if any. */
  take(): ChannelRequest | undefined {
    const header = this.#header;
    const seq = Atomics.load(header, REQUEST);
    if (seq === this.#seen) return undefined;
    this.#seen = seq;
    if (header[COMMAND] === COMMAND_LEAVE) return { seq, leave: true };
    const nameLength = header[NAME_LENGTH]!;
    const data = new Uint8Array(this.#buffer, HEADER, nameLength + header[INPUT_LENGTH]!);
    return { seq, leave: false, name: decoder.decode(data.subarray(0, nameLength)), input: data.slice(nameLength) };
  }

  /** Writes a call's result and wakes the main thread. */
  finish(seq: number, result: ChannelResult | undefined): void {
    const payload = result === undefined
      ? new Uint8Array()
      : result.ok
      ? result.output
      : encoder.encode(result.message);
    fit(this.#buffer, payload.length);
    new Uint8Array(this.#buffer, HEADER, payload.length).set(payload);
    this.#header[OUTCOME] = result === undefined ? 0 : OUTCOMES.indexOf(result.ok ? "ok" : result.kind);
    this.#header[RESULT_LENGTH] = payload.length;
    this.#header[MEMORY_PAGES] = Math.ceil(this.#memoryBytes() / 65536);
    Atomics.store(this.#header, DONE, seq);
    this.ring();
  }

  /** Wakes the main thread: rings the host's shared doorbell. */
  ring(): void {
    Atomics.add(this.#cells, BELL, 1);
    Atomics.notify(this.#cells, BELL);
  }
}
