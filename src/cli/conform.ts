/**
 * `deno task conform`: runs keycard's admission suite on a plugin and prints
 * the report.
 *
 * ```sh
 * deno task conform <plugin.wasm> [--manifest plugin.yaml] [--grants] [--propose] [--format text|json|junit] [--out FILE]
 * ```
 *
 * `--grants` runs the plugin under the base policies plus its manifest's
 * grants instead of the empty grant, as the gateway does at install.
 *
 * `--propose` adds the plugin's least grant, proposed from what it attempted
 * (see `conformAndPropose`): a section of the text report, the `proposal`
 * field of the JSON report, the suite's `<system-out>` of the JUnit report.
 * With `--out`, the proposal is also printed as text on stdout, so that a CI
 * log shows it. It changes neither the verdict nor the exit code.
 *
 * Exits 0 when the plugin is conformant, 1 when it is not, 2 when no verdict
 * could be reached (bad usage, a missing or unreadable module, an unreadable
 * or invalid manifest).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type ConformanceReport,
  formatProposal,
  formatReport,
  REPORT_FORMATS,
  type ReportFormat,
  runConformance,
} from "../conformance/mod.ts";
import { conformAndPropose, type ProposalReport } from "../lifecycle/mod.ts";
import { type Manifest, ManifestError, parseManifest } from "../registry/mod.ts";

const USAGE = "Usage: deno task conform <plugin.wasm> [--manifest plugin.yaml] [--grants] [--propose] " +
  "[--format text|json|junit] [--out FILE]";

/** Options of {@linkcode main}: where its output goes. */
export interface ConformMainOptions {
  /** Receives the report (without `--out`) and the help text. @default {writes to `Deno.stdout`} */
  stdout?: (text: string) => void | Promise<void>;
  /** Receives error messages, one line each. @default {`console.error`} */
  stderr?: (line: string) => void;
}

/**
 * Runs the command line: parses `args`, reads the module and manifest, runs
 * the suite and writes the report to stdout or `--out`.
 *
 * @param args The arguments after the script name, as in `Deno.args`.
 * @param options Where output and error messages go.
 * @returns The exit code: 0 conformant, 1 not conformant, 2 no verdict (bad
 * usage, unreadable input, a report that could not be written).
 * @throws {never} Every failure becomes a message and exit code 2.
 *
 * @example Check a plugin and write a JUnit report
 * ```ts ignore
 * import { main } from "./conform.ts";
 * const code = await main(["plugins/hello/build/plugin.wasm", "--manifest", "plugins/hello/plugin.yaml",
 *   "--format", "junit", "--out", "conformance.xml"]);
 * code; // 0
 * ```
 */
export async function main(args: string[], options: ConformMainOptions = {}): Promise<number> {
  const stdout = options.stdout ?? _writeStdout;
  const stderr = options.stderr ?? ((line: string) => console.error(line));
  const usage = (message: string): number => {
    stderr(message);
    stderr(USAGE);
    return 2;
  };

  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        manifest: { type: "string", short: "m" },
        grants: { type: "boolean", short: "g" },
        propose: { type: "boolean", short: "p" },
        format: { type: "string", short: "f", default: "text" },
        out: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    return usage(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    await stdout(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    return usage(
      positionals.length === 0
        ? "Missing the plugin module: expected one .wasm file"
        : `Expected one plugin module, got ${positionals.length}: ${positionals.map((p) => `"${p}"`).join(", ")}`,
    );
  }
  const format = values.format;
  if (!REPORT_FORMATS.includes(format as ReportFormat)) {
    return usage(`Unknown format "${format}": expected one of ${REPORT_FORMATS.join(", ")}`);
  }
  const wasmPath = positionals[0]!;
  if (values.grants && values.manifest === undefined) {
    return usage("--grants needs --manifest: the grants are the manifest's");
  }

  let wasm: Uint8Array;
  try {
    wasm = await Deno.readFile(wasmPath);
  } catch (error) {
    stderr(`Cannot read plugin module "${wasmPath}": ${_message(error)}`);
    return 2;
  }
  let manifest: Manifest | undefined;
  if (values.manifest !== undefined) {
    try {
      manifest = parseManifest(await Deno.readTextFile(values.manifest), values.manifest);
    } catch (error) {
      // A ManifestError names the file, line and column itself.
      stderr(
        error instanceof ManifestError
          ? error.message
          : `Cannot read manifest "${values.manifest}": ${_message(error)}`,
      );
      return 2;
    }
  }

  let text: string;
  let report: ConformanceReport;
  let proposal: ProposalReport["proposal"] | undefined;
  try {
    const options = { ...(manifest === undefined ? {} : { manifest }), ...(values.grants ? { grants: true } : {}) };
    if (values.propose) {
      const proposed = await conformAndPropose(wasm, options);
      [report, proposal] = [proposed, proposed.proposal];
    } else {
      report = await runConformance(wasm, options);
    }
    text = formatReport(report, format as ReportFormat);
  } catch (error) {
    stderr(`Cannot run the conformance suite on "${wasmPath}": ${_message(error)}`);
    return 2;
  }
  try {
    if (values.out === undefined) await stdout(text);
    else await Deno.writeTextFile(values.out, text);
    if (values.out !== undefined && proposal !== undefined) await stdout(formatProposal(proposal));
  } catch (error) {
    stderr(`Cannot write the report to "${values.out ?? "stdout"}": ${_message(error)}`);
    return 2;
  }
  return report.passed ? 0 : 1;
}

async function _writeStdout(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let written = 0; written < bytes.length;) written += await Deno.stdout.write(bytes.subarray(written));
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
