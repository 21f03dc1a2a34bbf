// Messages between the main thread and a plugin worker. A worker hosts one
// or more plugin instances, each in a slot of its own: one slot per worker
// for `isolation: plugin`, several for the plugins of an isolation group.
// Slot ids are never reused within a worker (a re-instantiation takes a new
// one), so a late reply or a stale channel can never reach a newer instance.

/**
 * Why a call or an instantiation failed, as the worker saw it. For "exit"
 * (WASI `proc_exit` with a non-zero code) the message is the code.
 */
export type FailureKind = "trap" | "deadline" | "memory" | "output" | "reported" | "exit";

/** Main thread to worker (calls then go over the slot's channel, see _channel.ts). */
export type WorkerRequest =
  | {
    type: "instantiate";
    slot: number;
    module: WebAssembly.Module;
    bridge: SharedArrayBuffer;
    channel: SharedArrayBuffer;
    /** The worker's own Int32 cells: [0] work, [1] messages posted, [2] the slot running now, [3] quit (see below). */
    cells: SharedArrayBuffer;
    /** Int32 cells shared by all workers of a host: [0] idle spinners, [1] the doorbell. */
    shared: SharedArrayBuffer;
    /** How many idle workers may spin at once. */
    maxSpinners: number;
    hostFunctions: string[];
    initExports: string[];
    config: Record<string, string>;
    preopens: string[];
    limits: { allocBytes: number; outputBytes: number; hostCalls: number; hostIoBytes: number };
  }
  | { type: "selfcheck" };

/** Worker to main thread. */
export type WorkerReply =
  | { type: "booted" }
  | { type: "interrupt"; slot: number; buffer: SharedArrayBuffer }
  /** `memoryBytes`: the new instance's linear memory, start code run. */
  | { type: "ready"; slot: number; memoryBytes: number }
  /** `start` names the start code that failed ("start section", "_initialize", ...), if any did. */
  | { type: "failed"; slot: number; kind: FailureKind; message: string; start?: string }
  | { type: "selfcheck"; results: Record<string, string> };

/** Index of the work counter in a worker's own cells. */
export const WORK = 0;
/** Index of the count of messages posted to a worker, raised before each postMessage. */
export const MAIL = 1;
/**
 * Index of the slot whose code the worker runs now (a call, or an
 * instantiation with its start code); 0 when none. A deadline judges a worker
 * stuck only when the slot it interrupted is the one running: a call waiting
 * behind another slot's call waits on that call's own deadline.
 */
export const RUNNING = 2;
/**
 * Index of the flag the main thread raises when it ends a worker. Deno's
 * `terminate()` does not stop a thread that is waiting for a host-call answer
 * in start code (measured: the bridge's wait loop ran on after it), so the
 * worker's own code looks at this flag: a host call waiting for an answer
 * gives up and raises its instance's interrupt flag, and the call loop leaves.
 */
export const QUIT = 3;
