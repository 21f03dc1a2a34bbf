// The synchronous host-call bridge between a plugin worker and the main
// thread: one growable SharedArrayBuffer per worker, a request/response
// sequence pair, the worker blocking in Atomics.wait while the main thread
// answers from an Atomics.waitAsync loop.
//
// Layout (Int32 header, then data):
//   [0] request sequence (worker increments after writing a request)
//   [1] response sequence (main sets it to the request's after answering)
//   [2] host function index
//   [3] payload length in bytes
//   bytes 16.. payload (request, then overwritten by the response)

const HEADER = 16;
const REQUEST = 0;
const RESPONSE = 1;
const FUNCTION = 2;
const LENGTH = 3;
const INITIAL_BYTES = 64 * 1024;
/** How many times the worker polls before it sleeps: most host calls answer within that. */
const SPINS = 2_000;

/**
 * The function index of the worker's report of host calls refused past the
 * `hostCalls` cap: a JSON array of `[function index, count]` pairs.
 */
export const REFUSED_CALLS = -1;

/** Status byte of a host-call response. */
export const STATUS = { ok: 0, error: 1 } as const;

const encoder = new TextEncoder();

/** Encodes an error response: status 1 then `{"code","message"}`. */
export function errorResponse(code: string, message: string): Uint8Array {
  const json = encoder.encode(JSON.stringify({ code, message }));
  const out = new Uint8Array(json.length + 1);
  out[0] = STATUS.error;
  out.set(json, 1);
  return out;
}

/** Encodes an ok response: status 0 then the result bytes. */
export function okResponse(result: Uint8Array): Uint8Array {
  const out = new Uint8Array(result.length + 1);
  out[0] = STATUS.ok;
  out.set(result, 1);
  return out;
}

/** Creates the buffer for one worker; `maxPayloadBytes` bounds one request or response. */
export function createBridgeBuffer(maxPayloadBytes: number): SharedArrayBuffer {
  const max = HEADER + maxPayloadBytes + 1; // + status byte
  return new SharedArrayBuffer(Math.min(HEADER + INITIAL_BYTES, max), { maxByteLength: max });
}

function ensureCapacity(buffer: SharedArrayBuffer, payload: number): boolean {
  const needed = HEADER + payload;
  if (needed <= buffer.byteLength) return true;
  if (needed > buffer.maxByteLength) return false;
  buffer.grow(Math.min(buffer.maxByteLength, Math.max(needed, buffer.byteLength * 2)));
  return true;
}

/** The worker's side: a blocking call to the main thread. */
export class BridgeClient {
  #buffer: SharedArrayBuffer;
  #header: Int32Array;
  #ring: () => void;

  /** @param ring Wakes the main thread, which waits for "a request or the result" on one doorbell. */
  constructor(buffer: SharedArrayBuffer, ring: () => void) {
    this.#buffer = buffer;
    this.#header = new Int32Array(buffer, 0, 4);
    this.#ring = ring;
  }

  /**
   * Sends a request and blocks until the main thread answers.
   * @returns the response bytes: status byte, then the result.
   */
  call(fn: number, payload: Uint8Array, interrupted: () => boolean): Uint8Array {
    if (!ensureCapacity(this.#buffer, payload.length)) {
      return errorResponse(
        "limit",
        `Host-call request of ${payload.length} bytes exceeds the limit of ${
          this.#buffer.maxByteLength - HEADER - 1
        } bytes`,
      );
    }
    const header = this.#header;
    new Uint8Array(this.#buffer, HEADER, payload.length).set(payload);
    header[FUNCTION] = fn;
    header[LENGTH] = payload.length;
    const seq = (header[REQUEST]! + 1) | 0;
    Atomics.store(header, REQUEST, seq);
    Atomics.notify(header, REQUEST);
    this.#ring();
    for (let i = 0; Atomics.load(header, RESPONSE) !== seq; i++) {
      if (i <= SPINS) continue;
      // The host abandons a call at its deadline: stop waiting for its answer.
      if (interrupted()) return errorResponse("deadline", "The call passed its deadline");
      Atomics.wait(header, RESPONSE, (seq - 1) | 0, 20);
    }
    const length = header[LENGTH]!;
    return new Uint8Array(this.#buffer, HEADER, length).slice();
  }
}

/** Answers one host call: the response bytes, or a promise of them. */
export type BridgeHandler = (fn: number, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array;

/**
 * The main thread's side. During a call the instance polls it (see
 * `Instance.call`); during start code, `serve` answers from a waitAsync loop.
 */
export class BridgeServer {
  #buffer: SharedArrayBuffer;
  #header: Int32Array;
  #seen: number;
  #stopped = false;

  constructor(buffer: SharedArrayBuffer) {
    this.#buffer = buffer;
    this.#header = new Int32Array(buffer, 0, 4);
    this.#seen = Atomics.load(this.#header, REQUEST);
  }

  /** Whether a request waits for an answer. */
  get pending(): boolean {
    return Atomics.load(this.#header, REQUEST) !== this.#seen;
  }

  /** Answers the waiting request, if any; synchronously when the handler is. */
  poll(handler: BridgeHandler): void | Promise<void> {
    const seq = Atomics.load(this.#header, REQUEST);
    if (seq === this.#seen) return;
    this.#seen = seq;
    const payload = new Uint8Array(this.#buffer, HEADER, this.#header[LENGTH]!).slice();
    let response: Uint8Array | Promise<Uint8Array>;
    try {
      response = handler(this.#header[FUNCTION]!, payload);
    } catch (error) {
      response = failure(error);
    }
    if (response instanceof Uint8Array) return this.#respond(seq, response);
    return response.then((r) => this.#respond(seq, r), (error) => this.#respond(seq, failure(error)));
  }

  /** Answers requests from a waitAsync loop until {@linkcode stop} is called. */
  async serve(handler: BridgeHandler): Promise<void> {
    while (!this.#stopped) {
      const wait = Atomics.waitAsync(this.#header, REQUEST, this.#seen);
      if (wait.async) await wait.value;
      if (this.#stopped) return;
      await this.poll(handler);
    }
  }

  /** Ends the serve loop (it wakes at once). */
  stop(): void {
    this.#stopped = true;
    Atomics.notify(this.#header, REQUEST);
  }

  #respond(seq: number, response: Uint8Array): void {
    if (!ensureCapacity(this.#buffer, response.length)) {
      response = errorResponse(
        "limit",
        `Host-call response of ${response.length} bytes exceeds the limit of ${
          this.#buffer.maxByteLength - HEADER - 1
        } bytes`,
      );
    }
    new Uint8Array(this.#buffer, HEADER, response.length).set(response);
    this.#header[LENGTH] = response.length;
    Atomics.store(this.#header, RESPONSE, seq);
    Atomics.notify(this.#header, RESPONSE);
  }
}

function failure(error: unknown): Uint8Array {
  return errorResponse("io", error instanceof Error ? error.message : String(error));
}
