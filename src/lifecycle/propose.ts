import YAML from "yaml";
import type { FootprintEntry } from "../conformance/mod.ts";
import {
  type AuthorizationRequest,
  compileGrants,
  type Entity,
  envVarEntity,
  type Grant,
  hostEntity,
  isIpLiteral,
  keyEntity,
  normalizeDataPath,
  parentDir,
  pathEntity,
  pluginEntity,
  PolicyEngine,
  type PolicySource,
  runtimeEntity,
} from "../policy/mod.ts";
import type { Manifest } from "../registry/mod.ts";

/** A grant of the manifest that permits more than the plugin was seen to use. */
export interface GrantWarning {
  /** The grant's 1-based position in the manifest's `grants`. */
  grant: number;
  /** The grant as YAML, e.g. `fs.read: { dir: ./data }`. */
  text: string;
  /** What it permits beyond what was used, e.g. `is wider than needed: the reads it permits need only data/stamp`. */
  message: string;
}

/** An attempt no grant can permit: it is left out of the proposal. */
export interface UngrantableAttempt {
  /** The Cedar action, e.g. `"http.request"`. */
  action: string;
  /** The Cedar resource, e.g. `'Host::"10.0.0.5:8080"'`. */
  resource: string;
  /** How many times it was attempted. */
  count: number;
  /** Why, e.g. `forbidden by base.http.private-addresses`. */
  reason: string;
}

/** What {@linkcode proposeGrants} proposes. */
export interface GrantProposal {
  /** The plugin the grants are for: their Cedar principal. */
  plugin: string;
  /** The least grants that permit every grantable attempt, in manifest form. */
  grants: Grant[];
  /** The grants as a `plugin.yaml` snippet (`grants:` and one line per grant, each with what it covers). */
  yaml: string;
  /** The Cedar the grants compile to (`compileGrants`); empty for no grants. */
  cedar: string;
  /** Attempts that no grant can permit (base policies forbid them, or they were refused before any decision). */
  cannotGrant: UngrantableAttempt[];
  /** Grants of the manifest wider than what was used; empty without a manifest. */
  warnings: GrantWarning[];
}

/** Options of {@linkcode proposeGrants}. */
export interface ProposeGrantsOptions {
  /** The plugin's manifest: its grants are compared with the proposal (see {@linkcode GrantWarning}). */
  manifest?: Manifest;
  /** The Cedar schema text. @default {the text of the repository's `policies/keycard.cedarschema`} */
  schema?: string;
  /**
   * The base policies the grants are added to: an attempt they forbid is not
   * proposed (see {@linkcode GrantProposal.cannotGrant}).
   *
   * @default {the repository's `policies/base.cedar`}
   */
  policies?: readonly PolicySource[];
  /**
   * How many sibling directories of one parent (other than the data root)
   * are replaced by that parent in an `fs.*` grant. `Infinity` never merges.
   *
   * @default {4}
   */
  siblingDirs?: number;
}

const POLICIES = new URL("../../policies/", import.meta.url);
const CALLER = "conformance";
/** The order grants are proposed in: the order of the schema's actions. */
const FS_ACTIONS = ["fs.read", "fs.write", "fs.list", "fs.delete"] as const;
const KV_VERBS = ["get", "set", "delete"] as const;
const RUNTIME: Record<string, "log" | "clock" | "random"> = {
  "log.write": "log",
  "clock.now": "clock",
  "random.get": "random",
};
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const REFUSED = "refused before any policy decision (a malformed request, a path outside the data root, " +
  "or a call past the runtime's limits): no grant changes that";

/** One attempt of the footprint, read back into what a grant is made of. */
type Attempt =
  & { entry: FootprintEntry; requests: AuthorizationRequest[] }
  & (
    | { kind: "fs"; action: (typeof FS_ACTIONS)[number]; dir: string; path: string }
    | { kind: "http"; host: string; port: number; schemes: string[]; methods?: string[] }
    | { kind: "kv"; namespace: string; verb: (typeof KV_VERBS)[number] }
    | { kind: "env"; name: string }
    | { kind: "runtime"; action: string }
  );

/**
 * Proposes a plugin's least grant from its capability footprint: grants that
 * permit exactly what the plugin attempted, as a `plugin.yaml` snippet and
 * the Cedar it compiles to.
 *
 * - Files: each attempt needs the directory it is in (`fs.list`: the
 *   directory listed). Directories inside another of the set are dropped
 *   (`data/stamp/a.txt` and `data/stamp/sub/b.txt` need `data/stamp`), and
 *   `siblingDirs` or more siblings under one parent become the parent, again
 *   until nothing changes; never the data root, which is proposed only for a
 *   file directly in it. One grant per action and directory.
 * - HTTP: one grant per host, port and scheme with exactly the methods used;
 *   `port` only when it is not the scheme's default. Never a `*.` wildcard.
 * - Key-value: one grant per namespace with the actions used (`kv.get`
 *   alone, or `kv` with `actions`); configuration: one `env.get` with the
 *   names read; `log.write`, `clock.now`, `random.get` when used.
 *
 * An attempt the base policies forbid whatever the grants (an address in a
 * private range, a scheme other than http and https), or one refused before
 * any decision (`(unresolved)`), is not proposed but listed in
 * `cannotGrant`. Every other attempt is decided again against the base
 * policies and the proposal, and must be allowed. Base policies let an
 * address through when an operator's grant names it exactly: that stays the
 * operator's call, never a proposal.
 *
 * With a manifest, its grants are compared with what the attempts needed:
 * a grant never used, a directory wider than the directories used, methods,
 * key-value actions or configuration names granted but never used, a `*.`
 * host of which only some names were contacted.
 *
 * @param plugin The plugin's name: the principal of the grants.
 * @param footprint The attempts, as a conformance report lists them.
 * @param options The manifest, the schema and base policies, the sibling merge.
 * @returns The proposal.
 * @throws {RangeError} When the manifest names another plugin, or `siblingDirs` is less than 2.
 * @throws {Deno.errors.NotFound} When `schema` or `policies` is not given and the repository's cannot be read.
 * @throws {PolicyValidationError} When the schema or a base policy is invalid.
 *
 * @example Propose stamp's least grant from what it read
 * ```ts
 * import { proposeGrants } from "./propose.ts";
 * const proposal = await proposeGrants("stamp", [
 *   { action: "fs.read", resource: 'File::"/data/stamp/a.txt"', count: 1, allowed: 0, declared: true },
 *   { action: "fs.read", resource: 'File::"/data/stamp/sub/b.txt"', count: 1, allowed: 0, declared: true },
 * ]);
 * proposal.grants; // [{ "fs.read": { dir: "data/stamp" } }]
 * ```
 */
export async function proposeGrants(
  plugin: string,
  footprint: readonly FootprintEntry[],
  options: ProposeGrantsOptions = {},
): Promise<GrantProposal> {
  const { manifest } = options;
  if (manifest !== undefined && manifest.name !== plugin) {
    throw new RangeError(`Cannot propose grants for plugin "${plugin}" with the manifest of "${manifest.name}"`);
  }
  const siblingDirs = options.siblingDirs ?? 4;
  if (!(siblingDirs >= 2)) throw new RangeError(`"siblingDirs" must be at least 2, got ${siblingDirs}`);
  const { engine, base } = await _engine(options);
  const principal = pluginEntity({ name: plugin, version: manifest?.version ?? "0.0.0", sha256: "" });

  const cannotGrant: UngrantableAttempt[] = [];
  const attempts: Attempt[] = [];
  for (const entry of footprint) {
    const attempt = _attempt(plugin, principal, entry);
    if (typeof attempt === "string") {
      cannotGrant.push({ action: entry.action, resource: entry.resource, count: entry.count, reason: attempt });
      continue;
    }
    // Grants only add permits and a forbid always wins: what the base policies forbid alone, no grant opens.
    const forbidden = attempt.requests.map((r) => engine.authorize(r)).find((d) => d.policies.length > 0);
    if (forbidden) {
      cannotGrant.push({ ...pick(entry), reason: forbidden.reason });
      continue;
    }
    attempts.push(attempt);
  }

  const proposed = _grants(attempts, siblingDirs);
  const grants = proposed.map((p) => p.grant);
  const cedar = compileGrants(plugin, grants);
  const probes = attempts.flatMap((a) => a.requests);
  const decisions = engine.check([...base, { name: `grants/${plugin}.cedar`, text: cedar }], probes);
  const refused = decisions.findIndex((d) => d.decision !== "allow");
  if (refused >= 0) {
    // The grants are built to cover each attempt: a refusal here is a bug of this function, not of the input.
    const request = probes[refused]!;
    throw new Error(
      `Proposed grants for plugin "${plugin}" do not permit ${request.action} ` +
        `${request.resource.uid.type}::${JSON.stringify(request.resource.uid.id)}: ${decisions[refused]!.reason}`,
    );
  }
  return {
    plugin,
    grants,
    yaml: _yaml(plugin, proposed),
    cedar,
    cannotGrant,
    warnings: manifest === undefined || manifest.grants.length === 0
      ? []
      : _warnings(manifest, footprint, principal, engine, base, siblingDirs),
  };
}

function pick(entry: FootprintEntry): Pick<UngrantableAttempt, "action" | "resource" | "count"> {
  return { action: entry.action, resource: entry.resource, count: entry.count };
}

/** Engines by schema and base policies, validated once per process (a check changes nothing in force). */
const engines = new Map<string, Promise<{ engine: PolicyEngine; base: PolicySource[] }>>();

async function _engine(options: ProposeGrantsOptions): Promise<{ engine: PolicyEngine; base: PolicySource[] }> {
  const [schema, base] = await Promise.all([
    options.schema ?? Deno.readTextFile(new URL("keycard.cedarschema", POLICIES)),
    options.policies ??
      Deno.readTextFile(new URL("base.cedar", POLICIES)).then((text) => [{ name: "base.cedar", text }]),
  ]);
  const key = JSON.stringify([schema, base.map((p) => [p.name, p.text])]);
  let made = engines.get(key);
  if (made === undefined) {
    made = PolicyEngine.create({ schema, sources: [...base] }).then((engine) => ({ engine, base: [...base] }));
    engines.set(key, made);
    made.catch(() => engines.delete(key));
    if (engines.size > 4) engines.delete(engines.keys().next().value!);
  }
  return await made;
}

/** `Type::"id"` split, or undefined. */
function _uid(resource: string): { type: string; id: string } | undefined {
  const match = /^([A-Za-z]+)::(".*")$/.exec(resource);
  if (!match) return undefined;
  try {
    const id = JSON.parse(match[2]!);
    return typeof id === "string" ? { type: match[1]!, id } : undefined;
  } catch {
    return undefined;
  }
}

/** Reads one footprint entry back into an attempt, with the Cedar requests that stand for it; or why it cannot be. */
function _attempt(plugin: string, principal: Entity, entry: FootprintEntry): Attempt | string {
  const { action } = entry;
  if (entry.resource === "(unresolved)") return REFUSED;
  const uid = _uid(entry.resource);
  const unknown = `not a resource of ${action}: cannot propose a grant for it`;
  if (uid === undefined) return unknown;
  const request = (resource: Entity, context: Record<string, unknown> = {}): AuthorizationRequest => ({
    principal,
    action,
    resource,
    context: { caller: CALLER, ...context },
  });
  const own = (id: string): string | undefined => id.startsWith(`${plugin}/`) ? id.slice(plugin.length + 1) : undefined;

  if ((FS_ACTIONS as readonly string[]).includes(action)) {
    if (uid.type !== "File" && uid.type !== "Dir") return unknown;
    let path: string;
    try {
      path = normalizeDataPath(uid.id);
    } catch (error) {
      return `not a path in the data root: ${(error as Error).message}`;
    }
    const dir = uid.type === "Dir" ? path : parentDir(path);
    return {
      kind: "fs",
      action: action as (typeof FS_ACTIONS)[number],
      dir,
      path,
      entry,
      requests: [request(pathEntity(path, uid.type))],
    };
  }
  if (action === "http.request") {
    const match = uid.type === "Host" ? /^(?:\[([0-9a-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(uid.id) : null;
    if (!match) return unknown;
    const host = (match[1] ?? match[2])!;
    const port = Number(match[3]);
    const schemes = entry.http?.schemes ??
      (port === 443 ? ["https"] : port === 80 ? ["http"] : []);
    const methods = entry.http?.methods;
    const literal = isIpLiteral(host);
    // A name is decided first by name (no address: the conformance resolver's address says nothing of production);
    // an address once, by address, not named by any policy (naming it is the operator's call).
    const requests = (schemes.length ? schemes : ["https"]).flatMap((scheme) =>
      (methods ?? ["GET"]).map((method) =>
        request(hostEntity({ host, port, scheme, ...(literal ? { ip: host } : {}) }, false), {
          method,
          path: "/",
          hop: 0,
        })
      )
    );
    return { kind: "http", host, port, schemes, ...(methods === undefined ? {} : { methods }), entry, requests };
  }
  if (action === "kv.get" || action === "kv.set" || action === "kv.delete") {
    const rest = uid.type === "Key" ? own(uid.id) : undefined;
    const slash = rest?.indexOf("/") ?? -1;
    if (rest === undefined || slash <= 0 || !NAME.test(rest.slice(0, slash))) return unknown;
    const namespace = rest.slice(0, slash);
    return {
      kind: "kv",
      namespace,
      verb: action.slice(3) as (typeof KV_VERBS)[number],
      entry,
      requests: [request(keyEntity(plugin, namespace, rest.slice(slash + 1)))],
    };
  }
  if (action === "env.get") {
    const name = uid.type === "EnvVar" ? own(uid.id) : undefined;
    if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) return unknown;
    return { kind: "env", name, entry, requests: [request(envVarEntity(plugin, name))] };
  }
  const service = RUNTIME[action];
  if (service !== undefined) {
    if (uid.type !== "Runtime" || uid.id !== service) return unknown;
    const context = action === "log.write" ? { level: "info", bytes: 0 } : {};
    return { kind: "runtime", action, entry, requests: [request(runtimeEntity(service), context)] };
  }
  return `"${action}" is not an action a plugin grant can permit`;
}

/** One proposed grant and the attempts it covers, for the snippet's comments. */
interface Proposed {
  grant: Grant;
  covers: FootprintEntry[];
}

/**
 * The narrowest directories covering `dirs`: those inside another dropped,
 * then, deepest parent first, every parent (not the root) with `siblingDirs`
 * or more children leading to the set in place of what is below it.
 */
function _collapseDirs(dirs: Iterable<string>, siblingDirs: number): string[] {
  let set = _outermost(new Set(dirs));
  for (;;) {
    // Each ancestor (not the root) and the children of it that lead to a directory of the set.
    const children = new Map<string, Set<string>>();
    for (const dir of set) {
      for (let child = dir, parent = parentDir(dir); parent !== "/"; child = parent, parent = parentDir(parent)) {
        children.set(parent, (children.get(parent) ?? new Set()).add(child));
      }
    }
    const parents = [...children].filter(([, below]) => below.size >= siblingDirs).map(([parent]) => parent);
    if (parents.length === 0) return [...set].sort();
    const deepest = parents.reduce((a, b) => (b.split("/").length > a.split("/").length ? b : a));
    set = _outermost(new Set([...set, deepest]));
  }
}

/** Drops every directory inside another of the set. */
function _outermost(dirs: Set<string>): Set<string> {
  return new Set([...dirs].filter((dir) => ![...dirs].some((other) => other !== dir && _under(dir, other))));
}

/** Whether `path` is `dir` or below it. */
function _under(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/** How a data-root directory is written in a grant: `data/stamp`, or `/` for the root. */
function _dirText(dir: string): string {
  return dir === "/" ? "/" : dir.slice(1);
}

function _grants(attempts: readonly Attempt[], siblingDirs: number): Proposed[] {
  const out: Proposed[] = [];
  for (const action of FS_ACTIONS) {
    const mine = attempts.filter((a): a is Attempt & { kind: "fs" } => a.kind === "fs" && a.action === action);
    for (const dir of _collapseDirs(mine.map((a) => a.dir), siblingDirs)) {
      const covers = mine.filter((a) => _under(a.dir, dir)).map((a) => a.entry);
      out.push({ grant: { [action]: { dir: _dirText(dir) } } as Grant, covers });
    }
  }
  // One grant per host, port and scheme (an unknown scheme: any), with the methods used.
  const hosts = new Map<string, HostGrant>();
  for (const attempt of attempts) {
    if (attempt.kind !== "http") continue;
    for (const scheme of attempt.schemes.length > 0 ? attempt.schemes : [undefined]) {
      const key = JSON.stringify([attempt.host, attempt.port, scheme ?? null]);
      const known: HostGrant = hosts.get(key) ??
        { host: attempt.host, port: attempt.port, scheme, methods: new Set(), anyMethod: false, covers: [] };
      hosts.set(key, known);
      known.covers.push(attempt.entry);
      // Without the methods of an attempt (a footprint from before they were recorded): every method.
      if (attempt.methods === undefined) known.anyMethod = true;
      else for (const method of attempt.methods) known.methods.add(method);
    }
  }
  for (const { host, port, scheme, methods, anyMethod, covers } of [...hosts.values()].sort(_byHost)) {
    const options: Record<string, unknown> = { host };
    if (scheme === undefined || DEFAULT_PORTS[scheme] !== port) options.port = port;
    if (scheme !== undefined) options.scheme = scheme;
    if (!anyMethod) options.methods = [...methods].sort();
    out.push({ grant: { "http.request": options } as Grant, covers });
  }
  const namespaces = new Map<string, { verbs: Set<string>; covers: FootprintEntry[] }>();
  for (const attempt of attempts) {
    if (attempt.kind !== "kv") continue;
    const known = namespaces.get(attempt.namespace) ?? { verbs: new Set(), covers: [] };
    namespaces.set(attempt.namespace, known);
    known.verbs.add(attempt.verb);
    known.covers.push(attempt.entry);
  }
  for (const [namespace, { verbs, covers }] of [...namespaces].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    const used = KV_VERBS.filter((v) => verbs.has(v));
    const grant = used.length === 1
      ? { [`kv.${used[0]}`]: { namespace } }
      : used.length === KV_VERBS.length
      ? { kv: { namespace } }
      : { kv: { namespace, actions: used } };
    out.push({ grant: grant as Grant, covers });
  }
  const env = attempts.filter((a): a is Attempt & { kind: "env" } => a.kind === "env");
  if (env.length > 0) {
    const names = [...new Set(env.map((a) => a.name))].sort();
    out.push({ grant: { "env.get": { names } }, covers: env.map((a) => a.entry) });
  }
  for (const action of Object.keys(RUNTIME)) {
    const covers = attempts.filter((a) => a.kind === "runtime" && a.action === action).map((a) => a.entry);
    if (covers.length > 0) out.push({ grant: { [action]: {} } as Grant, covers });
  }
  return out;
}

interface HostGrant {
  host: string;
  port: number;
  scheme: string | undefined;
  methods: Set<string>;
  anyMethod: boolean;
  covers: FootprintEntry[];
}

function _byHost(a: HostGrant, b: HostGrant): number {
  return a.host.localeCompare(b.host) || a.port - b.port || (a.scheme ?? "").localeCompare(b.scheme ?? "");
}

/** A YAML scalar: plain when it reads back as the same string in a flow collection, else double-quoted. */
function _scalar(value: unknown): string {
  if (typeof value === "number") return String(value);
  const text = String(value);
  if (/^[A-Za-z0-9_/][A-Za-z0-9_./-]*$/.test(text) && YAML.parse(text) === text) return text;
  return JSON.stringify(text);
}

/** One grant as a flow-style YAML line: `fs.read: { dir: data/stamp }`. */
function _grantText(grant: Grant): string {
  const [kind, options] = Object.entries(grant)[0]!;
  const fields = Object.entries((options ?? {}) as Record<string, unknown>).map(([key, value]) =>
    `${key}: ${Array.isArray(value) ? `[${value.map(_scalar).join(", ")}]` : _scalar(value)}`
  );
  return `${kind}: ${fields.length === 0 ? "{}" : `{ ${fields.join(", ")} }`}`;
}

function _count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** What a grant covers, for its comment: attempts, and the resources (or methods) when there are few. */
function _covers(plugin: string, covers: readonly FootprintEntry[]): string {
  const attempts = _count(covers.reduce((sum, e) => sum + e.count, 0), "attempt");
  const action = covers[0]?.action ?? "";
  if (action in RUNTIME) return attempts;
  if (action === "http.request") {
    const methods = new Set(covers.flatMap((e) => e.http?.methods ?? []));
    return methods.size === 0 ? attempts : `${attempts}: ${[...methods].sort().join(", ")}`;
  }
  // Keys and variables without the plugin's name before them: `stamp/counter`, `REGION`.
  const ids = [...new Set(covers.map((e) => _uid(e.resource)?.id ?? e.resource))]
    .map((id) => id.startsWith(`${plugin}/`) && !id.startsWith("/") ? id.slice(plugin.length + 1) : id);
  return `${attempts} on ${ids.length <= 3 ? ids.join(", ") : _count(ids.length, "resource")}`;
}

function _yaml(plugin: string, proposed: readonly Proposed[]): string {
  if (proposed.length === 0) return "grants: []\n";
  const lines = [
    "grants:",
    ...proposed.map(({ grant, covers }) => `  - ${_grantText(grant)} # ${_covers(plugin, covers)}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** The manifest's grants, each against the attempts it permits. */
function _warnings(
  manifest: Manifest,
  footprint: readonly FootprintEntry[],
  principal: Entity,
  engine: PolicyEngine,
  base: readonly PolicySource[],
  siblingDirs: number,
): GrantWarning[] {
  const plugin = manifest.name;
  // Addresses decided as named, so that the forbids of private ranges do not hide which grant would permit them.
  const attempts = footprint.map((entry) => _attempt(plugin, principal, entry))
    .filter((a): a is Attempt => typeof a !== "string")
    .map((a) => ({ ...a, requests: a.requests.map((r) => _named(r)) }));
  const probes = attempts.flatMap((a) => a.requests.map((request) => ({ attempt: a, request })));
  const text = compileGrants(plugin, manifest.grants);
  const decisions = engine.check([...base, { name: `grants/${plugin}.cedar`, text }], probes.map((p) => p.request));
  const used = manifest.grants.map(() => new Map<Attempt, AuthorizationRequest[]>());
  decisions.forEach((decision, i) => {
    if (decision.decision !== "allow") return;
    for (const id of decision.policies) {
      const n = Number(/^grant\..+\.(\d+)$/.exec(id)?.[1]);
      const { attempt, request } = probes[i]!;
      const byAttempt = used[n - 1];
      if (byAttempt) byAttempt.set(attempt, [...byAttempt.get(attempt) ?? [], request]);
    }
  });

  const warnings: GrantWarning[] = [];
  manifest.grants.forEach((grant, index) => {
    const [kind, raw] = Object.entries(grant)[0]!;
    const options = (raw ?? {}) as Record<string, unknown>;
    const warn = (message: string) => warnings.push({ grant: index + 1, text: _grantText(grant), message });
    const covered = [...used[index]!.keys()];
    const requests = [...used[index]!.values()].flat();
    if (covered.length === 0) {
      warn(
        kind === "http.request"
          ? `host ${JSON.stringify(options.host)} is granted but was never contacted`
          : "is never used: no attempt needed it",
      );
      return;
    }
    if (kind.startsWith("fs.")) {
      const granted = normalizeDataPath(String(options.dir));
      const needed = _collapseDirs(covered.map((a) => (a as Attempt & { kind: "fs" }).dir), siblingDirs);
      if (needed.length !== 1 || needed[0] !== granted) {
        warn(`is wider than needed: the attempts it permits need only ${needed.map(_dirText).join(", ")}`);
      }
    } else if (kind === "http.request") {
      const usedMethods = new Set(requests.map((r) => String(r.context.method)));
      const granted = Array.isArray(options.methods) ? options.methods.map((m) => String(m).toUpperCase()) : undefined;
      if (granted === undefined) {
        warn(`permits every method; only ${[...usedMethods].sort().join(", ")} used`);
      } else {
        const unused = granted.filter((m) => !usedMethods.has(m));
        if (unused.length > 0) warn(`${_unused("method", unused)} granted but never used`);
      }
      if (String(options.host).startsWith("*.")) {
        const names = [...new Set(requests.map((r) => String(r.resource.attrs.name)))].sort();
        warn(`permits every name under ${String(options.host).slice(2)}; only ${names.join(", ")} contacted`);
      }
    } else if (kind === "kv") {
      const usedVerbs = new Set(covered.map((a) => (a as Attempt & { kind: "kv" }).verb));
      const granted = Array.isArray(options.actions) ? options.actions.map(String) : [...KV_VERBS];
      const unused = granted.filter((v) => !usedVerbs.has(v as (typeof KV_VERBS)[number]));
      if (unused.length > 0) warn(`${_unused("action", unused)} granted but never used`);
    } else if (kind === "env.get") {
      const read = new Set(covered.map((a) => (a as Attempt & { kind: "env" }).name));
      const unused = (options.names as string[]).filter((n) => !read.has(n));
      if (unused.length > 0) warn(`${_unused("name", unused)} granted but never read`);
    }
  });
  return warnings;
}

/** `method DELETE is` or `methods PUT, DELETE are`. */
function _unused(noun: string, values: readonly string[]): string {
  return values.length === 1 ? `${noun} ${values[0]} is` : `${noun}s ${values.join(", ")} are`;
}

/** The request with its host marked named (see base.cedar), for the manifest's address grants. */
function _named(request: AuthorizationRequest): AuthorizationRequest {
  if (request.action !== "http.request" || request.resource.attrs.named !== false) return request;
  return { ...request, resource: { ...request.resource, attrs: { ...request.resource.attrs, named: true } } };
}
