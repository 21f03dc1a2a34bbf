// Cedar entities for principals and resources, built the same way for every
// request so that decisions (and the decision cache) are consistent.
import { ancestors } from "./data_path.ts";
import { parseIpAddress } from "./parse_ip_address.ts";
import { BuiltEntity } from "./_entity_slot.ts";
import { GenerationalCache } from "./_generational_cache.ts";

/** A Cedar entity reference. */
export interface EntityUid {
  /** The entity type in keycard's schema: `Plugin`, `File`, `Dir`, `Host`, `Key`, ... */
  type: string;
  /** The id within its type, such as a plugin name or a data-root path. */
  id: string;
}

/** A Cedar entity in cedar-wasm's JSON shape. */
export interface Entity {
  /** Which entity this is. */
  uid: EntityUid;
  /** Attributes that policies read as `principal.<name>` or `resource.<name>`. */
  attrs: Record<string, unknown>;
  /** The entities it is `in`, such as every ancestor `Dir` of a `File`. */
  parents: EntityUid[];
}

/** What a plugin principal carries. */
export interface PluginPrincipal {
  /** The plugin's name; the entity's id. */
  name: string;
  /** The plugin's version, from its manifest. */
  version: string;
  /** Hex SHA-256 of the plugin's `.wasm` module. */
  sha256: string;
  /** The tenant that owns the plugin; Cedar sees `""` when there is none. */
  tenant?: string;
}

/** Whether a host string is an IPv4 (dotted decimal) or IPv6 address literal, with or without brackets. */
export function isIpLiteral(host: string): boolean {
  return parseIpAddress(host) !== undefined;
}

/** The id of a `Host` entity: `name:port`, IPv6 in brackets. */
export function hostId(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The `Plugin` principal entity.
 * @example
 * ```ts
 * import { pluginEntity } from "./resources.ts";
 * pluginEntity({ name: "x", version: "1.0.0", sha256: "ab" }).uid; // { type: "Plugin", id: "x" }
 * ```
 */
export function pluginEntity(plugin: PluginPrincipal): Entity {
  const tenant = plugin.tenant ?? "";
  const known = pluginEntities.get(plugin);
  if (
    known && known.attrs.name === plugin.name && known.attrs.version === plugin.version &&
    known.attrs.sha256 === plugin.sha256 && known.attrs.tenant === tenant
  ) return known;
  // Frozen and the same object for every host call of a plugin: the engine keys and checks it once.
  const entity: Entity = new BuiltEntity(
    { type: "Plugin", id: plugin.name },
    { name: plugin.name, version: plugin.version, sha256: plugin.sha256, tenant },
    [],
  );
  pluginEntities.set(plugin, entity);
  return entity;
}

/** The entity of each plugin principal object, while that object lives. */
const pluginEntities = new WeakMap<PluginPrincipal, Entity>();

/** The `Client` principal entity of an API caller. */
export function clientEntity(client: { id: string; roles: readonly string[]; tenant?: string }): Entity {
  return {
    uid: { type: "Client", id: client.id },
    attrs: { roles: [...client.roles], tenant: client.tenant ?? "" },
    parents: [],
  };
}

/**
 * A `File` or `Dir` entity for a normalized data-root path, listing every
 * ancestor `Dir` directly as a parent (deep parent chains are slow in
 * cedar-wasm; a flat list is not). Frozen, and the same object for the same
 * path while it is recently used: a repeated host call on one path is a
 * decision-cache hit at its first comparison.
 */
export function pathEntity(path: string, kind: "File" | "Dir"): Entity {
  return interned(kind, path, () => ancestors(path).map((id) => ({ type: "Dir", id })));
}

/** Entities whose attributes and parents follow from their uid alone, frozen and shared. */
const uidEntities = new GenerationalCache<Entity>(8192);
// (Host entities share it, keyed by everything their attributes follow from.)
const NO_ATTRS: Record<string, unknown> = Object.freeze({});

function interned(type: string, id: string, parents: () => EntityUid[]): Entity {
  const key = `${type}\u0000${id}`;
  let entity = uidEntities.get(key);
  if (entity === undefined) {
    entity = new BuiltEntity({ type, id }, NO_ATTRS, parents());
    uidEntities.set(key, entity);
  }
  return entity;
}

/**
 * A `Host` entity: where an HTTP request goes and, once decided by address,
 * the address it connects to.
 *
 * An HTTP hop is decided in two phases. By name: `ip` is absent (nothing has
 * been resolved, so a name no policy permits never reaches DNS). By address:
 * `ip` is the canonical address connected to and `ipv4` the IPv4 address it
 * reaches (itself, or the one an IPv6 address embeds: see
 * {@linkcode parseIpAddress}), so base.cedar's forbids see every form of a
 * private address. A host written as an address is decided once, by address.
 *
 * @param target Host name (an address in canonical form when the URL gave
 * one), port, scheme and, in the address phase, the address.
 * @param named Whether this principal's policies name this exact address
 * (`Host::"10.0.0.5:8443"`), which lifts base.cedar's private-address forbid.
 * @returns The entity, its id `name:port` (IPv6 in brackets).
 * @throws {TypeError} When `ip` is given but is not an IP address.
 *
 * @example A name, then the address it resolved to
 * ```ts
 * import { hostEntity } from "./resources.ts";
 * import assert from "node:assert/strict";
 *
 * const target = { host: "api.example.com", port: 443, scheme: "https" };
 * assert.equal("ip" in hostEntity(target, false).attrs, false);
 * const resolved = hostEntity({ ...target, ip: "64:ff9b::10.0.0.1" }, false);
 * assert.deepEqual(resolved.attrs.ipv4, { __extn: { fn: "ip", arg: "10.0.0.1" } });
 * ```
 */
export function hostEntity(
  target: { host: string; port: number; scheme: string; ip?: string | undefined },
  named: boolean,
): Entity {
  const id = hostId(target.host, target.port);
  // Shared like the others: its attributes follow from the target, the address and `named`.
  const key = `Host\u0000${id}\u0000${target.host}\u0000${target.scheme}\u0000${named}\u0000${target.ip ?? ""}`;
  const known = uidEntities.get(key);
  if (known !== undefined) return known;
  const attrs: Record<string, unknown> = { name: target.host, port: target.port, scheme: target.scheme, named };
  if (target.ip !== undefined) {
    const parsed = parseIpAddress(target.ip);
    if (!parsed) {
      throw new TypeError(`Cannot build Host::"${target.host}": ${JSON.stringify(target.ip)} is not an IP address`);
    }
    attrs.ip = ipValue(parsed.address);
    if (parsed.ipv4 !== undefined) attrs.ipv4 = ipValue(parsed.ipv4);
  }
  const entity = new BuiltEntity({ type: "Host", id }, attrs, []);
  uidEntities.set(key, entity);
  return entity;
}

/** An `ip` extension value in Cedar's JSON, frozen. */
function ipValue(address: string): unknown {
  return Object.freeze({ __extn: Object.freeze({ fn: "ip", arg: address }) });
}

/** A `Key` entity in its plugin's `Namespace`. */
export function keyEntity(plugin: string, namespace: string, key: string): Entity {
  return interned("Key", `${plugin}/${namespace}/${key}`, () => [{ type: "Namespace", id: `${plugin}/${namespace}` }]);
}

/** An `EnvVar` entity: a configuration variable of one plugin. */
export function envVarEntity(plugin: string, name: string): Entity {
  return interned("EnvVar", `${plugin}/${name}`, () => []);
}

/** A `Runtime` service entity: `clock`, `random` or `log`. */
export function runtimeEntity(service: "clock" | "random" | "log"): Entity {
  return interned("Runtime", service, () => []);
}
