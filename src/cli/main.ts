/**
 * keycard's command line. Until the HTTP gateway lands, `start` runs a short
 * demonstration of the plugin runtime on the example plugins.
 *
 * @module
 */
import { buildPlugins } from "../../plugins/build.ts";
import { HostCallError, PluginDeadlineError, PluginHost } from "../runtime/mod.ts";
import { watDemoLoop } from "./_demo_loop.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function denied(action: string) {
  return (): never => {
    throw new HostCallError("denied", `No policy permits ${action} in this demo: denied by default`);
  };
}

/** Runs the runtime demonstration and prints what happens. */
export async function demo(): Promise<void> {
  const [hello, stamp] = await buildPlugins({ only: ["hello", "stamp"] });
  await using host = new PluginHost({
    limits: { deadlineMs: 500 },
    hostFunctions: {
      keycard_clock_now: () => encoder.encode(JSON.stringify({ unixMs: Date.now() })),
      keycard_random_get: (input) => {
        const { bytes } = JSON.parse(decoder.decode(input)) as { bytes: number };
        return crypto.getRandomValues(new Uint8Array(Math.min(bytes, 1024)));
      },
      keycard_log_write: (input) => {
        const { level, message } = JSON.parse(decoder.decode(input)) as { level: string; message: string };
        console.log(`  [plugin log ${level}] ${message}`);
        return new Uint8Array();
      },
      keycard_kv_get: denied("kv.get"),
      keycard_kv_set: denied("kv.set"),
      keycard_fs_read: denied("fs.read"),
    },
  });
  let started = performance.now();
  const helloPlugin = await host.load(await Deno.readFile(hello!), { name: "hello", version: "1.0.0" });
  console.log(`loaded hello (${helloPlugin.sha256.slice(0, 12)}) in ${(performance.now() - started).toFixed(1)} ms`);
  const stampPlugin = await host.load(await Deno.readFile(stamp!), { name: "stamp", version: "1.0.0" });
  console.log(`hello.greet -> ${decoder.decode(await host.invoke(helloPlugin, "greet", "keycard"))}`);
  console.log(`stamp.stamp -> ${decoder.decode(await host.invoke(stampPlugin, "stamp", "demo"))}`);
  try {
    await host.invoke(stampPlugin, "kv_counter");
  } catch (error) {
    console.log(`stamp.kv_counter -> ${(error as Error).message}`);
  }
  await host.load(await watDemoLoop(), { name: "runaway" });
  started = performance.now();
  try {
    await host.invoke("runaway", "spin");
  } catch (error) {
    if (!(error instanceof PluginDeadlineError)) throw error;
    console.log(`runaway.spin -> stopped after ${(performance.now() - started).toFixed(0)} ms: ${error.message}`);
  }
  console.log(`hello.greet still answers -> ${decoder.decode(await host.invoke(helloPlugin, "greet", "again"))}`);
  console.log("stats:", host.stats());
}

if (import.meta.main) {
  const [command = "start"] = Deno.args;
  if (command === "start" || command === "demo") {
    await demo();
  } else {
    console.error(`Unknown command "${command}": expected start`);
    Deno.exit(2);
  }
}
