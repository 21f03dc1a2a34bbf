// Entity and context JSON as cedar-wasm reads it without a schema: what it
// accepts (and what that means to a policy), and what it refuses (a failure
// there, a TypeError here).
import assert from "node:assert/strict";
import { bothOutcomes, comparable, type OracleRequest } from "./_oracle.ts";
import { EntityStore } from "./entity_store.ts";
import { EXTENSION_FUNCTIONS } from "./extensions.ts";
import { CedarRecord, type CedarSet, EntityRef } from "./value.ts";

const U = { type: "User", id: "alice" };

function agrees(condition: string, entities: unknown, context: unknown = {}, extra: Partial<OracleRequest> = {}) {
  const request: OracleRequest = {
    principal: U,
    action: { type: "Action", id: "view" },
    resource: { type: "Doc", id: "d" },
    context,
    entities,
    ...extra,
  };
  const { ours, theirs } = bothOutcomes(`permit (principal, action, resource) when { ${condition} };`, request);
  assert.deepEqual(comparable(ours), comparable(theirs));
  return ours;
}

const one = (attrs: unknown, more: Record<string, unknown> = {}) => [{ uid: U, attrs, parents: [], ...more }];

const CASES: [string, string, unknown, unknown?][] = [
  ["a uid in the __entity form", "principal.x == 1", [{ uid: { __entity: U }, attrs: { x: 1 }, parents: [] }]],
  ["an entity without attrs", "true", [{ uid: U, parents: [] }]],
  ["an entity without parents", "true", [{ uid: U, attrs: {} }]],
  ["an entity without a uid", "true", [{ attrs: {}, parents: [] }]],
  ["an entity with an unknown field", "principal.x == 1", [{ uid: U, attrs: { x: 1 }, parents: [], extra: 1 }]],
  ["a uid with an unknown field", "principal.x == 1", [{ uid: { ...U, more: 1 }, attrs: { x: 1 }, parents: [] }]],
  ["a uid as a string", "true", [{ uid: 'User::"alice"', attrs: {}, parents: [] }]],
  ["a uid with a numeric id", "true", [{ uid: { type: "User", id: 1 }, attrs: {}, parents: [] }]],
  ["null attrs", "true", [{ uid: U, attrs: null, parents: [] }]],
  ["null parents", "true", [{ uid: U, attrs: {}, parents: null }]],
  ["null tags", "true", [{ uid: U, attrs: {}, parents: [], tags: null }]],
  ["attrs as an array", "true", [{ uid: U, attrs: [], parents: [] }]],
  ["parents as an object", "true", [{ uid: U, attrs: {}, parents: {} }]],
  ["entities as an object", "true", {}],
  ["an entity that is a number", "true", [1]],
  ["a fractional attribute", "true", one({ x: 1.5 })],
  ["a fractional number deep in a set", "true", one({ x: [[1.5]] })],
  ["a fractional tag", "true", one({}, { tags: { t: 0.5 } })],
  ["a null attribute", "true", one({ x: null })],
  ["an attribute of -0", "principal.x == 0", one({ x: -0 })],
  ["an attribute of 2^53", "principal.x == 9007199254740992", one({ x: 2 ** 53 })],
  ["an attribute of 2^60 (read through its decimal form)", "principal.x == 1152921504606847000", one({ x: 2 ** 60 })],
  ["an attribute of 2^63", "true", one({ x: 2 ** 63 })],
  ["an attribute of -2^63", "true", one({ x: -(2 ** 63) })],
  ["an attribute of 1e21", "true", one({ x: 1e21 })],
  ["an attribute of NaN", "true", one({ x: NaN })],
  ["an implicit entity record", 'principal.x.type == "User"', one({ x: { type: "User", id: "bob" } })],
  ["an __entity escape", 'principal.x == User::"bob"', one({ x: { __entity: { type: "User", id: "bob" } } })],
  [
    "an __entity escape with extra inner fields",
    'principal.x == User::"bob"',
    one({ x: { __entity: { type: "User", id: "bob", z: 1 } } }),
  ],
  [
    "an __entity escape beside another key",
    "principal.x.y == 1",
    one({ x: { __entity: { type: "User", id: "b" }, y: 1 } }),
  ],
  [
    "an __entity escape without an id",
    'principal.x.__entity.type == "User"',
    one({ x: { __entity: { type: "User" } } }),
  ],
  ["an __entity escape with a numeric id", "principal.x has __entity", one({ x: { __entity: { type: "U", id: 1 } } })],
  ["an __entity escape with a bad type", "true", one({ x: { __entity: { type: "1User", id: "b" } } })],
  ["an __expr escape", "true", one({ x: { __expr: "1" } })],
  ["an __expr key that is not a string", "principal.x.__expr == 1", one({ x: { __expr: 1 } })],
  ["an attribute named __expr", "principal has __expr", one({ __expr: 1 })],
  ["an __extn escape with arg", 'principal.x == ip("1.2.3.4")', one({ x: { __extn: { fn: "ip", arg: "1.2.3.4" } } })],
  [
    "an __extn escape with args",
    'principal.x == ip("1.2.3.4")',
    one({ x: { __extn: { fn: "ip", args: ["1.2.3.4"] } } }),
  ],
  ["an __extn escape with a bad literal", "true", one({ x: { __extn: { fn: "ip", arg: "zzz" } } })],
  ["an __extn escape of an unknown function", "true", one({ x: { __extn: { fn: "nope", arg: "a" } } })],
  ["an __extn escape with a numeric arg", "true", one({ x: { __extn: { fn: "ip", arg: 1 } } })],
  ["an __extn escape without arg", "principal.x has __extn", one({ x: { __extn: { fn: "ip" } } })],
  [
    "an __extn escape beside another key",
    "principal.x.y == 1",
    one({ x: { __extn: { fn: "ip", arg: "1.2.3.4" }, y: 1 } }),
  ],
  [
    "an __extn escape with both arg and args",
    'principal.x == ip("1.2.3.4")',
    one({ x: { __extn: { fn: "ip", arg: "1.2.3.4", args: ["9.9.9.9"] } } }),
  ],
  [
    "a nested __extn escape",
    'principal.x == datetime("2024-01-01T01:00:00Z")',
    one({
      x: {
        __extn: {
          fn: "offset",
          args: [{ __extn: { fn: "datetime", arg: "2024-01-01" } }, { __extn: { fn: "duration", arg: "1h" } }],
        },
      },
    }),
  ],
  ["a set with duplicates", "principal.x == [2, 1]", one({ x: [1, 1, 2] })],
  ["a heterogeneous set", 'principal.x.contains("a") && principal.x.contains(1)', one({ x: [1, "a", true, {}] })],
  ["odd record keys", 'principal["a b"][""] == 1', one({ "a b": { "": 1 } })],
  ["tags", 'principal.getTag("t") == [1]', one({}, { tags: { t: [1] } })],
  ["duplicate identical entities", "principal.x.a == 1", [...one({ x: { a: 1 } }), ...one({ x: { a: 1 } })]],
  ["duplicate entities with other attrs", "true", [...one({ x: 1 }), ...one({ x: 2 })]],
  [
    "duplicate entities with other parents",
    "true",
    [{ uid: U, attrs: {}, parents: [{ type: "G", id: "a" }] }, { uid: U, attrs: {}, parents: [] }],
  ],
  [
    "duplicate entities with parents in another order",
    'principal in G::"a"',
    [
      { uid: U, attrs: {}, parents: [{ type: "G", id: "a" }, { type: "G", id: "b" }] },
      { uid: U, attrs: {}, parents: [{ type: "G", id: "b" }, { type: "G", id: "a" }] },
    ],
  ],
  ["duplicate entities with equal sets in another order", "true", [...one({ x: [1, 2] }), ...one({ x: [2, 1] })]],
  ["duplicate entities with other tags", "true", [...one({}, { tags: { a: 1 } }), ...one({})]],
  ["a parent in the __entity form", 'principal in G::"a"', [{
    uid: U,
    attrs: {},
    parents: [{ __entity: { type: "G", id: "a" } }],
  }]],
  ["a parent with a bad type", "true", [{ uid: U, attrs: {}, parents: [{ type: "1x", id: "a" }] }]],
  ["a self loop", "true", [{ uid: U, attrs: {}, parents: [U] }]],
  [
    "a cycle",
    "true",
    [
      { uid: U, attrs: {}, parents: [{ type: "G", id: "a" }] },
      { uid: { type: "G", id: "a" }, attrs: {}, parents: [{ type: "G", id: "b" }] },
      { uid: { type: "G", id: "b" }, attrs: {}, parents: [U] },
    ],
  ],
  ["an action with a non-action parent", "true", [{
    uid: { type: "Action", id: "view" },
    attrs: {},
    parents: [{ type: "G", id: "g" }],
  }]],
  [
    "an action with a parent action of another namespace",
    "true",
    [{ uid: { type: "A::Action", id: "view" }, attrs: {}, parents: [{ type: "B::Action", id: "g" }] }],
  ],
  ["an entity with an action parent", 'principal in Action::"g"', [{
    uid: U,
    attrs: {},
    parents: [{ type: "Action", id: "g" }],
  }]],
  ["an action with attributes and tags", 'action.a == 1 && action.hasTag("t")', [{
    uid: { type: "Action", id: "view" },
    attrs: { a: 1 },
    parents: [],
    tags: { t: 1 },
  }]],
];

for (const [what, condition, entities] of CASES) {
  Deno.test({
    name: `EntityStore.fromJson() agrees with cedar-wasm on ${what}`,
    // `__extn` escapes need the extension functions.
    ignore: EXTENSION_FUNCTIONS.size === 0 && JSON.stringify(entities).includes("__extn"),
    fn: () => {
      agrees(condition, entities);
    },
  });
}

const TYPES = [
  "A::B",
  "A::B::C",
  "_",
  "a1::_2",
  "A :: B",
  "A::",
  "::A",
  "",
  "1User",
  "Üser",
  "if",
  "true",
  "false",
  "then",
  "else",
  "in",
  "is",
  "like",
  "has",
  "A::in",
  "__cedar",
  "A::__cedar",
  "__cedarX",
  "A__cedar",
  "when",
  "permit",
  "principal",
  "context",
  "Action",
];
for (const type of TYPES) {
  Deno.test(`EntityStore.fromJson() agrees with cedar-wasm on the entity type ${JSON.stringify(type)}`, () => {
    agrees("true", [{ uid: { type, id: "x" }, attrs: {}, parents: [] }]);
  });
}

const CONTEXTS: [string, string, unknown][] = [
  ["a fractional number", "true", { a: 1.5 }],
  ["a null", "true", { a: null }],
  ["null", "true", null],
  ["an array", "true", [1]],
  ["a string", "true", "x"],
  ["an __entity escape as a whole", "true", { __entity: U }],
  ["an __extn escape as a whole", "true", { __extn: { fn: "ip", arg: "1.2.3.4" } }],
  ["an __entity key beside another", "context.y == 1", { __entity: U, y: 1 }],
  ["an __entity value", "context.a == principal", { a: { __entity: U } }],
  ["an __extn value", 'context.a.isInRange(ip("1.0.0.0/8"))', { a: { __extn: { fn: "ip", arg: "1.2.3.4" } } }],
  ["an __expr value", "true", { a: { __expr: "1" } }],
  ["nested records and sets", "context.a.b.contains({c: [1]})", { a: { b: [{ c: [1] }] } }],
  ["a large integer", "context.a == 9007199254740991", { a: 9007199254740991 }],
  ["a bad __entity type", "true", { a: { __entity: { type: "if", id: "x" } } }],
];
for (const [what, condition, context] of CONTEXTS) {
  Deno.test({
    name: `contextFromJson() agrees with cedar-wasm on a context with ${what}`,
    ignore: EXTENSION_FUNCTIONS.size === 0 && JSON.stringify(context).includes("__extn"),
    fn: () => {
      agrees(condition, [], context);
    },
  });
}

const REQUEST_UIDS: [string, Partial<OracleRequest>][] = [
  ["a principal with a bad type", { principal: { type: "1x", id: "a" } }],
  ["a principal in the __entity form", { principal: { __entity: U } as never }],
  ["an action with a reserved type", { action: { type: "if", id: "a" } }],
  ["a resource with a numeric id", { resource: { type: "Doc", id: 1 as never } }],
  ["a namespaced action", { action: { type: "NS::Action", id: "view" } }],
];
for (const [what, extra] of REQUEST_UIDS) {
  Deno.test(`compilePolicySet().isAuthorized() agrees with cedar-wasm on ${what}`, () => {
    agrees("true", [], {}, extra);
  });
}

Deno.test("EntityStore.fromJson() computes transitive ancestors through absent entities' direct parents only", () => {
  const store = EntityStore.fromJson([
    { uid: { type: "F", id: "x" }, attrs: {}, parents: [{ type: "D", id: "a" }, { type: "D", id: "b" }] },
    { uid: { type: "D", id: "a" }, attrs: {}, parents: [{ type: "D", id: "root" }] },
  ]);
  assert.deepEqual([...store.get('F::"x"')!.ancestors].sort(), ['D::"a"', 'D::"b"', 'D::"root"']);
  assert.deepEqual([...store.get('D::"a"')!.ancestors], ['D::"root"']);
  assert.equal(store.get('D::"b"'), undefined);
  assert.equal(store.size, 2);
});

Deno.test("EntityStore.fromJson() parses escapes into values", () => {
  const store = EntityStore.fromJson([{
    uid: { __entity: { type: "User", id: "a" } },
    attrs: { boss: { __entity: { type: "User", id: "b" } }, set: [1, 1], rec: { a: "x" }, n: 5 },
    parents: [],
    tags: { t: true },
  }]);
  const entity = store.get('User::"a"')!;
  assert.ok(entity.attrs.get("boss") instanceof EntityRef);
  assert.equal((entity.attrs.get("set") as CedarSet).items.length, 1);
  assert.ok(entity.attrs.get("rec") instanceof CedarRecord);
  assert.equal(entity.attrs.get("n"), 5n);
  assert.equal(entity.tags.get("t"), true);
});

Deno.test("EntityStore.fromJson() accepts bigints within i64 and refuses others", () => {
  assert.equal(
    EntityStore.fromJson([{ uid: U, attrs: { x: 2n ** 63n - 1n } as never, parents: [] }]).get(
      new EntityRef("User", "alice").key,
    )
      ?.attrs.get("x"),
    2n ** 63n - 1n,
  );
  assert.throws(() => EntityStore.fromJson([{ uid: U, attrs: { x: 2n ** 63n } as never, parents: [] }]), TypeError);
});

Deno.test("EntityStore.fromJson() names the cycle and the duplicate in its messages", () => {
  assert.throws(
    () => EntityStore.fromJson([{ uid: U, attrs: {}, parents: [U] }]),
    { name: "TypeError", message: 'The entity hierarchy has a cycle containing User::"alice"' },
  );
  assert.throws(
    () => EntityStore.fromJson([{ uid: U, attrs: { a: 1 }, parents: [] }, { uid: U, attrs: {}, parents: [] }]),
    { name: "TypeError", message: 'Duplicate entity entry User::"alice"' },
  );
});

Deno.test("EntityStore.fromJson() handles a hierarchy 2,000 deep without recursion", () => {
  const entities = Array.from({ length: 2000 }, (_, i) => ({
    uid: { type: "G", id: `${i}` },
    attrs: {},
    parents: i === 1999 ? [] : [{ type: "G", id: `${i + 1}` }],
  }));
  const store = EntityStore.fromJson(entities);
  assert.equal(store.get('G::"0"')!.ancestors.size, 1999);
});
