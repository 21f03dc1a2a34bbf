// A request as an operator writes it in a policy test or `deno task policy explain`: a Cedar request, or a host
// call the way a plugin makes it, turned into exactly the Cedar requests keycard's host functions build.
import { z } from "zod";
import { expect, list, map, showYamlValue as show, text } from "../config/mod.ts";
import {
  type AuthorizationRequest,
  type Decision,
  type Entity,
  type EntityUid,
  envVarEntity,
  isIpLiteral,
  keyEntity,
  normalizeDataPath,
  pathEntity,
  pluginEntity,
  type PluginPrincipal,
  type PolicyEngine,
  runtimeEntity,
} from "../policy/mod.ts";
import { httpResource, type HttpTarget, httpTarget, kvTarget } from "../host/mod.ts";
import { parseIpAddress } from "../policy/parse_ip_address.ts";
import { HostCallError } from "../runtime/mod.ts";
import { checkPluginName } from "../registry/mod.ts";

/** The host calls a test may make, by the name a plugin's grant uses. */
export const HOST_CALLS = [
  "fs.read",
  "fs.write",
  "fs.list",
  "fs.delete",
  "kv.get",
  "kv.set",
  "kv.delete",
  "http.request",
  "env.get",
  "log.write",
  "clock.now",
  "random.get",
] as const;
type HostCall = typeof HOST_CALLS[number];

const UID_TEXT = /^((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)::("(?:[^"\\]|\\.)*")$/;
const json = z.unknown();
const uidObject = map({ type: text("an entity type"), id: z.string(expect("an entity id")) }, "a {type, id} map");
const entityRef = z.union([text('an entity such as Plugin::"stamp"'), uidObject], expect('Type::"id" or {type, id}'));
const entity = map({
  type: text("an entity type"),
  id: z.string(expect("an entity id")),
  attrs: z.record(z.string(), json, expect("a map of attributes")).optional(),
  parents: list(entityRef).optional(),
}, "a {type, id, attrs, parents} map");
const maybeNull = z.union([z.null(), map({})], expect("nothing (or {})"));

/** The fields of a request, as YAML gives them. */
export const REQUEST_FIELDS = {
  // A Cedar request.
  principal: z.union([text('an entity such as Plugin::"stamp"'), entity], expect('Type::"id" or a map')).optional(),
  action: text('an action such as fs.read or Action::"fs.read"').optional(),
  resource: z.union([text('an entity such as File::"/data/a.txt"'), entity], expect('Type::"id" or a map')).optional(),
  context: z.record(z.string(), json, expect("a map")).optional(),
  entities: list(z.unknown()).optional(),
  // A host call as a plugin makes it.
  plugin: z.union([
    text("a plugin name"),
    map({
      name: text("a plugin name"),
      version: text("a version").optional(),
      sha256: z.string(expect("hex SHA-256")).optional(),
      tenant: z.string(expect("a tenant")).optional(),
    }),
  ], expect("a plugin name or {name, version, sha256, tenant}")).optional(),
  "fs.read": text("a path in the data root").optional(),
  "fs.write": text("a path in the data root").optional(),
  "fs.list": text("a path in the data root").optional(),
  "fs.delete": text("a path in the data root").optional(),
  "kv.get": z.union([
    text("a key or namespace/key"),
    map({ namespace: text("a namespace").optional(), key: text("a key") }),
  ])
    .optional(),
  "kv.set": z.union([
    text("a key or namespace/key"),
    map({ namespace: text("a namespace").optional(), key: text("a key") }),
  ])
    .optional(),
  "kv.delete": z.union([
    text("a key or namespace/key"),
    map({ namespace: text("a namespace").optional(), key: text("a key") }),
  ]).optional(),
  "http.request": text("an absolute URL").optional(),
  "env.get": text("a variable name").optional(),
  "log.write": z.union([
    z.null(),
    text("a level"),
    map({ level: text("a level").optional(), message: z.string().optional(), bytes: z.int().min(0).optional() }),
  ], expect("nothing, a level or {level, message, bytes}")).optional(),
  "clock.now": maybeNull.optional(),
  "random.get": z.union([z.null(), z.int().min(0), map({ bytes: z.int().min(0) })], expect("nothing or a byte count"))
    .optional(),
  method: text("an HTTP method").optional(),
  ip: text("the IP address the host name resolved to").optional(),
  hop: z.int(expect("a redirect count")).min(0).optional(),
  caller: z.string(expect("a client id")).optional(),
};

const requestSchema = z.object(REQUEST_FIELDS);
/** A request as parsed from YAML (not yet checked for consistency). */
export type RequestSpec = z.output<typeof requestSchema>;

/** A problem with a request: what is wrong and the key it concerns (for its line). */
export interface SpecProblem {
  /** What is wrong. */
  message: string;
  /** The key it is about, when one. */
  key?: string;
}

const CEDAR_KEYS = ["principal", "action", "resource", "context", "entities"] as const;
const HOST_KEYS = ["plugin", ...HOST_CALLS, "method", "ip", "hop", "caller"] as const;

/**
 * Checks that a request is one form or the other, complete, with values that make sense.
 * @returns The first problem, or undefined.
 */
export function checkRequestSpec(spec: RequestSpec): SpecProblem | undefined {
  const given = (keys: readonly string[]) => keys.filter((k) => (spec as Record<string, unknown>)[k] !== undefined);
  const cedar = given(CEDAR_KEYS);
  const host = given(HOST_KEYS);
  if (cedar.length > 0 && host.length > 0) {
    return {
      message: `mixes a Cedar request (${cedar.join(", ")}) with a host call (${
        host.join(", ")
      }): write one or the other`,
      key: host[0]!,
    };
  }
  if (cedar.length > 0) {
    for (const key of ["principal", "action", "resource"] as const) {
      if (spec[key] === undefined) return { message: `a Cedar request needs "${key}"` };
    }
    for (const [key, value] of [["principal", spec.principal], ["resource", spec.resource]] as const) {
      try {
        toEntity(value!);
      } catch (error) {
        return { message: (error as Error).message, key };
      }
    }
    try {
      actionId(spec.action!);
    } catch (error) {
      return { message: (error as Error).message, key: "action" };
    }
    for (const [index, item] of (spec.entities ?? []).entries()) {
      try {
        parseEntityJson(item);
      } catch (error) {
        return { message: `entity ${index + 1}: ${(error as Error).message}`, key: "entities" };
      }
    }
    return undefined;
  }
  if (spec.plugin === undefined) {
    return {
      message: `needs a host call (plugin: <name> and one of ${HOST_CALLS.join(", ")}) ` +
        `or a Cedar request (principal, action, resource)`,
    };
  }
  try {
    checkPluginName(typeof spec.plugin === "string" ? spec.plugin : spec.plugin.name);
  } catch (error) {
    return { message: (error as Error).message, key: "plugin" };
  }
  const calls = given(HOST_CALLS) as HostCall[];
  if (calls.length !== 1) {
    return {
      message: calls.length === 0
        ? `a host call needs one of ${HOST_CALLS.join(", ")}`
        : `a host call makes one call, got ${calls.join(" and ")}`,
      ...(calls[1] ? { key: calls[1] } : {}),
    };
  }
  for (const key of ["method", "ip", "hop"] as const) {
    if (spec[key] !== undefined && calls[0] !== "http.request") {
      return { message: `"${key}" belongs to an http.request call, not ${calls[0]}`, key };
    }
  }
  if (spec.ip !== undefined && parseIpAddress(spec.ip) === undefined) {
    return { message: `"ip" expected an IP address, got ${show(spec.ip)}`, key: "ip" };
  }
  return undefined;
}

/** The host call a checked request makes, when it is one. */
export function hostCallOf(spec: RequestSpec): HostCall | undefined {
  return HOST_CALLS.find((call) => spec[call] !== undefined);
}

/** One Cedar request a case makes; an HTTP call makes one per phase. */
export interface BuiltRequest {
  /** `name` or `address` for an HTTP call. */
  phase?: "name" | "address";
  /** The request. */
  request: AuthorizationRequest;
}

/** What a case asks the engine: its Cedar requests, or the reason keycard refuses it before any policy. */
export type BuiltRequests = { requests: BuiltRequest[]; note?: string } | { refused: string };

/** Known plugins' principals: version and sha256 from the installed or configured manifest. */
export type KnownPlugins = ReadonlyMap<string, { version: string; sha256: string }>;

/**
 * Turns a checked request into the Cedar requests keycard would decide.
 * @param spec A request that passed {@linkcode checkRequestSpec}.
 * @param engine The engine (an HTTP address is `named` by its policies).
 * @param plugins The plugins in force, for their version and sha256.
 */
export function buildRequests(spec: RequestSpec, engine: PolicyEngine, plugins: KnownPlugins): BuiltRequests {
  if (spec.plugin === undefined) return { requests: [{ request: cedarRequest(spec, plugins) }] };
  const written = typeof spec.plugin === "string" ? { name: spec.plugin } : spec.plugin;
  const known = plugins.get(written.name);
  const principal: PluginPrincipal = {
    name: written.name,
    version: written.version ?? known?.version ?? "0.0.0",
    sha256: written.sha256 ?? known?.sha256 ?? "",
    ...(written.tenant === undefined ? {} : { tenant: written.tenant }),
  };
  const plugin = pluginEntity(principal);
  const call = hostCallOf(spec)!;
  const base = { caller: spec.caller ?? "" };
  const one = (action: string, resource: Entity, extra: Record<string, unknown> = {}): BuiltRequests => ({
    requests: [{ request: { principal: plugin, action, resource, context: { ...base, ...extra } } }],
  });
  const refused = (why: string): BuiltRequests => ({ refused: `refused before policy evaluation: ${why}` });
  switch (call) {
    case "fs.read":
    case "fs.write":
    case "fs.list":
    case "fs.delete": {
      let path: string;
      try {
        path = normalizeDataPath(spec[call]!);
      } catch (error) {
        return refused((error as Error).message);
      }
      return one(call, pathEntity(path, call === "fs.list" ? "Dir" : "File"));
    }
    case "kv.get":
    case "kv.set":
    case "kv.delete": {
      const value = spec[call]!;
      try {
        const target = typeof value === "string"
          ? kvTarget(written.name, value)
          : kvTarget(written.name, value.key, value.namespace);
        return one(call, target.entity);
      } catch (error) {
        if (error instanceof HostCallError) return refused(error.message);
        throw error;
      }
    }
    case "env.get": {
      const name = spec[call]!;
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
        return refused(`Variable name ${JSON.stringify(name)} is not valid`);
      }
      return one(call, envVarEntity(written.name, name));
    }
    case "log.write": {
      const value = spec[call];
      const options = typeof value === "string" ? { level: value } : value ?? {};
      const level = options.level ?? "info";
      if (!["trace", "debug", "info", "warn", "error"].includes(level)) {
        return refused(`Log level ${JSON.stringify(level)} is not one of trace, debug, info, warn, error`);
      }
      const bytes = options.bytes ?? new TextEncoder().encode(options.message ?? "").length;
      return one(call, runtimeEntity("log"), { level, bytes });
    }
    case "clock.now":
      return one(call, runtimeEntity("clock"));
    case "random.get":
      return one(call, runtimeEntity("random"));
    case "http.request":
      return httpRequests(spec, engine, written.name, plugin, base);
  }
}

/** The hop's requests as authorizedFetch decides them: a name by name then by address, an address once. */
function httpRequests(
  spec: RequestSpec,
  engine: PolicyEngine,
  plugin: string,
  principal: Entity,
  base: { caller: string },
): BuiltRequests {
  let target: HttpTarget;
  try {
    target = httpTarget(spec["http.request"]!, spec.method, spec.hop ?? 0);
  } catch (error) {
    if (error instanceof HostCallError) return { refused: `refused before policy evaluation: ${error.message}` };
    throw error;
  }
  const context = { ...base, method: target.method, path: target.path, hop: target.hop };
  const request = (ip: string | undefined): AuthorizationRequest => ({
    principal,
    action: "http.request",
    resource: httpResource(engine, plugin, { ...target, ip }),
    context,
  });
  // A host written as an address is decided once, by address (target.host is then its canonical form).
  const literal = isIpLiteral(target.host) ? target.host : undefined;
  if (literal) return { requests: [{ phase: "address", request: request(literal) }] };
  const requests: BuiltRequest[] = [{ phase: "name", request: request(undefined) }];
  if (spec.ip === undefined) return { requests, note: "decided by name only: give ip: to decide the address too" };
  requests.push({ phase: "address", request: request(parseIpAddress(spec.ip)!.address) });
  return { requests };
}

/** A Cedar-form request, with keycard's entities filled in where only a uid was given. */
function cedarRequest(spec: RequestSpec, plugins: KnownPlugins): AuthorizationRequest {
  const entities = (spec.entities ?? []).map(parseEntityJson);
  const principal = completed(withEntities(toEntity(spec.principal!), entities), plugins);
  const resource = completed(withEntities(toEntity(spec.resource!), entities), plugins);
  const context = { ...(principal.uid.type === "Plugin" ? { caller: "" } : {}), ...spec.context };
  return { principal, action: actionId(spec.action!), resource, context };
}

/**
 * A run-tests (Cedar CLI) request, as is: the principal and resource from the entities, each with every
 * ancestor listed directly (keycard's engine reads the hierarchy from the request's two entities).
 */
export function cedarJsonRequest(
  request: { principal: string; action: string; resource: string; context: Record<string, unknown> },
  entities: readonly Entity[],
): AuthorizationRequest {
  return {
    principal: withEntities(toEntity(request.principal), entities),
    action: actionId(request.action),
    resource: withEntities(toEntity(request.resource), entities),
    context: request.context,
  };
}

/** An entity from `Type::"id"` or a map. */
export function toEntity(value: string | { type: string; id: string; attrs?: unknown; parents?: unknown }): Entity {
  if (typeof value === "string") return { uid: parseUid(value), attrs: {}, parents: [] };
  return {
    uid: { type: value.type, id: value.id },
    attrs: (value.attrs ?? {}) as Record<string, unknown>,
    parents: ((value.parents ?? []) as (string | EntityUid)[]).map((p) => typeof p === "string" ? parseUid(p) : p),
  };
}

/** `Type::"id"` as a uid. */
export function parseUid(text: string): EntityUid {
  const match = UID_TEXT.exec(text.trim());
  if (!match) throw new SyntaxError(`Cannot read entity ${show(text)}: expected Type::"id", e.g. Plugin::"stamp"`);
  let id: string;
  try {
    id = JSON.parse(match[2]!);
  } catch {
    throw new SyntaxError(`Cannot read entity ${show(text)}: the id is not a valid string`);
  }
  return { type: match[1]!, id };
}

/** `fs.read` or `Action::"fs.read"` as the action id. */
export function actionId(text: string): string {
  if (!text.includes("::")) return text;
  const uid = parseUid(text);
  if (uid.type !== "Action") throw new SyntaxError(`Cannot read action ${show(text)}: expected Action::"<id>"`);
  return uid.id;
}

/** An entity in Cedar's JSON entity format: `{uid, attrs, parents}`, uids as `{type, id}` or `{__entity: ...}`. */
export function parseEntityJson(value: unknown): Entity {
  const record = value as Record<string, unknown> | null;
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new TypeError(`expected an entity {uid, attrs, parents}, got ${show(value)}`);
  }
  const uid = jsonUid(record.uid, "uid");
  const attrs = record.attrs ?? {};
  if (typeof attrs !== "object" || attrs === null || Array.isArray(attrs)) {
    throw new TypeError(`"attrs" of ${uid.type}::${JSON.stringify(uid.id)} expected a map, got ${show(attrs)}`);
  }
  const parents = record.parents ?? [];
  if (!Array.isArray(parents)) {
    throw new TypeError(`"parents" of ${uid.type}::${JSON.stringify(uid.id)} expected a list, got ${show(parents)}`);
  }
  return { uid, attrs: attrs as Record<string, unknown>, parents: parents.map((p) => jsonUid(p, "parents")) };
}

function jsonUid(value: unknown, field: string): EntityUid {
  const record = value as Record<string, unknown> | null;
  const inner = (record?.__entity ?? record) as Record<string, unknown> | null | undefined;
  if (typeof inner?.type !== "string" || typeof inner.id !== "string") {
    throw new TypeError(`"${field}" expected an entity reference {type, id}, got ${show(value)}`);
  }
  return { type: inner.type, id: inner.id };
}

/** The entity with what the entities list says of it, and every ancestor the list reaches as a direct parent. */
function withEntities(entity: Entity, entities: readonly Entity[]): Entity {
  const key = (uid: EntityUid) => `${uid.type}::${JSON.stringify(uid.id)}`;
  const byKey = new Map(entities.map((e) => [key(e.uid), e]));
  const listed = byKey.get(key(entity.uid));
  const attrs = { ...listed?.attrs, ...entity.attrs };
  const seen = new Map<string, EntityUid>();
  const queue = [...entity.parents, ...(listed?.parents ?? [])];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    if (seen.has(key(parent))) continue;
    seen.set(key(parent), parent);
    queue.push(...(byKey.get(key(parent))?.parents ?? []));
  }
  return { uid: entity.uid, attrs, parents: [...seen.values()] };
}

/** keycard's own entities where a test gave only the uid: a plugin's attributes, a path's or key's ancestors. */
function completed(entity: Entity, plugins: KnownPlugins): Entity {
  const bare = Object.keys(entity.attrs).length === 0 && entity.parents.length === 0;
  if (!bare) return entity;
  const { type, id } = entity.uid;
  if (type === "Plugin") {
    const known = plugins.get(id);
    return pluginEntity({ name: id, version: known?.version ?? "0.0.0", sha256: known?.sha256 ?? "" });
  }
  if ((type === "File" || type === "Dir") && id.startsWith("/")) {
    try {
      return pathEntity(normalizeDataPath(id), type);
    } catch {
      return entity;
    }
  }
  if (type === "Key") {
    const parts = id.split("/");
    if (parts.length >= 3) return keyEntity(parts[0]!, parts[1]!, parts.slice(2).join("/"));
  }
  return entity;
}

/** What a case's requests decided, as one outcome. */
export interface RequestOutcome {
  /** The decision: the first deny, else allow. */
  decision: "allow" | "deny";
  /** The deciding policies: the forbids of the deny, or the permits of every phase of an allow. */
  policies: string[];
  /** Evaluation errors of every phase decided. */
  errors: string[];
  /** `permitted by ...`, `forbidden by ...`, `denied by default`, or why keycard refused it before any policy. */
  reason: string;
  /** The HTTP phase that decided (`name` or `address`), when the call is an HTTP one. */
  phase?: "name" | "address";
  /** The requests decided, in order. */
  requests: AuthorizationRequest[];
  /** The policies that decided any phase, for coverage. */
  deciding: string[];
  /** A note on what was not decided (an HTTP name without `ip`). */
  note?: string;
}

/**
 * Decides built requests the way the host does: phase by phase, stopping at the first deny.
 * @param engine The engine.
 * @param built What {@linkcode buildRequests} returned.
 */
export function decideRequests(engine: PolicyEngine, built: BuiltRequests): RequestOutcome {
  if ("refused" in built) {
    return { decision: "deny", policies: [], errors: [], reason: built.refused, requests: [], deciding: [] };
  }
  const decided: { phase?: "name" | "address"; decision: Decision }[] = [];
  for (const { phase, request } of built.requests) {
    const decision = engine.authorize(request);
    decided.push({ ...(phase ? { phase } : {}), decision });
    if (decision.decision === "deny") break;
  }
  const last = decided.at(-1)!;
  const deciding = [...new Set(decided.flatMap((d) => d.decision.policies))].sort();
  const allowed = last.decision.decision === "allow";
  const policies = allowed ? deciding : last.decision.policies;
  return {
    decision: last.decision.decision,
    policies,
    errors: decided.flatMap((d) => d.decision.errors),
    reason: allowed && decided.length > 1 ? `permitted by ${policies.join(", ")}` : last.decision.reason,
    ...(last.phase ? { phase: last.phase } : {}),
    requests: built.requests.slice(0, decided.length).map((r) => r.request),
    deciding,
    ...(built.note && allowed ? { note: built.note } : {}),
  };
}
