// Deno KV specifics: persistence across reopen, bytes kept exactly. The behaviours every plugin KV store shares are
// run against this store and the PostgreSQL one by tests/plugin_kv_parity_test.ts.
import assert from "node:assert/strict";
import { KvStore } from "./kv_store.ts";

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

Deno.test("KvStore.set() stores empty and binary values byte for byte", async () => {
  using store = await KvStore.open(":memory:");
  await store.set("p", "n", "empty", new Uint8Array());
  assert.deepEqual(await store.get("p", "n", "empty"), new Uint8Array());
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  await store.set("p", "n", "binary", binary);
  assert.deepEqual(await store.get("p", "n", "binary"), binary);
});
