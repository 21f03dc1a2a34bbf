// The decision cache of one policy-set version. A hit must not serialize the
// request: JSON.stringify of a File entity with four ancestors took ~2 µs here,
// twice the cache-hit target.
import { GenerationalCache } from "./_generational_cache.ts";

/** A request's resource and context, and the decision made on them; also the handle of a kept decision. */
export interface CachedEntry<D> {
  readonly resource: unknown;
  readonly context: unknown;
  decision: D;
}

/**
 * Where a resource built by keycard keeps its own decisions (its
 * `EntitySlot`): found without hashing the resource at all, for the cache
 * that filled it only.
 */
export interface DecisionHolder {
  decisions?: { owner: object; map: Map<string, CachedEntry<unknown>> };
}

/** What a cached request is held to: about the size the old string keys were capped at. */
const MAX_ENTRY_WEIGHT = 8192;
/** Decisions one built resource keeps (principals x actions x contexts seen on it); cleared whole when full. */
const MAX_PER_RESOURCE = 64;

/**
 * Decisions of one policy-set version, found without serializing the
 * request: an entry is filed under its principal (a small number per
 * principal key), action and resource uid, and holds a copy of the
 * resource and context that a hit must equal structurally (JSON equality:
 * same keys and values, key order aside). Equality with a copy that passed
 * the request bounds bounds the walk too, so a hit needs no bounds check.
 * A resource built by keycard (frozen, with a {@linkcode DecisionHolder})
 * keeps its decisions itself, under principal and action.
 *
 * @example
 * ```ts
 * import { DecisionCache } from "./_decision_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = new DecisionCache<string>(100);
 * const file = () => ({ uid: { type: "File", id: "/data/a" }, attrs: {}, parents: [] });
 * cache.store("p", "fs.read", file(), { caller: "" }, "allow");
 * assert.equal(cache.lookup("p", "fs.read", file(), { caller: "" }), "allow");
 * assert.equal(cache.lookup("p", "fs.read", file(), { caller: "x" }), undefined);
 * ```
 */
export class DecisionCache<D> {
  readonly #entries: GenerationalCache<CachedEntry<D>>;
  readonly #principals = new Map<string, number>();
  #nextPrincipal = 0;

  /** @param capacity The most decisions held (besides those built resources keep). */
  constructor(capacity: number) {
    this.#entries = new GenerationalCache(capacity);
  }

  /**
   * The decision of an equal request, if one is held.
   * @param holder The resource's own holder, when keycard built it (frozen).
   */
  lookup(
    principal: string,
    action: string,
    resource: unknown,
    context: unknown,
    holder?: DecisionHolder,
  ): D | undefined {
    if (holder !== undefined) {
      const id = this.#principals.get(principal);
      const own = holder.decisions;
      if (id === undefined || own === undefined || own.owner !== this || typeof action !== "string") return undefined;
      const entry = own.map.get(`${id}:${action}`) as CachedEntry<D> | undefined;
      return entry !== undefined && same(context, entry.context) ? entry.decision : undefined;
    }
    const key = this.#key(principal, action, resource, false);
    if (key === undefined) return undefined;
    const entry = this.#entries.get(key);
    if (entry === undefined || !same(resource, entry.resource) || !same(context, entry.context)) return undefined;
    return entry.decision;
  }

  /**
   * Keeps a decision, with copies of the resource and context.
   * @param holder The resource's own holder, when keycard built it (frozen):
   * the decision is kept there, with the resource itself rather than a copy.
   * @returns A handle for {@linkcode DecisionCache.replace}, or undefined
   * when the request is not kept (too large, or holds a non-JSON value).
   */
  store(
    principal: string,
    action: string,
    resource: unknown,
    context: unknown,
    decision: D,
    holder?: DecisionHolder,
  ): CachedEntry<D> | undefined {
    if (holder !== undefined) {
      const id = this.#principalId(principal);
      const contextCopy = copy(context, { left: MAX_ENTRY_WEIGHT });
      if (contextCopy === NOT_KEPT || typeof action !== "string") return undefined;
      let own = holder.decisions;
      if (own === undefined || own.owner !== this || own.map.size >= MAX_PER_RESOURCE) {
        own = holder.decisions = { owner: this, map: new Map() };
      }
      const entry: CachedEntry<D> = { resource, context: contextCopy, decision };
      own.map.set(`${id}:${action}`, entry);
      return entry;
    }
    const key = this.#key(principal, action, resource, true);
    if (key === undefined) return undefined;
    const budget = { left: MAX_ENTRY_WEIGHT };
    const resourceCopy = copy(resource, budget);
    const contextCopy = copy(context, budget);
    if (resourceCopy === NOT_KEPT || contextCopy === NOT_KEPT) return undefined;
    const entry: CachedEntry<D> = { resource: resourceCopy, context: contextCopy, decision };
    this.#entries.set(key, entry);
    return entry;
  }

  /** Replaces the decision kept under a handle (if it is dropped meanwhile, nothing is kept). */
  replace(handle: CachedEntry<D>, decision: D): void {
    handle.decision = decision;
  }

  #principalId(principal: string): number {
    let id = this.#principals.get(principal);
    if (id === undefined) {
      // Numbers are never reused: entries of a forgotten principal just stop being found.
      if (this.#principals.size >= 65_536) this.#principals.clear();
      this.#principals.set(principal, id = this.#nextPrincipal++);
    }
    return id;
  }

  #key(principal: string, action: string, resource: unknown, add: boolean): string | undefined {
    if (typeof action !== "string") return undefined;
    const id = add ? this.#principalId(principal) : this.#principals.get(principal);
    if (id === undefined) return undefined;
    const uid = (resource as { uid?: { type?: unknown; id?: unknown } } | null)?.uid;
    const type = uid?.type;
    const uidId = uid?.id;
    if (typeof type !== "string" || typeof uidId !== "string") return undefined;
    return `${id}:${action.length}:${action}${type.length}:${type}${uidId}`;
  }
}

const NOT_KEPT = Symbol("not kept");

/** A plain copy of a JSON value within a weight budget (values plus string lengths), else NOT_KEPT. */
function copy(value: unknown, budget: { left: number }): unknown {
  if (--budget.left < 0) return NOT_KEPT;
  switch (typeof value) {
    case "string":
      budget.left -= value.length;
      return budget.left < 0 ? NOT_KEPT : value;
    case "number":
    case "boolean":
      return value;
    case "object":
      break;
    default:
      return NOT_KEPT;
  }
  if (value === null) return NOT_KEPT;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const item = copy(value[i], budget);
      if (item === NOT_KEPT) return NOT_KEPT;
      out.push(item);
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const name in value) {
    if (!Object.hasOwn(value, name)) continue;
    // An own "__proto__" (JSON.parse makes one) would set the copy's prototype: such requests are not kept.
    if (name === "__proto__") return NOT_KEPT;
    budget.left -= name.length;
    const item = copy((value as Record<string, unknown>)[name], budget);
    if (item === NOT_KEPT) return NOT_KEPT;
    out[name] = item;
  }
  return out;
}

/** JSON equality of a value and a copy made by `copy`: the walk never goes past the copy. */
function same(value: unknown, kept: unknown): boolean {
  if (value === kept) return true;
  if (typeof value !== "object" || typeof kept !== "object" || value === null || kept === null) return false;
  if (Array.isArray(kept)) {
    if (!Array.isArray(value) || value.length !== kept.length) return false;
    for (let i = 0; i < kept.length; i++) if (!same(value[i], kept[i])) return false;
    return true;
  }
  if (Array.isArray(value)) return false;
  let names = 0;
  for (const name in kept) {
    names++;
    if (!Object.hasOwn(value, name) || !same((value as Record<string, unknown>)[name], kept[name as keyof object])) {
      return false;
    }
  }
  for (const name in value) if (Object.hasOwn(value, name) && --names < 0) return false;
  return names === 0;
}
