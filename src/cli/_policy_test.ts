// `deno task policy test`: runs policy test files against the policies in force (or --policies DIR).
import { dirname, join, resolve } from "node:path";
import {
  formatPolicyTestReport,
  loadPolicyTests,
  type PolicyTestFormat,
  runPolicyTests,
} from "../lifecycle/policy_tests.ts";
import { PolicyValidationError } from "../policy/mod.ts";
import {
  engineInForce,
  guarded,
  IN_FORCE_OPTIONS,
  knownPlugins,
  parse,
  problemLine,
  readInForce,
  shown,
  typedFrom,
} from "./_policy_tools.ts";
import type { PolicyCliIo } from "./policy.ts";

const USAGE =
  "Usage: deno task policy test [paths...] [--policies DIR] [--config FILE] [--format text|json|junit] [--out FILE]";
const FORMATS: readonly PolicyTestFormat[] = ["text", "json", "junit"];

/**
 * `deno task policy test [paths...]`: runs the policy test files at `paths`
 * (files, or directories searched for `*.yaml`, `*.yml` and `*.json`;
 * default: the policies directory's `tests/`) against the policies in force
 * for the config (or `--policies DIR` with the config's plugins' grants), and
 * reports each case, the coverage of the policies, and the totals.
 *
 * @param args The arguments after `test`.
 * @param io Output and environment.
 * @returns 0 every case passed, 1 a case failed, 2 bad usage or an unreadable or invalid test file, config,
 * manifest or policy set (each problem with its file and line).
 */
export function run(args: string[], io: PolicyCliIo): Promise<number> {
  return guarded(io, async () => {
    const parsed = parse(
      args,
      {
        ...IN_FORCE_OPTIONS,
        format: { type: "string", short: "f", default: "text" },
        out: { type: "string", short: "o" },
      },
      USAGE,
      io,
    );
    if (parsed === undefined) return 2;
    const { values, positionals } = parsed;
    if (values.help) return await io.stdout(`${USAGE}\n`), 0;
    const format = values.format as PolicyTestFormat;
    if (!FORMATS.includes(format)) {
      io.stderr(`Unknown format ${JSON.stringify(values.format)}: expected one of ${FORMATS.join(", ")}`);
      io.stderr(USAGE);
      return 2;
    }
    const cwd = typedFrom(io);
    const inForce = await readInForce(values, io);
    const paths = positionals.length > 0
      ? positionals.map((p) => resolve(cwd, p))
      : [join(inForce.policies.dir, "tests")];
    const { files, problems } = await loadPolicyTests(paths);
    for (const problem of problems) io.stderr((problem as Error).message);
    const engine = await engineInForce(inForce, io);
    if (engine instanceof PolicyValidationError) {
      for (const p of engine.problems) io.stderr(problemLine(p, inForce, cwd));
      return 2;
    }
    if (problems.length > 0) {
      engine.close();
      return 2;
    }
    const report = runPolicyTests(files, engine, { plugins: knownPlugins(inForce) });
    engine.close();
    const plugins = [...inForce.plugins.values()].map((p) => `${p.name} ${p.version}`).join(", ");
    const header = [
      `Policies: ${inForce.policies.files.length} file(s) in ${shown(inForce.policies.dir, cwd)}` +
      ` + grants of ${inForce.plugins.size} plugin(s)${plugins ? ` (${plugins})` : ""}` +
      ` [config: ${inForce.configSource.startsWith("/") ? shown(inForce.configSource, cwd) : inForce.configSource}]`,
      "",
    ];
    const text = formatPolicyTestReport(report, format, { showPath: (file) => shown(file, cwd), header });
    if (typeof values.out === "string") {
      const out = resolve(cwd, values.out);
      await Deno.mkdir(dirname(out), { recursive: true });
      await Deno.writeTextFile(out, text);
    } else {
      await io.stdout(text);
    }
    return report.failed === 0 ? 0 : 1;
  });
}
