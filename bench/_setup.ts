// Shared fixtures of bench/runtime_bench.ts and bench/runtime_p50.ts: the
// keycard hosts, the Extism plugins (worker mode and foreground) and the
// inputs. See the header of runtime_bench.ts for what each measurement means.
import { type CallContext, createPlugin, type Plugin } from "@extism/extism";
import { PluginHost, type PluginInfo } from "../mod.ts";
import { instrumentModule } from "../src/runtime/instrument_module.ts";
import { compileWat } from "../tests/_wat.ts";
import { decoder, encoder, examplePlugin } from "../tests/_test_utils.ts";

/** Host calls made by one invocation of the `clock100` export of bench/testdata/host_calls.wat. */
export const HOST_CALLS_PER_INVOKE = 100;
/** Input of hello `fib`: O(n^2) work, ~10-15 ms per call on these machines. */
export const FIB_N = "10000";
/** fib(10000) mod 2^64, to check every runner computes the same thing. */
export const FIB_EXPECTED = "15574651946073070043";
/**
 * Extism worker mode never frees blocks between calls: `reset()` the hello
 * plugin every this many calls (every 16 or 256 measured the same p50; every
 * call costs ~1.5x). The host_calls plugin is reset after every call: each call
 * leaves ~200 blocks and, without a reset, the next call gets slower (136 ms
 * for the first 100 host calls, 1.3 s by the 30th call).
 */
export const EXTISM_RESET_EVERY = 256;
/**
 * Pause between two cold loads (untimed): the spare taken by the last load is
 * replaced and booted, and the workers of the unloaded plugin are gone. With
 * 50 ms, background boots still overlapped the next timed load on 2 cores.
 */
export const COLD_LOAD_GAP_MS = 250;
/** Spare workers of the cold-load host. */
export const COLD_SPARES = 4;

export const INPUT_64 = crypto.getRandomValues(new Uint8Array(64));
export const INPUT_4K = crypto.getRandomValues(new Uint8Array(4096));
export const EMPTY = new Uint8Array();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The `keycard_clock_now` answer: `{"unixMs": n}`. */
function clockNow(): Uint8Array {
  return encoder.encode(`{"unixMs":${Date.now()}}`);
}

/** An Extism plugin in worker mode, reset every `resetEvery` calls. */
export class ExtismWorkerPlugin {
  readonly plugin: Plugin;
  /** Calls between two `reset()`s. */
  resetEvery: number;
  #calls = 0;
  constructor(plugin: Plugin, resetEvery: number) {
    this.plugin = plugin;
    this.resetEvery = resetEvery;
  }
  async call(name: string, input: Uint8Array): Promise<Uint8Array> {
    const output = await this.plugin.call(name, input);
    const bytes = output ? output.bytes() : EMPTY;
    if (++this.#calls % this.resetEvery === 0) await this.plugin.reset();
    return bytes;
  }
}

async function extismWorker(bytes: Uint8Array, resetEvery: number): Promise<ExtismWorkerPlugin> {
  // A fresh `functions` object per plugin: worker mode mutates it.
  const plugin = await createPlugin({ wasm: [{ data: bytes }] }, {
    runInWorker: true,
    useWasi: false,
    nodeWorkerArgs: { execArgv: [] },
    logLevel: "silent",
    functions: {
      "extism:host/user": {
        keycard_clock_now: (ctx: CallContext, _offset: bigint) => ctx.store(new Uint8Array([0, ...clockNow()])),
      },
    },
  });
  return new ExtismWorkerPlugin(plugin, resetEvery);
}

/** Appends a custom section carrying `tag`, so the bytes (and their sha256) differ but the code does not. */
export function withCustomSection(bytes: Uint8Array, tag: string): Uint8Array {
  const name = encoder.encode("keycard-bench");
  const payload = encoder.encode(tag);
  const body = [...leb128(name.length), ...name, ...payload];
  return new Uint8Array([...bytes, 0, ...leb128(body.length), ...body]);
}

function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function check(what: string, actual: string, expected: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${actual}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): string {
  return a.length === b.length && a.every((v, i) => v === b[i]) ? "same" : `differs (${a.length} bytes)`;
}

/** Everything the benches use, created once. */
export interface Fixtures {
  helloBytes: Uint8Array;
  /** keycard host with hello and host_calls loaded (default limits, one warm instance each). */
  host: PluginHost;
  hello: PluginInfo;
  hostCalls: PluginInfo;
  /** keycard host for cold loads: {@linkcode COLD_SPARES} spare workers. */
  coldHost: PluginHost;
  /** keycard host for cold loads without a spare: every load boots a worker. */
  bareHost: PluginHost;
  extismHello: ExtismWorkerPlugin;
  extismHostCalls: ExtismWorkerPlugin;
  /** hello, raw (uninstrumented), Extism foreground on the main thread. */
  fgRaw: Plugin;
  /** hello, instrumented like keycard does it, Extism foreground on the main thread. */
  fgInstrumented: Plugin;
  close(): Promise<void>;
}

export async function setup(): Promise<Fixtures> {
  const helloBytes = await examplePlugin("hello");
  const hostCallsBytes = await compileWat(
    await Deno.readTextFile(new URL("./testdata/host_calls.wat", import.meta.url)),
    "host_calls.wat",
  );
  const host = new PluginHost({ hostFunctions: { keycard_clock_now: clockNow } });
  const coldHost = new PluginHost({ spareWorkers: COLD_SPARES });
  const bareHost = new PluginHost({ spareWorkers: 0 });
  const hello = await host.load(helloBytes, { name: "hello" });
  const hostCalls = await host.load(hostCallsBytes, { name: "host_calls" });
  const extismHello = await extismWorker(helloBytes, EXTISM_RESET_EVERY);
  const extismHostCalls = await extismWorker(hostCallsBytes, 1);
  const fgRaw = await createPlugin(new WebAssembly.Module(helloBytes as BufferSource), { useWasi: false });
  const instrumented = instrumentModule(helloBytes, { maxPages: 256 });
  const fgInstrumented = await createPlugin(new WebAssembly.Module(instrumented.bytes), { useWasi: false });
  // keycard runs the moved start code (`__keycard_start`) after instantiation: do the same.
  const instance = await fgInstrumented.getInstance();
  for (const name of instrumented.initExports) (instance.exports[name] as () => void)();

  // Every runner must compute the same outputs.
  check("keycard echo", sameBytes(await host.invoke(hello, "echo", INPUT_4K), INPUT_4K), "same");
  check("keycard fib", decoder.decode(await host.invoke(hello, "fib", FIB_N)), FIB_EXPECTED);
  check("keycard clock100", String((await host.invoke(hostCalls, "clock100")).length), "0");
  check("extism echo", sameBytes(await extismHello.call("echo", INPUT_4K), INPUT_4K), "same");
  check("extism clock100", String((await extismHostCalls.call("clock100", EMPTY)).length), "0");
  check("fg raw fib", (await fgRaw.call("fib", FIB_N))?.text() ?? "", FIB_EXPECTED);
  check("fg instrumented fib", (await fgInstrumented.call("fib", FIB_N))?.text() ?? "", FIB_EXPECTED);

  // Give the spare workers time to boot before the first cold load.
  await sleep(1000);

  let closed = false;
  return {
    helloBytes,
    host,
    hello,
    hostCalls,
    coldHost,
    bareHost,
    extismHello,
    extismHostCalls,
    fgRaw,
    fgInstrumented,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([
        host.close(),
        coldHost.close(),
        bareHost.close(),
        extismHello.plugin.close(),
        extismHostCalls.plugin.close(),
        fgRaw.close(),
        fgInstrumented.close(),
      ]);
    },
  };
}

let coldLoads = 0;

/**
 * One cold load into `host`: load a hello module and make its first call,
 * timed; then unload and wait {@linkcode COLD_LOAD_GAP_MS}, untimed.
 * `fresh`: the bytes differ every time (a new sha256: inspect, instrument and
 * compile run); otherwise the compiled module is cached from the first load.
 */
export async function coldLoad(
  host: PluginHost,
  bytes: Uint8Array,
  fresh: boolean,
  timed: { start(): void; end(): void },
): Promise<void> {
  const n = ++coldLoads;
  const wasm = fresh ? withCustomSection(bytes, `load-${n}`) : bytes;
  const name = `cold-${n}`;
  timed.start();
  await host.load(wasm, { name });
  await host.invoke(name, "noop");
  timed.end();
  await host.unload(name);
  await sleep(COLD_LOAD_GAP_MS);
}
