// Entities built by resources.ts carry a private slot where the engine keeps
// what it learns about them: they are frozen when built, so the request bounds
// are checked once, the JSON text (a principal's cache key) is made once and
// the evaluator parses the entity once. A private field, not a WeakMap or a
// symbol property: a weak-table insert or a defineProperty for every new
// resource cost more than the rest of an uncached decision's bookkeeping, and
// a private field is not copied by a spread nor seen by JSON or `for...in`.
import type { DecisionHolder } from "./_decision_cache.ts";
import type { Entity, EntityUid } from "./resources.ts";

/** What the engine remembers about one built entity, and the decisions it keeps as a resource. */
export interface EntitySlot extends DecisionHolder {
  /** Why the entity breaks the request bounds ("" when it does not); unset until checked. */
  refused?: string;
  /** Its JSON text. */
  json?: string;
  /** The entity alone, parsed by the evaluator. */
  parsed?: unknown;
}

/** A frozen entity with a slot for the engine. */
export class BuiltEntity implements Entity {
  readonly uid: EntityUid;
  readonly attrs: Record<string, unknown>;
  readonly parents: EntityUid[];
  readonly #slot: EntitySlot = {};

  /**
   * @param uid The uid (frozen here).
   * @param attrs Attributes whose values are strings, numbers or booleans
   * (frozen here), or records frozen by the caller.
   * @param parents The parents (each frozen here, and the list).
   */
  constructor(uid: EntityUid, attrs: Record<string, unknown>, parents: EntityUid[]) {
    this.uid = Object.freeze(uid);
    this.attrs = Object.freeze(attrs);
    for (let i = 0; i < parents.length; i++) Object.freeze(parents[i]);
    this.parents = Object.freeze(parents) as EntityUid[];
    Object.freeze(this);
  }

  /** The slot of a built entity, else undefined. */
  static slotOf(entity: object): EntitySlot | undefined {
    return #slot in entity ? (entity as BuiltEntity).#slot : undefined;
  }
}
