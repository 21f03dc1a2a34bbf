import type { EntityJson } from "@cedar-policy/cedar-wasm/web";
import { displayEntity, valueEquals } from "./_eval_runtime.ts";
import { entityRefFromJson, rethrowAt, valueFromJson } from "./_json_values.ts";
import type { EntityRef, Value } from "./value.ts";

/** One entity of an {@linkcode EntityStore}: its uid, attributes, tags and transitive ancestors. */
export interface StoredEntity {
  /** The entity's uid. */
  readonly uid: EntityRef;
  /** Its attributes. */
  readonly attrs: ReadonlyMap<string, Value>;
  /** Its tags (empty when it has none). */
  readonly tags: ReadonlyMap<string, Value>;
  /** `key` of each direct parent, as given. */
  readonly parents: readonly string[];
  /** `key` of every ancestor, transitively; never the entity itself. */
  readonly ancestors: ReadonlySet<string>;
}

interface Building extends StoredEntity {
  readonly parents: string[];
  readonly ancestors: Set<string>;
  /** 0 unvisited, 1 on the walk's stack, 2 closed. */
  state: 0 | 1 | 2;
}

const EMPTY_MAP: ReadonlyMap<string, Value> = new Map();

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}

function isActionType(type: string): boolean {
  return type === "Action" || type.endsWith("::Action");
}

function mapFromJson(json: unknown, field: string, uid: EntityRef): ReadonlyMap<string, Value> {
  if (!isObject(json)) {
    throw new TypeError(`Expected "${field}s" of ${displayEntity(uid)} to be an object, got ${JSON.stringify(json)}`);
  }
  const names = Object.keys(json);
  if (names.length === 0) return EMPTY_MAP;
  const map = new Map<string, Value>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    try {
      map.set(name, valueFromJson(json[name]));
    } catch (error) {
      rethrowAt(`${field} "${name}" of ${displayEntity(uid)}`, error);
    }
  }
  return map;
}

function sameMap(a: ReadonlyMap<string, Value>, b: ReadonlyMap<string, Value>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, value] of a) {
    const other = b.get(name);
    if (other === undefined || !valueEquals(value, other)) return false;
  }
  return true;
}

function sameEntity(a: Building, b: Building): boolean {
  if (!sameMap(a.attrs, b.attrs) || !sameMap(a.tags, b.tags)) return false;
  const parents = new Set(a.parents);
  const others = new Set(b.parents);
  return parents.size === others.size && [...parents].every((key) => others.has(key));
}

/** Few entities (a request's principal and resource) are found by a scan; more, by a map. */
const SCAN_MAX = 8;

class Entities {
  readonly list: Building[] = [];
  #map: Map<string, Building> | undefined;

  get(key: string): Building | undefined {
    if (this.#map !== undefined) return this.#map.get(key);
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i]!.uid.key === key) return list[i];
    return undefined;
  }

  add(entity: Building): void {
    this.list.push(entity);
    if (this.#map !== undefined) this.#map.set(entity.uid.key, entity);
    else if (this.list.length > SCAN_MAX) this.#map = new Map(this.list.map((e) => [e.uid.key, e]));
  }
}

/**
 * The entities of a request, parsed once from Cedar's entity JSON, with each
 * entity's transitive ancestors computed once so that `in` is a set lookup.
 * Parses and refuses what cedar-wasm 4.13 parses and refuses without a
 * schema: see {@linkcode EntityStore.fromJson}.
 *
 * @example Ancestors are transitive
 * ```ts
 * import { EntityStore } from "./entity_store.ts";
 * import assert from "node:assert/strict";
 *
 * const store = EntityStore.fromJson([
 *   { uid: { type: "File", id: "/a/b/c" }, attrs: {}, parents: [{ type: "Dir", id: "/a/b" }] },
 *   { uid: { type: "Dir", id: "/a/b" }, attrs: {}, parents: [{ type: "Dir", id: "/a" }] },
 * ]);
 * assert.ok(store.get('File::"/a/b/c"')?.ancestors.has('Dir::"/a"'));
 * ```
 */
export class EntityStore {
  /** A store without entities. */
  static readonly EMPTY: EntityStore = new EntityStore(new Entities());

  readonly #entities: Entities;

  private constructor(entities: Entities) {
    this.#entities = entities;
  }

  /**
   * Parses entities from Cedar's JSON: `uid` as `{ type, id }` or
   * `{ __entity: { type, id } }`, `attrs` and `parents` required, `tags`
   * optional; attribute and tag values by Cedar's JSON value rules (`__entity`
   * and `__extn` escapes, integers within i64: a JSON number that is not an
   * integer is refused). An entity listed twice must be listed identically.
   * The hierarchy must be acyclic, and an action's parents must be actions.
   * Fields other than these are ignored, as cedar-wasm ignores them.
   *
   * @param entities The entities.
   * @returns The store.
   * @throws {TypeError} On a malformed entity or value, an invalid entity
   * type name, a conflicting duplicate, a cycle, or an action with a
   * non-action parent (where cedar-wasm answers `type: "failure"`).
   *
   * @example Parse a principal and a resource
   * ```ts
   * import { EntityStore } from "./entity_store.ts";
   * import assert from "node:assert/strict";
   *
   * const store = EntityStore.fromJson([
   *   { uid: { type: "Plugin", id: "p1" }, attrs: { version: "1.0.0" }, parents: [] },
   *   { uid: { type: "File", id: "/data/x" }, attrs: {}, parents: [{ type: "Dir", id: "/data" }] },
   * ]);
   * assert.equal(store.get('Plugin::"p1"')?.attrs.get("version"), "1.0.0");
   * assert.throws(() => EntityStore.fromJson([{ uid: { type: "A", id: "a" }, attrs: { x: 1.5 }, parents: [] }]), TypeError);
   * ```
   */
  static fromJson(entities: ReadonlyArray<EntityJson>): EntityStore {
    if (!Array.isArray(entities)) throw new TypeError(`Expected the entities to be an array, got ${typeof entities}`);
    const building = new Entities();
    for (const json of entities as readonly unknown[]) {
      if (!isObject(json)) throw new TypeError(`Expected an entity object, got ${JSON.stringify(json)}`);
      if (json.uid === undefined) throw new TypeError(`An entity is missing "uid"`);
      // An entity's own uid is not interned: most are a request's one-off resource.
      const uid = entityRefFromJson(json.uid, "the uid of an entity", false);
      if (json.attrs === undefined) throw new TypeError(`Entity ${displayEntity(uid)} is missing "attrs"`);
      if (json.parents === undefined) throw new TypeError(`Entity ${displayEntity(uid)} is missing "parents"`);
      const attrs = mapFromJson(json.attrs, "attribute", uid);
      const tags = json.tags === undefined ? EMPTY_MAP : mapFromJson(json.tags, "tag", uid);
      const parentsJson = json.parents;
      if (!Array.isArray(parentsJson)) {
        throw new TypeError(
          `Expected "parents" of ${displayEntity(uid)} to be an array, got ${JSON.stringify(parentsJson)}`,
        );
      }
      const action = isActionType(uid.type);
      const parents: string[] = [];
      for (let i = 0; i < parentsJson.length; i++) {
        const parent = entityRefFromJson(parentsJson[i], "a parent");
        if (action && !isActionType(parent.type)) {
          throw new TypeError(`Action ${displayEntity(uid)} has a non-action parent ${displayEntity(parent)}`);
        }
        parents.push(parent.key);
      }
      const entity: Building = { uid, attrs, tags, parents, ancestors: new Set(), state: 0 };
      const existing = building.get(uid.key);
      if (existing !== undefined) {
        if (!sameEntity(existing, entity)) throw new TypeError(`Duplicate entity entry ${displayEntity(uid)}`);
        continue;
      }
      building.add(entity);
    }
    closeAncestors(building);
    return new EntityStore(building);
  }

  /**
   * The store holding the one entity of each of two one-entity stores, made
   * without parsing again: each entity keeps the ancestors it was closed
   * with, which stays right when neither is the other's parent.
   * @param first A store of one entity.
   * @param second Another store of one entity.
   * @returns The joined store; `first` when both hold the same entity object;
   * undefined when the two cannot be joined so (one is the other's parent, a
   * uid twice with different contents, or a store of other than one entity):
   * parse both together with {@linkcode EntityStore.fromJson} instead.
   *
   * @example
   * ```ts
   * import { EntityStore } from "./entity_store.ts";
   * import assert from "node:assert/strict";
   *
   * const plugin = EntityStore.fromJson([{ uid: { type: "Plugin", id: "p" }, attrs: {}, parents: [] }]);
   * const file = EntityStore.fromJson([{ uid: { type: "File", id: "/a" }, attrs: {}, parents: [{ type: "Dir", id: "/" }] }]);
   * assert.equal(EntityStore.join(plugin, file)?.get('File::"/a"')?.ancestors.has('Dir::"/"'), true);
   * ```
   */
  static join(first: EntityStore, second: EntityStore): EntityStore | undefined {
    const a = first.#entities.list;
    const b = second.#entities.list;
    if (a.length !== 1 || b.length !== 1) return undefined;
    const x = a[0]!;
    const y = b[0]!;
    if (x === y) return first;
    if (x.uid.key === y.uid.key || x.parents.includes(y.uid.key) || y.parents.includes(x.uid.key)) return undefined;
    const joined = new Entities();
    joined.add(x);
    joined.add(y);
    return new EntityStore(joined);
  }

  /**
   * The entity of a key.
   * @param key An entity's `EntityRef.key`: `Type::"id"`.
   * @returns The entity, or undefined when the store does not hold it.
   */
  get(key: string): StoredEntity | undefined {
    return this.#entities.get(key);
  }

  /** How many entities the store holds. */
  get size(): number {
    return this.#entities.list.length;
  }

  /**
   * Every entity of the store.
   * @returns The entities, in the order first given.
   */
  values(): IterableIterator<StoredEntity> {
    return this.#entities.list.values();
  }
}

/** Computes every entity's transitive ancestors, depth first without recursion, refusing cycles as Cedar does. */
function closeAncestors(building: Entities): void {
  const stack: Building[] = [];
  const next: number[] = [];
  for (const root of building.list) {
    if (root.state !== 0) continue;
    // Most entities of a request have no parent among the entities (a File lists its Dirs): no walk.
    let linked = false;
    for (let i = 0; i < root.parents.length && !linked; i++) linked = building.get(root.parents[i]!) !== undefined;
    if (!linked) {
      for (let i = 0; i < root.parents.length; i++) root.ancestors.add(root.parents[i]!);
      root.state = 2;
      continue;
    }
    root.state = 1;
    stack.push(root);
    next.push(0);
    while (stack.length > 0) {
      const top = stack.length - 1;
      const entity = stack[top]!;
      const index = next[top]!;
      if (index < entity.parents.length) {
        next[top] = index + 1;
        const parent = building.get(entity.parents[index]!);
        if (parent === undefined) continue;
        if (parent.state === 1) {
          throw new TypeError(`The entity hierarchy has a cycle containing ${displayEntity(parent.uid)}`);
        }
        if (parent.state === 0) {
          parent.state = 1;
          stack.push(parent);
          next.push(0);
        }
        continue;
      }
      for (const key of entity.parents) {
        entity.ancestors.add(key);
        const parent = building.get(key);
        if (parent !== undefined) { for (const ancestor of parent.ancestors) entity.ancestors.add(ancestor); }
      }
      entity.state = 2;
      stack.pop();
      next.pop();
    }
  }
}
