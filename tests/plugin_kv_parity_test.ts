/**
 * One table of behaviours, run against every plugin KV store: a plugin must
 * not be able to tell Deno KV (one machine) from PostgreSQL (replicas). The
 * PostgreSQL rows are ignored, by name, only when no database is available.
 */
import assert from "node:assert/strict";
import { KvStore } from "../src/host/kv_store.ts";
import type { PluginKv } from "../src/host/plugin_kv.ts";
import { PostgresKvStore } from "../src/store/postgres/postgres_kv_store.ts";
import { freshKvDatabase, testPostgres } from "./_postgres_kv.ts";
import { assertRefused } from "./_test_utils.ts";

type Open = (options?: { maxValueBytes?: number }) => Promise<PluginKv>;

interface Backend {
  name: string;
  /** Why its rows are ignored, when they are. */
  unavailable?: string;
  /** Gives `body` a way to open stores on one fresh, empty backing store; closes them after. */
  with(body: (open: Open) => Promise<void>): Promise<void>;
}

const backends: Backend[] = [
  {
    name: "KvStore",
    async with(body) {
      // One file shared by every store the case opens, as PostgreSQL's database is.
      const dir = await Deno.makeTempDir({ prefix: "keycard_kv_parity_" });
      const stores: PluginKv[] = [];
      try {
        await body(async (options) => {
          const store = await KvStore.open(`${dir}/kv.sqlite3`, options);
          stores.push(store);
          return store;
        });
      } finally {
        for (const store of stores) store.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  },
  {
    name: "PostgresKvStore",
    unavailable: testPostgres === undefined ? "no PostgreSQL" : undefined,
    async with(body) {
      const db = await freshKvDatabase();
      const stores: PluginKv[] = [];
      try {
        await body(async (options) => {
          // A pool of its own for each store, as each replica has.
          const store = new PostgresKvStore(await db.connect(), options);
          stores.push(store);
          return store;
        });
      } finally {
        for (const store of stores) store.close();
        await db.close();
      }
    },
  },
];

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

/** The behaviours: each name reads after the store's class name. */
const cases: Record<string, (open: Open) => Promise<void>> = {
  "set() then get() round-trips a value and the last write wins": async (open) => {
    const store = await open();
    await store.set("counter", "state", "hits", bytes("41"));
    await store.set("counter", "state", "hits", bytes("42"));
    // Plain Uint8Array, not a subclass such as Node's Buffer.
    assert.deepEqual(await store.get("counter", "state", "hits"), bytes("42"));
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    await store.set("counter", "state", "binary", binary);
    assert.deepEqual(await store.get("counter", "state", "binary"), binary);
    // A value is copied in: changing the caller's array afterwards changes nothing stored.
    binary[0] = 99;
    assert.equal((await store.get("counter", "state", "binary"))?.[0], 0);
  },

  "get() returns undefined for a key never set or deleted": async (open) => {
    const store = await open();
    assert.equal(await store.get("counter", "state", "nothing"), undefined);
    await store.set("counter", "state", "gone", bytes("x"));
    await store.delete("counter", "state", "gone");
    assert.equal(await store.get("counter", "state", "gone"), undefined);
  },

  "delete() reports whether the key had a value, true for exactly one of racing deletes": async (open) => {
    const store = await open();
    assert.equal(await store.delete("p", "n", "k"), false);
    await store.set("p", "n", "k", new Uint8Array([1]));
    assert.equal(await store.delete("p", "n", "k"), true);
    assert.equal(await store.delete("p", "n", "k"), false);
    await store.set("p", "n", "k", new Uint8Array([1]));
    const results = await Promise.all([store.delete("p", "n", "k"), store.delete("p", "n", "k")]);
    assert.deepEqual(results.toSorted(), [false, true]);
    assert.equal(await store.get("p", "n", "k"), undefined);
  },

  "get() never shows one plugin's value to another with the same namespace and key": async (open) => {
    const store = await open();
    await store.set("alpha", "shared", "key", bytes("alpha's"));
    assert.equal(await store.get("beta", "shared", "key"), undefined);
    await store.set("beta", "shared", "key", bytes("beta's"));
    assert.deepEqual(await store.get("alpha", "shared", "key"), bytes("alpha's"));
    assert.equal(await store.delete("beta", "shared", "key"), true);
    assert.deepEqual(await store.get("alpha", "shared", "key"), bytes("alpha's"));
    assert.equal(await store.delete("beta", "shared", "key"), false);
  },

  "get() keeps namespaces apart and never splits a key into parts": async (open) => {
    const store = await open();
    await store.set("alpha", "one", "key", bytes("1"));
    assert.equal(await store.get("alpha", "two", "key"), undefined);
    await store.set("alpha", "a", "b/c", bytes("slash in key"));
    assert.equal(await store.get("alpha", "a/b", "c"), undefined);
    await store.set("alpha", "a/b", "c", bytes("slash in namespace"));
    assert.deepEqual(await store.get("alpha", "a", "b/c"), bytes("slash in key"));
    // Parts that concatenate alike stay apart.
    await store.set("ab", "c", "d", bytes("x"));
    assert.equal(await store.get("a", "bc", "d"), undefined);
  },

  "set() stores an empty value, which get() returns as empty bytes, not as missing": async (open) => {
    const store = await open();
    await store.set("p", "n", "empty", new Uint8Array());
    assert.deepEqual(await store.get("p", "n", "empty"), new Uint8Array());
    assert.equal(await store.delete("p", "n", "empty"), true);
    assert.equal(await store.get("p", "n", "empty"), undefined);
  },

  "set() and get() keep Unicode names byte for byte, without folding or normalizing": async (open) => {
    const store = await open();
    const names = ["emoji 🔑 and spaces", "日本語のキー", "é", "e\u0301", "K", "k", "k ", "ß", "ss", "\u{10FFFF}"];
    for (const [i, name] of names.entries()) await store.set("plügin", "ñs", name, bytes(String(i)));
    for (const [i, name] of names.entries()) {
      assert.deepEqual(await store.get("plügin", "ñs", name), bytes(String(i)), `key ${JSON.stringify(name)}`);
    }
    assert.equal(await store.get("plugin", "ñs", "k"), undefined);
  },

  "set() refuses a value over maxValueBytes and keeps the previous value": async (open) => {
    const store = await open();
    await store.set("p", "n", "max", new Uint8Array(65536));
    assert.equal((await store.get("p", "n", "max"))?.byteLength, 65536);
    await assertRefused(
      store.set("p", "n", "max", new Uint8Array(65537)),
      "limit",
      /^Cannot set key "max" to 65537 bytes: values are limited to 65536 bytes$/,
    );
    assert.equal((await store.get("p", "n", "max"))?.byteLength, 65536);
    const small = await open({ maxValueBytes: 4 });
    await small.set("p", "n", "k", new Uint8Array(4));
    await assertRefused(small.set("p", "n", "k", new Uint8Array(5)), "limit", /limited to 4 bytes$/);
    assert.equal((await small.get("p", "n", "k"))?.byteLength, 4);
  },

  "opening refuses a value limit that is not an integer from 1 to 65536": async (open) => {
    for (const maxValueBytes of [65537, 0, -1, 1.5, Number.NaN]) {
      await assert.rejects(
        (async () => await open({ maxValueBytes }))(),
        new RangeError(
          `Value limit ${maxValueBytes} is invalid: maxValueBytes must be an integer from 1 to 65536`,
        ),
      );
    }
  },

  "set() accepts parts of 1 to 512 UTF-8 bytes and refuses longer ones": async (open) => {
    const store = await open();
    const value = new Uint8Array([1]);
    for (const part of ["k", "k".repeat(512), "é".repeat(256), "🔑".repeat(128)]) {
      await store.set(part, part, part, value);
      assert.deepEqual(await store.get(part, part, part), value);
    }
    await assertRefused(store.set("p", "n", "k".repeat(513), value), "invalid", /^Key "k{80}…" is 513 or more bytes/);
    await assertRefused(store.set("p", "n", "é".repeat(257), value), "invalid", /is 514 bytes: it must be 1 to 512/);
    await assertRefused(store.set("p", "k".repeat(513), "k", value), "invalid", /^Namespace .* 1 to 512 bytes$/);
    await assertRefused(store.set("🔑".repeat(129), "n", "k", value), "invalid", /^Plugin name .* 1 to 512 bytes$/);
  },

  "every call refuses an empty name, control characters and lone surrogates with invalid": async (open) => {
    const store = await open();
    const value = new Uint8Array([1]);
    await assertRefused(store.set("p", "n", "", value), "invalid", /^Key "" is 0 bytes: it must be 1 to 512 bytes$/);
    await assertRefused(store.set("p", "", "k", value), "invalid", /^Namespace ""/);
    await assertRefused(store.set("", "n", "k", value), "invalid", /^Plugin name ""/);
    await assertRefused(
      store.set("p", "n", "a\u0000b", value),
      "invalid",
      /^Key "a\\u0000b" contains the control character U\+0000 at index 1: control characters are not allowed$/,
    );
    await assertRefused(store.set("p", "n", "line\n", value), "invalid", /U\+000A/);
    await assertRefused(store.set("p", "n", "del\u007f", value), "invalid", /U\+007F/);
    await assertRefused(store.set("p", "n", "lone \ud800", value), "invalid", /lone surrogate/);
    await assertRefused(store.set("p", "n", "lone \udc00 low", value), "invalid", /lone surrogate/);
    await assertRefused(store.get("p", "n", ""), "invalid");
    await assertRefused(store.get("p\t", "n", "k"), "invalid", /^Plugin name/);
    await assertRefused(store.delete("p", "n", "\t"), "invalid");
    await assertRefused(store.delete("p", "\u001b[31m", "k"), "invalid", /^Namespace/);
    // Nothing was written by a refused call.
    assert.equal(await store.get("p", "n", "k"), undefined);
  },

  "a closed store refuses every call with io and closes twice without error": async (open) => {
    const store = await open();
    await store.set("p", "n", "k", bytes("kept"));
    store.close();
    store.close();
    await assertRefused(store.get("p", "n", "k"), "io", /^Cannot read key "k": the store is closed$/);
    await assertRefused(
      store.set("p", "n", "k", new Uint8Array()),
      "io",
      /^Cannot write key "k": the store is closed$/,
    );
    await assertRefused(store.delete("p", "n", "k"), "io", /^Cannot delete key "k": the store is closed$/);
    // A malformed call is still reported as malformed, and the limit still applies first.
    await assertRefused(store.get("p", "n", ""), "invalid");
    // What was written before close is still there for a store opened afterwards.
    const reopened = await open();
    assert.deepEqual(await reopened.get("p", "n", "k"), bytes("kept"));
  },

  "a random run of set, get and delete gives the same results as a map": async (open) => {
    const store = await open();
    const model = new Map<string, Uint8Array>();
    let seed = 14;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const parts = ["a", "b", "é"];
    for (let i = 0; i < 200; i++) {
      const [plugin, namespace, key] = [parts[random(3)]!, parts[random(3)]!, parts[random(3)]!];
      const id = JSON.stringify([plugin, namespace, key]);
      const op = random(3);
      if (op === 0) {
        const value = Uint8Array.from({ length: random(5) }, () => random(256));
        await store.set(plugin, namespace, key, value);
        model.set(id, value);
      } else if (op === 1) {
        assert.deepEqual(await store.get(plugin, namespace, key), model.get(id), `step ${i}: get ${id}`);
      } else {
        assert.equal(await store.delete(plugin, namespace, key), model.delete(id), `step ${i}: delete ${id}`);
      }
    }
  },
};

for (const backend of backends) {
  for (const [name, body] of Object.entries(cases)) {
    Deno.test({
      name: `${backend.name}: ${name}${backend.unavailable ? ` (ignored: ${backend.unavailable})` : ""}`,
      ignore: backend.unavailable !== undefined,
      fn: () => backend.with(body),
    });
  }
}
