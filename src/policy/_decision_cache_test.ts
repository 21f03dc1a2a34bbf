import assert from "node:assert/strict";
import { DecisionCache, type DecisionHolder } from "./_decision_cache.ts";
import { GenerationalCache } from "./_generational_cache.ts";

Deno.test("GenerationalCache never holds more than its capacity, and keeps what is used", () => {
  const cache = new GenerationalCache<number>(100);
  for (let i = 0; i < 10_000; i++) {
    cache.set(`k${i}`, i);
    assert.equal(cache.get("hot"), i === 0 ? undefined : 0);
    if (i === 0) cache.set("hot", 0);
    assert.ok(cache.size <= 100, `size ${cache.size} after ${i + 1} inserts`);
  }
  assert.equal(cache.get("k0"), undefined, "the least recently used are forgotten");
  assert.equal(cache.get("k9999"), 9999);
  assert.throws(() => new GenerationalCache(1), RangeError);
});

Deno.test("DecisionCache hits exactly on JSON-equal resource and context", () => {
  const cache = new DecisionCache<string>(1000);
  const file = (attrs: Record<string, unknown> = {}) => ({
    uid: { type: "File", id: "/data/a" },
    attrs,
    parents: [{ type: "Dir", id: "/data" }],
  });
  const context = { caller: "ci", tags: ["a", "b"], nested: { n: 1 } };
  assert.ok(cache.store("P", "fs.read", file({ x: 1, y: "2" }), context, "allow"));
  // Equal values, keys in another order: a hit.
  const reordered = { nested: { n: 1 }, tags: ["a", "b"], caller: "ci" };
  assert.equal(cache.lookup("P", "fs.read", file({ y: "2", x: 1 }), reordered), "allow");
  // Any difference: a miss.
  const misses: [string, string, unknown, unknown][] = [
    ["Q", "fs.read", file({ x: 1, y: "2" }), context],
    ["P", "fs.write", file({ x: 1, y: "2" }), context],
    ["P", "fs.read", file({ x: 1 }), context],
    ["P", "fs.read", file({ x: 1, y: "2", z: true }), context],
    ["P", "fs.read", file({ x: 1, y: 2 }), context],
    ["P", "fs.read", file({ x: 1, y: "2" }), { ...context, tags: ["b", "a"] }],
    ["P", "fs.read", file({ x: 1, y: "2" }), { ...context, tags: { 0: "a", 1: "b" } }],
    ["P", "fs.read", file({ x: 1, y: "2" }), { ...context, nested: { n: 1, m: undefined } }],
    ["P", "fs.read", { ...file({ x: 1, y: "2" }), parents: [] }, context],
    ["P", "fs.read", { ...file({ x: 1, y: "2" }), uid: { type: "Dir", id: "/data/a" } }, context],
  ];
  for (const [principal, action, resource, ctx] of misses) {
    assert.equal(
      cache.lookup(principal, action, resource, ctx),
      undefined,
      JSON.stringify([principal, action, resource, ctx]),
    );
  }
});

Deno.test("DecisionCache keeps copies: changing the request afterwards changes nothing kept", () => {
  const cache = new DecisionCache<string>(1000);
  const resource = { uid: { type: "File", id: "/a" }, attrs: { owner: "x" } as Record<string, unknown>, parents: [] };
  const context = { caller: "" };
  cache.store("P", "fs.read", resource, context, "allow");
  resource.attrs.owner = "y";
  assert.equal(cache.lookup("P", "fs.read", resource, context), undefined);
  resource.attrs.owner = "x";
  assert.equal(cache.lookup("P", "fs.read", resource, context), "allow");
});

Deno.test("DecisionCache does not keep what it cannot compare: __proto__ keys, non-JSON values, huge requests", () => {
  const cache = new DecisionCache<string>(1000);
  const file = { uid: { type: "File", id: "/a" }, attrs: {}, parents: [] };
  assert.equal(cache.store("P", "a", file, JSON.parse('{"__proto__": {"admin": true}}'), "allow"), undefined);
  assert.equal(cache.store("P", "a", file, { f: () => 1 }, "allow"), undefined);
  assert.equal(cache.store("P", "a", file, { big: "x".repeat(10_000) }, "allow"), undefined);
  assert.equal(cache.store("P", "a", { uid: { type: 1, id: "/a" } }, {}, "allow"), undefined);
  assert.equal(cache.lookup("P", "a", file, { f: () => 1 }), undefined);
});

Deno.test("DecisionCache keeps a built resource's decisions on the resource, for its own cache only", () => {
  const first = new DecisionCache<string>(1000);
  const second = new DecisionCache<string>(1000);
  const holder: DecisionHolder = {};
  const file = Object.freeze({ uid: { type: "File", id: "/a" }, attrs: {}, parents: [] });
  const handle = first.store("P", "fs.read", file, { caller: "" }, "allow", holder);
  assert.ok(handle);
  assert.equal(first.lookup("P", "fs.read", file, { caller: "" }, holder), "allow");
  assert.equal(first.lookup("P", "fs.read", file, { caller: "x" }, holder), undefined);
  assert.equal(first.lookup("Q", "fs.read", file, { caller: "" }, holder), undefined);
  assert.equal(second.lookup("P", "fs.read", file, { caller: "" }, holder), undefined, "another version's cache");
  first.replace(handle, "deny");
  assert.equal(first.lookup("P", "fs.read", file, { caller: "" }, holder), "deny");
  // Bounded per resource: past 64 (principal, action) pairs it starts again, and stays right.
  for (let i = 0; i < 200; i++) first.store("P", `a${i}`, file, {}, `d${i}`, holder);
  assert.ok(holder.decisions!.map.size <= 64);
  assert.equal(first.lookup("P", "a199", file, {}, holder), "d199");
  assert.equal(first.lookup("P", "a0", file, {}, holder), undefined);
});
