import { createHash } from "node:crypto";
import { basename, join, resolve } from "node:path";
import semver from "semver";
import { configuredPaths, type KeycardConfig, loadConfig } from "../config/mod.ts";
import { compileGrants, PolicyEngine, type PolicySource } from "../policy/mod.ts";
import { FileStore, type Manifest, parseManifest } from "../registry/mod.ts";

// The imports map carries no @types/semver, so the function used is typed here.
const _semver = semver as { compareBuild(a: string, b: string): number };

/** The schema keycard ships, beside base.cedar. */
const SHIPPED_SCHEMA = new URL("../../policies/keycard.cedarschema", import.meta.url);
const SCHEMA_FILE = "keycard.cedarschema";

/** A policies directory read: its schema and its `.cedar` files. */
export interface PolicyDir {
  /** The directory, absolute. */
  dir: string;
  /** The Cedar schema text. */
  schema: string;
  /** Where the schema came from: the directory's `keycard.cedarschema`, or the shipped one. */
  schemaFile: string;
  /** The directory's `.cedar` files (not its subdirectories), sorted by name, each named by its file name. */
  files: PolicySource[];
  /** Whether the schema is the shipped one, under which compiled grants skip validation (see `PolicySource.trusted`). */
  trusted: boolean;
}

/** Options of {@linkcode readPolicyDir}. */
export interface ReadPolicyDirOptions {
  /**
   * Use the shipped schema when the directory has no `keycard.cedarschema`
   * (the gateway requires one; `deno task policy --policies DIR` does not).
   * @default {false}
   */
  shippedSchemaWhenMissing?: boolean;
}

/**
 * Reads a policies directory the way the gateway does: `keycard.cedarschema`
 * and every `*.cedar` file directly in it.
 *
 * @param dir The directory.
 * @param options Whether a missing schema falls back to the shipped one.
 * @returns The schema and the policy files.
 * @throws {Deno.errors.NotFound} When the directory, or its schema without the fallback, does not exist.
 *
 * @example Read the shipped policies
 * ```ts
 * import { readPolicyDir } from "./policies_in_force.ts";
 * const { files } = await readPolicyDir(new URL("../../policies", import.meta.url).pathname);
 * files.map((f) => f.name).includes("base.cedar"); // true
 * ```
 */
export async function readPolicyDir(dir: string, options: ReadPolicyDirOptions = {}): Promise<PolicyDir> {
  const files: PolicySource[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".cedar")) {
        files.push({ name: entry.name, text: await Deno.readTextFile(join(dir, entry.name)) });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot read policies directory "${dir}": no such directory`, { cause: error });
    }
    throw error;
  }
  files.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const shipped = await Deno.readTextFile(SHIPPED_SCHEMA).catch(() => undefined);
  let schema: string;
  let schemaFile = join(dir, SCHEMA_FILE);
  try {
    schema = await Deno.readTextFile(schemaFile);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    if (!options.shippedSchemaWhenMissing || shipped === undefined) {
      throw new Deno.errors.NotFound(`Cannot read schema "${schemaFile}": no such file`, { cause: error });
    }
    schema = shipped;
    schemaFile = SHIPPED_SCHEMA.pathname;
  }
  return { dir, schema, schemaFile, files, trusted: schema === shipped };
}

/**
 * A plugin's grants as the gateway loads them: the source `grants/<plugin>`.
 *
 * @param manifest The plugin's name and grants.
 * @param trusted Whether the schema in force is the shipped one.
 * @returns The policy source.
 * @throws {GrantError} When a grant is malformed.
 *
 * @example
 * ```ts
 * import { grantSource } from "./policies_in_force.ts";
 * grantSource({ name: "stamp", grants: [{ "clock.now": {} }] }, true).name; // "grants/stamp"
 * ```
 */
export function grantSource(manifest: Pick<Manifest, "name" | "grants">, trusted: boolean): PolicySource {
  return { name: `grants/${manifest.name}`, text: compileGrants(manifest.name, manifest.grants), trusted };
}

/** A plugin whose grants are in force. */
export interface PluginInForce {
  /** The plugin's name. */
  name: string;
  /** Its version, from its manifest. */
  version: string;
  /** Hex SHA-256 of its module; `""` for a configured plugin that is not built. */
  sha256: string;
  /** Its manifest. */
  manifest: Manifest;
  /** `config`: listed in keycard.yaml `plugins`; `registry`: installed in the data dir. */
  from: "config" | "registry";
  /** The manifest file of a configured plugin; the registry directory of an installed one. */
  path: string;
}

/** What {@linkcode policiesInForce} returns. */
export interface PoliciesInForce {
  /** The configuration read. */
  config: KeycardConfig;
  /** The config file read, or `(built-in defaults)`. */
  configSource: string;
  /** The policies directory used: the config's, or the one named by `policies`. */
  policies: PolicyDir;
  /** The plugins whose grants are in force, by name. */
  plugins: Map<string, PluginInForce>;
  /** The sources the gateway would load: the directory's files, then each plugin's grants. */
  sources: PolicySource[];
  /** Installed versions the registry skipped (unreadable or tampered with), as the gateway would. */
  warnings: string[];
}

/** Options of {@linkcode policiesInForce}. */
export interface PoliciesInForceOptions {
  /** The config file. @default {env.KEYCARD_CONFIG, else ./keycard.yaml, else the built-in defaults} */
  config?: string;
  /** The `KEYCARD_*` variables. @default {the process environment} */
  env?: Record<string, string | undefined>;
  /** Directory that relative paths are relative to. @default {Deno.cwd()} */
  cwd?: string;
  /**
   * Another policies directory in place of the config's (its `.cedar` files and
   * `keycard.cedarschema`, else the shipped schema); the plugins still come from the config.
   * @default {the config's `policies`}
   */
  policies?: string;
}

/**
 * The schema and the exact policy sources `deno task start` with the same
 * configuration would load: the policies directory's `.cedar` files, then
 * the grants (`grants/<plugin>`) of every configured plugin and every plugin
 * installed in the data dir's registry. Where a plugin is both, the higher
 * version wins, as in the gateway (a configured plugin is installed at its
 * version at start). Nothing is written.
 *
 * A configured plugin counts even when its module is not built yet (its
 * `sha256` is then `""`): policies are checked in CI before plugins are built.
 *
 * @param options The config file, environment, working directory and an optional policies directory.
 * @returns The configuration, the policies directory, the plugins and the sources.
 * @throws {ConfigError} When the config is invalid.
 * @throws {ManifestError} When a configured plugin's manifest is invalid.
 * @throws {GrantError} When a plugin's grants are malformed.
 * @throws {Deno.errors.NotFound} When the config file, the policies directory, its schema or a configured
 * plugin's manifest is missing.
 *
 * @example The sources in force for a config
 * ```ts ignore
 * import { policiesInForce } from "./policies_in_force.ts";
 * const { sources } = await policiesInForce({ config: "keycard.yaml" });
 * sources.map((s) => s.name); // ["api.cedar", "base.cedar", "grants/hello", "grants/stamp", ...]
 * ```
 */
export async function policiesInForce(options: PoliciesInForceOptions = {}): Promise<PoliciesInForce> {
  const cwd = options.cwd ?? Deno.cwd();
  const { config, source } = await loadConfig({
    ...(options.config === undefined ? {} : { path: options.config }),
    ...(options.env === undefined ? {} : { env: options.env }),
    cwd,
  });
  const policies = options.policies === undefined
    ? await readPolicyDir(config.policies)
    : await readPolicyDir(resolve(cwd, options.policies), { shippedSchemaWhenMissing: true });

  const plugins = new Map<string, PluginInForce>();
  const store = new FileStore(config.dataDir);
  for (const { name } of await store.list()) {
    const stored = await store.get(name);
    if (stored) {
      const m = stored.manifest;
      const path = join(config.dataDir, "plugins", name, m.version);
      plugins.set(m.name, {
        name: m.name,
        version: m.version,
        sha256: stored.sha256,
        manifest: m,
        from: "registry",
        path,
      });
    }
  }
  const warnings = store.problems().map((p) => p.message);
  for (const { path } of config.plugins) {
    const plugin = await readConfigured(path);
    const installed = plugins.get(plugin.name);
    if (installed === undefined || _semver.compareBuild(installed.version, plugin.version) <= 0) {
      plugins.set(plugin.name, installed?.version === plugin.version && plugin.sha256 === "" ? installed : plugin);
    }
  }
  const sorted = new Map([...plugins].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
  const grants = [...sorted.values()].map((p) => grantSource(p.manifest, policies.trusted));
  return { config, configSource: source, policies, plugins: sorted, sources: [...policies.files, ...grants], warnings };
}

/**
 * Creates an engine over the policies in force, as the gateway does (strict
 * validation, keycard's evaluator), without a validation cache.
 *
 * @param inForce What {@linkcode policiesInForce} returned.
 * @returns The engine.
 * @throws {PolicyValidationError} When the schema, a policy file or a plugin's grants are invalid.
 *
 * @example
 * ```ts ignore
 * import { createEngineInForce, policiesInForce } from "./policies_in_force.ts";
 * const engine = await createEngineInForce(await policiesInForce());
 * engine.policies().length; // > 0
 * ```
 */
export function createEngineInForce(inForce: PoliciesInForce): Promise<PolicyEngine> {
  return PolicyEngine.create({ schema: inForce.policies.schema, sources: inForce.sources });
}

/** A configured plugin's manifest, read as `readConfiguredPlugin` does, without needing its module. */
async function readConfigured(path: string): Promise<PluginInForce> {
  const { isWasm, manifestPath, wasmPath } = configuredPaths(path);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(manifestPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    if (!isWasm) {
      throw new Deno.errors.NotFound(`Cannot read plugin at "${path}": it has no plugin.yaml`, { cause: error });
    }
  }
  const manifest = parseManifest(text ?? `name: ${basename(path, ".wasm")}\n`, manifestPath);
  const wasm = await Deno.readFile(wasmPath).catch(() => undefined);
  return {
    name: manifest.name,
    version: manifest.version,
    sha256: wasm === undefined ? "" : createHash("sha256").update(wasm).digest("hex"),
    manifest,
    from: "config",
    path: manifestPath,
  };
}
