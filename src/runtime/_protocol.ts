// Messages between the main thread and a plugin worker.

/**
 * Why a call or an instantiation failed, as the worker saw it. For "exit"
 * (WASI `proc_exit` with a non-zero code) the message is the code.
 */
export type FailureKind = "trap" | "deadline" | "memory" | "output" | "reported" | "exit";

/** Main thread to worker (calls then go over the channel, see _channel.ts). */
export type WorkerRequest =
  | {
    type: "instantiate";
    module: WebAssembly.Module;
    bridge: SharedArrayBuffer;
    channel: SharedArrayBuffer;
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
  | { type: "interrupt"; buffer: SharedArrayBuffer }
  /** `memoryBytes`: the new instance's linear memory, start code run. */
  | { type: "ready"; memoryBytes: number }
  /** `start` names the start code that failed ("start section", "_initialize", ...), if any did. */
  | { type: "failed"; kind: FailureKind; message: string; start?: string }
  | { type: "selfcheck"; results: Record<string, string> };
