import {
  type ConformanceReport,
  type FootprintEntry,
  runConformance,
  type RunConformanceOptions,
} from "../conformance/mod.ts";
import { type GrantProposal, proposeGrants, type ProposeGrantsOptions } from "./propose.ts";

/** A conformance report with the least grant proposed from what the plugin did. */
export interface ProposalReport extends ConformanceReport {
  /** The least grant, from every attempt of the report's run and of the runs under the proposal. */
  proposal: GrantProposal & {
    /** How many runs the attempts come from: the report's, then one per proposal tried (at most 8). */
    runs: number;
    /** Every attempt the proposal rests on, of all runs (an attempt's `count` is its most in one run). */
    footprint: FootprintEntry[];
  };
}

/** Options of {@linkcode conformAndPropose}: those of the conformance run and of the proposal. */
export interface ConformAndProposeOptions extends RunConformanceOptions, Pick<ProposeGrantsOptions, "siblingDirs"> {}

/** Runs under proposed grants, at most, after the report's own: each one can only add attempts. */
const MAX_RUNS = 8;

/**
 * Runs the conformance suite on a plugin and proposes its least grant
 * ({@linkcode proposeGrants}) from the host calls it attempted.
 *
 * One run sees only what the plugin did until a call was denied: under the
 * empty grant, stamp's `kv_counter` stops at its denied `kv.get` and never
 * reaches `kv.set`. So, with a manifest, when the run was denied something
 * the proposal grants, the plugin runs again under the base policies and
 * the proposed grants, and the attempts of that run are added, until a run
 * attempts nothing new (or 8 runs). Without a manifest
 * the proposal rests on the report's run alone (a manifest is what carries
 * the grants of a run).
 *
 * @param wasm The module's bytes.
 * @param options The conformance run's options, and the sibling merge of directories.
 * @returns The report of the run asked for (its verdict is unchanged), with `proposal`.
 * @throws {Deno.errors.NotFound} When `schema` or `policies` is not given and the repository's cannot be read.
 * @throws {PolicyValidationError} When the schema or a base policy is invalid.
 * @throws {GrantError} With `grants`, when a grant of the manifest does not compile.
 *
 * @example Propose stamp's least grant
 * ```ts ignore
 * import { conformAndPropose } from "./conform_and_propose.ts";
 * import { parseManifest } from "../registry/mod.ts";
 * const manifest = parseManifest(await Deno.readTextFile("plugins/stamp/plugin.yaml"), "plugin.yaml");
 * const report = await conformAndPropose(await Deno.readFile("plugins/stamp/build/plugin.wasm"), { manifest });
 * console.log(report.proposal.yaml);
 * ```
 */
export async function conformAndPropose(
  wasm: Uint8Array,
  options: ConformAndProposeOptions = {},
): Promise<ProposalReport> {
  const { siblingDirs, ...run } = options;
  const { manifest } = run;
  const report = await runConformance(wasm, run);
  const propose = (footprint: readonly FootprintEntry[]) =>
    proposeGrants(report.plugin, footprint, {
      ...(manifest === undefined ? {} : { manifest }),
      ...(run.schema === undefined ? {} : { schema: run.schema }),
      ...(run.policies === undefined ? {} : { policies: run.policies }),
      ...(siblingDirs === undefined ? {} : { siblingDirs }),
    });

  const seen = new Map<string, FootprintEntry>();
  const add = (footprint: readonly FootprintEntry[]): boolean => {
    let grew = false;
    for (const entry of footprint) {
      const key = `${entry.action}\0${entry.resource}`;
      const known = seen.get(key);
      if (known === undefined) {
        seen.set(key, { ...entry, ...(entry.http ? { http: { ...entry.http } } : {}) });
        grew = true;
        continue;
      }
      known.count = Math.max(known.count, entry.count);
      if (entry.http) {
        const schemes = [...new Set([...known.http?.schemes ?? [], ...entry.http.schemes])].sort();
        const methods = [...new Set([...known.http?.methods ?? [], ...entry.http.methods])].sort();
        grew ||= schemes.length !== (known.http?.schemes.length ?? 0) ||
          methods.length !== (known.http?.methods.length ?? 0);
        known.http = { schemes, methods };
      }
    }
    return grew;
  };

  add(report.footprint);
  let proposal = await propose([...seen.values()]);
  let runs = 1;
  // Another run can show more only if the plugin was denied something the proposal grants; an instantiation
  // failure or a malformed module leaves nothing more to see.
  const ungrantable = new Set(proposal.cannotGrant.map((a) => `${a.action}\0${a.resource}`));
  const denied = report.footprint.some((e) => e.allowed < e.count && !ungrantable.has(`${e.action}\0${e.resource}`));
  const ran = report.checks.some((c) => c.id === "exports.run" && !c.skipped);
  while (manifest !== undefined && ran && denied && runs < MAX_RUNS) {
    const next = await runConformance(wasm, {
      ...run,
      manifest: { ...manifest, grants: proposal.grants },
      grants: true,
    });
    runs++;
    if (!add(next.footprint)) break;
    proposal = await propose([...seen.values()]);
  }
  return { ...report, proposal: { ...proposal, runs, footprint: [...seen.values()] } };
}
