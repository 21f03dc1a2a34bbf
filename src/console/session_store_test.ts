import assert from "node:assert/strict";
import { checkCsrf, SessionStore } from "./session_store.ts";

Deno.test("SessionStore.create() past maxSessions ends the oldest session, so the store never grows past its bound", () => {
  const store = new SessionStore({ maxSessions: 3 });
  const sessions = Array.from({ length: 10 }, (_, i) => store.create({ id: `c${i}`, roles: [] }));
  assert.equal(store.size, 3);
  assert.equal(store.get(sessions[0]!.id), undefined);
  assert.equal(store.get(sessions[9]!.id)?.client.id, "c9");
});

Deno.test("SessionStore.get() ends an expired session", () => {
  let now = 1_000;
  const store = new SessionStore({ ttlMs: 100, now: () => now });
  const session = store.create({ id: "a", roles: ["admin"] });
  now = 1_099;
  assert.equal(store.get(session.id)?.client.id, "a");
  now = 1_100;
  assert.equal(store.get(session.id), undefined);
  assert.equal(store.size, 0);
});

Deno.test("SessionStore.get() refuses malformed ids and checkCsrf() only the session's own token", () => {
  const store = new SessionStore();
  const a = store.create({ id: "a", roles: [] });
  const b = store.create({ id: "b", roles: [] });
  assert.equal(store.get(undefined), undefined);
  assert.equal(store.get(`${a.id}x`), undefined);
  assert.equal(store.get("../../etc"), undefined);
  assert.ok(checkCsrf(a, a.csrf));
  assert.ok(!checkCsrf(a, b.csrf));
  assert.ok(!checkCsrf(a, undefined));
  assert.ok(!checkCsrf(a, ""));
  assert.notEqual(a.id, b.id);
  assert.notEqual(a.csrf, a.id);
});

Deno.test("SessionStore() refuses a bound or lifetime that is not a positive integer", () => {
  assert.throws(() => new SessionStore({ maxSessions: 0 }), RangeError);
  assert.throws(() => new SessionStore({ ttlMs: 1.5 }), RangeError);
});

Deno.test("SessionStore.create() at the bound ends the oldest session of the client holding the most, never another's", () => {
  const store = new SessionStore({ maxSessions: 4 });
  const admin = store.create({ id: "admin", roles: ["admin"] });
  const viewer = Array.from({ length: 50 }, () => store.create({ id: "viewer", roles: ["viewer"] }));
  assert.equal(store.get(admin.id)?.client.id, "admin", "the admin's session outlives the viewer's sign-ins");
  assert.equal(store.size, 4);
  assert.deepEqual(viewer.map((s) => store.get(s.id) !== undefined).lastIndexOf(false), 46);
  // A second client signing in past the bound takes the place of the viewer's oldest.
  const other = store.create({ id: "other", roles: [] });
  assert.equal(store.size, 4);
  assert.equal(store.get(admin.id)?.client.id, "admin");
  assert.equal(store.get(other.id)?.client.id, "other");
  assert.equal(store.get(viewer[47]!.id), undefined);
  assert.equal(store.get(viewer[49]!.id)?.client.id, "viewer");
});
