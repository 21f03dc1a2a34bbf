import assert from "node:assert/strict";
import { KvStore } from "./kv_store.ts";
import { assertRefused } from "../../tests/_test_utils.ts";

const encoder = new TextEncoder();

/** A temp dir for a database file, removed at the end. */
async function withDatabase(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "keycard_kv_" });
  try {
    await body(`${dir}/kv.sqlite3`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("KvStore.set() keeps values across close and reopen of the same path", async () => {
  await withDatabase(async (path) => {
    {
      using store = await KvStore.open(path);
      await store.set("counter", "state", "hits", encoder.encode("41"));
      await store.set("counter", "state", "hits", encoder.encode("42"));
      await store.set("counter", "state", "gone", encoder.encode("x"));
      assert.equal(await store.delete("counter", "state", "gone"), true);
    }
    using reopened = await KvStore.open(path);
    assert.deepEqual(await reopened.get("counter", "state", "hits"), encoder.encode("42"));
    assert.equal(await reopened.get("counter", "state", "gone"), undefined);
  });
});

Deno.test("KvStore.get() never shows one plugin's value to another with the same namespace and key", async () => {
  await withDatabase(async (path) => {
    using store = await KvStore.open(path);
    await store.set("alpha", "shared", "key", encoder.encode("alpha's"));
    assert.equal(await store.get("beta", "shared", "key"), undefined);
    await store.set("beta", "shared", "key", encoder.encode("beta's"));
    assert.deepEqual(await store.get("alpha", "shared", "key"), encoder.encode("alpha's"));
    assert.deepEqual(await store.get("beta", "shared", "key"), encoder.encode("beta's"));
    assert.equal(await store.delete("beta", "shared", "key"), true);
    assert.deepEqual(await store.get("alpha", "shared", "key"), encoder.encode("alpha's"));
    // Namespaces separate too, and a key is never split into parts.
    assert.equal(await store.get("alpha", "other", "key"), undefined);
    await store.set("alpha", "a", "b/c", encoder.encode("1"));
    assert.equal(await store.get("alpha", "a/b", "c"), undefined);
  });
});

Deno.test("KvStore.delete() reports whether the key had a value", async () => {
  using store = await KvStore.open(":memory:");
  assert.equal(await store.delete("p", "n", "k"), false);
  await store.set("p", "n", "k", new Uint8Array([1]));
  const results = await Promise.all([store.delete("p", "n", "k"), store.delete("p", "n", "k")]);
  assert.deepEqual(results.toSorted(), [false, true]);
  assert.equal(await store.get("p", "n", "k"), undefined);
});

Deno.test("KvStore.set() stores empty and binary values byte for byte", async () => {
  using store = await KvStore.open(":memory:");
  await store.set("p", "n", "empty", new Uint8Array());
  assert.deepEqual(await store.get("p", "n", "empty"), new Uint8Array());
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  await store.set("p", "n", "binary", binary);
  assert.deepEqual(await store.get("p", "n", "binary"), binary);
});

Deno.test("KvStore.set() refuses a value over maxValueBytes", async () => {
  using store = await KvStore.open(":memory:");
  await store.set("p", "n", "max", new Uint8Array(65536));
  assert.equal((await store.get("p", "n", "max"))?.byteLength, 65536);
  await assertRefused(
    store.set("p", "n", "big", new Uint8Array(65537)),
    "limit",
    /^Cannot set key "big" to 65537 bytes: values are limited to 65536 bytes$/,
  );
  using small = await KvStore.open(":memory:", { maxValueBytes: 4 });
  await small.set("p", "n", "k", new Uint8Array(4));
  await assertRefused(small.set("p", "n", "k", new Uint8Array(5)), "limit", /limited to 4 bytes/);
  assert.equal((await small.get("p", "n", "k"))?.byteLength, 4);
});

Deno.test("KvStore.open() refuses a value limit above Deno KV's own", async () => {
  await assert.rejects(KvStore.open(":memory:", { maxValueBytes: 65537 }), RangeError);
  await assert.rejects(KvStore.open(":memory:", { maxValueBytes: 0 }), RangeError);
  await assert.rejects(KvStore.open(":memory:", { maxValueBytes: 1.5 }), RangeError);
});

Deno.test("KvStore.set() refuses keys that are empty, over 512 bytes or hold control characters", async () => {
  using store = await KvStore.open(":memory:");
  const value = new Uint8Array([1]);
  await store.set("p", "n", "k".repeat(512), value);
  await store.set("p", "n", "é".repeat(256), value);
  await store.set("p", "n", "emoji 🔑 and spaces", value);
  await assertRefused(store.set("p", "n", "", value), "invalid", /^Key "" is 0 bytes: it must be 1 to 512 bytes$/);
  await assertRefused(store.set("p", "n", "k".repeat(513), value), "invalid", /1 to 512 bytes/);
  await assertRefused(store.set("p", "n", "é".repeat(257), value), "invalid", /1 to 512 bytes/);
  await assertRefused(
    store.set("p", "n", "a\u0000b", value),
    "invalid",
    /^Key "a\\u0000b" contains .*U\+0000 at index 1/,
  );
  await assertRefused(store.set("p", "n", "line\n", value), "invalid", /U\+000A/);
  await assertRefused(store.set("p", "n", "del\u007f", value), "invalid", /U\+007F/);
  await assertRefused(store.set("p", "n", "lone \ud800", value), "invalid", /lone surrogate/);
  await assertRefused(store.get("p", "n", ""), "invalid");
  await assertRefused(store.delete("p", "n", "\t"), "invalid");
  await assertRefused(store.set("p", "", "k", value), "invalid", /^Namespace ""/);
  await assertRefused(store.set("", "n", "k", value), "invalid", /^Plugin name ""/);
});

Deno.test("KvStore refuses calls after close and closes twice without error", async () => {
  const store = await KvStore.open(":memory:");
  store.close();
  store.close();
  await assertRefused(store.get("p", "n", "k"), "io", /the store is closed/);
  await assertRefused(store.set("p", "n", "k", new Uint8Array()), "io", /the store is closed/);
  await assertRefused(store.delete("p", "n", "k"), "io", /the store is closed/);
});
