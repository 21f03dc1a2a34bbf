// Cedar entities for principals and resources, built the same way for every
// request so that decisions (and the decision cache) are consistent.
import { ancestors } from "./data_path.ts";

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

/** Whether a host string is an IPv4 or IPv6 address literal (IPv6 without brackets). */
export function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || (host.includes(":") && /^[0-9a-f:.]+$/i.test(host));
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
  return {
    uid: { type: "Plugin", id: plugin.name },
    attrs: { name: plugin.name, version: plugin.version, sha256: plugin.sha256, tenant: plugin.tenant ?? "" },
    parents: [],
  };
}

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
 * cedar-wasm; a flat list is not).
 */
export function pathEntity(path: string, kind: "File" | "Dir"): Entity {
  return { uid: { type: kind, id: path }, attrs: {}, parents: ancestors(path).map((id) => ({ type: "Dir", id })) };
}

/** A `Host` entity: where an HTTP request goes and the address it connects to. */
export function hostEntity(
  target: { host: string; port: number; scheme: string; ip: string },
  named: boolean,
): Entity {
  return {
    uid: { type: "Host", id: hostId(target.host, target.port) },
    attrs: {
      name: target.host,
      port: target.port,
      scheme: target.scheme,
      ip: { __extn: { fn: "ip", arg: target.ip } },
      named,
    },
    parents: [],
  };
}

/** A `Key` entity in its plugin's `Namespace`. */
export function keyEntity(plugin: string, namespace: string, key: string): Entity {
  return {
    uid: { type: "Key", id: `${plugin}/${namespace}/${key}` },
    attrs: {},
    parents: [{ type: "Namespace", id: `${plugin}/${namespace}` }],
  };
}

/** An `EnvVar` entity: a configuration variable of one plugin. */
export function envVarEntity(plugin: string, name: string): Entity {
  return { uid: { type: "EnvVar", id: `${plugin}/${name}` }, attrs: {}, parents: [] };
}

/** A `Runtime` service entity: `clock`, `random` or `log`. */
export function runtimeEntity(service: "clock" | "random" | "log"): Entity {
  return { uid: { type: "Runtime", id: service }, attrs: {}, parents: [] };
}
