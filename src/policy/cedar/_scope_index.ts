// Policies bucketed by their principal and action scopes, so that a request
// visits only the policies whose scope can hold: for `principal == E` the
// bucket of E, for `principal in E` the bucket of E reached from the
// principal itself or one of its ancestors, for `principal is T` the bucket
// of T, then within it by action likewise. The resource scope is checked per
// candidate.
import type { EntityRef } from "./value.ts";

/** How a policy's principal scope is bucketed. */
export type PrincipalKey =
  | { readonly op: "All" }
  | { readonly op: "==" | "in"; readonly key: string }
  | { readonly op: "is"; readonly type: string };

/** How a policy's action scope is bucketed: `in` with one key per listed action. */
export type ActionKey =
  | { readonly op: "All" }
  | { readonly op: "=="; readonly key: string }
  | { readonly op: "in"; readonly keys: readonly string[] };

class ActionBuckets<T> {
  readonly eq = new Map<string, T[]>();
  readonly within = new Map<string, T[]>();
  readonly all: T[] = [];

  add(action: ActionKey, item: T): void {
    switch (action.op) {
      case "All":
        this.all.push(item);
        return;
      case "==":
        push(this.eq, action.key, item);
        return;
      case "in":
        for (const key of new Set(action.keys)) push(this.within, key, item);
    }
  }

  collect(action: EntityRef, ancestors: ReadonlySet<string> | undefined, out: T[]): void {
    append(out, this.eq.get(action.key));
    if (this.within.size > 0) {
      append(out, this.within.get(action.key));
      if (ancestors !== undefined) { for (const key of ancestors) append(out, this.within.get(key)); }
    }
    append(out, this.all);
  }
}

function push<T>(map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [item]);
  else list.push(item);
}

function append<T>(out: T[], items: readonly T[] | undefined): void {
  if (items !== undefined) { for (let i = 0; i < items.length; i++) out.push(items[i]!); }
}

function bucket<T>(map: Map<string, ActionBuckets<T>>, key: string): ActionBuckets<T> {
  let found = map.get(key);
  if (found === undefined) map.set(key, found = new ActionBuckets<T>());
  return found;
}

/**
 * An index of items (compiled policies) by principal and action scope.
 * A policy whose action scope lists several actions may be collected more
 * than once for one request (an action in two listed groups): callers dedupe.
 */
export class ScopeIndex<T> {
  readonly #eq = new Map<string, ActionBuckets<T>>();
  readonly #within = new Map<string, ActionBuckets<T>>();
  readonly #is = new Map<string, ActionBuckets<T>>();
  readonly #all = new ActionBuckets<T>();

  /**
   * Files an item under its scope.
   * @param principal The principal scope.
   * @param action The action scope.
   * @param item The item.
   */
  add(principal: PrincipalKey, action: ActionKey, item: T): void {
    switch (principal.op) {
      case "All":
        this.#all.add(action, item);
        return;
      case "==":
        bucket(this.#eq, principal.key).add(action, item);
        return;
      case "in":
        bucket(this.#within, principal.key).add(action, item);
        return;
      case "is":
        bucket(this.#is, principal.type).add(action, item);
    }
  }

  /**
   * Collects the items whose principal and action scopes may hold for a request.
   * @param principal The request's principal.
   * @param principalAncestors Its ancestors' keys, when the request's entities hold it.
   * @param action The request's action.
   * @param actionAncestors Its ancestors' keys, when the request's entities hold it.
   * @param out Where to append the items.
   */
  collect(
    principal: EntityRef,
    principalAncestors: ReadonlySet<string> | undefined,
    action: EntityRef,
    actionAncestors: ReadonlySet<string> | undefined,
    out: T[],
  ): void {
    this.#eq.get(principal.key)?.collect(action, actionAncestors, out);
    if (this.#within.size > 0) {
      this.#within.get(principal.key)?.collect(action, actionAncestors, out);
      if (principalAncestors !== undefined) {
        for (const key of principalAncestors) this.#within.get(key)?.collect(action, actionAncestors, out);
      }
    }
    this.#is.get(principal.type)?.collect(action, actionAncestors, out);
    this.#all.collect(action, actionAncestors, out);
  }
}
