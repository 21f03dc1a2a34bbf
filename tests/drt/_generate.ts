// The DRT's generators, all seeded, after cedar-spec's cedar-policy-generators: a random schema (namespaces, entity
// types in a membership DAG, attributes of every type, optional ones, tags, actions with appliesTo and groups), an
// entity store that conforms to it (deep chains, shared ancestors, absent entities), policies over the whole grammar
// (mostly well-typed against the schema, sometimes not, so that evaluation errors happen), and requests.
// Entities and context come out as Cedar's entity JSON (`__entity`, `__extn`); policies as Cedar text.
import type { ActionScope, EntityLit, EntityScope, Expr, PatternElem, Policy } from "./_ast.ts";
import { printPolicies } from "./_ast.ts";
import type { Random } from "./_random.ts";

/** An extension type's name as schemas spell it. */
export type ExtName = "decimal" | "ipaddr" | "datetime" | "duration";

/** A schema type. */
export type Ty =
  | { t: "Bool" }
  | { t: "Long" }
  | { t: "String" }
  | { t: "Set"; elem: Ty }
  | { t: "Record"; attrs: AttrDef[] }
  | { t: "Entity"; name: string }
  | { t: "Ext"; name: ExtName };

/** A record's or entity's attribute. */
export interface AttrDef {
  name: string;
  ty: Ty;
  required: boolean;
}

/** An entity type of the schema. */
export interface EntityTypeDef {
  name: string;
  memberOf: string[];
  attrs: AttrDef[];
  tags?: Ty;
}

/** An action of the schema. */
export interface ActionDef {
  uid: EntityLit;
  memberOf: EntityLit[];
  principals: string[];
  resources: string[];
  context: AttrDef[];
}

/** A generated schema. */
export interface Schema {
  entityTypes: EntityTypeDef[];
  actions: ActionDef[];
  actionType: string;
}

/** Cedar's entity JSON value, as cedar-wasm's JS interface takes it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One entity in Cedar's entity JSON. */
export interface EntityJson {
  uid: UidJson;
  attrs: Record<string, JsonValue>;
  parents: UidJson[];
  tags?: Record<string, JsonValue>;
}

/** An entity uid in entity JSON: bare, or as an `__entity` escape. */
export type UidJson = { type: string; id: string } | { __entity: { type: string; id: string } };

/** A request, in the shape both implementations take. */
export interface RequestJson {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: JsonValue;
}

/** A value of the generator's model, with enough structure to write it as JSON or as a policy literal. */
type Val =
  | { t: "bool"; v: boolean }
  | { t: "long"; v: bigint }
  | { t: "str"; v: string }
  | { t: "entity"; e: EntityLit }
  | { t: "set"; items: Val[] }
  | { t: "record"; fields: [string, Val][] }
  | { t: "ext"; fn: "decimal" | "ip" | "datetime" | "duration"; arg: string };

const NAMESPACES = ["", "Acme", "Acme::Core", "App"];
const TYPE_NAMES = ["User", "Group", "Team", "Doc", "Folder", "Plugin", "Host", "Role", "Tenant", "Device"];
const ATTR_NAMES = [
  "name",
  "age",
  "owner",
  "level",
  "active",
  "email",
  "members",
  "meta",
  "addr",
  "since",
  "ttl",
  "balance",
  "x",
  "_y",
  "principal",
  "a b",
  "",
  "if",
  "é",
  "tags",
  "id",
];
const ACTION_NAMES = ["view", "edit", "delete", "read", "write", "call", "admin", "list", "a b", "é", '"q"'];
const ENTITY_IDS = ["alice", "bob", "carol", "", "0", "x y", 'a"b', "\\", "é", "🔑", "admin", "root", "a*b", "\n"];
const STRINGS = [
  "",
  "alice",
  "bob",
  "a*b",
  "x y",
  "é",
  "🔑",
  'a"b',
  "\\",
  "line\nbreak",
  "ALICE",
  "alice@example.com",
  "abc",
  "*",
  "\t\0",
  "**",
  "ab",
];
/** Longs that fit cedar-wasm's JS interface exactly (|n| <= 2^53): entity and context data use only these. */
const SAFE_LONGS = [
  0n,
  1n,
  -1n,
  2n,
  3n,
  7n,
  10n,
  42n,
  100n,
  -100n,
  255n,
  1000000007n,
  9007199254740991n,
  -9007199254740991n,
];
/** Longs that only policy text carries: i64's edges and neighbours. */
const EDGE_LONGS = [
  9223372036854775807n,
  -9223372036854775808n,
  9223372036854775806n,
  -9223372036854775807n,
  4611686018427387904n,
  -4611686018427387904n,
  3037000500n,
  -3037000500n,
  4294967296n,
  9007199254740993n,
];

/** Valid and invalid literals of each extension constructor. */
export const EXT_LITERALS: Record<"decimal" | "ip" | "datetime" | "duration", { good: string[]; bad: string[] }> = {
  decimal: {
    good: [
      "1.0",
      "-1.5",
      "0.0001",
      "3.14",
      "922337203685477.5807",
      "-922337203685477.5808",
      "0.0",
      "-0.0",
      "10.25",
      "1.2",
      "01.10",
    ],
    bad: [
      "1.23456",
      "1",
      "abc",
      "1.",
      ".5",
      "+1.0",
      "922337203685477.5808",
      "-922337203685477.5809",
      "1..0",
      "",
      "1e3",
    ],
  },
  ip: {
    good: [
      "1.2.3.4",
      "10.0.0.0/8",
      "127.0.0.1",
      "127.0.0.0/8",
      "::1",
      "224.0.0.1",
      "ff02::1",
      "2001:db8::/32",
      "0.0.0.0/0",
      "::/0",
      "192.168.1.1/24",
      "10.1.2.3",
      "fe80::1",
      "255.255.255.255/32",
    ],
    bad: [
      "1.2.3.4/33",
      "::ffff:1.2.3.4",
      "1.2.3",
      "01.2.3.4",
      "::1/129",
      "fe80::1%eth0",
      "1.2.3.4/",
      "",
      "::g",
      "1.2.3.4/-1",
      "1.2.3.256",
    ],
  },
  datetime: {
    good: [
      "2024-01-01",
      "2024-01-01T12:34:56Z",
      "2024-01-01T12:34:56.789Z",
      "2024-01-01T12:34:56+0100",
      "2024-01-01T12:34:56.001-2359",
      "1969-12-31",
      "0001-01-01",
      "9999-12-31T23:59:59.999Z",
      "2024-02-29",
      "1970-01-01T00:00:00Z",
    ],
    bad: [
      "2024-1-1",
      "2024-02-30",
      "2024-01-01T25:00:00Z",
      "2024-01-01T12:34:56",
      "2024-01-01 12:34:56Z",
      "2024-01-01T12:34:56+01:00",
      "2023-02-29",
      "",
      "2024-01-01T12:34:56.1Z",
      "12024-01-01",
    ],
  },
  duration: {
    good: [
      "1d",
      "2h30m",
      "-1h",
      "1d2h3m4s5ms",
      "0ms",
      "9223372036854775807ms",
      "-9223372036854775808ms",
      "90m",
      "1s",
      "-2d12h",
      "106751991167d",
    ],
    bad: ["1h1d", "", "1", "1.5h", "h", "1y", "--1h", "1d-2h", "9223372036854775808ms", "106751991168d", "1H"],
  },
};

const EXT_FN: Record<ExtName, "decimal" | "ip" | "datetime" | "duration"> = {
  decimal: "decimal",
  ipaddr: "ip",
  datetime: "datetime",
  duration: "duration",
};

// ---------------------------------------------------------------- schema

function qualify(ns: string, name: string): string {
  return ns === "" ? name : `${ns}::${name}`;
}

function randomTy(rng: Random, typeNames: readonly string[], depth: number): Ty {
  const kind = rng.weighted({
    Bool: 3,
    Long: 4,
    String: 4,
    Set: depth > 0 ? 2 : 0,
    Record: depth > 0 ? 1.5 : 0,
    Entity: 3,
    // Extension values cost cedar-wasm ~0.5 ms each to parse from entity JSON: fewer keeps the gate fast.
    Ext: 1.5,
  });
  switch (kind) {
    case "Set":
      return { t: "Set", elem: randomTy(rng, typeNames, depth - 1) };
    case "Record":
      return { t: "Record", attrs: randomAttrs(rng, typeNames, depth - 1, rng.range(1, 3)) };
    case "Entity":
      return { t: "Entity", name: rng.pick(typeNames) };
    case "Ext":
      return { t: "Ext", name: rng.pick(["decimal", "ipaddr", "datetime", "duration"] as const) };
    default:
      return { t: kind } as Ty;
  }
}

function randomAttrs(rng: Random, typeNames: readonly string[], depth: number, count: number): AttrDef[] {
  // Mostly ordinary names; now and then one that needs `["..."]` or `has "..."`, or shadows a variable.
  const names = rng.sample(ATTR_NAMES.slice(0, 14), count);
  if (rng.chance(0.12)) names.push(rng.pick(ATTR_NAMES.slice(14)));
  return [...new Set(names)].map((name) => ({
    name,
    ty: randomTy(rng, typeNames, depth),
    required: rng.chance(0.7),
  }));
}

/**
 * A random schema: 1-2 namespaces, 3-6 entity types whose memberOfTypes form a DAG (self-membership allowed, for
 * deep chains), attributes of every type, tags on some types, 2-5 actions with groups.
 * @param rng The randomness.
 * @returns The schema.
 */
export function generateSchema(rng: Random): Schema {
  const namespaces = rng.sample(NAMESPACES, rng.range(1, 2));
  const typeNames = rng.sample(TYPE_NAMES, rng.range(3, 5)).map((n) => qualify(rng.pick(namespaces), n));
  const entityTypes: EntityTypeDef[] = typeNames.map((name, i) => {
    const later = typeNames.slice(i + 1);
    const memberOf = rng.sample(later, rng.range(0, Math.min(2, later.length)));
    if (rng.chance(0.3)) memberOf.push(name); // Group in Group: chains of any depth
    const def: EntityTypeDef = { name, memberOf, attrs: randomAttrs(rng, typeNames, 2, rng.range(0, 5)) };
    if (rng.chance(0.35)) def.tags = randomTy(rng, typeNames, 1);
    return def;
  });
  const actionType = qualify(namespaces[0]!, "Action");
  const actionIds = rng.sample(ACTION_NAMES, rng.range(2, 5));
  const actions: ActionDef[] = actionIds.map((id, i) => {
    const groups = actionIds.slice(i + 1);
    return {
      uid: { type: actionType, id },
      memberOf: rng.sample(groups, rng.range(0, Math.min(2, groups.length))).map((g) => ({ type: actionType, id: g })),
      principals: rng.sample(typeNames, rng.chance(0.7) ? 1 : 2),
      resources: rng.sample(typeNames, rng.chance(0.7) ? 1 : 2),
      context: randomAttrs(rng, typeNames, 2, rng.range(0, 4)),
    };
  });
  return { entityTypes, actions, actionType };
}

function tyJson(ty: Ty): JsonValue {
  switch (ty.t) {
    case "Bool":
      return { type: "Boolean" };
    case "Long":
    case "String":
      return { type: ty.t };
    case "Set":
      return { type: "Set", element: tyJson(ty.elem) };
    case "Record":
      return recordJson(ty.attrs);
    case "Entity":
      return { type: "Entity", name: ty.name };
    case "Ext":
      return { type: "Extension", name: ty.name };
  }
}

function recordJson(attrs: readonly AttrDef[]): JsonValue {
  const attributes: Record<string, JsonValue> = {};
  for (const a of attrs) attributes[a.name] = { ...(tyJson(a.ty) as Record<string, JsonValue>), required: a.required };
  return { type: "Record", attributes };
}

function splitName(name: string): [string, string] {
  const at = name.lastIndexOf("::");
  return at < 0 ? ["", name] : [name.slice(0, at), name.slice(at + 2)];
}

/**
 * The schema in Cedar's JSON schema format (for `cedar.validate`).
 * @param schema The schema.
 * @returns Its JSON form.
 */
export function schemaJson(schema: Schema): Record<string, JsonValue> {
  const out: Record<string, { entityTypes: Record<string, JsonValue>; actions: Record<string, JsonValue> }> = {};
  const ns = (name: string) => out[name] ??= { entityTypes: {}, actions: {} };
  for (const def of schema.entityTypes) {
    const [space, base] = splitName(def.name);
    const entry: Record<string, JsonValue> = { memberOfTypes: def.memberOf, shape: recordJson(def.attrs) };
    if (def.tags !== undefined) entry.tags = tyJson(def.tags);
    ns(space).entityTypes[base] = entry;
  }
  const [actionSpace] = splitName(schema.actionType);
  for (const a of schema.actions) {
    ns(actionSpace).actions[a.uid.id] = {
      memberOf: a.memberOf.map((m) => ({ id: m.id })),
      appliesTo: { principalTypes: a.principals, resourceTypes: a.resources, context: recordJson(a.context) },
    };
  }
  return out as Record<string, JsonValue>;
}

// ---------------------------------------------------------------- entities

/** The schema, its entity store and the value pools policies draw literals from. */
export interface World {
  schema: Schema;
  /** The store, as Cedar entity JSON. */
  entities: EntityJson[];
  /** Entities in the store, by type. */
  present: Map<string, EntityLit[]>;
  /** Uids referenced (by attributes, parents, policies, requests) but never in the store. */
  absent: EntityLit[];
  strings: string[];
  longs: bigint[];
  tagKeys: string[];
  /** Each stored entity's ancestors (and itself), by `type::id`: `in` targets that hold. */
  ancestors: Map<string, EntityLit[]>;
}

function typeDef(schema: Schema, name: string): EntityTypeDef | undefined {
  return schema.entityTypes.find((d) => d.name === name);
}

function randomEntity(rng: Random, world: World, type: string): EntityLit {
  const present = world.present.get(type) ?? [];
  if (present.length > 0 && rng.chance(0.85)) return rng.pick(present);
  const absent = world.absent.filter((e) => e.type === type);
  if (absent.length > 0 && rng.chance(0.7)) return rng.pick(absent);
  const e = { type, id: `${rng.pick(ENTITY_IDS)}-gone` };
  world.absent.push(e);
  return e;
}

function randomValue(rng: Random, world: World, ty: Ty, depth = 0): Val {
  switch (ty.t) {
    case "Bool":
      return { t: "bool", v: rng.chance(0.5) };
    case "Long":
      return { t: "long", v: rng.pick(world.longs) };
    case "String":
      return { t: "str", v: rng.pick(world.strings) };
    case "Entity":
      return { t: "entity", e: randomEntity(rng, world, ty.name) };
    case "Set": {
      const items: Val[] = [];
      for (let n = rng.range(0, 3); n > 0; n--) items.push(randomValue(rng, world, ty.elem, depth + 1));
      return { t: "set", items };
    }
    case "Record":
      return {
        t: "record",
        fields: ty.attrs.filter((a) => a.required || rng.chance(0.6)).map((a) => [
          a.name,
          randomValue(rng, world, a.ty, depth + 1),
        ]),
      };
    case "Ext": {
      const fn = EXT_FN[ty.name];
      return { t: "ext", fn, arg: rng.pick(EXT_LITERALS[fn].good) };
    }
  }
}

function valJson(rng: Random, v: Val): JsonValue {
  switch (v.t) {
    case "bool":
    case "str":
      return v.v;
    case "long":
      return Number(v.v); // only safe longs reach entity data
    case "entity":
      return { __entity: { type: v.e.type, id: v.e.id } };
    case "set":
      return v.items.map((i) => valJson(rng, i));
    case "record":
      return Object.fromEntries(v.fields.map(([k, f]) => [k, valJson(rng, f)]));
    case "ext":
      return rng.chance(0.8) ? { __extn: { fn: v.fn, arg: v.arg } } : { __extn: { fn: v.fn, args: [v.arg] } };
  }
}

function valExpr(v: Val): Expr {
  switch (v.t) {
    case "bool":
    case "str":
    case "long":
      return { k: "lit", v: v.v };
    case "entity":
      return { k: "entity", ...v.e };
    case "set":
      return { k: "set", items: v.items.map(valExpr) };
    case "record":
      return { k: "record", fields: v.fields.map(([k, f]) => [k, valExpr(f)]) };
    case "ext":
      return { k: "call", name: v.fn, args: [{ k: "lit", v: v.arg }] };
  }
}

/**
 * A schema and an entity store that conforms to it: 1-4 entities per type, parents drawn so the hierarchy is a DAG
 * with deep chains and shared ancestors, optional attributes sometimes left out, tags, action entities with their
 * groups (now and then one left out), and references to entities that are not in the store.
 * @param rng The randomness.
 * @returns The world.
 */
export function generateWorld(rng: Random): World {
  const schema = generateSchema(rng);
  const world: World = {
    schema,
    entities: [],
    present: new Map(),
    absent: [],
    strings: rng.sample(STRINGS, rng.range(3, 5)),
    longs: rng.sample(SAFE_LONGS, rng.range(3, 5)),
    ancestors: new Map(),
    tagKeys: rng.sample(["a", "b", "level", "", "x y", "owner"], 3),
  };
  // Uids first, in one random order: a parent always comes earlier, so there is no cycle.
  const order: EntityLit[] = [];
  for (const def of schema.entityTypes) {
    const ids = rng.sample(ENTITY_IDS, rng.range(1, def.memberOf.includes(def.name) ? 5 : 3));
    const uids = ids.map((id) => ({ type: def.name, id }));
    world.present.set(def.name, uids);
    order.push(...uids);
  }
  rng.shuffle(order);
  for (const def of schema.entityTypes) {
    world.absent.push({ type: def.name, id: "ghost" });
  }
  for (const [i, uid] of order.entries()) {
    const def = typeDef(schema, uid.type)!;
    const earlier = order.slice(0, i).filter((e) => def.memberOf.includes(e.type));
    const parents: EntityLit[] = rng.sample(earlier, rng.range(0, Math.min(3, earlier.length)));
    // The entity just before in the order, when it may be a parent, makes the chains deep.
    const prev = order[i - 1];
    if (prev !== undefined && def.memberOf.includes(prev.type) && !parents.includes(prev) && rng.chance(0.6)) {
      parents.push(prev);
    }
    if (def.memberOf.length > 0 && rng.chance(0.1)) parents.push({ type: rng.pick(def.memberOf), id: "ghost" });
    const attrs: Record<string, JsonValue> = {};
    for (const a of def.attrs) {
      if (a.required || rng.chance(0.6)) attrs[a.name] = valJson(rng, randomValue(rng, world, a.ty));
    }
    const entity: EntityJson = {
      uid: rng.chance(0.9) ? { ...uid } : { __entity: { ...uid } },
      attrs,
      parents: parents.map((p): UidJson => rng.chance(0.9) ? { ...p } : { __entity: { ...p } }),
    };
    if (def.tags !== undefined) {
      const tags: Record<string, JsonValue> = {};
      for (const key of rng.sample(world.tagKeys, rng.range(0, 3))) {
        tags[key] = valJson(rng, randomValue(rng, world, def.tags));
      }
      entity.tags = tags;
    } else if (rng.chance(0.1)) {
      entity.tags = {};
    }
    world.entities.push(entity);
  }
  // Action entities: the hierarchy of actions lives in the store too.
  const actionUids: EntityLit[] = [];
  for (const a of schema.actions) {
    if (rng.chance(0.08)) {
      world.absent.push(a.uid);
      continue;
    }
    actionUids.push(a.uid);
    world.entities.push({ uid: { ...a.uid }, attrs: {}, parents: a.memberOf.map((m) => ({ ...m })) });
  }
  world.present.set(schema.actionType, actionUids);
  computeAncestors(world);
  rng.shuffle(world.entities);
  return world;
}

function computeAncestors(world: World): void {
  const parents = new Map<string, EntityLit[]>();
  const key = (e: EntityLit) => `${e.type}::${e.id}`;
  for (const e of world.entities) {
    const uid = "__entity" in e.uid ? e.uid.__entity : e.uid;
    parents.set(key(uid), e.parents.map((p) => "__entity" in p ? p.__entity : p));
  }
  for (const e of world.entities) {
    const uid = "__entity" in e.uid ? e.uid.__entity : e.uid;
    const seen = new Map<string, EntityLit>([[key(uid), uid]]);
    const todo = [uid];
    for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
      for (const p of parents.get(key(next)) ?? []) {
        if (!seen.has(key(p))) {
          seen.set(key(p), p);
          todo.push(p);
        }
      }
    }
    world.ancestors.set(key(uid), [...seen.values()]);
  }
}

/** An ancestor (or the entity itself) of a stored entity of `type`, so that `in` holds for it. */
function ancestorOf(rng: Random, world: World, type: string): EntityLit {
  const present = world.present.get(type) ?? [];
  if (present.length === 0) return randomEntity(rng, world, type);
  const e = rng.pick(present);
  return rng.pick(world.ancestors.get(`${e.type}::${e.id}`) ?? [e]);
}

// ---------------------------------------------------------------- policies

/** What an expression may refer to in one policy: the variables' assumed types and the paths from them. */
interface Env {
  world: World;
  rng: Random;
  principalType: string;
  resourceType: string;
  /** When the scope does not pin the variable's type, an attribute access is guarded by `is`. */
  principalPinned: boolean;
  resourcePinned: boolean;
  context: AttrDef[];
  paths: Path[];
  /** Probability that one node is of a type other than asked for. */
  illTyped: number;
}

/** An expression of a known type, reached from a variable, and the tests that make its evaluation safe. */
interface Path {
  expr: Expr;
  ty: Ty;
  guards: Expr[];
}

function sameTy(a: Ty, b: Ty): boolean {
  if (a.t !== b.t) return false;
  switch (a.t) {
    case "Set":
      return sameTy(a.elem, (b as { elem: Ty }).elem);
    case "Entity":
      return a.name === (b as { name: string }).name;
    case "Ext":
      return a.name === (b as { name: string }).name;
    case "Record":
      return true; // close enough for picking operands: a mismatch only makes `==` false
    default:
      return true;
  }
}

function collectPaths(env: Env): Path[] {
  const paths: Path[] = [];
  const walk = (expr: Expr, ty: Ty, guards: Expr[], depth: number, root: { expr: Expr; steps: string[] } | null) => {
    paths.push({ expr, ty, guards });
    if (depth >= 3) return;
    let attrs: AttrDef[] = [];
    let tags: Ty | undefined;
    if (ty.t === "Record") attrs = ty.attrs;
    else if (ty.t === "Entity") {
      const def = typeDef(env.world.schema, ty.name);
      attrs = def?.attrs ?? [];
      tags = def?.tags;
    }
    for (const a of attrs) {
      const next: Expr = { k: "attr", arg: expr, name: a.name, bracket: env.rng.chance(0.1) };
      // A record chain from one root keeps a path of names, so its guard can be one `has a.b.c`.
      const chain = ty.t === "Record" && root !== null
        ? { expr: root.expr, steps: [...root.steps, a.name] }
        : { expr, steps: [a.name] };
      let g = guards;
      if (!a.required) {
        const multi = chain.steps.length > 1 && chain.steps.every((s) => /^[_a-zA-Z][_a-zA-Z0-9]*$/.test(s)) &&
          !chain.steps.some((s) => ["if", "then", "else", "true", "false", "in", "is", "like", "has"].includes(s));
        g = multi && env.rng.chance(0.6)
          ? [...guards, { k: "has", arg: chain.expr, attrs: chain.steps }]
          : [...guards, { k: "has", arg: expr, attrs: [a.name] }];
      }
      walk(next, a.ty, g, depth + 1, a.ty.t === "Record" ? chain : null);
    }
    if (tags !== undefined && depth < 2) {
      for (const key of env.world.tagKeys.slice(0, 2)) {
        const k: Expr = { k: "lit", v: key };
        paths.push({
          expr: { k: "method", name: "getTag", recv: expr, args: [k] },
          ty: tags,
          guards: [...guards, { k: "method", name: "hasTag", recv: expr, args: [k] }],
        });
      }
    }
  };
  const pGuard: Expr[] = env.principalPinned
    ? []
    : [{ k: "is", arg: { k: "var", name: "principal" }, type: env.principalType }];
  const rGuard: Expr[] = env.resourcePinned
    ? []
    : [{ k: "is", arg: { k: "var", name: "resource" }, type: env.resourceType }];
  walk({ k: "var", name: "principal" }, { t: "Entity", name: env.principalType }, pGuard, 0, null);
  walk({ k: "var", name: "resource" }, { t: "Entity", name: env.resourceType }, rGuard, 0, null);
  walk({ k: "var", name: "context" }, { t: "Record", attrs: env.context }, [], 0, {
    expr: { k: "var", name: "context" },
    steps: [],
  });
  paths.push({
    expr: { k: "var", name: "action" },
    ty: { t: "Entity", name: env.world.schema.actionType },
    guards: [],
  });
  return paths;
}

function and(items: Expr[]): Expr {
  return items.reduce((l, r) => ({ k: "binary", op: "&&", left: l, right: r }));
}

const LEAF_TYS: Ty[] = [{ t: "Bool" }, { t: "Long" }, { t: "String" }];

function randomTyFor(env: Env): Ty {
  const { rng } = env;
  switch (rng.int(9)) {
    case 0:
    case 1:
      return { t: "Long" };
    case 2:
    case 3:
      return { t: "String" };
    case 4:
      return { t: "Bool" };
    case 5:
      return { t: "Entity", name: rng.pick(env.world.schema.entityTypes).name };
    case 6:
      return { t: "Ext", name: rng.pick(["decimal", "ipaddr", "datetime", "duration"] as const) };
    case 7:
      return rng.chance(0.7) ? { t: "Set", elem: rng.pick(LEAF_TYS) } : { t: "Record", attrs: env.context };
    default: {
      const p = rng.pick(env.paths);
      return p.ty;
    }
  }
}

/** A path of type `ty` (with its guards folded in as `if guards then path else fallback`), or undefined. */
function pathOf(env: Env, ty: Ty, depth: number): Expr | undefined {
  const fits = env.paths.filter((p) => sameTy(p.ty, ty));
  if (fits.length === 0) return undefined;
  const p = env.rng.pick(fits);
  if (p.guards.length === 0 || env.rng.chance(0.12)) return p.expr;
  return { k: "ite", cond: and(p.guards), then: p.expr, else: literal(env, ty, Math.min(depth, 1)) };
}

/** A literal (or constructor call) of type `ty`. */
function literal(env: Env, ty: Ty, depth: number): Expr {
  const { rng, world } = env;
  switch (ty.t) {
    case "Bool":
      return { k: "lit", v: rng.chance(0.5) };
    case "Long": {
      const v = rng.chance(0.15) ? rng.pick(EDGE_LONGS) : rng.pick(world.longs);
      if (v < 0n && v !== -9223372036854775808n && rng.chance(0.3)) {
        return { k: "unary", op: "-", arg: { k: "paren", arg: { k: "lit", v: -v } } };
      }
      return { k: "lit", v };
    }
    case "String":
      return { k: "lit", v: rng.chance(0.9) ? rng.pick(world.strings) : rng.pick(STRINGS) };
    case "Entity":
      return { k: "entity", ...randomEntity(rng, world, ty.name) };
    case "Set": {
      const items: Expr[] = [];
      for (let n = rng.range(0, 3); n > 0; n--) {
        items.push(depth > 0 ? expr(env, ty.elem, depth - 1) : literal(env, ty.elem, 0));
      }
      return { k: "set", items };
    }
    case "Record": {
      const fields: [string, Expr][] = ty.attrs.filter((a) => a.required || rng.chance(0.5)).map((a) => [
        a.name,
        depth > 0 ? expr(env, a.ty, depth - 1) : literal(env, a.ty, 0),
      ]);
      return { k: "record", fields };
    }
    case "Ext": {
      const fn = EXT_FN[ty.name];
      const lits = EXT_LITERALS[fn];
      return {
        k: "call",
        name: fn,
        args: [{ k: "lit", v: rng.chance(0.9) ? rng.pick(lits.good) : rng.pick(lits.bad) }],
      };
    }
  }
}

function bin(op: Expr & { k: "binary" } extends { op: infer O } ? O : never, left: Expr, right: Expr): Expr {
  return { k: "binary", op, left, right };
}

function method(name: string, recv: Expr, ...args: Expr[]): Expr {
  return { k: "method", name, recv, args };
}

/** An entity expression: a variable, a literal, or a path of entity type. */
function entityExpr(env: Env, depth: number): Expr {
  const { rng } = env;
  switch (rng.int(6)) {
    case 0:
    case 1:
      return { k: "var", name: rng.chance(0.6) ? "principal" : "resource" };
    case 2:
      return { k: "var", name: "action" };
    case 3: {
      const p = env.paths.filter((q) => q.ty.t === "Entity" && q.expr.k !== "var");
      if (p.length > 0) return pathOf(env, rng.pick(p).ty, depth) ?? literal(env, rng.pick(p).ty, 0);
      return { k: "var", name: "principal" };
    }
    default:
      return literal(env, { t: "Entity", name: rng.pick(env.world.schema.entityTypes).name }, 0);
  }
}

/** An entity that is likely an ancestor of `principal` or `resource` (or an action group), for `in`. */
function ancestorLit(env: Env): Expr {
  const { rng, world } = env;
  const type = rng.pick([env.principalType, env.resourceType]);
  if (rng.chance(0.6)) return { k: "entity", ...ancestorOf(rng, world, type) };
  const def = typeDef(world.schema, type);
  const candidates = def?.memberOf.length ? def.memberOf : [type];
  return literal(env, { t: "Entity", name: rng.pick(candidates) }, 0);
}

function patternFor(env: Env): PatternElem[] {
  const { rng } = env;
  const source = rng.chance(0.85) ? rng.pick(env.world.strings) : rng.pick(STRINGS);
  const out: PatternElem[] = [];
  for (const ch of source) {
    const r = rng.next();
    if (r < 0.15) out.push({ wildcard: true });
    else if (r < 0.2) {
      out.push({ wildcard: true });
      out.push({ text: ch });
    } else out.push({ text: ch });
  }
  if (rng.chance(0.3)) out.push({ wildcard: true });
  if (rng.chance(0.2)) out.unshift({ wildcard: true });
  if (rng.chance(0.1)) out.push({ text: "*" }); // an escaped star
  return out;
}

const ORDER_OPS = ["<", "<=", ">", ">="] as const;

function boolExpr(env: Env, depth: number): Expr {
  const { rng } = env;
  if (depth <= 0) {
    if (rng.chance(0.6)) return pathOf(env, { t: "Bool" }, 0) ?? { k: "lit", v: rng.chance(0.6) };
    return { k: "lit", v: rng.chance(0.6) };
  }
  const d = depth - 1;
  const kind = rng.weighted({
    lit: 1,
    path: 3,
    eq: 6,
    order: 5,
    and: 4,
    or: 3,
    not: 1.5,
    in: 4,
    has: 2.5,
    like: 2,
    is: 2,
    setop: 3,
    tag: 1.5,
    decimal: 1,
    ip: 1.5,
    ite: 1,
    paren: 0.5,
  });
  switch (kind) {
    case "lit":
      return { k: "lit", v: rng.chance(0.6) };
    case "path":
      return pathOf(env, { t: "Bool" }, d) ?? boolExpr(env, d);
    case "eq": {
      const ty = randomTyFor(env);
      const right = rng.chance(0.15) ? expr(env, randomTyFor(env), d) : expr(env, ty, d);
      return bin(rng.chance(0.75) ? "==" : "!=", expr(env, ty, d), right);
    }
    case "order": {
      const ty: Ty = rng.chance(0.7)
        ? { t: "Long" }
        : rng.chance(0.5)
        ? { t: "Ext", name: "datetime" }
        : { t: "Ext", name: "duration" };
      return bin(rng.pick(ORDER_OPS), expr(env, ty, d), expr(env, ty, d));
    }
    case "and":
      return bin("&&", boolExpr(env, d), boolExpr(env, d));
    case "or":
      return bin("||", boolExpr(env, d), boolExpr(env, d));
    case "not":
      return { k: "unary", op: "!", arg: boolExpr(env, d) };
    case "in": {
      const left = entityExpr(env, d);
      if (rng.chance(0.25)) return bin("in", left, { k: "set", items: [ancestorLit(env), ancestorLit(env)] });
      return bin("in", left, rng.chance(0.8) ? ancestorLit(env) : entityExpr(env, d));
    }
    case "has": {
      const targets = env.paths.filter((p) => p.ty.t === "Record" || p.ty.t === "Entity");
      const p = rng.pick(targets);
      let attrs: AttrDef[] = [];
      if (p.ty.t === "Record") attrs = p.ty.attrs;
      else if (p.ty.t === "Entity") attrs = typeDef(env.world.schema, p.ty.name)?.attrs ?? [];
      const names = attrs.length > 0 && rng.chance(0.85) ? [rng.pick(attrs).name] : [rng.pick(ATTR_NAMES)];
      const first = attrs.find((a) => a.name === names[0]);
      if (first?.ty.t === "Record" && first.ty.attrs.length > 0 && rng.chance(0.5)) {
        names.push(rng.pick(first.ty.attrs).name);
      }
      const arg = p.guards.length > 0 && rng.chance(0.5) ? pathOf(env, p.ty, d) ?? p.expr : p.expr;
      return { k: "has", arg, attrs: names };
    }
    case "like":
      return { k: "like", arg: expr(env, { t: "String" }, d), pattern: patternFor(env) };
    case "is": {
      const type = rng.chance(0.9) ? rng.pick(env.world.schema.entityTypes).name : env.world.schema.actionType;
      const arg = entityExpr(env, d);
      return rng.chance(0.3) ? { k: "is", arg, type, in: ancestorLit(env) } : { k: "is", arg, type };
    }
    case "setop": {
      const elem: Ty = rng.chance(0.5)
        ? rng.pick(LEAF_TYS)
        : { t: "Entity", name: rng.pick(env.world.schema.entityTypes).name };
      const setPaths = env.paths.filter((p) => p.ty.t === "Set");
      const setTy: Ty = setPaths.length > 0 && rng.chance(0.6) ? rng.pick(setPaths).ty : { t: "Set", elem };
      const e = (setTy as { elem: Ty }).elem;
      const set = expr(env, setTy, d);
      switch (rng.int(4)) {
        case 0:
          return method("contains", set, expr(env, e, d));
        case 1:
          return method("containsAll", set, expr(env, setTy, d));
        case 2:
          return method("containsAny", set, expr(env, setTy, d));
        default:
          return method("isEmpty", set);
      }
    }
    case "tag": {
      const key: Expr = { k: "lit", v: rng.pick(env.world.tagKeys) };
      return method("hasTag", entityExpr(env, d), key);
    }
    case "decimal": {
      const name = rng.pick(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"]);
      const ty: Ty = { t: "Ext", name: "decimal" };
      return method(name, expr(env, ty, d), expr(env, ty, d));
    }
    case "ip": {
      const ip = expr(env, { t: "Ext", name: "ipaddr" }, d);
      const name = rng.pick(["isIpv4", "isIpv6", "isLoopback", "isMulticast", "isInRange"]);
      return name === "isInRange" ? method(name, ip, expr(env, { t: "Ext", name: "ipaddr" }, d)) : method(name, ip);
    }
    case "ite":
      return { k: "ite", cond: boolExpr(env, d), then: boolExpr(env, d), else: boolExpr(env, d) };
    case "paren":
      return { k: "paren", arg: boolExpr(env, d) };
  }
}

function longExpr(env: Env, depth: number): Expr {
  const { rng } = env;
  if (depth <= 0) {
    return rng.chance(0.5)
      ? pathOf(env, { t: "Long" }, 0) ?? literal(env, { t: "Long" }, 0)
      : literal(env, { t: "Long" }, 0);
  }
  const d = depth - 1;
  switch (
    rng.weighted({ lit: 3, path: 3, add: 2, sub: 1.5, mul: 1.5, neg: 0.7, ite: 0.5, duration: 1.2, since: 0.5 })
  ) {
    case "lit":
      return literal(env, { t: "Long" }, d);
    case "path":
      return pathOf(env, { t: "Long" }, d) ?? literal(env, { t: "Long" }, d);
    case "add":
      return bin("+", longExpr(env, d), longExpr(env, d));
    case "sub":
      return bin("-", longExpr(env, d), longExpr(env, d));
    case "mul":
      return bin("*", longExpr(env, d), longExpr(env, d));
    case "neg":
      return { k: "unary", op: "-", arg: longExpr(env, d) };
    case "ite":
      return { k: "ite", cond: boolExpr(env, d), then: longExpr(env, d), else: longExpr(env, d) };
    case "duration":
      return method(
        rng.pick(["toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays"]),
        expr(env, { t: "Ext", name: "duration" }, d),
      );
    case "since":
      return method(
        "toMilliseconds",
        method(
          "durationSince",
          expr(env, { t: "Ext", name: "datetime" }, d),
          expr(env, { t: "Ext", name: "datetime" }, d),
        ),
      );
  }
}

function extExpr(env: Env, name: ExtName, depth: number): Expr {
  const { rng } = env;
  const ty: Ty = { t: "Ext", name };
  if (depth > 0 && name === "datetime" && rng.chance(0.3)) {
    const d = depth - 1;
    return rng.chance(0.6)
      ? method("offset", expr(env, ty, d), expr(env, { t: "Ext", name: "duration" }, d))
      : method("toDate", expr(env, ty, d));
  }
  if (depth > 0 && name === "duration" && rng.chance(0.25)) {
    const d = depth - 1;
    const dt: Ty = { t: "Ext", name: "datetime" };
    return rng.chance(0.5)
      ? method("toTime", expr(env, dt, d))
      : method("durationSince", expr(env, dt, d), expr(env, dt, d));
  }
  if (rng.chance(0.35)) return pathOf(env, ty, depth) ?? literal(env, ty, depth);
  return literal(env, ty, depth);
}

/**
 * An expression of type `ty` (most of the time: with probability `env.illTyped` one of another type).
 */
function expr(env: Env, ty: Ty, depth: number): Expr {
  const { rng } = env;
  if (rng.chance(env.illTyped)) {
    if (rng.chance(0.15)) {
      // Wrong arity or an unknown method receiver: errors at evaluation, not at parsing.
      return rng.chance(0.5)
        ? { k: "call", name: rng.pick(["ip", "decimal", "datetime", "duration"]), args: [] }
        : method(rng.pick(["isEmpty", "isLoopback", "toDays", "lessThan"]), literal(env, randomTyFor(env), 0));
    }
    ty = randomTyFor(env);
  }
  switch (ty.t) {
    case "Bool":
      return boolExpr(env, depth);
    case "Long":
      return longExpr(env, depth);
    case "String":
      if (depth > 0 && rng.chance(0.1)) {
        return {
          k: "ite",
          cond: boolExpr(env, depth - 1),
          then: expr(env, ty, depth - 1),
          else: expr(env, ty, depth - 1),
        };
      }
      return rng.chance(0.5) ? pathOf(env, ty, depth) ?? literal(env, ty, depth) : literal(env, ty, depth);
    case "Entity": {
      if (ty.name === env.principalType && rng.chance(0.3)) return { k: "var", name: "principal" };
      if (ty.name === env.resourceType && rng.chance(0.3)) return { k: "var", name: "resource" };
      return rng.chance(0.4) ? pathOf(env, ty, depth) ?? literal(env, ty, depth) : literal(env, ty, depth);
    }
    case "Set":
    case "Record":
      if (ty.t === "Record" && ty.attrs === env.context && rng.chance(0.3)) return { k: "var", name: "context" };
      return rng.chance(0.5) ? pathOf(env, ty, depth) ?? literal(env, ty, depth) : literal(env, ty, depth);
    case "Ext":
      return extExpr(env, ty.name, depth);
  }
}

function entityScope(env: Env, rng: Random, type: string, pinned: (yes: boolean) => void): EntityScope {
  const world = env.world;
  switch (rng.weighted({ all: 4, eq: 1.5, in: 2, is: 1.5, isIn: 1 })) {
    case "all":
      pinned(false);
      return { op: "all" };
    case "eq":
      pinned(true);
      return { op: "==", entity: randomEntity(rng, world, type) };
    case "in": {
      pinned(false);
      const def = typeDef(world.schema, type);
      const parentType = def?.memberOf.length && rng.chance(0.7) ? rng.pick(def.memberOf) : type;
      return {
        op: "in",
        entity: rng.chance(0.6) ? ancestorOf(rng, world, type) : randomEntity(rng, world, parentType),
      };
    }
    case "is":
      pinned(true);
      return { op: "is", type };
    default: {
      pinned(true);
      const def = typeDef(world.schema, type);
      const parentType = def?.memberOf.length ? rng.pick(def.memberOf) : type;
      return {
        op: "is",
        type,
        in: rng.chance(0.6) ? ancestorOf(rng, world, type) : randomEntity(rng, world, parentType),
      };
    }
  }
}

/** Options of {@linkcode generatePolicy}. */
export interface PolicyOptions {
  /** Probability that one expression node is of the wrong type. */
  illTyped: number;
  /** Deepest condition body. */
  depth: number;
}

/**
 * One random policy over `world`: a scope of any form, 0-3 `when`/`unless` clauses, annotations.
 * @param rng The randomness.
 * @param world The schema and store.
 * @param options Ill-typedness and depth.
 * @returns The policy's tree.
 */
export function generatePolicy(rng: Random, world: World, options: PolicyOptions): Policy {
  const schema = world.schema;
  // Policies of one set lean on one action, as real ones do, so that requests for it meet several of them.
  const action = rng.chance(0.5) ? schema.actions[0]! : rng.pick(schema.actions);
  const env: Env = {
    world,
    rng,
    principalType: rng.chance(0.85) ? rng.pick(action.principals) : rng.pick(schema.entityTypes).name,
    resourceType: rng.chance(0.85) ? rng.pick(action.resources) : rng.pick(schema.entityTypes).name,
    principalPinned: false,
    resourcePinned: false,
    context: action.context,
    paths: [],
    illTyped: options.illTyped,
  };
  const principal = entityScope(env, rng, env.principalType, (yes) => env.principalPinned = yes);
  const resource = entityScope(env, rng, env.resourceType, (yes) => env.resourcePinned = yes);
  let actionScope: ActionScope;
  switch (rng.weighted({ all: 2, eq: 3.5, in: 1.5, inSet: 2 })) {
    case "all":
      actionScope = { op: "all" };
      break;
    case "eq":
      actionScope = { op: "==", entity: action.uid };
      break;
    case "in": {
      const group = action.memberOf.length > 0 && rng.chance(0.7) ? rng.pick(action.memberOf) : action.uid;
      actionScope = { op: "in", entity: group };
      break;
    }
    default: {
      const others = rng.sample(schema.actions.map((a) => a.uid), rng.range(0, 2));
      actionScope = { op: "inSet", entities: [action.uid, ...others.filter((o) => o.id !== action.uid.id)] };
      if (rng.chance(0.05)) actionScope.entities = [];
      rng.shuffle(actionScope.entities);
    }
  }
  env.paths = collectPaths(env);
  const conditions: Policy["conditions"] = [];
  for (let i = Number(rng.weighted({ 0: 1.5, 1: 5, 2: 1.5, 3: 0.4 })); i > 0; i--) {
    conditions.push({ kind: rng.chance(0.78) ? "when" : "unless", body: boolExpr(env, rng.range(1, options.depth)) });
  }
  const annotations: [string, string | undefined][] = [];
  if (rng.chance(0.3)) annotations.push(["id", rng.pick(["p1", "allow-all", "", "é🔑", 'say "hi"'])]);
  if (rng.chance(0.15)) annotations.push([rng.pick(["advice", "reason", "owner_1"]), rng.pick(STRINGS)]);
  if (rng.chance(0.08)) annotations.push(["flag", undefined]);
  return {
    annotations,
    effect: rng.chance(0.78) ? "permit" : "forbid",
    principal,
    action: actionScope,
    resource,
    conditions,
  };
}

/** One generated policy set: its trees, its text and the world it was made for. */
export interface PolicySetCase {
  world: World;
  policies: Policy[];
  style: number;
  text: string;
}

/**
 * A world and 1-6 policies over it.
 * @param rng The randomness.
 * @param options Ill-typedness and depth.
 * @returns The case.
 */
export function generatePolicySet(
  rng: Random,
  options: PolicyOptions = { illTyped: 0.03, depth: 4 },
): PolicySetCase {
  const world = generateWorld(rng);
  const policies: Policy[] = [];
  for (let n = rng.range(1, 6); n > 0; n--) policies.push(generatePolicy(rng, world, options));
  const style = rng.u32();
  return { world, policies, style, text: printPolicies(policies, style) };
}

// ---------------------------------------------------------------- requests

function pickUid(rng: Random, world: World, types: readonly string[]): { type: string; id: string } {
  const r = rng.next();
  if (r < 0.75) return { ...randomEntity(rng, world, rng.pick(types)) };
  if (r < 0.9) {
    const all = [...world.present.values()].flat();
    if (all.length > 0) return { ...rng.pick(all) };
  }
  if (r < 0.97 && world.absent.length > 0) return { ...rng.pick(world.absent) };
  return { type: rng.pick(world.schema.entityTypes).name, id: rng.pick(ENTITY_IDS) };
}

function contextFor(rng: Random, world: World, action: ActionDef | undefined): JsonValue {
  const attrs = action?.context ?? [];
  const fields: Record<string, JsonValue> = {};
  for (const a of attrs) {
    if (a.required || rng.chance(0.6)) fields[a.name] = valJson(rng, randomValue(rng, world, a.ty));
  }
  if (rng.chance(0.1)) {
    // Sometimes wrong for the action: a field of another type, or one the action does not declare.
    const ty: Ty = { t: rng.pick(["Bool", "Long", "String"] as const) };
    fields[rng.pick(ATTR_NAMES)] = valJson(rng, randomValue(rng, world, ty));
  }
  return fields;
}

/**
 * A request over `world`: principal, action and resource mostly of the types the action applies to and in the store,
 * sometimes absent or of other types; a context per the action's context type, sometimes wrong.
 * @param rng The randomness.
 * @param world The schema and store.
 * @returns The request.
 */
export function generateRequest(rng: Random, world: World, policies: readonly Policy[] = []): RequestJson {
  const schema = world.schema;
  const aim = policies.length > 0 && rng.chance(0.4) ? rng.pick(policies) : undefined;
  let action = rng.chance(0.95) ? (rng.chance(0.5) ? schema.actions[0]! : rng.pick(schema.actions)) : undefined;
  if (aim !== undefined) {
    // Aimed at one policy: a request its scope admits, so that conditions decide more often than scopes do.
    const admitted = schema.actions.filter((a) => actionAdmits(world, aim.action, a.uid));
    if (admitted.length > 0) action = rng.pick(admitted);
  }
  const actionUid = action?.uid ?? { type: schema.actionType, id: rng.pick(ACTION_NAMES) + "-gone" };
  const principalTypes = action?.principals ?? schema.entityTypes.map((d) => d.name);
  const resourceTypes = action?.resources ?? schema.entityTypes.map((d) => d.name);
  const principal = (aim && scopeAdmitted(rng, world, aim.principal)) ?? pickUid(rng, world, principalTypes);
  const resource = (aim && scopeAdmitted(rng, world, aim.resource)) ?? pickUid(rng, world, resourceTypes);
  return { principal, action: { ...actionUid }, resource, context: contextFor(rng, world, action) };
}

function isUnder(world: World, e: EntityLit, ancestor: EntityLit): boolean {
  return (world.ancestors.get(`${e.type}::${e.id}`) ?? [e]).some((a) =>
    a.type === ancestor.type && a.id === ancestor.id
  );
}

function actionAdmits(world: World, scope: ActionScope, uid: EntityLit): boolean {
  switch (scope.op) {
    case "all":
      return true;
    case "==":
      return scope.entity.type === uid.type && scope.entity.id === uid.id;
    case "in":
      return isUnder(world, uid, scope.entity);
    case "inSet":
      return scope.entities.some((g) => isUnder(world, uid, g));
  }
}

/** A stored entity that `scope` admits, if there is one. */
function scopeAdmitted(rng: Random, world: World, scope: EntityScope): { type: string; id: string } | undefined {
  const all = [...world.present.values()].flat();
  let fits: EntityLit[];
  switch (scope.op) {
    case "all":
      return undefined;
    case "==":
      return { ...scope.entity };
    case "in":
      fits = all.filter((e) => isUnder(world, e, scope.entity));
      break;
    case "is":
      fits = all.filter((e) => e.type === scope.type && (scope.in === undefined || isUnder(world, e, scope.in)));
      break;
  }
  return fits.length > 0 ? { ...rng.pick(fits) } : undefined;
}
