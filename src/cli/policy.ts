/**
 * `deno task policy`: keycard's policy lifecycle for CI and operators.
 *
 * ```sh
 * deno task policy test [paths...] [--policies DIR] [--config FILE] [--format text|json|junit] [--out FILE]
 * deno task policy plan <candidate dir> [--config FILE] [--last N | --since TIME] [--allow-widening] [--format text|json]
 * deno task policy validate [DIR] [--config FILE]
 * deno task policy explain <request.json|yaml> [--policies DIR] [--config FILE]
 * deno task policy compile <plugin.yaml>
 * ```
 *
 * Every subcommand exits 0 on success, 1 when the policies fail what was
 * asked (a failing test, a widening plan, an invalid policy), 2 when no
 * verdict could be reached (bad usage, unreadable input).
 *
 * @module
 */
import { CONFIG_ENV_VARS } from "../config/mod.ts";
import { userError } from "./user_error.ts";

/** Where a subcommand's output goes. */
export interface PolicyCliIo {
  /** Receives the report and help text. */
  stdout: (text: string) => void | Promise<void>;
  /** Receives error messages, one line each. */
  stderr: (line: string) => void;
  /** The environment (`KEYCARD_CONFIG`, `KEYCARD_DATA_DIR`, ...). */
  env: Readonly<Record<string, string | undefined>>;
}

/** A subcommand: its arguments after the subcommand's name; returns the exit code. */
export type PolicySubcommand = (args: string[], io: PolicyCliIo) => Promise<number>;

const SUBCOMMANDS: Record<string, () => Promise<PolicySubcommand>> = {
  test: async () => (await import("./_policy_test.ts")).run,
  validate: async () => (await import("./_policy_tools.ts")).validate,
  explain: async () => (await import("./_policy_tools.ts")).explain,
  compile: async () => (await import("./_policy_tools.ts")).compile,
  plan: async () => (await import("./_policy_plan.ts")).run,
};

const USAGE = `Usage: deno task policy <${
  Object.keys(SUBCOMMANDS).join("|")
}> [arguments]; --help after one for its own`;

/**
 * Runs the command line.
 * @param args The arguments after the script name, as in `Deno.args`.
 * @param io Where output goes.
 * @returns The exit code.
 */
export async function main(args: string[], io: Partial<PolicyCliIo> = {}): Promise<number> {
  const full: PolicyCliIo = {
    stdout: io.stdout ?? ((text) => Deno.stdout.write(new TextEncoder().encode(text)).then(() => undefined)),
    stderr: io.stderr ?? ((line) => console.error(line)),
    env: io.env ?? Object.fromEntries(CONFIG_ENV_VARS.map((name) => [name, Deno.env.get(name)])),
  };
  const [name, ...rest] = args;
  const load = name === undefined ? undefined : SUBCOMMANDS[name];
  if (load === undefined) {
    full.stderr(name === undefined ? "A subcommand is needed" : `Unknown subcommand "${name}"`);
    full.stderr(USAGE);
    return 2;
  }
  try {
    return await (await load())(rest, full);
  } catch (error) {
    const known = userError(error);
    if (known === undefined) throw error;
    full.stderr(known);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
