import { normalizeDataPath } from "./data_path.ts";
import { GrantError } from "./errors.ts";
import { type Grant, GrantBuilder } from "./grant.ts";
import { parseIpAddress } from "./parse_ip_address.ts";
import { hostId } from "./resources.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
/** A host name as a grant may write it (Unicode allowed: it becomes punycode), or an IPv6 address. */
const HOST = /^(\*\.)?[^\s/?#@:\\[\]%*]{1,253}$|^\[?[0-9a-f:.]+\]?$/;
/** A host name after WHATWG host parsing. */
const NAME_HOST = /^[a-z0-9.-]{1,253}$/;

/**
 * A grant's host as requests will see it: WHATWG host parsing, as for URLs
 * (`127.1` and `0x7f.1` are `127.0.0.1`, `Bücher.example` is
 * `xn--bcher-kva.example`), then addresses in canonical form.
 */
function grantHost(host: string): { address: string } | { name: string } | undefined {
  const direct = parseIpAddress(host);
  if (direct) return { address: direct.address };
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  const address = parseIpAddress(hostname);
  if (address) return { address: address.address };
  return NAME_HOST.test(hostname) ? { name: hostname } : undefined;
}

/**
 * Compiles a plugin's grants to Cedar: one `permit` per grant, annotated
 * `@id("grant.<plugin>.<n>")`, scoped to `principal == Plugin::"<plugin>"`.
 * Directory grants become `resource in Dir::"/..."` (entity hierarchy, never
 * string prefixes), so a grant for `/data/x` cannot match `/data/xy`.
 *
 * Paths are inside the data root: `./data/certs`, `data/certs` and
 * `/data/certs` all mean `<data root>/data/certs`, and become `Dir::"/data/certs"`.
 *
 * @param plugin The plugin's name.
 * @param grants Manifest entries (`{ "fs.read": { dir } }`) or builders.
 * @returns Cedar policy text (empty for no grants: deny by default).
 * @throws {GrantError} On an unknown kind or a missing or malformed option,
 * naming the grant's position.
 *
 * @example Compile two grants
 * ```ts
 * import { compileGrants } from "./compile_grants.ts";
 * import { grant } from "./grant.ts";
 * const cedar = compileGrants("deployer", [
 *   { "fs.read": { dir: "./data/certs" } },
 *   grant("http.request").host("api.example.com").methods("GET", "POST"),
 * ]);
 * cedar.includes('resource in Dir::"/data/certs"'); // true
 * ```
 */
export function compileGrants(plugin: string, grants: readonly (Grant | GrantBuilder)[]): string {
  if (!NAME.test(plugin)) {
    throw new GrantError(`Plugin name ${JSON.stringify(plugin)} must be 1-128 letters, digits, "_", "." or "-"`, {
      plugin,
      index: -1,
    });
  }
  const principal = `principal == Plugin::${JSON.stringify(plugin)}`;
  return grants.map((entry, index) => {
    const fail = (message: string): never => {
      throw new GrantError(`Grant ${index + 1} of plugin "${plugin}": ${message}`, { plugin, index });
    };
    const raw = entry instanceof GrantBuilder ? entry.toGrant() : entry;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return fail(`expected a map with one grant kind, got ${JSON.stringify(raw)}`);
    }
    const keys = Object.keys(raw);
    if (keys.length !== 1) return fail(`expected exactly one grant kind, got ${JSON.stringify(keys)}`);
    const kind = keys[0]!;
    const value = (raw as Record<string, unknown>)[kind];
    const options = (value ?? {}) as Record<string, unknown>;
    if (typeof options !== "object" || Array.isArray(options)) {
      return fail(`options of "${kind}" must be a map, got ${JSON.stringify(value)}`);
    }
    const text = (name: string): string => {
      const v = options[name];
      if (typeof v !== "string" || v === "") return fail(`"${kind}" needs "${name}" as a non-empty string`);
      return v;
    };
    const list = (name: string, pattern: RegExp, required: boolean): string[] | undefined => {
      const v = options[name];
      if (v === undefined && !required) return undefined;
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string" && pattern.test(x))) {
        return fail(`"${kind}" needs "${name}" as a list of values matching ${pattern}, got ${JSON.stringify(v)}`);
      }
      return v as string[];
    };
    const id = `@id(${JSON.stringify(`grant.${plugin}.${index + 1}`)})\n`;
    const permit = (action: string, resource: string, when?: string) =>
      `${id}permit (\n  ${principal},\n  ${action},\n  ${resource}\n)${when ? `\nwhen { ${when} }` : ""};`;
    switch (kind) {
      case "fs.read":
      case "fs.write":
      case "fs.list":
      case "fs.delete": {
        let dir: string;
        try {
          dir = normalizeDataPath(text("dir"));
        } catch (error) {
          return fail((error as Error).message);
        }
        return permit(`action == Action::"${kind}"`, `resource in Dir::${JSON.stringify(dir)}`);
      }
      case "http.request": {
        const written = text("host").toLowerCase();
        const wildcard = written.startsWith("*.");
        const parsed = HOST.test(written) ? grantHost(wildcard ? written.slice(2) : written) : undefined;
        if (!parsed) return fail(`"host" ${JSON.stringify(written)} is not a host name or address`);
        if (wildcard && "address" in parsed) return fail(`"host" ${JSON.stringify(written)}: "*." needs a name`);
        const scheme = options.scheme;
        if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
          return fail(`"scheme" must be "http" or "https", got ${JSON.stringify(scheme)}`);
        }
        const port = options.port;
        if (port !== undefined && (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)) {
          return fail(`"port" must be an integer 1-65535, got ${JSON.stringify(port)}`);
        }
        const methods = list("methods", /^[A-Za-z]+$/, false)?.map((m) => m.toUpperCase());
        const unknown = methods?.find((m) => !METHODS.has(m));
        if (unknown) return fail(`unknown HTTP method ${JSON.stringify(unknown)}`);
        const conditions: string[] = [];
        let resource = "resource";
        if ("address" in parsed) {
          // An address is named exactly, so base.cedar's private-range forbids let it through (for this plugin).
          const effectivePort = (port as number | undefined) ?? (scheme === "http" ? 80 : scheme ? 443 : undefined);
          if (effectivePort === undefined) return fail(`an address grant ("${written}") needs "port" or "scheme"`);
          resource = `resource == Host::${JSON.stringify(hostId(parsed.address, effectivePort))}`;
        } else {
          conditions.push(
            wildcard
              ? `resource.name like ${JSON.stringify(`*.${parsed.name}`)}`
              : `resource.name == ${JSON.stringify(parsed.name)}`,
          );
          if (port !== undefined) conditions.push(`resource.port == ${port}`);
        }
        if (scheme !== undefined) conditions.push(`resource.scheme == ${JSON.stringify(scheme)}`);
        if (methods) conditions.push(`${JSON.stringify(methods)}.contains(context.method)`);
        return permit(`action == Action::"http.request"`, resource, conditions.join(" && ") || undefined);
      }
      case "kv":
      case "kv.get":
      case "kv.set":
      case "kv.delete": {
        const namespace = text("namespace");
        if (!NAME.test(namespace)) return fail(`"namespace" ${JSON.stringify(namespace)} is not a valid name`);
        const actions = kind === "kv"
          ? list("actions", /^(get|set|delete)$/, false) ?? ["get", "set", "delete"]
          : [kind.slice(3)];
        const action = `action in [${actions.map((a) => `Action::"kv.${a}"`).join(", ")}]`;
        return permit(action, `resource in Namespace::${JSON.stringify(`${plugin}/${namespace}`)}`);
      }
      case "env.get": {
        const names = list("names", /^[A-Za-z_][A-Za-z0-9_]{0,127}$/, true)!;
        const set = names.map((n) => `EnvVar::${JSON.stringify(`${plugin}/${n}`)}`).join(", ");
        return permit(`action == Action::"env.get"`, "resource", `[${set}].contains(resource)`);
      }
      case "log.write":
      case "clock.now":
      case "random.get": {
        const service = kind.split(".")[0]!;
        return permit(`action == Action::"${kind}"`, `resource == Runtime::${JSON.stringify(service)}`);
      }
      default:
        return fail(`unknown kind ${JSON.stringify(kind)}`);
    }
  }).join("\n\n");
}
