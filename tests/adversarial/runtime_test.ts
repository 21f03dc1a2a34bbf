// Hostile plugins against the real runtime, each attack bounded (a deadline,
// a cap or a count) and counted tried/held: loops, grow and alloc bombs,
// recursion, start code that never returns, host-call floods, huge outputs,
// Extism block exhaustion, trap churn. After each, a well-behaved plugin on
// the same host still answers and no worker is left stuck.
import assert from "node:assert/strict";
import {
  PluginDeadlineError,
  PluginHost,
  PluginLimitError,
  type PluginLimits,
  PluginLoadError,
  PluginMemoryError,
  PluginTrapError,
  SaturatedError,
} from "../../mod.ts";
import { decoder, encoder, examplePlugin, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

const DEADLINE_MS = 1000;

function newHost(options: { hostCalls?: number; response?: Uint8Array } = {}): PluginHost {
  const response = options.response ?? encoder.encode('{"unixMs":42}');
  return new PluginHost({
    limits: { deadlineMs: DEADLINE_MS, hostCalls: options.hostCalls ?? 10_000 },
    hostFunctions: {
      keycard_clock_now: () => response,
      keycard_log_write: () => new Uint8Array(),
      keycard_test_sleep: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return new Uint8Array();
      },
    },
  });
}

async function assertHelloAnswers(host: PluginHost): Promise<void> {
  assert.equal(decoder.decode(await host.invoke("hello", "greet", "still here")), "Hello, still here!");
  assert.equal(host.stats().stuckWorkers, 0);
}

/** Loads `fixture` next to hello on a fresh host, runs `attack`, then checks hello still answers. */
async function onHost(
  fixture: string,
  attack: (host: PluginHost) => Promise<void>,
  options: Parameters<typeof newHost>[0] & { limits?: Partial<PluginLimits>; load?: false } = {},
): Promise<void> {
  await using host = newHost(options);
  await host.load(hello!, { name: "hello" });
  if (options.load !== false) {
    await host.load(await watFixture(fixture), { name: "hostile", limits: options.limits ?? {} });
  }
  await attack(host);
  await assertHelloAnswers(host);
}

/** Calls the host_call_flood fixture: `calls` host calls, returns ok and error counts. */
async function flood(host: PluginHost, exportName: string, calls: number) {
  const input = new Uint8Array(8);
  new DataView(input.buffer).setBigUint64(0, BigInt(calls), true);
  const out = new DataView((await host.invoke("hostile", exportName, input)).buffer);
  return { ok: Number(out.getBigUint64(0, true)), errors: Number(out.getBigUint64(8, true)) };
}

let hello: Uint8Array | undefined;

Deno.test("adversarial runtime: hostile plugins are contained and the host keeps serving", async () => {
  hello = await examplePlugin("hello");
  const t = tally("runtime");

  await t.attack("an infinite loop", () =>
    onHost("infinite_loop", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "spin"), PluginDeadlineError);
    }));

  await t.attack("a memory.grow bomb", () =>
    onHost("memory_grow_bomb", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "grow"), PluginMemoryError);
    }));

  await t.attack("an Extism alloc bomb (1 MiB blocks, forever)", () =>
    onHost("alloc_bomb", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "bomb"), PluginMemoryError);
    }));

  await t.attack("unbounded recursion", () =>
    onHost("deep_recursion", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "recurse"), PluginTrapError);
    }));

  // Start code runs where an instance starts: at load for a plugin kept warm (minInstances), else at its first call.
  const startAttack = (fixture: string, expected: typeof PluginDeadlineError | typeof PluginTrapError) =>
    onHost(fixture, async (host) => {
      await assert.rejects(
        async () => host.load(await watFixture(fixture), { name: "hostile", limits: { minInstances: 1 } }),
        (error: unknown) => error instanceof PluginLoadError && error.cause instanceof expected,
      );
      const plugin = await host.load(await watFixture(fixture), { name: "hostile" });
      await assert.rejects(() => host.invoke("hostile", plugin.exports[0]!), expected);
    }, { load: false });

  await t.attack("a start section that never returns", () => startAttack("start_loop", PluginDeadlineError));

  await t.attack("an hs_init that never returns", () => startAttack("ghc_init_loop", PluginDeadlineError));

  await t.attack("an _initialize that traps", () => startAttack("reactor_init_trap", PluginTrapError));

  await t.attack("an import the host does not provide", () =>
    onHost("unknown_import", async (host) => {
      await assert.rejects(async () => host.load(await watFixture("unknown_import"), { name: "hostile" }), /abort/);
    }, { load: false }));

  await t.attack("host calls in a loop until the deadline", () =>
    onHost("host_call_loop", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "hammer"), PluginDeadlineError);
    }));

  await t.attack(
    "100,000 host calls in one invocation, never freeing a response",
    () =>
      onHost("host_call_flood", async (host) => {
        // Extism's 32,768-block ceiling trapped at ~32,000 before; past the cap: error values, no trap.
        assert.deepEqual(await flood(host, "flood_keep", 100_010), { ok: 100_000, errors: 10 });
        assert.equal(host.stats().replaced, 0);
      }, { hostCalls: 100_000, limits: { deadlineMs: 120_000 } }),
  );

  await t.attack(
    "20,000 host calls against the default cap of 10,000",
    () =>
      onHost("host_call_flood", async (host) => {
        assert.deepEqual(await flood(host, "flood_free", 20_000), { ok: 10_000, errors: 10_000 });
      }, { limits: { deadlineMs: 60_000 } }),
  );

  await t.attack(
    "64 KiB host responses hoarded unread past the memory cap",
    () =>
      onHost("host_call_flood", async (host) => {
        // 16 MiB of unread responses: the blocks count against the plugin's cap.
        await assert.rejects(() => flood(host, "flood_ignore", 1_000), PluginMemoryError);
        assert.deepEqual(await flood(host, "flood_ignore", 100), { ok: 100, errors: 0 });
      }, { response: new Uint8Array(64 * 1024), limits: { deadlineMs: 60_000 } }),
  );

  await t.attack("Extism blocks allocated forever, never freed", () =>
    onHost("block_abuse", async (host) => {
      await assert.rejects(
        () => host.invoke("hostile", "hoard"),
        (error: unknown) => error instanceof PluginMemoryError && /32767 Extism blocks/.test(error.message),
      );
    }, { limits: { deadlineMs: 30_000 } }));

  await t.attack(
    "frees of address 0, unknown addresses, double frees, reads after free",
    () =>
      onHost("block_abuse", async (host) => {
        assert.equal(decoder.decode(await host.invoke("hostile", "abuse")), "ok");
        assert.equal(host.stats().replaced, 0);
      }),
  );

  await t.attack("a huge output", () =>
    onHost("huge_output", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "flood"), PluginLimitError);
    }));

  await t.attack("an input over the limit", () =>
    onHost("trap", async (host) => {
      await assert.rejects(() => host.invoke("hostile", "unreachable", new Uint8Array(2 << 20)), PluginLimitError);
    }));

  await t.attack("trap churn: 100 traps in a row", () =>
    onHost("trap", async (host) => {
      for (let i = 0; i < 100; i++) {
        await assert.rejects(() => host.invoke("hostile", i % 2 ? "unreachable" : "out_of_bounds"), PluginTrapError);
      }
      assert.equal(host.stats().replaced, 100);
      // One worker: load's instantiation and 63 replacements, then a fresh worker.
      assert.equal(host.stats().recycled, 1);
    }, { limits: { instances: 1 } }));

  await t.attack(
    "fill 16 MiB and trap, 40 times",
    () =>
      onHost("fill_trap", async (host) => {
        const before = Deno.memoryUsage().rss;
        for (let i = 0; i < 40; i++) await assert.rejects(() => host.invoke("hostile", "fill"), PluginTrapError);
        assert.equal(host.stats().replaced, 40);
        assert.equal(host.stats().instances, 1); // fill_trap's: hello, not called yet, has none
        // Each dropped instance is collected in its worker: 40 x 16 MiB never piles up (a loose bound).
        const grown = (Deno.memoryUsage().rss - before) / 2 ** 20;
        assert.ok(grown < 200, `RSS grew ${grown.toFixed(0)} MiB over 40 filled-and-trapped instances`);
      }, { limits: { instances: 1 } }),
  );

  await t.attack("a flood of calls on a slow plugin", () =>
    onHost("exclusive", async (host) => {
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => host.invoke("hostile", "enter")));
      const saturated = results.filter((r) => r.status === "rejected" && r.reason instanceof SaturatedError);
      assert.equal(results.filter((r) => r.status === "fulfilled").length + saturated.length, 40);
      assert.equal(saturated.length, 40 - 2 - 4); // 2 instances, a queue of 4
    }, { limits: { instances: 2, queue: 4 } }));

  t.report();
});
