// `deno task policy plan <candidate dir>`: what a policy change would do to the decisions recorded in the audit.
import { join, resolve } from "node:path";
import { type PlanGroup, type PlanOutcome, planPolicyChange, type PlanReport } from "../lifecycle/plan.ts";
import type { PoliciesInForce } from "../lifecycle/policies_in_force.ts";
import { readAuditEvents } from "../lifecycle/read_audit_events.ts";
import { type DecidingPolicy, PolicyEngine, PolicyValidationError } from "../policy/mod.ts";
import type { PolicyCliIo } from "./policy.ts";
import {
  engineInForce,
  guarded,
  parse,
  problemLine,
  readInForce,
  shown,
  sourcePath,
  typedFrom,
} from "./_policy_tools.ts";

const USAGE = "Usage: deno task policy plan <candidate dir> [--config FILE] [--audit FILE] [--last N | --since TIME] " +
  "[--allow-widening] [--format text|json]";

const OPTIONS = {
  config: { type: "string", short: "c" },
  audit: { type: "string" },
  last: { type: "string" },
  since: { type: "string" },
  "allow-widening": { type: "boolean" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const HELP = `${USAGE}

Replays the Cedar requests recorded in the audit (audit.file of the config, and its rotated files) on the
policies in force and on the candidate: the .cedar files of <candidate dir> (and its keycard.cedarschema, else
the schema in force) plus the grants of the plugins in force. Reports every decision that would flip, by
plugin, action and deciding policy, and what could not be replayed.

  --config FILE      keycard.yaml (default: KEYCARD_CONFIG, else ./keycard.yaml)
  --audit FILE       the audit file to read instead of the config's (e.g. a copy from production)
  --last N           only the last N recorded events
  --since TIME       only events at or after an ISO 8601 time
  --allow-widening   exit 0 even when decisions would widen
  --format text|json the report's format (default text)

Exit: 0 no widening (or --allow-widening), 1 some decision would widen, 2 bad input (an unreadable
directory, an invalid candidate with file:line:column, a bad option).
`;

/**
 * `deno task policy plan <candidate dir>`.
 *
 * @param args The arguments after `plan`.
 * @param io Output and environment.
 * @returns 0 when nothing widens (or `--allow-widening`), 1 when a decision would widen, 2 on bad input.
 */
export function run(args: string[], io: PolicyCliIo): Promise<number> {
  return guarded(io, async () => {
    const parsed = parse(args, OPTIONS, USAGE, io);
    if (parsed === undefined) return 2;
    const { values, positionals } = parsed;
    if (values.help) return await io.stdout(HELP), 0;
    const usage = (message: string) => (io.stderr(message), io.stderr(USAGE), 2);
    if (positionals.length !== 1) return usage("plan takes one candidate policies directory");
    const format = values.format ?? "text";
    if (format !== "text" && format !== "json") return usage(`--format must be "text" or "json", got "${format}"`);
    let last: number | undefined;
    if (values.last !== undefined) {
      last = /^\d{1,15}$/.test(values.last) ? Number(values.last) : NaN;
      if (!(last >= 1)) return usage(`--last must be a positive integer, got "${values.last}"`);
    }
    if (values.since !== undefined && Number.isNaN(Date.parse(values.since))) {
      return usage(`--since must be an ISO 8601 time, got "${values.since}"`);
    }
    const cwd = typedFrom(io);
    const dir = resolve(cwd, positionals[0]!);
    const info = await Deno.stat(dir).catch(() => undefined);
    if (!info?.isDirectory) {
      return usage(`Cannot read candidate policies directory "${shown(dir, cwd)}": no such directory`);
    }

    const inForce = await readInForce(values, io);
    const engine = await engineInForce(inForce, io);
    if (engine instanceof PolicyValidationError) {
      io.stderr("The policies in force are invalid:");
      for (const p of engine.problems) io.stderr(problemLine(p, inForce, cwd));
      return 2;
    }
    try {
      // The candidate: its files with the grants in force; its schema, or the one in force.
      const candidateDir = await readInForce(values, io, dir);
      const ownSchema = candidateDir.policies.schemaFile === join(dir, "keycard.cedarschema");
      const schema = ownSchema ? candidateDir.policies.schema : inForce.policies.schema;
      const trusted = schema === inForce.policies.schema && inForce.policies.trusted;
      const candidate = [
        ...candidateDir.policies.files,
        ...inForce.sources.filter((s) => s.name.startsWith("grants/")).map((s) => ({ ...s, trusted })),
      ];
      const candidateEngine = schema === inForce.policies.schema
        ? undefined
        : await PolicyEngine.create({ schema }).catch((error) => error);
      if (candidateEngine instanceof PolicyValidationError) {
        for (const p of candidateEngine.problems) io.stderr(problemLine(p, candidateDir, cwd));
        return 2;
      }
      if (candidateEngine instanceof Error) throw candidateEngine;

      const auditFile = values.audit === undefined ? inForce.config.audit.file : resolve(cwd, values.audit);
      const window = { ...(last === undefined ? {} : { last }), ...(values.since ? { since: values.since } : {}) };
      const recorded = await readAuditEvents(auditFile, window);
      if (recorded.files.length === 0) {
        io.stderr(`warning: no audit file at "${shown(auditFile, cwd)}": nothing to replay`);
      }
      if (recorded.unreadable.first) {
        io.stderr(
          `warning: ${recorded.unreadable.count} unreadable audit line(s), the first at ${recorded.unreadable.first}`,
        );
      }
      let report: PlanReport;
      try {
        report = planPolicyChange(recorded.events, {
          engine,
          candidate,
          ...(candidateEngine ? { candidateEngine } : {}),
          audit: { ...recorded, window },
        });
      } catch (error) {
        if (!(error instanceof PolicyValidationError)) throw error;
        for (const p of error.problems) io.stderr(problemLine(p, candidateDir, cwd));
        io.stderr(`INVALID: the candidate in "${shown(dir, cwd)}" has ${error.problems.length} problem(s)`);
        return 2;
      } finally {
        candidateEngine?.close();
      }
      const widens = report.totals.widened > 0 && !values["allow-widening"];
      if (format === "json") await io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else {await io.stdout(
          formatPlan(report, { inForce, candidate: candidateDir, cwd, dir, allowWidening: !!values["allow-widening"] }),
        );}
      return widens ? 1 : 0;
    } finally {
      engine.close();
    }
  });
}

interface FormatContext {
  inForce: PoliciesInForce;
  candidate: PoliciesInForce;
  cwd: string;
  dir: string;
  allowWidening: boolean;
}

/** The report for a person: totals, then each group with where its policies are written and a few examples. */
function formatPlan(report: PlanReport, at: FormatContext): string {
  const { totals } = report;
  const lines: string[] = [];
  const s = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  lines.push(
    `Plan: the policies in ${shown(at.dir, at.cwd)} in place of those in ${shown(at.inForce.policies.dir, at.cwd)}`,
    `  in force:  ${report.current.policySet}`,
    `  candidate: ${report.candidate.policySet}${
      report.candidate.policySet === report.current.policySet ? " (the same set)" : ""
    }`,
  );
  const files = report.audit?.files ?? [];
  const window = report.audit?.window ?? {};
  const bounds = [
    window.last === undefined ? "" : `last ${window.last} events`,
    window.since === undefined ? "" : `since ${window.since}`,
  ].filter(Boolean).join(", ");
  lines.push(
    `  audit:     ${files.length ? files.map((f) => shown(f, at.cwd)).join(", ") : "(none)"}${
      bounds ? ` (${bounds})` : ""
    }`,
    "",
    `Replayed ${s(totals.replayed, "decision")} of ${totals.decisions} recorded (${s(totals.events, "event")}): ` +
      `${totals.unchanged} unchanged, ${totals.widened} widened (deny -> allow), ${totals.narrowed} narrowed ` +
      `(allow -> deny), ${totals.reattributed} decided by other policies, ${totals.skipped} skipped`,
  );
  if (totals.recordedUnderOtherSets > 0 || totals.differsFromRecord > 0) {
    lines.push(
      `  note: ${totals.recordedUnderOtherSets} were recorded under another policy set; the set in force decides ` +
        `${totals.differsFromRecord} of them otherwise than recorded (flips are counted from the set in force)`,
    );
  }
  // A grant's line is in the Cedar its manifest compiles to (deno task policy compile shows it).
  const where = (p: DecidingPolicy, set: PoliciesInForce) => {
    const plugin = p.source.startsWith("grants/") ? set.plugins.get(p.source.slice("grants/".length)) : undefined;
    return plugin
      ? `${p.id} (${p.source}:${p.line}, compiled from ${shown(plugin.path, at.cwd)})`
      : `${p.id} (${sourcePath(set, p.source, at.cwd)}:${p.line})`;
  };
  const decided = (o: PlanOutcome, set: PoliciesInForce) =>
    o.policies.length === 0
      ? o.reason
      : `${o.decision === "allow" ? "permitted" : "forbidden"} by ${o.policies.map((p) => where(p, set)).join(", ")}`;
  const describe = (g: PlanGroup) => [`now ${decided(g.after, at.candidate)}`, `was ${decided(g.before, at.inForce)}`];
  const section = (title: string, groups: PlanGroup[]) => {
    if (groups.length === 0) return;
    lines.push("", title);
    for (const group of groups) {
      lines.push(`  ${group.plugin} ${group.action}: ${s(group.decisions, "decision")} (${s(group.events, "event")})`);
      for (const line of describe(group)) lines.push(`    ${line}`);
      for (const e of group.examples) {
        lines.push(
          `    e.g. ${e.resource} context ${JSON.stringify(e.context)}${
            e.count > 1 ? ` x${e.count}` : ""
          } at ${e.time}`,
        );
      }
    }
  };
  section(`WIDENING: ${s(totals.widened, "decision")} denied now would be allowed`, report.widenings);
  section(`NARROWING: ${s(totals.narrowed, "decision")} allowed now would be denied`, report.narrowings);
  section(`REATTRIBUTED: ${s(totals.reattributed, "decision")} decided alike by other policies`, report.reattributed);
  if (report.skipped.length > 0) {
    lines.push("", `SKIPPED: ${s(totals.skipped, "decision")} could not be replayed`);
    for (const skip of report.skipped) {
      lines.push(`  ${skip.decisions} ${skip.reason} (${s(skip.events, "event")}): ${skip.why}`);
    }
  }
  lines.push("");
  if (totals.widened > 0) {
    lines.push(
      at.allowWidening
        ? `Result: ${s(totals.widened, "decision")} would widen; accepted with --allow-widening`
        : `Result: ${s(totals.widened, "decision")} would widen: exit 1 (pass --allow-widening to accept)`,
    );
  } else {
    lines.push(
      `Result: no recorded decision would widen${totals.narrowed ? ` (${totals.narrowed} would narrow)` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
