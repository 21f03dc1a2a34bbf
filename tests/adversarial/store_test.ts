// Attacks on the PostgreSQL store that replicas share (issue 14): hostile plugins against the shared plugin KV,
// hostile API clients and hostile or broken database rows and notifications against two replicas on one database,
// and a broken audit spool. Real PostgreSQL, real plugins, real Cedar; outages through a TCP proxy.
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { AuditLog } from "../../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore, type PluginKv } from "../../src/host/mod.ts";
import { compileGrants, PolicyEngine } from "../../src/policy/mod.ts";
import { HostCallError, PluginHost } from "../../src/runtime/mod.ts";
import { connect } from "../../src/store/postgres/connect.ts";
import { migrate } from "../../src/store/postgres/migrate.ts";
import { PostgresAuditWriter } from "../../src/store/postgres/postgres_audit.ts";
import { PostgresKvStore } from "../../src/store/postgres/postgres_kv_store.ts";
import {
  asAdmin,
  echoManifest,
  expectOk,
  expectProblem,
  type GatewayFixture,
  invokeAsCaller,
  pluginForm,
  sha256Hex,
  startGateway,
  storeYaml,
  within,
} from "../_gateway_fixture.ts";
import { createTestDatabase } from "../_postgres.ts";
import { testPostgres } from "../_postgres_kv.ts";
import { startTcpProxy } from "../_tcp_proxy.ts";
import { decoder, encoder, eventually as waitFor, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

const ignored = testPostgres === undefined ? " (ignored: no PostgreSQL)" : "";
const ignore = testPostgres === undefined;

const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));
const relay = await watFixture("relay");
const echo = await watFixture("http_echo");

/** The store's time bound in these attacks: a hung call shows as one that took longer than this. */
const TIMEOUT_MS = 1000;
/** Room over a time bound for a loaded 2-core machine. */
const SLACK_MS = 1500;
/** Bound of every wait for a replica to follow another. */
const FOLLOW_MS = 8000;

/** The same module with a custom section appended: other bytes (another sha256), the same behaviour. */
function variant(wasm: Uint8Array, tag: string): Uint8Array {
  const name = encoder.encode("keycard-adversarial");
  const body = [name.length, ...name, ...encoder.encode(tag)];
  assert.ok(body.length < 128, "one-byte section size");
  return new Uint8Array([...wasm, 0, body.length, ...body]);
}

/** A superuser connection of the test's own, as a hostile database writer holds. */
function superuser(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {} });
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile plugins against the shared plugin KV.

type Reply = { ok: true; text: string } | { ok: false; code: string; message: string };

interface KvWorld {
  call(plugin: string, fn: "kv_get" | "kv_set" | "kv_delete", request: object, body?: Uint8Array): Promise<Reply>;
  close(): Promise<void>;
}

/** Plugins alice and bob (the relay fixture, both granted KV namespace "shared") over one KV store. */
async function kvWorld(kv: PluginKv): Promise<KvWorld> {
  const root = await Deno.makeTempDir({ prefix: "keycard-store-attack-" });
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/alice", text: compileGrants("alice", [{ kv: { namespace: "shared" } }]) },
      { name: "grants/bob", text: compileGrants("bob", [{ kv: { namespace: "shared" } }]) },
    ],
  });
  const audit = new AuditLog({ file: { path: join(root, "audit", "audit.jsonl") } });
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 20_000 },
    hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(root), kv }),
  });
  await host.load(relay, { name: "alice", version: "1.0.0" });
  await host.load(relay, { name: "bob", version: "1.0.0" });
  return {
    async call(plugin, fn, request, body) {
      const json = encoder.encode(JSON.stringify(request));
      const out = await host.invoke(plugin, fn, body ? new Uint8Array([...json, 0, ...body]) : json);
      const payload = decoder.decode(out.subarray(1));
      return out[0] === 0 ? { ok: true, text: payload } : { ok: false, ...JSON.parse(payload) };
    },
    async close() {
      await host.close();
      await audit.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** What a store answers to one call: the value as text, or the HostCallError's code and message. */
async function answer(call: () => Promise<unknown>): Promise<string> {
  try {
    const value = await call();
    return value instanceof Uint8Array ? `value ${decoder.decode(value)}` : `ok ${String(value)}`;
  } catch (error) {
    if (error instanceof HostCallError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

Deno.test({
  name: `adversarial store: hostile plugins cannot reach around the shared plugin KV${ignored}`,
  ignore,
  async fn() {
    const t = tally("store (kv)");
    await using db = await createTestDatabase(testPostgres!.url);
    const target = new URL(db.url);
    await using proxy = await startTcpProxy({ hostname: target.hostname, port: Number(target.port) });
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const direct = await connect(db.url);
    await migrate(direct);
    const cuttable = await connect(viaProxy.href);
    const root = await Deno.makeTempDir({ prefix: "keycard-store-attack-denokv-" });
    const pg = new PostgresKvStore(direct, { timeoutMs: TIMEOUT_MS });
    const denoKv = await KvStore.open(join(root, "kv.sqlite"));
    const w = await kvWorld(pg);
    const rows = async () =>
      (await direct`SELECT plugin, namespace, key FROM kv ORDER BY 1, 2, 3`).map((r) => ({ ...r }));
    try {
      await t.attack(
        "SQL metacharacters in keys are stored and read back literally, never as SQL or patterns",
        async () => {
          const keys = [
            "'; DROP TABLE kv; --",
            "' OR '1'='1",
            "a_c",
            "%",
            "\\",
            "$1",
            '"quoted"',
            "k'||pg_sleep(5)||'",
          ];
          for (const key of keys) {
            assert.deepEqual(await w.call("alice", "kv_set", { key: `shared/${key}` }, encoder.encode(key)), {
              ok: true,
              text: "",
            });
          }
          for (const key of keys) {
            assert.deepEqual(await w.call("alice", "kv_get", { key: `shared/${key}` }), { ok: true, text: key });
          }
          // No LIKE semantics: "_" and "%" match only themselves.
          for (const probe of ["abc", "anything", "a%c"]) {
            const got = await w.call("alice", "kv_get", { key: `shared/${probe}` });
            assert.ok(!got.ok && got.code === "not_found", `${probe}: ${JSON.stringify(got)}`);
          }
          const stored = (await rows()).filter((r) => r.plugin === "alice").map((r) => r.key).sort();
          assert.deepEqual(stored, [...keys].sort());
        },
      );

      await t.attack(
        "NUL, control characters, lone surrogates and 513-byte names: the same error as Deno KV, nothing stored",
        async () => {
          const before = await rows();
          const cases: [string, string, string][] = [
            ["alice", "shared", "nul\0key"],
            ["alice", "shared", "line\nbreak"],
            ["alice", "shared", "del\x7f"],
            ["alice", "shared", "lone\ud800"],
            ["alice", "shared", "k".repeat(513)],
            ["alice", "shared", "é".repeat(257)], // 514 UTF-8 bytes in 257 UTF-16 units
            ["alice", "shared", ""],
            ["al\0ice", "shared", "k"],
            ["alice", "sh\0ared", "k"],
          ];
          for (const [plugin, namespace, key] of cases) {
            for (const op of ["get", "set", "delete"] as const) {
              const run = (store: PluginKv) =>
                answer(() =>
                  op === "set"
                    ? store.set(plugin, namespace, key, encoder.encode("v"))
                    : op === "get"
                    ? store.get(plugin, namespace, key)
                    : store.delete(plugin, namespace, key)
                );
              const [fromPg, fromDeno] = [await run(pg), await run(denoKv)];
              assert.match(fromPg, /^invalid: /, `${op} ${JSON.stringify(key).slice(0, 40)}`);
              assert.equal(fromPg, fromDeno, `${op} ${JSON.stringify(key).slice(0, 40)}: the stores differ`);
            }
          }
          // Through the plugin too: a NUL key is refused as invalid.
          const nul = await w.call("alice", "kv_set", { key: "shared/nul\0" }, encoder.encode("x"));
          assert.ok(!nul.ok && nul.code === "invalid", JSON.stringify(nul));
          assert.deepEqual(await rows(), before);
        },
      );

      await t.attack(
        "a 512-byte key and a 65,536-byte value round-trip; 65,537 bytes is refused with limit like Deno KV",
        async () => {
          const key = "k".repeat(512);
          const value = crypto.getRandomValues(new Uint8Array(65536));
          await pg.set("alice", "shared", key, value);
          assert.deepEqual(await pg.get("alice", "shared", key), value);
          const [fromPg, fromDeno] = [
            await answer(() => pg.set("alice", "shared", "big", new Uint8Array(65537))),
            await answer(() => denoKv.set("alice", "shared", "big", new Uint8Array(65537))),
          ];
          assert.match(fromPg, /^limit: /);
          assert.equal(fromPg, fromDeno);
          assert.equal(await pg.get("alice", "shared", "big"), undefined);
        },
      );

      await t.attack(
        "unicode look-alikes (NFC/NFD, zero-width, bidi override) are distinct entries, as in Deno KV",
        async () => {
          const nfc = "caf\u00e9";
          const nfd = "cafe\u0301";
          const tricks = [nfc, nfd, "ali\u200bce", "\u202egnp.exe", "Ａlice", "ALICE", "alice"];
          for (const [i, key] of tricks.entries()) {
            await pg.set("alice", "shared", key, encoder.encode(String(i)));
            await denoKv.set("alice", "shared", key, encoder.encode(String(i)));
          }
          for (const [i, key] of tricks.entries()) {
            assert.equal(await answer(() => pg.get("alice", "shared", key)), `value ${i}`, JSON.stringify(key));
            assert.equal(await answer(() => denoKv.get("alice", "shared", key)), `value ${i}`, JSON.stringify(key));
          }
          // Unicode tricks in the plugin name reach only their own rows.
          await pg.set("ali\u200bce", "shared", nfc, encoder.encode("zw"));
          assert.equal(await answer(() => pg.get("alice", "shared", nfc)), "value 0");
        },
      );

      await t.attack(
        "plugin bob cannot read, overwrite or delete alice's entries in the namespace both are granted",
        async () => {
          assert.ok((await w.call("alice", "kv_set", { key: "shared/secret" }, encoder.encode("alice's"))).ok);
          const read = await w.call("bob", "kv_get", { key: "shared/secret" });
          assert.ok(!read.ok && read.code === "not_found", JSON.stringify(read));
          // Fields naming another plugin are ignored: the plugin's name comes from the host.
          const spoofed = await w.call("bob", "kv_get", { key: "secret", namespace: "shared", plugin: "alice" });
          assert.ok(!spoofed.ok && spoofed.code === "not_found", JSON.stringify(spoofed));
          assert.ok(
            (await w.call("bob", "kv_set", { key: "shared/secret", plugin: "alice" }, encoder.encode("bob's"))).ok,
          );
          assert.ok((await w.call("bob", "kv_delete", { key: "shared/secret" })).ok);
          assert.deepEqual(await w.call("alice", "kv_get", { key: "shared/secret" }), { ok: true, text: "alice's" });
          const owners = await direct`SELECT plugin FROM kv WHERE key = 'secret' ORDER BY plugin`;
          assert.deepEqual(owners.map((r) => r.plugin), ["alice"]);
        },
      );

      await t.attack(
        "namespace tricks (another plugin's name, '..', '/', '%', NUL) are denied or invalid, never reach a row",
        async () => {
          const before = await rows();
          for (
            const request of [
              { key: "alice/secret" },
              { key: "secret", namespace: "alice" },
              { key: "secret", namespace: "../shared" },
              { key: "secret", namespace: "shared/../alice" },
              { key: "secret", namespace: "%" },
              { key: "secret", namespace: "shared\0" },
              { key: "secret", namespace: "" },
              { key: "/secret" },
            ]
          ) {
            const got = await w.call("bob", "kv_set", request, encoder.encode("x"));
            assert.ok(
              !got.ok && ["denied", "invalid"].includes(got.code),
              `${JSON.stringify(request)}: ${JSON.stringify(got)}`,
            );
          }
          assert.deepEqual(await rows(), before);
        },
      );

      await t.attack("values of any bytes (NUL, invalid UTF-8, 0xFF runs, empty) round-trip exactly", async () => {
        const values = [
          new Uint8Array([0]),
          new Uint8Array([0, 0, 0x27, 0x5c, 0]),
          new Uint8Array([0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe]),
          new Uint8Array(4096).fill(0xff),
          new Uint8Array(0),
        ];
        for (const [i, value] of values.entries()) {
          await pg.set("alice", "shared", `bytes-${i}`, value);
          assert.deepEqual(await pg.get("alice", "shared", `bytes-${i}`), value, `value ${i}`);
        }
      });

      await t.attack(
        "a flood of 1,000 concurrent kv.set from one plugin delays another's kv.get by at most the timeout",
        async () => {
          const flood = Array.from(
            { length: 1000 },
            (_, i) =>
              pg.set("bob", "shared", `flood-${i}`, new Uint8Array(1024)).then(
                () => "ok",
                (e: HostCallError) => e.code,
              ),
          );
          const started = performance.now();
          const victim = await answer(() => pg.get("alice", "shared", "secret"));
          const ms = performance.now() - started;
          const outcomes = await Promise.all(flood);
          console.log(
            `  flood: alice's kv.get took ${ms.toFixed(0)} ms behind 1,000 sets (${
              outcomes.filter((o) => o === "ok").length
            } ok)`,
          );
          assert.ok(victim === "value alice's" || victim.startsWith("io: "), victim);
          assert.ok(ms < TIMEOUT_MS + SLACK_MS, `alice waited ${ms.toFixed(0)} ms`);
          assert.ok(outcomes.every((o) => o === "ok" || o === "io"), JSON.stringify([...new Set(outcomes)]));
        },
      );

      await t.attack(
        "with the database cut, a plugin's kv calls fail with io within the timeout, never hang",
        async () => {
          const cut = await kvWorld(new PostgresKvStore(cuttable, { timeoutMs: TIMEOUT_MS }));
          try {
            assert.ok((await cut.call("alice", "kv_set", { key: "shared/up" }, encoder.encode("1"))).ok);
            proxy.cut();
            for (const fn of ["kv_get", "kv_set", "kv_delete"] as const) {
              const started = performance.now();
              const got = await within(
                TIMEOUT_MS * 3 + SLACK_MS,
                `${fn} with the database cut`,
                cut.call("alice", fn, { key: "shared/up" }, fn === "kv_set" ? encoder.encode("2") : undefined),
              );
              const ms = performance.now() - started;
              assert.ok(!got.ok && got.code === "io", `${fn}: ${JSON.stringify(got)}`);
              assert.doesNotMatch(got.message, /127\.0\.0\.1|postgres:\/\//, "the message names no address");
              assert.ok(ms < TIMEOUT_MS * 2 + SLACK_MS, `${fn} took ${ms.toFixed(0)} ms`);
            }
            proxy.restore();
            await eventually("kv works again", async () => {
              const got = await cut.call("alice", "kv_get", { key: "shared/up" });
              assert.deepEqual(got, { ok: true, text: "1" });
            });
          } finally {
            proxy.restore();
            await cut.close();
          }
        },
      );
    } finally {
      await w.close();
      pg.close();
      denoKv.close();
      await Deno.remove(root, { recursive: true });
      await Promise.all([direct.end({ timeout: 0 }), cuttable.end({ timeout: 0 })]);
    }
    t.report();
  },
});

/** Waits (bounded) for a replica to follow another. */
function eventually<T>(what: string, check: () => Promise<T>, ms = FOLLOW_MS) {
  return waitFor(what, check, ms);
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile API clients, rows and notifications against two replicas on one database.

/** The operator files a replica runs, by name. */
async function filesOf(fx: GatewayFixture): Promise<Map<string, string>> {
  const { sources } = await (await fx.request("/v1/policies", asAdmin(fx))).json() as {
    sources: { name: string; kind: string; text: string }[];
  };
  return new Map(sources.filter((s) => s.kind === "file").map((s) => [s.name, s.text]));
}

/** The sha256 a replica's host runs for `name`, or undefined when it runs none. */
function hostSha(fx: GatewayFixture, name: string): string | undefined {
  // The plugin resource the gateway decides calls on carries the sha256 the host runs.
  const entity = fx.gateway.services.pluginResource!(name);
  const sha = (entity.attrs as Record<string, unknown>).sha256;
  return typeof sha === "string" && sha !== "" ? sha : undefined;
}

const PERMIT = (id: string) => `@id("${id}")\npermit (principal, action == Action::"plugin.call", resource);\n`;
const LOCKOUT = '@id("ops.lockout")\nforbid (principal, action == Action::"policy.write", resource);\n';

Deno.test({
  name: `adversarial store: hostile clients, rows and notifications against two replicas on one database${ignored}`,
  ignore,
  async fn() {
    const t = tally("store (replicas)");
    await using db = await createTestDatabase(testPostgres!.url);
    const sql = superuser(db.url);
    const a = await startGateway({ yaml: storeYaml(db.url, { replica: "a", timeoutMs: TIMEOUT_MS }) });
    let b: GatewayFixture | undefined;
    try {
      b = await startGateway({ yaml: storeYaml(db.url, { replica: "b", timeoutMs: TIMEOUT_MS }) });
      const B = b;
      const policyRows = async () =>
        (await sql<{ name: string; version: string; text: string }[]>`
          SELECT name, version::text AS version, text FROM policies ORDER BY name`).map((r) => ({ ...r }));

      await t.attack(
        "hostile policy names ('..', '%2e%2e', NUL, 129 chars, '.hidden', '/') are refused and write nothing",
        async () => {
          const before = await policyRows();
          const names = [
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e",
            "%2e%2e%2fbase.cedar",
            "..",
            ".hidden",
            ".hidden.cedar",
            "nul%00.cedar",
            "a".repeat(129),
            "a".repeat(129) + ".cedar",
            "new%0Aline",
            "sp%20ace",
            "%C3%A9t%C3%A9",
            ".cedar",
            "a%5Cb",
          ];
          for (const name of names) {
            const response = await a.request(`/v1/policies/${name}`, asAdmin(a, { method: "PUT", body: PERMIT("x") }));
            const text = await response.text();
            assert.ok([400, 404].includes(response.status), `${name}: ${response.status} ${text.slice(0, 200)}`);
            if (response.status === 400) assert.match(text, /bad-request/);
          }
          assert.deepEqual(await policyRows(), before);
          assert.ok(!(await filesOf(a)).has(".hidden.cedar"));
        },
      );

      await t.attack("'x.cedar.cedar' is its own file, never an alias of 'x.cedar'", async () => {
        await expectOk(
          await a.request("/v1/policies/x.cedar", asAdmin(a, { method: "PUT", body: PERMIT("x.one") })),
          "x",
        );
        await expectOk(
          await a.request("/v1/policies/x.cedar.cedar", asAdmin(a, { method: "PUT", body: PERMIT("x.two") })),
          "x.cedar.cedar",
        );
        const rows = new Map((await policyRows()).map((r) => [r.name, r.text]));
        assert.equal(rows.get("x.cedar"), PERMIT("x.one"));
        assert.equal(rows.get("x.cedar.cedar"), PERMIT("x.two"));
        assert.ok(![...rows.keys()].some((name) => /\.\.|\/|^\./.test(name)), JSON.stringify([...rows.keys()]));
      });

      await t.attack(
        "a policy that locks out admins is refused with 409 and written neither to the database nor to B",
        async () => {
          // B first follows the writes before this attack, so that its version only moves for this one.
          await eventually("B follows x.cedar.cedar", async () => assert.ok((await filesOf(B)).has("x.cedar.cedar")));
          const before = await policyRows();
          const version = B.gateway.services.policies.version();
          await expectProblem(
            await a.request("/v1/policies/lockout.cedar", asAdmin(a, { method: "PUT", body: LOCKOUT })),
            409,
            "conflict",
          );
          assert.deepEqual(await policyRows(), before);
          assert.ok(!(await filesOf(a)).has("lockout.cedar"));
          assert.equal(B.gateway.services.policies.version(), version);
        },
      );

      await t.attack(
        "an invalid policy (syntax, unknown action, 1 MB of parens) is refused with 400 and not written",
        async () => {
          const before = await policyRows();
          for (
            const text of [
              "permit (",
              'permit (principal, action == Action::"no.such", resource);',
              "(".repeat(100_000),
            ]
          ) {
            const response = await a.request("/v1/policies/bad.cedar", asAdmin(a, { method: "PUT", body: text }));
            const body = await response.text();
            assert.ok([400, 413].includes(response.status), `${response.status} ${body.slice(0, 200)}`);
          }
          assert.deepEqual(await policyRows(), before);
        },
      );

      await t.attack(
        "concurrent PUTs of one file on A and B (10 rounds) converge: both run the database's text",
        async () => {
          for (let round = 0; round < 10; round++) {
            const [ra, rb] = await Promise.all([
              a.request("/v1/policies/race.cedar", asAdmin(a, { method: "PUT", body: PERMIT(`race.a${round}`) })),
              B.request("/v1/policies/race.cedar", asAdmin(B, { method: "PUT", body: PERMIT(`race.b${round}`) })),
            ]);
            await expectOk(ra, `A round ${round}`);
            await expectOk(rb, `B round ${round}`);
            const [row] = (await policyRows()).filter((r) => r.name === "race.cedar");
            await eventually(`round ${round}: both replicas run the database's text`, async () => {
              assert.equal((await filesOf(a)).get("race.cedar"), row!.text, "A");
              assert.equal((await filesOf(B)).get("race.cedar"), row!.text, "B");
            });
          }
        },
      );

      await t.attack(
        "the same name@version with other bytes installed on A and B at once: one wins, the other gets a clear error, both run the winner",
        async () => {
          const statuses: string[] = [];
          // The race is a window of one round trip (no lock across replicas): several rounds make it likely.
          for (let round = 0; round < 8; round++) {
            const version = `1.0.${round}`;
            const [wa, wb] = [variant(echo, `a${round}`), variant(echo, `b${round}`)];
            const [ra, rb] = await Promise.all([
              a.request(
                "/v1/plugins/twin",
                asAdmin(a, { method: "PUT", body: pluginForm(wa, echoManifest("twin", version)) }),
              ),
              B.request(
                "/v1/plugins/twin",
                asAdmin(B, { method: "PUT", body: pluginForm(wb, echoManifest("twin", version)) }),
              ),
            ]);
            const answers = [
              { status: ra.status, text: await ra.text(), sha: sha256Hex(wa) },
              { status: rb.status, text: await rb.text(), sha: sha256Hex(wb) },
            ];
            const [row] = await sql`SELECT sha256 FROM plugins WHERE name = 'twin' AND version = ${version}`;
            assert.ok(row, `round ${round}: nothing stored (${answers.map((x) => x.status)})`);
            const winners = answers.filter((x) => x.status >= 200 && x.status < 300);
            statuses.push(`${answers[0]!.status}/${answers[1]!.status}`);
            console.log(`  install race ${version}: A ${answers[0]!.status}, B ${answers[1]!.status}`);
            for (const loser of answers.filter((x) => !(x.status >= 200 && x.status < 300))) {
              assert.equal(loser.status, 409, `round ${round}: the loser: ${loser.status} ${loser.text.slice(0, 200)}`);
              assert.match(loser.text, /exists|already/i);
            }
            assert.equal(winners.length, 1, `round ${round}: ${winners.length} installs answered 2xx for ${version}`);
            assert.equal(
              row.sha256,
              winners[0]!.sha,
              `round ${round}: the database holds other bytes than the winner's`,
            );
            await eventually(`round ${round}: both replicas run ${version}'s stored bytes`, () => {
              assert.equal(hostSha(a, "twin"), row.sha256, "A");
              assert.equal(hostSha(B, "twin"), row.sha256, "B");
              return Promise.resolve();
            });
          }
        },
      );

      await t.attack(
        "removal on A while B installs a new version: both replicas end with what the database holds",
        async () => {
          await expectOk(
            await a.request(
              "/v1/plugins/gone",
              asAdmin(a, { method: "PUT", body: pluginForm(echo, echoManifest("gone", "1.0.0")) }),
            ),
            "install gone 1",
          );
          await eventually("B runs gone", async () => {
            assert.equal(await expectOk(await invokeAsCaller(B, "gone", "echo", "hi"), "B"), "hi");
          });
          const [removed, installed] = await Promise.all([
            a.request("/v1/plugins/gone", asAdmin(a, { method: "DELETE" })),
            B.request(
              "/v1/plugins/gone",
              asAdmin(B, {
                method: "PUT",
                body: pluginForm(variant(echo, "gone2"), echoManifest("gone", "2.0.0")),
              }),
            ),
          ]);
          assert.ok([204, 404].includes(removed.status), `remove: ${removed.status} ${await removed.text()}`);
          assert.ok([200, 201].includes(installed.status), `install: ${installed.status} ${await installed.text()}`);
          const stored = await sql`SELECT version, sha256 FROM plugins WHERE name = 'gone'`;
          const latest = stored.map((r) => r.version).sort().at(-1);
          const sha = stored.find((r) => r.version === latest)?.sha256;
          await eventually("both replicas run what the database holds", async () => {
            for (const fx of [a, B]) {
              assert.equal(hostSha(fx, "gone"), sha, fx === a ? "A" : "B");
              assert.equal((await invokeAsCaller(fx, "gone", "echo", "hi")).status, sha === undefined ? 404 : 200);
            }
          });
        },
      );

      await t.attack(
        "a row whose wasm was replaced in the database is never run, even when its change number is bumped",
        async () => {
          await expectOk(
            await a.request(
              "/v1/plugins/victim",
              asAdmin(a, { method: "PUT", body: pluginForm(echo, echoManifest("victim")) }),
            ),
            "install victim",
          );
          const good = sha256Hex(echo);
          await eventually("B runs victim", () => Promise.resolve(assert.equal(hostSha(B, "victim"), good)));
          const evil = variant(await watFixture("trap"), "evil");
          // The bytes swapped under an unchanged sha256, then announced; then the change number bumped and announced.
          await sql`UPDATE plugins SET wasm = ${evil} WHERE name = 'victim'`;
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', 'victim',
          'change', (SELECT change FROM plugins WHERE name = 'victim'), 'at', 0)::text)`;
          await sql`UPDATE plugins SET change = nextval('keycard_change_seq') WHERE name = 'victim'`;
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', 'victim',
          'change', (SELECT change FROM plugins WHERE name = 'victim'), 'at', 0)::text)`;
          // A barrier: a real change made after the tampering reaches both replicas, so they handled the tampering.
          await expectOk(
            await a.request("/v1/policies/barrier1.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier1") })),
            "barrier",
          );
          await eventually("the barrier on B", async () => assert.ok((await filesOf(B)).has("barrier1.cedar")));
          for (const fx of [a, B]) {
            assert.equal(hostSha(fx, "victim"), good, "the replica runs the installed bytes");
            assert.equal(await expectOk(await invokeAsCaller(fx, "victim", "echo", "still"), "victim"), "still");
          }
          // And it says so: the replica that followed the bumped row names the mismatch.
          const said = [...a.gateway.startFailures(), ...B.gateway.startFailures()].map((f) => f.error).join("\n");
          assert.match(said, /victim.*hashes to/s);
        },
      );

      await t.attack(
        "the tampered row repaired in the database (bytes back, announced): both replicas are ready again",
        async () => {
          await sql`UPDATE plugins SET wasm = ${echo}, change = nextval('keycard_change_seq') WHERE name = 'victim'`;
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', 'victim',
            'change', (SELECT change FROM plugins WHERE name = 'victim'), 'at', 0)::text)`;
          await expectOk(
            await a.request("/v1/policies/barrier5.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier5") })),
            "barrier",
          );
          await eventually("the barrier on B", async () => assert.ok((await filesOf(B)).has("barrier5.cedar")));
          // A wrote barrier5 itself, so it proves nothing about A's feed: a write on B that A hears after the repair.
          await expectOk(
            await B.request("/v1/policies/barrier5b.cedar", asAdmin(B, { method: "PUT", body: PERMIT("barrier5b") })),
            "barrier",
          );
          await eventually("the barrier on A", async () => assert.ok((await filesOf(a)).has("barrier5b.cedar")));
          for (const fx of [a, B]) {
            const ready = await (await fx.request("/readyz")).json();
            assert.equal(ready.status, "ready", `${fx === a ? "A" : "B"}: ${JSON.stringify(ready).slice(0, 300)}`);
          }
        },
      );

      await t.attack(
        "garbage on keycard_changes (not JSON, wrong types, 7,900 bytes, unknown kinds) crashes no replica",
        async () => {
          const versions = [a.gateway.services.policies.version(), B.gateway.services.policies.version()];
          const statuses = await Promise.all(
            [a, B].map(async (fx) => (await (await fx.request("/readyz")).json()).status),
          );
          const payloads = [
            "garbage",
            "",
            "{",
            "null",
            "[]",
            '{"kind":"plugin"}',
            '{"kind":"plugin","name":"../../etc","change":1e999,"at":"x"}',
            '{"kind":"policy","name":{"$gt":""},"change":-1,"at":null}',
            '{"kind":"drop table","name":"*","change":9007199254740993,"at":0}',
            JSON.stringify({ kind: "plugin", name: "x".repeat(7800), change: 1, at: 0 }),
            "\u0001\u007f",
          ];
          for (const payload of payloads) await sql`SELECT pg_notify('keycard_changes', ${payload})`;
          await expectOk(
            await a.request("/v1/policies/barrier2.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier2") })),
            "barrier",
          );
          await eventually(
            "a real change still reaches B",
            async () => assert.ok((await filesOf(B)).has("barrier2.cedar")),
          );
          for (const fx of [a, B]) {
            const ready = await (await fx.request("/readyz")).json();
            assert.equal(ready.status, statuses[fx === a ? 0 : 1], "the garbage changed /readyz");
            assert.equal(ready.store?.state, "up", JSON.stringify(ready.store));
            assert.equal(await expectOk(await invokeAsCaller(fx, "victim", "echo", "ok"), "serve"), "ok");
          }
          // Only the barrier changed the policy set: no reload for garbage.
          assert.equal(a.gateway.services.policies.version(), versions[0]! + 1, "A reloaded for garbage");
          assert.equal(B.gateway.services.policies.version(), versions[1]! + 1, "B reloaded for garbage");
        },
      );

      await t.attack(
        "a flood of 2,000 well-formed NOTIFYs of nothing reloads nothing and leaves B quiet afterwards",
        async () => {
          const heads = async () => {
            const text = await (await B.request("/metrics", asAdmin(B))).text();
            const match = /^keycard_store_seconds_count\{[^}]*op="plugins\.heads"[^}]*\} (\d+)$/m.exec(text);
            assert.ok(match, "B's metrics count plugins.heads");
            return Number(match[1]);
          };
          const version = B.gateway.services.policies.version();
          const before = await heads();
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', case when i % 2 = 0 then 'plugin'
          else 'policy' end, 'name', 'victim', 'change', i, 'at', 0)::text) FROM generate_series(1, 2000) AS i`;
          await expectOk(
            await a.request("/v1/policies/barrier3.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier3") })),
            "barrier",
          );
          await eventually("the barrier on B", async () => assert.ok((await filesOf(B)).has("barrier3.cedar")));
          const afterFlood = await heads();
          // Once more: one real change costs a catch-up or two, not a replay of the flood.
          await expectOk(
            await a.request("/v1/policies/barrier4.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier4") })),
            "barrier",
          );
          await eventually("the barrier on B", async () => assert.ok((await filesOf(B)).has("barrier4.cedar")));
          const afterOne = await heads();
          console.log(`  notify flood: B read plugin heads ${afterFlood - before} times for 2,000 notifications`);
          assert.equal(B.gateway.services.policies.version(), version + 2, "only the two real changes reloaded");
          assert.ok(afterFlood - before <= 2000, `${afterFlood - before} catch-ups for 2,000 notifications`);
          assert.ok(afterOne - afterFlood <= 3, `${afterOne - afterFlood} catch-ups for one change after the flood`);
        },
      );

      await t.attack(
        "a plugin row with a hostile name inserted in the database loads nowhere and breaks no listing",
        async () => {
          await sql`INSERT INTO plugins (name, version, sha256, wasm, manifest, change)
            VALUES ('../evil', '1.0.0', ${sha256Hex(echo)}, ${echo},
              ${sql.json({ name: "../evil", version: "1.0.0", exports: [], capabilities: [], grants: [] })},
              nextval('keycard_change_seq'))`;
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', '../evil',
            'change', (SELECT change FROM plugins WHERE name = '../evil'), 'at', 0)::text)`;
          try {
            await expectOk(
              await a.request("/v1/policies/barrier6.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier6") })),
              "barrier",
            );
            await eventually("the barrier on B", async () => assert.ok((await filesOf(B)).has("barrier6.cedar")));
            for (const fx of [a, B]) {
              const who = fx === a ? "A" : "B";
              assert.equal(hostSha(fx, "../evil"), undefined, `${who} runs the hostile row`);
              assert.equal(await expectOk(await invokeAsCaller(fx, "victim", "echo", "ok"), `${who} serves`), "ok");
              const listed = await expectOk(await fx.request("/v1/plugins", asAdmin(fx)), `${who} lists plugins`);
              assert.match(listed, /"victim"/, `${who}'s listing lost the good plugins`);
            }
          } finally {
            await sql`DELETE FROM plugins WHERE name = '../evil'`;
          }
        },
      );

      await t.attack(
        "an invalid policy row inserted in the database is put in force nowhere; once deleted, B follows A again",
        async () => {
          const version = B.gateway.services.policies.version();
          await sql`INSERT INTO policies (name, version, text)
            VALUES ('evil.cedar', nextval('keycard_change_seq'), 'permit (principal, action, resource) garbage')`;
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'policy', 'name', 'evil.cedar',
            'change', (SELECT version FROM policies WHERE name = 'evil.cedar'), 'at', 0)::text)`;
          const lists = async () => {
            const text = await (await B.request("/metrics", asAdmin(B))).text();
            return Number(/^keycard_store_seconds_count\{[^}]*op="policies\.list"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
          };
          const before = await lists();
          await eventually("B read the policy files again", async () => assert.ok(await lists() > before));
          // One more change, so that B has finished handling the bad row (its catch-ups run one at a time).
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', 'victim',
            'change', 0, 'at', 0)::text)`;
          const heads = async () => {
            const text = await (await B.request("/metrics", asAdmin(B))).text();
            return Number(/^keycard_store_seconds_count\{[^}]*op="plugins\.heads"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
          };
          const headsBefore = await heads();
          await sql`SELECT pg_notify('keycard_changes', json_build_object('kind', 'plugin', 'name', 'victim',
            'change', 0, 'at', 0)::text)`;
          await eventually("B handled the next change", async () => assert.ok(await heads() > headsBefore));
          assert.equal(B.gateway.services.policies.version(), version, "B loaded a set with the invalid row");
          assert.ok(!(await filesOf(B)).has("evil.cedar"));
          assert.equal(await expectOk(await invokeAsCaller(B, "victim", "echo", "ok"), "B serves"), "ok");
          await sql`DELETE FROM policies WHERE name = 'evil.cedar'`;
          await expectOk(
            await a.request("/v1/policies/barrier7.cedar", asAdmin(a, { method: "PUT", body: PERMIT("barrier7") })),
            "barrier",
          );
          await eventually("B runs the database's files again", async () => {
            const rows = (await policyRows()).map((r) => [r.name, r.text]);
            assert.deepEqual([...await filesOf(B)].sort(), rows.sort());
          });
        },
      );

      await t.attack(
        "a policy text with NUL (in a comment) is refused with 400 or stored intact, never a 500, and nothing half-written",
        async () => {
          const before = await policyRows();
          const text = `// nul \u0000 here\n${PERMIT("nul.text")}`;
          const response = await a.request("/v1/policies/nul.cedar", asAdmin(a, { method: "PUT", body: text }));
          const body = await response.text();
          if (response.status === 200) {
            const [row] = (await policyRows()).filter((r) => r.name === "nul.cedar");
            assert.equal(row?.text, text, "stored as sent");
            await eventually("B runs it", async () => assert.equal((await filesOf(B)).get("nul.cedar"), text));
          } else {
            assert.equal(response.status, 400, `${response.status} ${body.slice(0, 300)}`);
            assert.deepEqual(await policyRows(), before);
            assert.ok(!(await filesOf(a)).has("nul.cedar"), "A runs a file the database does not hold");
          }
        },
      );

      await t.attack(
        "a manifest with NUL in a string is refused with a 4xx or stored intact, never a 500, and nothing half-loaded",
        async () => {
          const manifest = `${echoManifest("nulman").replace("description: echo test plugin", 'description: "a\\0b"')}`;
          assert.match(manifest, /description: "a\\0b"/);
          const response = await a.request(
            "/v1/plugins/nulman",
            asAdmin(a, { method: "PUT", body: pluginForm(variant(echo, "nul"), manifest) }),
          );
          const body = await response.text();
          const rows = await sql`SELECT manifest FROM plugins WHERE name = 'nulman'`;
          if (response.status >= 200 && response.status < 300) {
            assert.equal(rows.length, 1);
            await eventually("B runs it", () => Promise.resolve(assert.ok(hostSha(B, "nulman"))));
          } else {
            assert.ok(response.status >= 400 && response.status < 500, `${response.status} ${body.slice(0, 300)}`);
            assert.equal(rows.length, 0);
            assert.equal(hostSha(a, "nulman"), undefined, "A runs a plugin the database does not hold");
          }
        },
      );

      await t.attack("/v1/audit filters with SQL are literal; limit and since keep their bounds", async () => {
        await expectOk(await invokeAsCaller(a, "stamp", "stamp", "audit"), "stamp");
        await eventually("stamp's events in the shared log", async () => {
          const { events } = await (await B.request("/v1/audit?plugin=stamp", asAdmin(B))).json();
          assert.ok(events.length > 0);
        });
        for (const hostile of ["' OR 1=1 --", "stamp' --", "%", "stamp%", "_tamp", "stamp'); DELETE FROM audit; --"]) {
          for (const field of ["plugin", "action"]) {
            const response = await a.request(
              `/v1/audit?${field}=${encodeURIComponent(hostile)}&limit=10000`,
              asAdmin(a),
            );
            const { events } = await response.json() as { events: unknown[] };
            assert.equal(response.status, 200);
            assert.deepEqual(events, [], `${field}=${hostile}`);
          }
        }
        const [intact] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM audit`;
        assert.ok(intact!.count > 0, "the audit table is intact");
        for (
          const query of [
            "limit=0",
            "limit=-1",
            "limit=10001",
            "limit=1e3",
            "limit=1%20OR%201=1",
            "since=yesterday",
            "decision=maybe",
          ]
        ) {
          await expectProblem(await a.request(`/v1/audit?${query}`, asAdmin(a)), 400, "bad-request");
        }
        const future = await (await a.request("/v1/audit?since=9999-12-31T00:00:00Z", asAdmin(a))).json();
        assert.deepEqual(future.events, []);
        const one = await (await a.request("/v1/audit?limit=1", asAdmin(a))).json();
        assert.equal(one.events.length, 1);
      });

      await t.attack(
        "a NUL or an extreme date in an audit filter answers 400 or an empty list, never a 500",
        async () => {
          const wrong: string[] = [];
          for (
            const query of [
              "plugin=%00",
              "action=a%00b",
              "plugin=%EF%BF%BF",
              "since=-271821-04-20T00:00:00Z",
              "since=%2B275760-09-13T00:00:00Z",
              "since=0000-01-01T00:00:00Z",
              "since=1969-12-31T23:59:59.999999999Z",
            ]
          ) {
            const response = await a.request(`/v1/audit?${query}`, asAdmin(a));
            const text = await response.text();
            if (![200, 400].includes(response.status)) wrong.push(`${query}: ${response.status} ${text.slice(0, 120)}`);
            else if (response.status === 200 && /^(plugin|action)=/.test(query) && JSON.parse(text).events.length > 0) {
              wrong.push(`${query}: events of other plugins`);
            }
          }
          assert.deepEqual(wrong, []);
        },
      );
    } finally {
      await b?.close();
      await a.close();
      await sql.end({ timeout: 5 });
    }
    t.report();
  },
});

// ---------------------------------------------------------------------------------------------------------------
// The audit spool: a broken file at start, and its size while the database is away.

function record(uid: string, plugin = "spooled"): string {
  return JSON.stringify({
    uid,
    replica: "r-attack",
    at: new Date().toISOString(),
    event: {
      time: new Date().toISOString(),
      callId: uid,
      plugin,
      version: "1.0.0",
      action: "clock.now",
      resource: "x",
      decision: "allow",
      policies: [],
      errors: [],
      caller: null,
      durationUs: 1,
    },
  });
}

Deno.test({
  name: `adversarial store: a broken audit spool and a logging flood during an outage${ignored}`,
  ignore,
  async fn() {
    const t = tally("store (audit spool)");
    await using db = await createTestDatabase(testPostgres!.url);
    const sql = await connect(db.url);
    await migrate(sql);
    const root = await Deno.makeTempDir({ prefix: "keycard-store-spool-" });
    try {
      await t.attack(
        "a spool with garbage, foreign and torn lines at start: the good ones drain once, the rest are counted skipped",
        async () => {
          const spoolPath = join(root, "audit-spool.jsonl");
          const good = ["g1", "g2", "g3"].map((uid) => record(uid));
          const bad = [
            "garbage",
            "{}",
            "[1,2,3]",
            JSON.stringify({ uid: "", replica: "r", at: "x", event: {} }),
            JSON.stringify({ uid: "no-event", replica: "r", at: new Date().toISOString(), event: [] }),
            "\u0000\u0001\u0002",
          ];
          const torn = record("torn").slice(0, 40);
          // A good line twice (a spool re-sent after a crash mid-drain): stored once.
          await Deno.writeTextFile(
            spoolPath,
            [good[0], bad[0], good[1], bad[1], bad[2], good[0], bad[3], bad[4], bad[5], good[2], torn].join("\n"),
          );
          const writer = await PostgresAuditWriter.open(sql, { replica: "r-attack", spoolPath, timeoutMs: TIMEOUT_MS });
          try {
            await within(10_000, "drain", writer.drain());
            const rows = await sql`SELECT uid FROM audit ORDER BY uid`;
            assert.deepEqual(rows.map((r) => r.uid), ["g1", "g2", "g3"]);
            const stats = writer.stats();
            assert.equal(stats.skipped, bad.length + 1, JSON.stringify(stats));
            assert.equal(stats.spooled, 0, JSON.stringify(stats));
            await assert.rejects(Deno.stat(spoolPath), Deno.errors.NotFound);
          } finally {
            await writer.close();
          }
          // Opened again over what is left: nothing more is inserted.
          const again = await PostgresAuditWriter.open(sql, { replica: "r-attack", spoolPath, timeoutMs: TIMEOUT_MS });
          await again.drain();
          await again.close();
          const [left] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM audit`;
          assert.equal(left!.count, 3);
        },
      );

      await t.attack(
        "an event holding NUL (which jsonb refuses) is set aside alone: the events around it are stored",
        async () => {
          const spoolPath = join(root, "nul", "audit-spool.jsonl");
          const writer = await PostgresAuditWriter.open(sql, { replica: "r-nul", spoolPath, timeoutMs: TIMEOUT_MS });
          try {
            const event = (plugin: string, resource: string) => ({
              time: new Date().toISOString(),
              callId: crypto.randomUUID(),
              plugin,
              version: "1.0.0",
              action: "kv.get",
              resource,
              decision: "deny" as const,
              policies: [],
              errors: [],
              caller: null,
              durationUs: 1,
            });
            for (let i = 0; i < 10; i++) writer.write(event("neighbour", `k${i}`));
            writer.write(event("hostile", 'Key::"a\u0000b"'));
            for (let i = 10; i < 20; i++) writer.write(event("neighbour", `k${i}`));
            await within(10_000, "flush", writer.flush());
            const [stored] = await sql<{ count: number }[]>`
              SELECT count(*)::int AS count FROM audit WHERE event->>'plugin' = 'neighbour'`;
            assert.equal(stored!.count, 20, "neighbours lost");
            // The hostile event is either stored (its NUL made storable) or set aside alone, never lost silently.
            const [hostile] = await sql<{ count: number }[]>`
              SELECT count(*)::int AS count FROM audit WHERE event->>'plugin' = 'hostile'`;
            const stats = writer.stats();
            assert.equal(hostile!.count + stats.rejected, 1, JSON.stringify(stats));
            if (stats.rejected === 1) assert.match(await Deno.readTextFile(`${spoolPath}.rejected`), /hostile/);
          } finally {
            await writer.close();
          }
        },
      );

      await t.attack(
        "a plugin writing 60 KB log lines while the database is cut grows the spool by a bounded amount per event",
        async () => {
          const target = new URL(db.url);
          await using proxy = await startTcpProxy({ hostname: target.hostname, port: Number(target.port) });
          const viaProxy = new URL(db.url);
          viaProxy.port = String(proxy.port);
          const fx = await startGateway({
            yaml: storeYaml(viaProxy.href, { replica: "loud", timeoutMs: TIMEOUT_MS }),
            limits: { inputBytes: 200_000 },
            plugins: [{
              name: "loud",
              wasm: relay,
              manifest: "name: loud\nversion: 1.0.0\nexports:\n  - name: log_write\ncapabilities: [log.write]\n" +
                "grants:\n  - log.write: {}\n",
            }],
          });
          try {
            proxy.cut();
            await eventually("the store down", async () => {
              const ready = await (await fx.request("/readyz")).json();
              assert.equal(ready.store?.state, "down");
            });
            const message = "A".repeat(60_000);
            const calls = 40;
            const answered: number[] = [];
            for (let i = 0; i < calls; i++) {
              const response = await invokeAsCaller(
                fx,
                "loud",
                "log_write",
                JSON.stringify({ level: "info", message }),
              );
              answered.push(response.status);
              await response.body?.cancel();
            }
            console.log(`  loud: answers ${answered.join(" ")}`);
            await fx.gateway.services.audit.flush();
            await eventually("events spooled", async () => {
              const ready = await (await fx.request("/readyz")).json();
              assert.ok((ready.store?.spooled ?? 0) >= 1, JSON.stringify(ready.store));
            });
            const spoolPath = join(fx.dir, "data", "audit-spool.jsonl");
            const size = async () => {
              let bytes = 0;
              for (const path of [spoolPath, `${spoolPath}.draining`]) {
                bytes += await Deno.stat(path).then((s) => s.size, () => 0);
              }
              return bytes;
            };
            const { spooled } = (await (await fx.request("/readyz")).json()).store;
            const bytes = await size();
            console.log(`  spool: ${bytes} bytes for ${spooled} events after ${calls} 60 KB log lines`);
            assert.ok(bytes / spooled < 4096, `${(bytes / spooled).toFixed(0)} bytes per spooled event`);
            assert.ok(bytes < calls * 60_000 / 4, `the spool holds the log lines' text (${bytes} bytes)`);
            proxy.restore();
            await eventually("the spool drained", async () => {
              const ready = await (await fx.request("/readyz")).json();
              assert.equal(ready.store?.spooled, 0, JSON.stringify(ready.store));
            }, 20_000);
            const recorded = fx.gateway.services.audit.counters()
              .filter((c) => c.plugin === "loud")
              .reduce((sum, c) => sum + c.count, 0);
            // Closing writes out what is pending; then the database holds every decision once.
            await fx.close();
            const [counted] = await sql<{ rows: number; uids: number; decisions: number }[]>`
              SELECT count(*)::int AS rows, count(DISTINCT uid)::int AS uids,
                coalesce(sum(coalesce((event->>'count')::int, 1)), 0)::int AS decisions
              FROM audit WHERE event->>'plugin' = 'loud'`;
            const { rows, uids, decisions } = counted!;
            assert.equal(rows, uids, `${rows} rows, ${uids} uids`);
            assert.equal(decisions, recorded, "every decision stored once: none lost, none doubled");
            assert.ok(recorded > 0, "loud made host calls");
          } finally {
            proxy.restore();
            await fx.close();
          }
        },
      );
    } finally {
      await sql.end({ timeout: 0 });
      await Deno.remove(root, { recursive: true });
    }
    t.report();
  },
});
