// The call channel from the main thread to a plugin worker. postMessage costs
// hundreds of microseconds a round trip in Deno; a SharedArrayBuffer costs
// tens. The worker blocks in Atomics.wait between calls; the main thread
// waits for results with Atomics.waitAsync.
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
import type { FailureKind } from "./_protocol.ts";

const HEADER = 32;
const REQUEST = 0;
const DONE = 1;
const COMMAND = 2;
const NAME_LENGTH = 3;
const INPUT_LENGTH = 4;
const OUTCOME = 5;
const RESULT_LENGTH = 6;
const MEMORY_PAGES = 7;
/**
 * How long an idle worker polls for the next call before it sleeps, in ms.
 * Only while a spin slot is free: idle spinners beyond the spare cores slow
 * every other thread down (on 2 cores, calls alternating between two plugins
 * took ~115 µs with every worker spinning, ~13 µs with one spin slot and
 * ~30-50 µs with none).
 */
const WORKER_SPIN_MS = 0.1;

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

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER / 4);
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
      // A host call in flight answers the worker itself (sync handlers at once).
      if (bridge.pending) void bridge.poll(handler);
      return Atomics.load(header, DONE) === seq;
    });
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

  /** Asks the worker to leave its call loop (to take messages, or to stop). */
  leave(): void {
    this.#header[COMMAND] = COMMAND_LEAVE;
    this.#send();
  }

  #send(): number {
    const seq = (this.#header[REQUEST]! + 1) | 0;
    Atomics.store(this.#header, REQUEST, seq);
    Atomics.notify(this.#header, REQUEST);
    return seq;
  }
}

/** The worker's end: blocks for calls and answers them until told to leave. */
export class ChannelServer {
  #buffer: SharedArrayBuffer;
  #header: Int32Array;
  #cells: Int32Array | undefined;
  #memoryBytes: () => number = () => 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER / 4);
  }

  /**
   * Serves calls until the main thread says leave or `handler` asks to stop
   * (by returning `stop: true`, e.g. after a trap: the instance is gone).
   * `memoryBytes` is read after each call and reported with its result.
   */
  async serve(
    handler: (name: string, input: Uint8Array) => Promise<ChannelResult & { stop?: boolean }>,
    shared: { cells: Int32Array; maxSpinners: number; memoryBytes?: () => number },
  ): Promise<void> {
    const header = this.#header;
    this.#cells = shared.cells;
    if (shared.memoryBytes) this.#memoryBytes = shared.memoryBytes;
    // Start from the last request answered, not the last sent: the main
    // thread may send the first call before this loop starts.
    let seen = Atomics.load(header, DONE);
    for (;;) {
      if (Atomics.add(shared.cells, 0, 1) < shared.maxSpinners) {
        const until = performance.now() + WORKER_SPIN_MS;
        while (Atomics.load(header, REQUEST) === seen && performance.now() < until) { /* spin */ }
      }
      Atomics.sub(shared.cells, 0, 1);
      Atomics.wait(header, REQUEST, seen);
      const seq = Atomics.load(header, REQUEST);
      if (seq === seen) continue;
      seen = seq;
      if (header[COMMAND] === COMMAND_LEAVE) {
        this.#finish(seq, 0, new Uint8Array());
        return;
      }
      const nameLength = header[NAME_LENGTH]!;
      const data = new Uint8Array(this.#buffer, HEADER, nameLength + header[INPUT_LENGTH]!);
      const name = decoder.decode(data.subarray(0, nameLength));
      const input = data.slice(nameLength);
      const result = await handler(name, input);
      const payload = result.ok ? result.output : encoder.encode(result.message);
      this.#finish(seq, OUTCOMES.indexOf(result.ok ? "ok" : result.kind), payload);
      if (result.stop) return;
    }
  }

  #finish(seq: number, outcome: number, payload: Uint8Array): void {
    fit(this.#buffer, payload.length);
    new Uint8Array(this.#buffer, HEADER, payload.length).set(payload);
    this.#header[OUTCOME] = outcome;
    this.#header[RESULT_LENGTH] = payload.length;
    this.#header[MEMORY_PAGES] = Math.ceil(this.#memoryBytes() / 65536);
    Atomics.store(this.#header, DONE, seq);
    this.ring();
  }

  /** Wakes the main thread: rings the host's shared doorbell. */
  ring(): void {
    if (!this.#cells) return;
    Atomics.add(this.#cells, BELL, 1);
    Atomics.notify(this.#cells, BELL);
  }
}
