// `deno task policy validate | explain | compile`, and what `deno task policy test` shares with them: the
// arguments, the policies in force, and the one place known errors become a message and exit 2.
import { join, relative, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { explainRequest, parseRequestFile } from "../lifecycle/explain.ts";
import { createEngineInForce, type PoliciesInForce, policiesInForce } from "../lifecycle/policies_in_force.ts";
import { PolicyTestError } from "../lifecycle/policy_tests.ts";
import type { KnownPlugins } from "../lifecycle/_request_spec.ts";
import {
  compileGrants,
  type Entity,
  GrantError,
  type PolicyEngine,
  type PolicyProblem,
  PolicyValidationError,
} from "../policy/mod.ts";
import { ManifestError, parseManifest, PluginIdError } from "../registry/mod.ts";
import type { PolicyCliIo } from "./policy.ts";
import { userError } from "./user_error.ts";

/** The options every subcommand that reads the policies in force takes. */
export const IN_FORCE_OPTIONS = {
  config: { type: "string", short: "c" },
  policies: { type: "string", short: "p" },
  help: { type: "boolean", short: "h" },
} as const;

/** Where relative paths typed by the user are relative to: the directory `deno task` was started from. */
export function typedFrom(io: PolicyCliIo): string {
  if (io.env.INIT_CWD) return io.env.INIT_CWD;
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" }).state === "granted") {
      return Deno.env.get("INIT_CWD") || Deno.cwd();
    }
  } catch {
    // No access: the working directory.
  }
  return Deno.cwd();
}

/** Parses a subcommand's arguments; a usage error is printed and becomes `undefined`. */
export function parse<const O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
  usage: string,
  io: PolicyCliIo,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    io.stderr((error as Error).message);
    io.stderr(usage);
    return undefined;
  }
}

/**
 * The policies in force for `--config` and `--policies`. Paths the user typed (arguments, `KEYCARD_CONFIG`,
 * `KEYCARD_DATA_DIR`) are relative to where the task started; without a config, the checkout's keycard.yaml is
 * read, as `deno task start` does.
 */
export function readInForce(
  values: { config?: string | boolean | undefined; policies?: string | boolean | undefined },
  io: PolicyCliIo,
  policies?: string,
): Promise<PoliciesInForce> {
  const cwd = typedFrom(io);
  const typed = (path: string | undefined) => path ? resolve(cwd, path) : undefined;
  const config = typed(typeof values.config === "string" ? values.config : undefined);
  const dir = typed(policies ?? (typeof values.policies === "string" ? values.policies : undefined));
  const env = {
    ...io.env,
    KEYCARD_CONFIG: typed(io.env.KEYCARD_CONFIG),
    KEYCARD_DATA_DIR: typed(io.env.KEYCARD_DATA_DIR),
  };
  return policiesInForce({ ...(config ? { config } : {}), ...(dir ? { policies: dir } : {}), env });
}

/** The plugins in force as the test and explain tools take them. */
export function knownPlugins(inForce: PoliciesInForce): KnownPlugins {
  return new Map([...inForce.plugins].map(([name, p]) => [name, { version: p.version, sha256: p.sha256 }]));
}

/** Where a policy source lives, for a reader: its file, or the manifest its grants come from. */
export function sourcePath(inForce: PoliciesInForce, source: string, cwd: string): string {
  if (source === "schema") return shown(inForce.policies.schemaFile, cwd);
  if (source.startsWith("grants/")) {
    const plugin = inForce.plugins.get(source.slice("grants/".length));
    return plugin ? `${source} (from ${shown(plugin.path, cwd)})` : source;
  }
  return shown(join(inForce.policies.dir, source), cwd);
}

/** A path relative to `cwd` when below it, else absolute. */
export function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/") ? rel : path;
}

/** One problem of a refused policy set as `file:line:column: message`. */
export function problemLine(problem: PolicyProblem, inForce: PoliciesInForce | undefined, cwd: string): string {
  const file = inForce ? sourcePath(inForce, problem.source, cwd) : problem.source;
  const where = problem.line === undefined ? "" : `:${problem.line}:${problem.column ?? 1}`;
  const id = problem.policyId ? ` (policy ${problem.policyId})` : "";
  return `${file}${where}: ${problem.message}${id}`;
}

/** Creates the engine over the policies in force; an invalid set is reported problem by problem. */
export async function engineInForce(
  inForce: PoliciesInForce,
  io: PolicyCliIo,
): Promise<PolicyEngine | PolicyValidationError> {
  for (const warning of inForce.warnings) io.stderr(`warning: ${warning}`);
  try {
    return await createEngineInForce(inForce);
  } catch (error) {
    if (error instanceof PolicyValidationError) return error;
    throw error;
  }
}

/**
 * The message for an error the user can fix: those {@linkcode userError}
 * knows (config, policies, missing files), and a bad manifest, grant, test
 * file or directory; undefined for a bug (which keeps its stack).
 */
export function knownError(error: unknown): string | undefined {
  const common = userError(error);
  if (common !== undefined) return common;
  if (
    error instanceof ManifestError || error instanceof GrantError || error instanceof PolicyTestError ||
    error instanceof PluginIdError || error instanceof Deno.errors.IsADirectory
  ) return (error as Error).message;
  return undefined;
}

/** Runs a subcommand body, turning a known error into its message and exit 2. */
export async function guarded(io: PolicyCliIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const message = knownError(error);
    if (message === undefined) throw error;
    io.stderr(message);
    return 2;
  }
}

const VALIDATE_USAGE = "Usage: deno task policy validate [DIR] [--config FILE]";

/**
 * `deno task policy validate [DIR]`: validates the policies in force (or a
 * policies directory, with the grants in force) against the schema,
 * strictly, as the gateway does before it loads a set.
 *
 * @param args The arguments after `validate`.
 * @param io Output and environment.
 * @returns 0 valid, 1 invalid (each problem as `file:line:column: message` on stdout), 2 unreadable.
 */
export function validate(args: string[], io: PolicyCliIo): Promise<number> {
  return guarded(io, async () => {
    const parsed = parse(args, IN_FORCE_OPTIONS, VALIDATE_USAGE, io);
    if (parsed === undefined) return 2;
    if (parsed.values.help) return await io.stdout(`${VALIDATE_USAGE}\n`), 0;
    if (parsed.positionals.length > 1 || (parsed.positionals.length === 1 && parsed.values.policies)) {
      io.stderr("validate takes one policies directory");
      io.stderr(VALIDATE_USAGE);
      return 2;
    }
    const cwd = typedFrom(io);
    const inForce = await readInForce(parsed.values, io, parsed.positionals[0]);
    const engine = await engineInForce(inForce, io);
    const files = inForce.policies.files.length;
    const grants = inForce.sources.length - files;
    const what = `${files} policy file${files === 1 ? "" : "s"} in ${shown(inForce.policies.dir, cwd)} and the ` +
      `grants of ${grants} plugin${grants === 1 ? "" : "s"}, against ${shown(inForce.policies.schemaFile, cwd)}`;
    if (engine instanceof PolicyValidationError) {
      const lines = engine.problems.map((p) => problemLine(p, inForce, cwd));
      await io.stdout(`${lines.join("\n")}\nINVALID: ${engine.problems.length} problem(s) in ${what}\n`);
      return 1;
    }
    await io.stdout(`valid: ${engine.policies().length} policies from ${what}\n`);
    engine.close();
    return 0;
  });
}

const EXPLAIN_USAGE = "Usage: deno task policy explain <request.yaml|json> [--policies DIR] [--config FILE]";

/**
 * `deno task policy explain <request file>`: decides one request (a Cedar
 * request, or a host call as a plugin makes it) on the policies in force, and
 * prints the decision with each deciding policy's file, line and text.
 *
 * @param args The arguments after `explain`.
 * @param io Output and environment.
 * @returns 0 once decided (allow or deny), 2 for bad usage, an unreadable or invalid request or policy set.
 */
export function explain(args: string[], io: PolicyCliIo): Promise<number> {
  return guarded(io, async () => {
    const parsed = parse(args, IN_FORCE_OPTIONS, EXPLAIN_USAGE, io);
    if (parsed === undefined) return 2;
    if (parsed.values.help) return await io.stdout(`${EXPLAIN_USAGE}\n`), 0;
    if (parsed.positionals.length !== 1) {
      io.stderr("explain takes one request file");
      io.stderr(EXPLAIN_USAGE);
      return 2;
    }
    const cwd = typedFrom(io);
    const file = resolve(cwd, parsed.positionals[0]!);
    const spec = parseRequestFile(await readText(file, cwd), shown(file, cwd));
    const inForce = await readInForce(parsed.values, io);
    const engine = await engineInForce(inForce, io);
    if (engine instanceof PolicyValidationError) {
      for (const p of engine.problems) io.stderr(problemLine(p, inForce, cwd));
      return 2;
    }
    const explanation = explainRequest(spec, engine, knownPlugins(inForce));
    const lines: string[] = [];
    if (explanation.refused) {
      lines.push(`Decision: deny (${explanation.refused})`, "No policy was asked: keycard refuses this call first.");
    }
    for (const { phase, request, decision, deciding } of explanation.decisions) {
      lines.push(
        `Request${phase ? ` (${phase} phase)` : ""}: ${uid(request.principal)} ${request.action} ${
          uid(request.resource)
        }` +
          ` context ${JSON.stringify(request.context)}`,
        `Decision: ${decision.decision} (${decision.reason})`,
      );
      for (const error of decision.errors) lines.push(`  evaluation error: ${error}`);
      if (deciding.length === 0) {
        lines.push(
          `  No policy permits ${request.action} on ${uid(request.resource)} for ${uid(request.principal)}.`,
        );
      }
      for (const policy of deciding) {
        lines.push(`  ${policy.id} (${policy.effect}) at ${sourcePath(inForce, policy.source, cwd)}:${policy.line}`);
        for (const line of policy.text.split("\n")) lines.push(`    ${line}`);
      }
    }
    if (explanation.note) lines.push(`Note: ${explanation.note}`);
    await io.stdout(`${lines.join("\n")}\n`);
    engine.close();
    return 0;
  });
}

/** A file's text; a missing file is named the way the user typed it. */
async function readText(path: string, cwd: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Deno.errors.NotFound(`Cannot read "${shown(path, cwd)}": no such file`, { cause: error });
  }
}

function uid(entity: Entity): string {
  return `${entity.uid.type}::${JSON.stringify(entity.uid.id)}`;
}

const COMPILE_USAGE = "Usage: deno task policy compile <plugin.yaml>";

/**
 * `deno task policy compile <plugin.yaml>`: prints the Cedar a manifest's
 * grants compile to, as the gateway loads it (`grants/<plugin>`).
 *
 * @param args The arguments after `compile`.
 * @param io Output and environment.
 * @returns 0 printed, 2 for bad usage or an unreadable or invalid manifest.
 */
export function compile(args: string[], io: PolicyCliIo): Promise<number> {
  return guarded(io, async () => {
    const parsed = parse(args, { help: { type: "boolean", short: "h" } }, COMPILE_USAGE, io);
    if (parsed === undefined) return 2;
    if (parsed.values.help) return await io.stdout(`${COMPILE_USAGE}\n`), 0;
    if (parsed.positionals.length !== 1) {
      io.stderr("compile takes one plugin.yaml");
      io.stderr(COMPILE_USAGE);
      return 2;
    }
    const cwd = typedFrom(io);
    let path = resolve(cwd, parsed.positionals[0]!);
    if ((await Deno.stat(path).catch(() => undefined))?.isDirectory) path = join(path, "plugin.yaml");
    const manifest = parseManifest(await readText(path, cwd), shown(path, cwd));
    const cedar = compileGrants(manifest.name, manifest.grants);
    const header = `// grants/${manifest.name}: the grants of ${manifest.name} ${manifest.version} (${
      shown(path, cwd)
    })`;
    await io.stdout(
      cedar === ""
        ? `${header}\n// No grants: plugin "${manifest.name}" may make no host call (denied by default).\n`
        : `${header}\n${cedar}\n`,
    );
    return 0;
  });
}
