import assert from "node:assert/strict";
import { refusedDatabase } from "../../../tests/_postgres.ts";
import { hearChanges, testOnDatabase } from "../../../tests/_postgres_kv.ts";
import { StoreUnavailableError } from "../errors.ts";
import { PostgresPolicyStore } from "./postgres_policy_store.ts";

const PERMIT = "permit (principal, action, resource);";

testOnDatabase(
  "PostgresPolicyStore: a file put on one replica is listed on another, versioned and announced",
  async (db) => {
    const a = new PostgresPolicyStore(await db.connect());
    const b = new PostgresPolicyStore(await db.connect());
    const listener = await hearChanges(await db.connect());
    assert.deepEqual(await a.list(), []);
    const v1 = await a.put("zeta.cedar", PERMIT);
    const v2 = await b.put("alpha.cedar", "forbid (principal, action, resource);");
    assert.ok(v2 > v1 && v1 > 0);
    assert.deepEqual(await b.list(), [
      { name: "alpha.cedar", text: "forbid (principal, action, resource);", version: v2 },
      { name: "zeta.cedar", text: PERMIT, version: v1 },
    ]);
    assert.deepEqual([...(await a.versions())], [["alpha.cedar", v2], ["zeta.cedar", v1]]);
    const first = await listener.next();
    assert.deepEqual({ ...first, at: 0 }, { kind: "policy", name: "zeta.cedar", change: v1, at: 0 });
    assert.equal((await listener.next()).change, v2);

    const v3 = await a.put("zeta.cedar", `${PERMIT}\n`);
    assert.ok(v3 > v2);
    assert.equal((await b.versions()).get("zeta.cedar"), v3);
    assert.equal((await listener.next()).change, v3);

    // Removing what is not there is not announced: the next notification is the real removal's.
    assert.equal(await b.remove("missing.cedar"), false);
    assert.equal(await b.remove("zeta.cedar"), true);
    const removed = await listener.next();
    assert.equal(removed.name, "zeta.cedar");
    assert.ok((removed.change as number) > v3);
    assert.deepEqual([...(await a.versions()).keys()], ["alpha.cedar"]);
    await listener.stop();
  },
);

testOnDatabase(
  "PostgresPolicyStore refuses names with a path or without .cedar, NUL text, and changes nothing",
  async (db) => {
    const store = new PostgresPolicyStore(await db.connect());
    await store.put("base.cedar", PERMIT);
    const before = await store.list();
    const bad = [
      "../x.cedar",
      "a/b.cedar",
      "a\\b.cedar",
      ".hidden.cedar",
      "base",
      "base.txt",
      ".cedar",
      "",
      `${"x".repeat(129)}.cedar`,
      "é.cedar",
      "a b.cedar",
    ];
    for (const name of bad) {
      await assert.rejects(store.put(name, PERMIT), RangeError, name);
      await assert.rejects(store.remove(name), RangeError, name);
      await assert.rejects(
        store.apply({ put: [{ name: "ok.cedar", text: PERMIT }], remove: [name] }),
        RangeError,
        name,
      );
      await assert.rejects(store.seedOnce([{ name, text: PERMIT }]), RangeError, name);
    }
    await assert.rejects(
      store.put("a/b.cedar", PERMIT),
      /^RangeError: Policy name "a\/b\.cedar" is invalid: a name is/,
    );
    await assert.rejects(store.put(42 as unknown as string, PERMIT), TypeError);
    await assert.rejects(store.put("ok.cedar", 42 as unknown as string), TypeError);
    await assert.rejects(store.put("ok.cedar", "permit\0"), /holds a NUL character/);
    await assert.rejects(store.apply({ put: [], remove: "x.cedar" } as unknown as never), TypeError);
    await assert.rejects(
      store.apply({ put: [{ name: "a.cedar", text: PERMIT }], remove: ["a.cedar"] }),
      /^RangeError: Policy "a\.cedar" appears twice in one change$/,
    );
    assert.ok(await store.put(`${"x".repeat(128)}.cedar`, PERMIT) > 0);
    assert.deepEqual((await store.list()).filter((p) => p.name !== `${"x".repeat(128)}.cedar`), before);
    assert.equal(await new PostgresPolicyStore(await db.connect()).seedOnce([]), true, "no bad seed may count");
  },
);

testOnDatabase(
  "PostgresPolicyStore.apply() writes and removes several files in one transaction, announced once",
  async (db) => {
    const store = new PostgresPolicyStore(await db.connect());
    const listener = await hearChanges(await db.connect());
    const old = await store.put("v1.cedar", PERMIT);
    await listener.next();
    const version = await store.apply({
      put: [{ name: "v2.cedar", text: PERMIT }, { name: "extra.cedar", text: PERMIT }],
      remove: ["v1.cedar", "never.cedar"],
    });
    assert.ok(version > old);
    const files = await store.list();
    assert.deepEqual(files.map((file) => file.name), ["extra.cedar", "v2.cedar"]);
    assert.equal(Math.max(...files.map((file) => file.version)), version);
    const heard = await listener.next();
    assert.equal(heard.name, "*");
    assert.equal(heard.change, version);

    // Removal only: a fresh change number, announced with the one name.
    const removal = await store.apply({ put: [], remove: ["extra.cedar"] });
    assert.ok(removal > version);
    assert.deepEqual(await listener.next().then((h) => [h.name, h.change]), ["extra.cedar", removal]);
    // Nothing to do: 0, not announced (the next notification is the next put's).
    assert.equal(await store.apply({ put: [], remove: ["never.cedar"] }), 0);
    assert.equal(await store.apply({ put: [], remove: [] }), 0);
    await store.put("marker.cedar", PERMIT);
    assert.equal((await listener.next()).name, "marker.cedar");
    await listener.stop();
  },
);

testOnDatabase(
  "PostgresPolicyStore.seedOnce(): of 5 replicas starting together exactly one seeds, and never again",
  async (db) => {
    const listener = await hearChanges(await db.connect());
    const replicas = await Promise.all(
      Array.from({ length: 5 }, async () => new PostgresPolicyStore(await db.connect())),
    );
    const results = await Promise.all(
      replicas.map((store, i) =>
        store.seedOnce([{ name: "base.cedar", text: PERMIT }, { name: `r${i}.cedar`, text: PERMIT }])
      ),
    );
    assert.equal(results.filter(Boolean).length, 1, String(results));
    const seeder = results.indexOf(true);
    const files = await replicas[0]!.list();
    assert.deepEqual(files.map((file) => file.name), ["base.cedar", `r${seeder}.cedar`]);
    const heard = await listener.next();
    assert.equal(heard.name, "*");
    assert.equal(heard.change, Math.max(...files.map((file) => file.version)));

    // The operator removes every file; a later start (any replica) does not bring them back.
    assert.equal(await replicas[1]!.apply({ put: [], remove: ["base.cedar", `r${seeder}.cedar`] }) > 0, true);
    await listener.next();
    assert.equal(await replicas[2]!.seedOnce([{ name: "base.cedar", text: PERMIT }]), false);
    assert.equal(await new PostgresPolicyStore(await db.connect()).seedOnce([]), false);
    assert.deepEqual(await replicas[3]!.list(), []);
    await replicas[4]!.put("marker.cedar", PERMIT);
    assert.equal((await listener.next()).name, "marker.cedar", "a seed that wrote nothing announced something");
    await listener.stop();
  },
);

Deno.test("PostgresPolicyStore fails as unavailable at once when nothing listens at the database's address", async () => {
  // A port that was free a moment ago: connecting is refused.
  await using refused = refusedDatabase();
  const { sql } = refused;
  const store = new PostgresPolicyStore(sql, { timeoutMs: 10_000 });
  const cases: [() => Promise<unknown>, string][] = [
    [() => store.put("a.cedar", PERMIT), 'Cannot write policy "a.cedar": the database is unreachable (ECONNREFUSED)'],
    [() => store.remove("a.cedar"), 'Cannot remove policy "a.cedar": the database is unreachable (ECONNREFUSED)'],
    [() => store.list(), "Cannot list policies: the database is unreachable (ECONNREFUSED)"],
    [() => store.versions(), "Cannot read policy versions: the database is unreachable (ECONNREFUSED)"],
    [() => store.seedOnce([]), "Cannot seed policies: the database is unreachable (ECONNREFUSED)"],
    [
      () => store.apply({ put: [{ name: "a.cedar", text: PERMIT }], remove: [] }),
      'Cannot change policies "a.cedar": the database is unreachable (ECONNREFUSED)',
    ],
  ];
  for (const [call, message] of cases) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.equal(error.message, message);
      assert.equal(error.code, "ECONNREFUSED");
      return true;
    });
  }
});
