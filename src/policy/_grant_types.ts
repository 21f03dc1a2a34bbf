// The evaluator's own type rules for sources that skip cedar-wasm's strict
// validation (keycard's compiled grants under the shipped schema): every entity
// type and action a policy names exists in the schema, each action applies to
// the principal and resource the scope allows, and every `principal.x`,
// `resource.x` and `context.x` a condition reads is an attribute of some type
// the action applies to. Valid by construction is tested once; this checks
// each load, in microseconds, without cedar-wasm.
import type { PolicyJson } from "./cedar/mod.ts";

/** Cedar's JSON schema, as `schemaToJson` gives it: namespace to entity types, actions and common types. */
type SchemaJson = Record<string, {
  entityTypes?: Record<string, { memberOfTypes?: string[]; shape?: TypeJson }>;
  actions?: Record<string, { appliesTo?: { principalTypes?: string[]; resourceTypes?: string[]; context?: TypeJson } }>;
  commonTypes?: Record<string, TypeJson>;
}>;

interface TypeJson {
  type?: string;
  name?: string;
  attributes?: Record<string, TypeJson>;
}

/** The schema, indexed once per engine. */
export class GrantTypes {
  readonly #types = new Map<string, { memberOf: string[]; attrs: Set<string> | undefined }>();
  readonly #actions = new Map<string, { principals: string[]; resources: string[]; context: Set<string> }>();

  /** @param schema Cedar's JSON schema (only the empty namespace is read: keycard's schema has no other). */
  constructor(schema: unknown) {
    const root = ((schema ?? {}) as SchemaJson)[""] ?? {};
    const common = root.commonTypes ?? {};
    const attrsOf = (type: TypeJson | undefined): Set<string> | undefined => {
      let resolved = type;
      for (
        let hops = 0;
        resolved?.type === "EntityOrCommon" && resolved.name && common[resolved.name] && hops < 8;
        hops++
      ) {
        resolved = common[resolved.name];
      }
      return resolved?.attributes ? new Set(Object.keys(resolved.attributes)) : undefined;
    };
    for (const [name, type] of Object.entries(root.entityTypes ?? {})) {
      this.#types.set(name, { memberOf: type.memberOfTypes ?? [], attrs: attrsOf(type.shape) });
    }
    for (const [name, action] of Object.entries(root.actions ?? {})) {
      this.#actions.set(name, {
        principals: action.appliesTo?.principalTypes ?? [],
        resources: action.appliesTo?.resourceTypes ?? [],
        context: attrsOf(action.appliesTo?.context) ?? new Set(),
      });
    }
  }

  /**
   * The problems of one policy, each a sentence naming what is wrong; none when it type-checks.
   * @param policy The policy in Cedar's JSON form.
   */
  check(policy: PolicyJson): string[] {
    const problems: string[] = [];
    const actionIds = this.#actionIds(policy, problems);
    const principalType = this.#scopeType(policy.principal, "principal", problems);
    const resourceType = this.#scopeType(policy.resource, "resource", problems);
    const known = actionIds.flatMap((id) => {
      const action = this.#actions.get(id);
      return action ? [{ id, ...action }] : [];
    });
    const actions = known;
    for (const action of known) {
      const id = action.id;
      if (principalType && !action.principals.includes(principalType)) {
        problems.push(`action "${id}" does not apply to principals of type ${principalType}`);
      }
      if (resourceType && !action.resources.some((type) => this.#within(type, resourceType))) {
        problems.push(`action "${id}" does not apply to resources of or in type ${resourceType}`);
      }
    }
    const reads: { on: string; attr: string }[] = [];
    for (const condition of policy.conditions ?? []) collectReads(condition.body, reads);
    for (const { on, attr } of reads) {
      const types = on === "context"
        ? undefined
        : on === "principal"
        ? (principalType ? [principalType] : actions.flatMap((a) => a.principals))
        : actions.flatMap((a) => a.resources);
      const declared = on === "context"
        ? actions.some((a) => a.context.has(attr))
        : types!.some((type) => this.#types.get(type)?.attrs?.has(attr));
      if (!declared) problems.push(`${on}.${attr} is not an attribute of what the action applies to`);
    }
    return problems;
  }

  #actionIds(policy: PolicyJson, problems: string[]): string[] {
    const scope = policy.action as {
      op: string;
      entity?: { type: string; id: string };
      entities?: { type: string; id: string }[];
    };
    const entities = scope.op === "==" || scope.op === "in"
      ? scope.entities ?? (scope.entity ? [scope.entity] : [])
      : [];
    if (scope.op === "All") problems.push("the action scope is unconstrained");
    for (const entity of entities) {
      if (entity.type !== "Action" || !this.#actions.has(entity.id)) {
        problems.push(`unknown action ${entity.type}::"${entity.id}"`);
      }
    }
    return entities.map((entity) => entity.id);
  }

  #scopeType(scope: unknown, where: string, problems: string[]): string | undefined {
    const s = scope as { op: string; entity?: { type: string }; entity_type?: string };
    const type = s.op === "is" ? s.entity_type : s.op === "==" || s.op === "in" ? s.entity?.type : undefined;
    if (type !== undefined && !this.#types.has(type)) {
      problems.push(`unknown entity type ${type} in the ${where} scope`);
    }
    return type;
  }

  /** Whether entities of `type` can be `outer` or in it (by the schema's memberOfTypes, transitively). */
  #within(type: string, outer: string, seen = new Set<string>()): boolean {
    if (type === outer) return true;
    if (seen.has(type)) return false;
    seen.add(type);
    return (this.#types.get(type)?.memberOf ?? []).some((parent) => this.#within(parent, outer, seen));
  }
}

/** Every `principal.x`, `resource.x`, `context.x` read in an expression. */
function collectReads(expr: unknown, out: { on: string; attr: string }[]): void {
  if (Array.isArray(expr)) {
    for (const item of expr) collectReads(item, out);
    return;
  }
  if (typeof expr !== "object" || expr === null) return;
  const dot = (expr as { ".": { left?: { Var?: string }; attr?: string } })["."];
  if (dot && typeof dot.left?.Var === "string" && typeof dot.attr === "string" && dot.left.Var !== "action") {
    out.push({ on: dot.left.Var, attr: dot.attr });
  }
  for (const [key, value] of Object.entries(expr)) if (key !== "Value") collectReads(value, out);
}
