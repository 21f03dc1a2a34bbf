// The kv.* host functions on PostgreSQL, as a plugin sees them: a real plugin
// in real isolates on two replicas (two PluginHosts, each with its own pool)
// sharing one database, real Cedar deciding each call.
import assert from "node:assert/strict";
import postgres from "postgres";
import { AuditLog } from "../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability } from "../src/host/mod.ts";
import { compileGrants, PolicyEngine } from "../src/policy/mod.ts";
import { PluginHost } from "../src/runtime/mod.ts";
import { PostgresKvStore } from "../src/store/postgres/postgres_kv_store.ts";
import { freshKvDatabase, testPostgres } from "./_postgres_kv.ts";
import { decoder, encoder, watFixture } from "./_test_utils.ts";

type Reply = { ok: true; text: string } | { ok: false; code: string; message: string };

interface Replica {
  call(fn: "kv_get" | "kv_set" | "kv_delete", key: string, body?: Uint8Array): Promise<Reply>;
  close(): Promise<void>;
}

const schema = await Deno.readTextFile(new URL("../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../policies/base.cedar", import.meta.url));
const relay = await watFixture("relay");

async function replica(kv: PostgresKvStore): Promise<Replica> {
  const root = await Deno.makeTempDir({ prefix: "keycard-pgkv-" });
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/relay", text: compileGrants("relay", [{ kv: { namespace: "relay" } }]) },
    ],
  });
  const audit = new AuditLog({ file: { path: `${root}/audit/audit.jsonl` } });
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 10_000 },
    hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(root), kv }),
  });
  await host.load(relay, { name: "relay", version: "1.0.0" });
  return {
    async call(fn, key, body) {
      const json = encoder.encode(JSON.stringify({ key }));
      const out = await host.invoke("relay", fn, body ? new Uint8Array([...json, 0, ...body]) : json);
      const payload = decoder.decode(out.subarray(1));
      return out[0] === 0 ? { ok: true, text: payload } : { ok: false, ...JSON.parse(payload) };
    },
    async close() {
      await host.close();
      await audit.close();
      kv.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test({
  name: `kv.* host functions on PostgreSQL: a plugin on one replica reads what it wrote on another${
    testPostgres === undefined ? " (ignored: no PostgreSQL)" : ""
  }`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    const a = await replica(new PostgresKvStore(await db.connect()));
    const b = await replica(new PostgresKvStore(await db.connect()));
    try {
      assert.deepEqual(await a.call("kv_set", "counter", encoder.encode("41")), { ok: true, text: "" });
      assert.deepEqual(await b.call("kv_get", "counter"), { ok: true, text: "41" });
      assert.deepEqual(await b.call("kv_set", "counter", encoder.encode("42")), { ok: true, text: "" });
      assert.deepEqual(await a.call("kv_get", "counter"), { ok: true, text: "42" });
      assert.ok((await b.call("kv_delete", "counter")).ok);
      const gone = await a.call("kv_get", "counter");
      assert.ok(!gone.ok && gone.code === "not_found", JSON.stringify(gone));
      // Cedar still decides first: another namespace is denied, whichever store is behind.
      const other = await a.call("kv_get", "other/counter");
      assert.ok(!other.ok && other.code === "denied", JSON.stringify(other));
      // The store's rules reach the plugin as error codes it can handle.
      const big = await a.call("kv_set", "big", new Uint8Array(65537));
      assert.ok(!big.ok && big.code === "limit", JSON.stringify(big));
    } finally {
      await a.close();
      await b.close();
      await db.close();
    }
  },
});

Deno.test("kv.* host functions on PostgreSQL: a plugin gets io, within the bound, when the database is down", async () => {
  // A port that was free a moment ago: the database is not there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  // connect() refuses to start on a dead database; a replica whose database went down later holds a pool like this.
  const sql = postgres(`postgres://keycard@127.0.0.1:${port}/keycard`, { onnotice: () => {} });
  const node = await replica(new PostgresKvStore(sql, { timeoutMs: 2000 }));
  try {
    const started = performance.now();
    for (const [fn, body] of [["kv_set", encoder.encode("1")], ["kv_get"], ["kv_delete"]] as const) {
      const reply = await node.call(fn, "counter", body);
      assert.ok(!reply.ok && reply.code === "io", `${fn}: ${JSON.stringify(reply)}`);
      assert.match(reply.message, /the database is unreachable \(ECONNREFUSED\)|did not answer within 2000 ms/);
      // Neither the address nor the client's own message reaches the plugin.
      assert.doesNotMatch(reply.message, new RegExp(String(port)));
    }
    assert.ok(performance.now() - started < 6500, "three calls must each end within the 2 s bound");
  } finally {
    await node.close();
    await sql.end({ timeout: 0 });
  }
});
