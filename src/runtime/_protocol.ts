// Messages between the main thread and a plugin worker.

/** Why a call or an instantiation failed, as the worker saw it. */
export type FailureKind = "trap" | "deadline" | "memory" | "output" | "reported";

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
  | { type: "ready" }
  | { type: "failed"; kind: FailureKind; message: string }
  | { type: "selfcheck"; results: Record<string, string> };
