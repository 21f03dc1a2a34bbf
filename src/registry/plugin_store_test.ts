// The PluginStore contract, run against every store.
import assert from "node:assert/strict";
import { FileStore } from "./file_store.ts";
import { MemoryStore } from "./memory_store.ts";
import type { PluginStore } from "./plugin_store.ts";
import { manifestOf, recordOf, tempDir } from "./_test_utils.ts";
import { freshKvDatabase, testPostgres } from "../../tests/_postgres_kv.ts";
import { PostgresPluginStore } from "../store/postgres/postgres_plugin_store.ts";

interface Opened {
  store: PluginStore;
  close?: () => Promise<void>;
}

const stores: [string, (dir: string) => Opened | Promise<Opened>, boolean][] = [
  ["MemoryStore", () => ({ store: new MemoryStore() }), false],
  ["FileStore", (dir) => ({ store: new FileStore(dir) }), false],
  // A migrated database of its own per test; ignored by name on a machine without PostgreSQL.
  ["PostgresPluginStore", async () => {
    const db = await freshKvDatabase();
    return { store: new PostgresPluginStore(await db.connect()), close: db.close };
  }, testPostgres === undefined],
];

function contract(label: string, name: string, body: (store: PluginStore) => Promise<void>): void {
  for (const [kind, open, ignore] of stores) {
    Deno.test({
      name: `${kind}.${name} ${label}${ignore ? " (ignored: no PostgreSQL)" : ""}`,
      ignore,
      async fn() {
        await using dir = await tempDir();
        const opened = await open(dir.path);
        try {
          await body(opened.store);
        } finally {
          await opened.close?.();
        }
      },
    });
  }
}

contract("round-trips a record", "get()", async (store) => {
  const record = await recordOf("hello", "1.0.0", { signature: "c2lnbmF0dXJl" });
  await store.put(record);
  assert.deepEqual(await store.get("hello", "1.0.0"), record);
  assert.deepEqual(await store.get("hello"), record);
  assert.equal(await store.get("hello", "2.0.0"), undefined);
  assert.equal(await store.get("other"), undefined);
});

contract("round-trips the conformance report, and a record without one", "get()", async (store) => {
  const report = {
    passed: true,
    checks: [{ id: "exports", name: "Declared exports exist", passed: true, detail: "greet" }],
    footprint: [{ action: "clock.now", resource: 'Clock::"system"', count: 2, allowed: 2, declared: true }],
    durationMs: 12.5,
  };
  const record = await recordOf("hello", "1.0.0", { report });
  await store.put(record);
  assert.deepEqual((await store.get("hello", "1.0.0"))?.report, report);
  await store.put(await recordOf("hello", "2.0.0"));
  assert.equal("report" in (await store.get("hello", "2.0.0"))!, false);
});

contract("refuses a report that is not a JSON object, storing nothing", "put()", async (store) => {
  for (const report of [[1, 2], "text", { text: "nul\0" }] as unknown[]) {
    const record = await recordOf("hello", "1.0.0");
    await assert.rejects(
      store.put({ ...record, report: report as Record<string, unknown> }),
      /The report of plugin "hello@1.0.0" is not a JSON object/,
    );
  }
  assert.deepEqual(await store.list(), []);
});

contract("hands out copies, not what it holds", "get()", async (store) => {
  const record = await recordOf("hello", "1.0.0");
  await store.put(record);
  record.wasm[0] = 99;
  record.manifest.capabilities.push("fs.read");
  const first = await store.get("hello");
  assert.equal(first?.wasm[0], 0);
  assert.deepEqual(first?.manifest.capabilities, []);
  first!.wasm[0] = 99;
  assert.equal((await store.get("hello"))?.wasm[0], 0);
});

contract("returns the latest by semver: 1.10.0 > 1.9.0 > 1.9.0-rc.1", "get()", async (store) => {
  for (const version of ["1.9.0-rc.1", "1.10.0", "1.9.0", "1.9.0-rc.10", "1.9.0-rc.2"]) {
    await store.put(await recordOf("p", version));
  }
  assert.equal((await store.get("p"))?.manifest.version, "1.10.0");
  assert.deepEqual(await store.list(), [
    { name: "p", versions: ["1.9.0-rc.1", "1.9.0-rc.2", "1.9.0-rc.10", "1.9.0", "1.10.0"], latest: "1.10.0" },
  ]);
  await store.remove("p", "1.10.0");
  assert.equal((await store.get("p"))?.manifest.version, "1.9.0");
  await store.remove("p", "1.9.0");
  assert.equal((await store.get("p"))?.manifest.version, "1.9.0-rc.10");
});

contract("sorts plugins by name", "list()", async (store) => {
  assert.deepEqual(await store.list(), []);
  for (const name of ["zeta", "beta", "Alpha", "beta"]) await store.put(await recordOf(name, "1.0.0"));
  assert.deepEqual((await store.list()).map((p) => p.name), ["Alpha", "beta", "zeta"]);
});

contract("replaces a version", "put()", async (store) => {
  await store.put(await recordOf("p", "1.0.0", { tag: "old" }));
  const next = await recordOf("p", "1.0.0", { tag: "new" });
  await store.put(next);
  assert.deepEqual(await store.get("p", "1.0.0"), next);
  assert.deepEqual(await store.list(), [{ name: "p", versions: ["1.0.0"], latest: "1.0.0" }]);
});

contract("refuses a record whose sha256 is not its wasm's", "put()", async (store) => {
  const record = await recordOf("p", "1.0.0");
  await assert.rejects(store.put({ ...record, sha256: "0".repeat(64) }), RangeError);
  await assert.rejects(store.put({ ...record, sha256: "ABC" }), TypeError);
  await assert.rejects(store.put({ ...record, installedAt: "yesterday" }), TypeError);
  assert.deepEqual(await store.list(), []);
});

contract("removes one version, then all", "remove()", async (store) => {
  for (const version of ["1.0.0", "2.0.0", "1.5.0"]) await store.put(await recordOf("p", version));
  await store.put(await recordOf("q", "1.0.0"));
  assert.deepEqual(await store.remove("p", "2.0.0"), ["2.0.0"]);
  assert.deepEqual(await store.remove("p", "2.0.0"), []);
  assert.equal((await store.get("p"))?.manifest.version, "1.5.0");
  await store.put(await recordOf("p", "0.1.0"));
  assert.deepEqual(await store.remove("p"), ["0.1.0", "1.0.0", "1.5.0"]);
  assert.deepEqual(await store.remove("p"), []);
  assert.equal(await store.get("p"), undefined);
  assert.deepEqual(await store.list(), [{ name: "q", versions: ["1.0.0"], latest: "1.0.0" }]);
  assert.deepEqual(await store.remove("q", "1.0.0"), ["1.0.0"]);
  assert.deepEqual(await store.list(), []);
});

contract("refuse names and versions that break the naming rule", "get(), put() and remove()", async (store) => {
  const record = await recordOf("ok", "1.0.0");
  for (const name of ["..", ".", ".hidden", "../etc", "a/b", "a b", "", "x".repeat(129), "é"]) {
    await assert.rejects(store.get(name), RangeError, name);
    await assert.rejects(store.remove(name), RangeError, name);
    await assert.rejects(store.put({ ...record, manifest: manifestOf(name, "1.0.0") }), RangeError, name);
  }
  for (const version of ["v1.0.0", "1.0", "01.0.0", " 1.0.0", "1.0.0-rc.01", "latest", "../1.0.0"]) {
    await assert.rejects(store.get("p", version), RangeError, version);
    await assert.rejects(store.remove("p", version), RangeError, version);
  }
  await assert.rejects(store.get(42 as unknown as string), TypeError);
  await assert.rejects(store.get("p", 1 as unknown as string), TypeError);
  await assert.rejects(store.get(".."), /Plugin name "\.\." is invalid: a name is 1-128 letters/);
  await assert.rejects(store.get("p", "v1"), /Version "v1" of plugin "p" is invalid: a version is a semantic version/);
});

contract("keeps build metadata and orders it after the bare version", "get()", async (store) => {
  await store.put(await recordOf("p", "1.0.0+b.2"));
  await store.put(await recordOf("p", "1.0.0"));
  assert.deepEqual((await store.list())[0]?.versions, ["1.0.0", "1.0.0+b.2"]);
  assert.equal((await store.get("p", "1.0.0"))?.manifest.version, "1.0.0");
});
