import assert from "node:assert/strict";
import { ScopeIndex } from "./_scope_index.ts";
import { EntityRef } from "./value.ts";

const alice = new EntityRef("User", "alice");
const view = new EntityRef("Action", "view");
const staff = new EntityRef("Group", "staff").key;
const read = new EntityRef("Action", "read").key;

function index(): ScopeIndex<string> {
  const index = new ScopeIndex<string>();
  index.add({ op: "All" }, { op: "All" }, "any");
  index.add({ op: "==", key: alice.key }, { op: "==", key: view.key }, "alice-view");
  index.add({ op: "==", key: alice.key }, { op: "==", key: read }, "alice-read");
  index.add({ op: "in", key: staff }, { op: "in", keys: [read, view.key] }, "staff-read-or-view");
  index.add({ op: "is", type: "User" }, { op: "All" }, "users");
  index.add({ op: "is", type: "Group" }, { op: "All" }, "groups");
  index.add({ op: "==", key: new EntityRef("User", "bob").key }, { op: "All" }, "bob");
  return index;
}

Deno.test("ScopeIndex.collect() finds the policies whose principal and action scopes can hold", () => {
  const out: string[] = [];
  index().collect(alice, new Set([staff]), view, new Set([read]), out);
  // `staff-read-or-view` comes twice (view itself, and read among its ancestors): callers dedupe.
  assert.deepEqual(out.sort(), ["alice-view", "any", "staff-read-or-view", "staff-read-or-view", "users"]);
});

Deno.test("ScopeIndex.collect() skips `in` buckets when the request's entities do not hold the principal", () => {
  const out: string[] = [];
  index().collect(alice, undefined, view, undefined, out);
  assert.deepEqual(out.sort(), ["alice-view", "any", "users"]);
});

Deno.test("ScopeIndex.collect() finds a principal's own `in` bucket (in is reflexive)", () => {
  const out: string[] = [];
  const group = new EntityRef("Group", "staff");
  index().collect(group, undefined, new EntityRef("Action", "read"), undefined, out);
  assert.deepEqual(out.sort(), ["any", "groups", "staff-read-or-view"]);
});
