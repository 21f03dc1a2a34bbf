// The PluginHost API with the example plugins, built from source.
import assert from "node:assert/strict";
import {
  type HostCallContext,
  HostCallError,
  PluginHost,
  PluginLoadError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
} from "../mod.ts";
import { decoder, encoder, examplePlugin, watFixture } from "./_test_utils.ts";

interface Caller {
  client: string;
}

Deno.test("invoke() runs the hello plugin's exports", async () => {
  await using host = new PluginHost();
  const hello = await host.load(await examplePlugin("hello"), { name: "hello", version: "1.0.0" });
  assert.deepEqual([...hello.exports].sort(), ["count_vowels", "describe", "echo", "fib", "greet", "noop"]);
  assert.match(hello.sha256, /^[0-9a-f]{64}$/);
  assert.equal(decoder.decode(await host.invoke(hello, "greet", "keycard")), "Hello, keycard!");
  assert.equal(decoder.decode(await host.invoke(hello, "greet")), "Hello, world!");
  const bytes = crypto.getRandomValues(new Uint8Array(4096));
  assert.deepEqual(await host.invoke(hello, "echo", bytes), bytes);
  assert.deepEqual(JSON.parse(decoder.decode(await host.invoke("hello", "count_vowels", "keycard"))), { count: 2 });
  assert.equal((await host.invoke(hello, "noop")).length, 0);
});

Deno.test("invoke() hands host functions the call's context and returns their errors as values", async () => {
  const seen: HostCallContext<Caller>[] = [];
  await using host = new PluginHost<Caller>({
    hostFunctions: {
      keycard_clock_now: (_input, context) => {
        seen.push(context);
        return encoder.encode('{"unixMs":42}');
      },
      keycard_random_get: async (input) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        const { bytes } = JSON.parse(decoder.decode(input));
        return new Uint8Array(bytes).fill(0xab);
      },
      keycard_log_write: () => {
        throw new HostCallError("denied", "No policy permits log.write: denied by default");
      },
      keycard_kv_get: () => {
        throw new Error("disk on fire");
      },
      keycard_kv_set: () => new Uint8Array(),
      keycard_fs_read: () => new Uint8Array(),
    },
  });
  const stamp = await host.load(await examplePlugin("stamp"), { name: "stamp" });
  const out = JSON.parse(decoder.decode(
    await host.invoke(stamp, "stamp", "x", { hostContext: { client: "ci" }, callId: "call-1" }),
  ));
  assert.deepEqual(out.now, { unixMs: 42 });
  assert.equal(out.nonce, "abababababababab");
  assert.deepEqual(out.errors.map((e: { code: string }) => e.code), ["denied"]);
  assert.match(out.errors[0].message, /denied by default/);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]!.hostContext, { client: "ci" });
  assert.equal(seen[0]!.callId, "call-1");
  assert.equal(seen[0]!.plugin.name, "stamp");
  assert.equal(seen[0]!.export, "stamp");
  // A host function that throws a plain error reaches the plugin as code "io".
  await assert.rejects(() => host.invoke(stamp, "kv_counter"), (error: unknown) => {
    assert.ok(error instanceof PluginReportedError);
    assert.match(error.detail, /io: disk on fire/);
    return true;
  });
});

Deno.test("invoke() reports a plugin's own error as PluginReportedError and keeps the instance", async () => {
  await using host = new PluginHost();
  await host.load(await examplePlugin("hello"), { name: "hello" });
  await assert.rejects(() => host.invoke("hello", "fib", "not a number"), PluginReportedError);
  assert.equal(host.stats().replaced, 0);
  assert.equal(decoder.decode(await host.invoke("hello", "fib", "10")), "55");
});

Deno.test("invoke() refuses unknown plugins and exports", async () => {
  await using host = new PluginHost();
  await host.load(await examplePlugin("hello"), { name: "hello" });
  await assert.rejects(() => host.invoke("nope", "greet"), PluginNotFoundError);
  await assert.rejects(() => host.invoke("hello", "nope"), /Plugin "hello" has no export "nope"/);
});

Deno.test("load() refuses malformed wasm, oversized memory and duplicate names, and keeps nothing", async () => {
  await using host = new PluginHost({ limits: { memoryPages: 16 } });
  await assert.rejects(
    () => host.load(encoder.encode("definitely not wasm"), { name: "junk" }),
    /Cannot load plugin "junk": Missing the \\0asm magic number at byte 0/,
  );
  const header = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  await assert.rejects(
    () => host.load(new Uint8Array([...header, 0x0a, 0x02, 0x01, 0x00]), { name: "bad-code" }),
    PluginLoadError,
  );
  await assert.rejects(
    async () => host.load(await examplePlugin("hello"), { name: "big", limits: { memoryPages: 100_000 } }),
    RangeError,
  );
  assert.deepEqual(host.plugins(), []);
  await host.load(await examplePlugin("hello"), { name: "hello" });
  await assert.rejects(async () => host.load(await examplePlugin("hello"), { name: "hello" }), TypeError);
  assert.equal(host.plugins().length, 1);
});

Deno.test("unload() stops a plugin and close() refuses new calls", async () => {
  const host = new PluginHost();
  await host.load(await examplePlugin("hello"), { name: "hello" });
  await host.load(await watFixture("trap"), { name: "trap" });
  assert.equal(await host.unload("trap"), true);
  assert.equal(await host.unload("trap"), false);
  await assert.rejects(() => host.invoke("trap", "unreachable"), PluginNotFoundError);
  assert.equal(decoder.decode(await host.invoke("hello", "greet", "x")), "Hello, x!");
  await host.close();
  await assert.rejects(() => host.invoke("hello", "greet"), PluginRuntimeError);
});

/** Counts of ok and error responses the host_call_flood fixture reports. */
async function flood(host: PluginHost, name: string, exportName: string, calls: number) {
  const input = new Uint8Array(8);
  new DataView(input.buffer).setBigUint64(0, BigInt(calls), true);
  const out = new DataView((await host.invoke(name, exportName, input)).buffer);
  return { ok: Number(out.getBigUint64(0, true)), errors: Number(out.getBigUint64(8, true)) };
}

Deno.test("new PluginHost() refuses a recycle budget that is not a positive integer", () => {
  assert.throws(() => new PluginHost({ recycle: { calls: 0 } }), /"recycle.calls" must be a positive integer, got 0/);
  assert.throws(() => new PluginHost({ recycle: { instantiations: 1.5 } }), RangeError);
});

Deno.test("invoke() serves 100,000 host calls in one invocation, then error values past the hostCalls cap", async () => {
  await using host = new PluginHost({
    hostFunctions: { keycard_clock_now: () => encoder.encode('{"unixMs":42}') },
    limits: { hostCalls: 100_000, deadlineMs: 120_000 },
  });
  await host.load(await watFixture("host_call_flood"), { name: "flood" });
  // Extism's JS SDK never reuses a block index, and an index past 32,767
  // no longer fits a signed i64 address: a response block must be freed
  // (or reclaimed once read) within the call.
  // A plugin that frees each response reuses its slot; one that never frees
  // gets each response freed once it has read the last byte.
  assert.deepEqual(await flood(host, "flood", "flood_keep", 100_010), { ok: 100_000, errors: 10 });
  assert.deepEqual(await flood(host, "flood", "flood_free", 40_000), { ok: 40_000, errors: 0 });
  assert.equal(host.stats().replaced, 0);
});
