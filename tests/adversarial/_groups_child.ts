// A child process for the "groups" area (groups_test.ts): builds a host whose isolation group shares one worker,
// leaves that worker in the state the scenario names, closes the host and prints "closed". The test then checks that
// the process exits on its own: a thread left asleep in Atomics.wait or spinning keeps a process from exiting.
//   idle:    two plugins' instances idle in the shared worker (asleep on its work cell)
//   queued:  a call spinning until its deadline and calls of its neighbour queued behind it in the worker
//   zombie:  a plugin unloaded while its instance starts behind a neighbour's call (its start code calls the host)
import { PluginHost } from "../../mod.ts";
import { watFixture } from "../_test_utils.ts";

const scenario = Deno.args[0];
let entered!: () => void;
const inside = new Promise<void>((resolve) => entered = resolve);
let release!: () => void;
const gate = new Promise<void>((resolve) => release = resolve);
const host = new PluginHost({
  groups: { tenants: { workers: 1 } },
  hostFunctions: {
    keycard_clock_now: () => new TextEncoder().encode("{}"),
    keycard_test_sleep: async () => {
      entered();
      await gate;
      return new Uint8Array();
    },
  },
});
const settled: Promise<unknown>[] = [];
/** Keeps a call whose outcome does not matter here from failing the process unhandled. */
const track = (call: Promise<unknown>) => settled.push(call.catch(() => {}));
await host.load(await watFixture("counter"), { name: "counter", group: "tenants", limits: { minInstances: 1 } });
if (scenario === "idle") {
  await host.load(await watFixture("counter"), { name: "other", group: "tenants", limits: { minInstances: 1 } });
  await host.invoke("counter", "next");
  await host.invoke("other", "next");
} else if (scenario === "queued") {
  await host.load(await watFixture("infinite_loop"), {
    name: "spin",
    group: "tenants",
    limits: { minInstances: 1, deadlineMs: 1500 },
  });
  track(host.invoke("spin", "spin"));
  for (let i = 0; i < 3; i++) track(host.invoke("counter", "next", "", { deadlineMs: 5000 }));
} else if (scenario === "zombie") {
  await host.load(await watFixture("exclusive"), {
    name: "slow",
    group: "tenants",
    limits: { minInstances: 1, deadlineMs: 20_000 },
  });
  await host.load(await watFixture("group_probe"), { name: "probe", group: "tenants" });
  track(host.invoke("slow", "enter"));
  await inside;
  await host.invoke("probe", "ping", "", { deadlineMs: 50 }).catch(() => {});
  await host.unload("probe");
  release();
  await settled[0];
} else {
  throw new TypeError(`Unknown scenario "${scenario}"`);
}
const closing = host.close();
release();
await closing;
await Promise.allSettled(settled);
console.log("closed");
