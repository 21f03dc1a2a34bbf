// The authorizer against cedar-wasm: scopes (and the index that skips
// policies by scope), forbid over permit, reasons and errors, then a seeded
// random differential over generated entities, policies and requests.
import assert from "node:assert/strict";
import {
  bothOutcomes,
  cedarWasmOutcome,
  comparable,
  evaluatorOutcome,
  type OracleRequest,
  parsePolicies,
  preparse,
} from "./_oracle.ts";
import { compilePolicySet } from "./compile_policy_set.ts";
import { EntityStore } from "./entity_store.ts";
import { CedarRecord, EntityRef } from "./value.ts";

const ENTITIES = [
  { uid: { type: "User", id: "alice" }, attrs: { age: 30 }, parents: [{ type: "Group", id: "staff" }] },
  { uid: { type: "User", id: "bob" }, attrs: {}, parents: [{ type: "Group", id: "admins" }] },
  { uid: { type: "Group", id: "staff" }, attrs: {}, parents: [{ type: "Group", id: "all" }] },
  { uid: { type: "Group", id: "admins" }, attrs: {}, parents: [{ type: "Group", id: "all" }] },
  { uid: { type: "Action", id: "view" }, attrs: {}, parents: [{ type: "Action", id: "read" }] },
  { uid: { type: "Action", id: "list" }, attrs: {}, parents: [{ type: "Action", id: "read" }] },
  { uid: { type: "Action", id: "read" }, attrs: {}, parents: [{ type: "Action", id: "any" }] },
  { uid: { type: "Action", id: "edit" }, attrs: {}, parents: [{ type: "Action", id: "write" }] },
  {
    uid: { type: "File", id: "/data/p1/a/b.txt" },
    attrs: { size: 10 },
    parents: [{ type: "Dir", id: "/data/p1/a" }, { type: "Dir", id: "/data/p1" }, { type: "Dir", id: "/data" }],
  },
  { uid: { type: "Dir", id: "/data/p1/a" }, attrs: {}, parents: [{ type: "Dir", id: "/data/p1" }] },
];

function request(principal: string, action: string, resource: string, context: unknown = {}): OracleRequest {
  const uid = (text: string) => {
    const [type, id] = text.split("::") as [string, string];
    return { type, id: JSON.parse(id) as string };
  };
  return { principal: uid(principal), action: uid(action), resource: uid(resource), context, entities: ENTITIES };
}

const ALICE_VIEW_FILE = request('User::"alice"', 'Action::"view"', 'File::"/data/p1/a/b.txt"', { x: 1 });
const BOB_EDIT_DIR = request('User::"bob"', 'Action::"edit"', 'Dir::"/data/p1/a"');
const GHOST_LIST_DOC = request('User::"ghost"', 'Action::"list"', 'Doc::"d"');
const REQUESTS = [ALICE_VIEW_FILE, BOB_EDIT_DIR, GHOST_LIST_DOC];

const SCOPES = [
  "principal, action, resource",
  'principal == User::"alice", action, resource',
  'principal == User::"ghost", action, resource',
  'principal in Group::"staff", action, resource',
  'principal in Group::"all", action, resource',
  'principal in User::"bob", action, resource',
  "principal is User, action, resource",
  "principal is Group, action, resource",
  'principal is User in Group::"admins", action, resource',
  'principal is Group in Group::"all", action, resource',
  'principal, action == Action::"view", resource',
  'principal, action in Action::"read", resource',
  'principal, action in Action::"any", resource',
  'principal, action in Action::"write", resource',
  'principal, action in [Action::"read", Action::"any"], resource',
  'principal, action in [Action::"edit", Action::"view"], resource',
  "principal, action in [], resource",
  'principal, action, resource == File::"/data/p1/a/b.txt"',
  'principal, action, resource in Dir::"/data/p1"',
  'principal, action, resource in Dir::"/data/p1/a"',
  'principal, action, resource in Dir::"/data/p"',
  "principal, action, resource is File",
  "principal, action, resource is Doc",
  'principal, action, resource is Dir in Dir::"/data/p1"',
  'principal, action, resource is File in Dir::"/data/p1/a"',
  'principal == User::"alice", action == Action::"view", resource in Dir::"/data/p1"',
  'principal in Group::"all", action in [Action::"read", Action::"write"], resource is File',
];

for (const scope of SCOPES) {
  Deno.test(`compilePolicySet() applies the scope (${scope}) as cedar-wasm does`, () => {
    for (const effect of ["permit", "forbid"]) {
      for (const req of REQUESTS) {
        const { ours, theirs } = bothOutcomes(`permit (principal, action, resource); ${effect} (${scope});`, req);
        assert.deepEqual(comparable(ours), comparable(theirs), `${effect} for ${JSON.stringify(req.principal)}`);
      }
    }
  });
}

const SETS: [string, string][] = [
  ["no policies", ""],
  ["a forbid over a permit", "permit (principal, action, resource); forbid (principal, action, resource);"],
  ["two permits", "permit (principal, action, resource); permit (principal, action, resource) when { true };"],
  [
    "two forbids and a permit",
    "forbid (principal, action, resource); permit (principal, action, resource); forbid (principal, action, resource);",
  ],
  [
    "an erroring permit beside a permit",
    'permit (principal, action, resource) when { 1 + "a" == 1 }; permit (principal, action, resource);',
  ],
  [
    "an erroring forbid beside a permit",
    "forbid (principal, action, resource) when { principal.nope }; permit (principal, action, resource);",
  ],
  [
    "only erroring policies",
    "permit (principal, action, resource) when { principal.nope }; forbid (principal, action, resource) unless { 1 };",
  ],
  [
    "errors of several kinds",
    "permit (principal, action, resource) when { context.y }; permit (principal, action, resource) when { 9223372036854775807 + context.x > 0 }; forbid (principal, action, resource) when { resource.nope };",
  ],
  [
    "a satisfied forbid and an erroring permit",
    "forbid (principal, action, resource); permit (principal, action, resource) when { principal.nope };",
  ],
  ["a when and an unless", "permit (principal, action, resource) when { true } unless { context has y };"],
  ["a failing unless", "permit (principal, action, resource) unless { context has x };"],
  ["clauses in order", "permit (principal, action, resource) when { false } unless { principal.nope } when { 1 };"],
  [
    "a scope that skips an erroring condition",
    'permit (principal == User::"nobody", action, resource) when { principal.nope };',
  ],
  [
    "an action group listed twice",
    'permit (principal, action in [Action::"read", Action::"any", Action::"view"], resource);',
  ],
  [
    "keycard-shaped grants",
    'permit (principal == User::"alice", action == Action::"view", resource in Dir::"/data/p1"); forbid (principal, action == Action::"view", resource) when { context.x > 5 };',
  ],
];

for (const [what, text] of SETS) {
  Deno.test(`compilePolicySet() decides ${what} as cedar-wasm does`, () => {
    for (const req of REQUESTS) {
      const { ours, theirs } = bothOutcomes(text, req);
      assert.deepEqual(comparable(ours), comparable(theirs), JSON.stringify(req.principal));
    }
  });
}

Deno.test("compilePolicySet() sorts reasons and errors by id, messages alongside", () => {
  const { policies } = parsePolicies(
    "permit (principal, action, resource); permit (principal, action, resource) when { principal.nope }; permit (principal, action, resource) when { 1 };",
  );
  const renamed = [{ ...policies[0]!, id: "m" }, { ...policies[1]!, id: "z" }, { ...policies[2]!, id: "a" }];
  const answer = compilePolicySet(renamed).isAuthorized({ ...ALICE_VIEW_FILE, entities: ENTITIES } as never);
  assert.deepEqual(answer, {
    decision: "allow",
    reason: ["m"],
    errors: ["a", "z"],
    errorMessages: ["type error: expected bool, got long", '`User::"alice"` does not have the attribute `nope`'],
  });
});

Deno.test("compilePolicySet() refuses templates with a TypeError", () => {
  for (const scope of ["principal == ?principal, action, resource", "principal, action, resource in ?resource"]) {
    const json = {
      effect: "permit",
      principal: scope.startsWith("principal ==") ? { op: "==", slot: "?principal" } : { op: "All" },
      action: { op: "All" },
      resource: scope.includes("?resource") ? { op: "in", slot: "?resource" } : { op: "All" },
      conditions: [],
    } as const;
    assert.throws(() => compilePolicySet([{ id: "t", json: json as never }]), {
      name: "TypeError",
      message: /templates are not supported/,
    });
  }
});

Deno.test("compilePolicySet() refuses a duplicate id and an unknown extension function", () => {
  const { policies } = parsePolicies("permit (principal, action, resource);");
  assert.throws(() => compilePolicySet([policies[0]!, policies[0]!]), {
    name: "TypeError",
    message: 'Policy id "p0" is used twice',
  });
  const json = { ...policies[0]!.json, conditions: [{ kind: "when", body: { nope: [] } }] } as never;
  assert.throws(() => compilePolicySet([{ id: "x", json }]), {
    name: "TypeError",
    message: /Policy "x": Unknown extension/,
  });
});

Deno.test("compilePolicySet() takes integer literals as bigints", () => {
  const { policies } = parsePolicies(
    "permit (principal, action, resource) when { context.x + 1 == 9223372036854775807 };",
  );
  assert.ok(JSON.stringify(policies[0]!.json, (_, v) => typeof v === "bigint" ? "bigint" : v).includes('"bigint"'));
  const set = compilePolicySet(policies);
  assert.equal(
    set.isAuthorized({ ...ALICE_VIEW_FILE, context: { x: 9223372036854775806n } } as never).decision,
    "allow",
  );
  assert.deepEqual(set.isAuthorized({ ...ALICE_VIEW_FILE, context: { x: 9223372036854775807n } } as never).errors, [
    "p0",
  ]);
});

Deno.test("compilePolicySet().isAuthorized() takes a parsed store, EntityRefs and a CedarRecord", () => {
  const { policies } = parsePolicies('permit (principal in Group::"all", action, resource) when { context.x == 1 };');
  const set = compilePolicySet(policies);
  const answer = set.isAuthorized({
    principal: new EntityRef("User", "alice"),
    action: new EntityRef("Action", "view"),
    resource: new EntityRef("Doc", "d"),
    context: new CedarRecord(new Map([["x", 1n]])),
    entities: EntityStore.fromJson(ENTITIES as never),
  });
  assert.deepEqual(answer.reason, ["p0"]);
  assert.equal(set.size, 1);
});

Deno.test("compilePolicySet().isAuthorized() throws a TypeError on malformed entities or context", () => {
  const set = compilePolicySet([]);
  assert.throws(() => set.isAuthorized({ ...ALICE_VIEW_FILE, context: { x: 1.5 } } as never), TypeError);
  assert.throws(() => set.isAuthorized({ ...ALICE_VIEW_FILE, entities: [{ uid: 1 }] } as never), TypeError);
  assert.throws(() => set.isAuthorized({ ...ALICE_VIEW_FILE, principal: { type: "if", id: "x" } } as never), TypeError);
});

// --- A seeded random differential ------------------------------------------

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Generator {
  readonly #random: () => number;
  constructor(seed: number) {
    this.#random = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.#random() * n);
  }
  chance(p: number): boolean {
    return this.#random() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const KINDS = { User: 4, Group: 3, Doc: 4, Folder: 3 } as const;
const ACTIONS = ["read", "write", "list", "delete"];
const ACTION_GROUPS = ["readers", "all"];
const STRINGS = ["", "a", "ab", "abc", "ba", "x*y", "héllo"];
const ADDRESSES = ["10.1.2.3", "127.0.0.1", "93.184.216.34", "::1", "fe80::1", "10.0.0.0/8", "192.168.1.0/24"];
const uidText = (type: string, id: string) => `${type}::${JSON.stringify(id)}`;

function randomWorld(g: Generator): { entities: unknown[]; uids: Record<string, string[]> } {
  const uids: Record<string, string[]> = {};
  const entities: unknown[] = [];
  for (const [type, count] of Object.entries(KINDS)) {
    uids[type] = Array.from({ length: count }, (_, i) => `${type[0]!.toLowerCase()}${i}`);
  }
  const parentsOf = (type: string, i: number): { type: string; id: string }[] => {
    const parents: { type: string; id: string }[] = [];
    if (type === "User") { for (const id of uids.Group!) if (g.chance(0.35)) parents.push({ type: "Group", id }); }
    if (type === "Group") {
      for (const id of uids.Group!.slice(i + 1)) if (g.chance(0.4)) parents.push({ type: "Group", id });
    }
    if (type === "Doc") { for (const id of uids.Folder!) if (g.chance(0.35)) parents.push({ type: "Folder", id }); }
    if (type === "Folder") {
      for (const id of uids.Folder!.slice(i + 1)) if (g.chance(0.5)) parents.push({ type: "Folder", id });
    }
    return parents;
  };
  for (const [type, ids] of Object.entries(uids)) {
    ids.forEach((id, i) => {
      const parents = parentsOf(type, i);
      if (g.chance(0.15)) return; // absent from the store
      const attrs: Record<string, unknown> = {};
      if (g.chance(0.8)) attrs.n = g.pick([0, 1, 2, -3, 40, 9007199254740991, -9007199254740991]);
      if (g.chance(0.7)) attrs.s = g.pick(STRINGS);
      if (g.chance(0.6)) attrs.flag = g.chance(0.5);
      if (g.chance(0.5)) attrs.set = STRINGS.filter(() => g.chance(0.3));
      if (g.chance(0.5)) attrs.owner = { __entity: { type: "User", id: g.pick(uids.User!) } };
      if (g.chance(0.4)) attrs.rec = { a: g.int(3), b: g.pick(STRINGS) };
      if (g.chance(0.4)) attrs.addr = g.chance(0.8) ? { __extn: { fn: "ip", arg: g.pick(ADDRESSES) } } : "10.0.0.1";
      if (g.chance(0.3)) attrs.amount = { __extn: { fn: "decimal", arg: g.pick(["0.5", "1.5", "-2.25", "1.5000"]) } };
      const tags: Record<string, unknown> = {};
      if (g.chance(0.4)) tags.t = g.pick(STRINGS);
      entities.push({ uid: { type, id }, attrs, parents, tags });
    });
  }
  for (const id of ACTIONS) {
    const parents = ACTION_GROUPS.filter(() => g.chance(0.5)).map((group) => ({ type: "Action", id: group }));
    entities.push({ uid: { type: "Action", id }, attrs: {}, parents });
  }
  entities.push({ uid: { type: "Action", id: "readers" }, attrs: {}, parents: [{ type: "Action", id: "all" }] });
  uids.Action = [...ACTIONS, ...ACTION_GROUPS];
  return { entities, uids };
}

function randomEntity(g: Generator, uids: Record<string, string[]>, types = Object.keys(uids)): string {
  const type = g.pick(types);
  return uidText(type, g.chance(0.05) ? "missing" : g.pick(uids[type]!));
}

function randomScope(g: Generator, uids: Record<string, string[]>): string {
  const principalTypes = ["User", "Group"];
  const resourceTypes = ["Doc", "Folder"];
  const side = (name: string, types: string[]) => {
    switch (g.int(6)) {
      case 0:
        return `${name} == ${randomEntity(g, uids, types)}`;
      case 1:
      case 2:
        return `${name} in ${randomEntity(g, uids, types)}`;
      case 3:
        return g.chance(0.5)
          ? `${name} is ${g.pick(types)}`
          : `${name} is ${g.pick(types)} in ${randomEntity(g, uids, types)}`;
      default:
        return name;
    }
  };
  const actions = () => uidText("Action", g.pick(uids.Action!));
  const action = g.pick([
    "action",
    `action == ${actions()}`,
    `action in ${actions()}`,
    `action in [${actions()}, ${actions()}]`,
  ]);
  return `${side("principal", principalTypes)}, ${action}, ${side("resource", resourceTypes)}`;
}

function randomExpr(g: Generator, uids: Record<string, string[]>, depth: number): string {
  const variable = () => g.pick(["principal", "resource", "context.who", "principal.owner", "resource.owner"]);
  const long = (): string =>
    g.pick([
      () => `${g.pick([0, 1, 2, 5, 40, -7, 9223372036854775807n, -9223372036854775808n])}`,
      () => `${variable()}.n`,
      () => "context.n",
      () => `(${long()} ${g.pick(["+", "-", "*"])} ${long()})`,
      () => `-${g.pick(["context.n", "principal.n"])}`,
      () => `${variable()}.s`, // often a type error
    ])();
  if (depth <= 0 || g.chance(0.35)) {
    return g.pick([
      () => `${long()} ${g.pick(["<", "<=", ">", ">=", "==", "!="])} ${long()}`,
      () => `${variable()} in ${randomEntity(g, uids)}`,
      () => `${variable()} in [${randomEntity(g, uids)}, ${randomEntity(g, uids)}]`,
      () => `${variable()} has ${g.pick(["n", "s", "flag", "set", "owner", "rec", "nope"])}`,
      () => `${variable()} has rec.${g.pick(["a", "b", "c"])}`,
      () => `${variable()}.flag`,
      () => `${variable()}.s like ${JSON.stringify(g.pick(["*", "a*", "*b", "a*b*", "", "h*o"]))}`,
      () => `${variable()}.set.contains(${JSON.stringify(g.pick(STRINGS))})`,
      () => `${variable()}.set.containsAny(["a", "ab"])`,
      () => `${variable()}.rec == {a: ${g.int(3)}, b: ${JSON.stringify(g.pick(STRINGS))}}`,
      () => `${variable()} == ${randomEntity(g, uids)}`,
      () => `${variable()} is ${g.pick(["User", "Group", "Doc", "Folder"])}`,
      () => `${variable()}.hasTag("t")`,
      () => `${variable()}.getTag("t") == "a"`,
      () => "context.flag",
      () => `${variable()}.owner in ${randomEntity(g, uids)}`,
      () => `action in ${uidText("Action", g.pick(uids.Action!))}`,
      () => `${variable()}.addr.isInRange(ip(${JSON.stringify(g.pick(["10.0.0.0/8", "::/0", "127.0.0.0/8"]))}))`,
      () => `${variable()}.addr.${g.pick(["isLoopback", "isIpv4", "isMulticast"])}()`,
      () => `${variable()}.addr == ip("10.1.2.3")`,
      () => `${variable()}.amount.${g.pick(["lessThan", "greaterThanOrEqual"])}(decimal("1.5"))`,
      () => `${variable()}.amount == decimal("1.5")`,
      () => `context.when ${g.pick(["<", ">=", "=="])} datetime("2024-06-01")`,
      () => `context.when.offset(duration(${JSON.stringify(g.pick(["1d", "-36h", "0ms"]))})) > datetime("2024-06-01")`,
      () => `context.when.toDate() == datetime("2024-06-01")`,
      () => g.pick(["true", "false", "1", '"x"']),
    ])();
  }
  return g.pick([
    () => `(${randomExpr(g, uids, depth - 1)} && ${randomExpr(g, uids, depth - 1)})`,
    () => `(${randomExpr(g, uids, depth - 1)} || ${randomExpr(g, uids, depth - 1)})`,
    () => `!(${randomExpr(g, uids, depth - 1)})`,
    () =>
      `(if ${randomExpr(g, uids, depth - 1)} then ${randomExpr(g, uids, depth - 1)} else ${
        randomExpr(g, uids, depth - 1)
      })`,
  ])();
}

function randomPolicy(g: Generator, uids: Record<string, string[]>): string {
  const clauses = Array.from({ length: g.int(3) }, () => `${g.pick(["when", "unless"])} { ${randomExpr(g, uids, 2)} }`);
  return `${g.chance(0.7) ? "permit" : "forbid"} (${randomScope(g, uids)}) ${clauses.join(" ")};`;
}

Deno.test("compilePolicySet() agrees with cedar-wasm on 4,000 random requests (seeded)", () => {
  const g = new Generator(20240601);
  let requests = 0;
  let allowed = 0;
  let errored = 0;
  for (let round = 0; round < 200; round++) {
    const { entities, uids } = randomWorld(g);
    const text = Array.from({ length: 3 + g.int(8) }, () => randomPolicy(g, uids)).join("\n");
    const { texts, policies } = parsePolicies(text);
    const preparsed = preparse(`random-${round}`, texts);
    const set = compilePolicySet(policies);
    const store = EntityStore.fromJson(entities as never);
    for (let i = 0; i < 20; i++) {
      const uid = (text: string) => {
        const [type, id] = text.split("::") as [string, string];
        return { type, id: JSON.parse(id) as string };
      };
      const request: OracleRequest = {
        principal: uid(randomEntity(g, uids, ["User", "Group"])),
        action: uid(uidText("Action", g.pick(uids.Action!))),
        resource: uid(randomEntity(g, uids, ["Doc", "Folder"])),
        context: {
          n: g.pick([0, 1, 5, -5, 9007199254740991]),
          flag: g.chance(0.5),
          who: { __entity: uid(randomEntity(g, uids)) },
          when: {
            __extn: { fn: "datetime", arg: g.pick(["2024-06-01", "2024-05-31T12:00:00Z", "2024-06-01T00:00:00.001Z"]) },
          },
          ...(g.chance(0.2) ? {} : { s: g.pick(STRINGS) }),
        },
        entities,
      };
      const theirs = cedarWasmOutcome(preparsed, request);
      const ours = evaluatorOutcome(set, g.chance(0.5) ? request : { ...request, entities: store });
      assert.deepEqual(
        comparable(ours),
        comparable(theirs),
        `round ${round} request ${i}\n${text}\n${JSON.stringify(request)}`,
      );
      requests++;
      if (theirs.kind === "answer" && theirs.decision === "allow") allowed++;
      if (theirs.kind === "answer" && theirs.errors.length > 0) errored++;
    }
  }
  // The generator must exercise both decisions and errors.
  assert.equal(requests, 4000);
  assert.ok(allowed > 400 && allowed < 3600, `allowed ${allowed}`);
  assert.ok(errored > 200, `errored ${errored}`);
});
