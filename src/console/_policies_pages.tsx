/** @jsxImportSource hono/jsx */
// Policies: the effective set by source, an editor validated as you type (with the plan of flips), applied with put.
import type { Context, Hono } from "hono";
import type { PlanGroup, PlanReport } from "../lifecycle/mod.ts";
import { ProblemError, toProblem } from "../http/problem.ts";
import { allow, can, type ConsoleDeps, type ConsoleEnv, sessionOf } from "./_context.ts";
import { Csrf, page } from "./_layout.tsx";
import { notPermitted } from "./_plugins_pages.tsx";
import { policyFileName } from "../http/policy_file_name.ts";

/** Recorded events a validation replays for its plan: enough to show flips, few enough to answer as you type. */
const PLAN_WINDOW = { last: 1000 };

/** What the editor shows about a candidate file. */
export type Validation =
  | { valid: true; plan?: PlanSummary }
  | { valid: false; message: string; line?: number; column?: number; file?: string };

/** The plan as the editor shows it: totals and the groups that flip. */
interface PlanSummary {
  totals: PlanReport["totals"];
  widenings: { label: string; count: number }[];
  narrowings: { label: string; count: number }[];
}

/** Registers the policy pages on the console app. */
export function policiesPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;

  app.get("/policies", (c) => {
    if (!can(deps, c, "policy.read")) return notPermitted(c, "policies", "policy.read");
    const edit = c.req.query("edit");
    const source = edit ? services.policies.sources().find((s) => s.kind === "file" && s.name === edit) : undefined;
    const applied = c.req.query("applied");
    return policiesPage(c, 200, {
      name: source?.name ?? (edit ? policyFileName(edit) : ""),
      text: source?.text ?? "",
      ...(applied ? { applied: `Applied ${applied}: policy set version ${c.req.query("version") ?? "?"}` } : {}),
    });
  });

  app.post("/policies/validate", async (c) => {
    allow(deps, c, "policy.read");
    const body = await c.req.json().catch(() => undefined) as { name?: unknown; text?: unknown } | undefined;
    if (typeof body?.text !== "string" || typeof body.name !== "string") {
      throw new ProblemError("bad-request", 'Send JSON {"name": "<file>.cedar", "text": "<Cedar>"}');
    }
    return c.json(await validate(policyFileName(body.name), body.text, can(deps, c, "audit.read")));
  });

  app.post("/policies/apply", async (c) => {
    allow(deps, c, "policy.write");
    const form = await c.req.parseBody();
    const rawName = typeof form.name === "string" ? form.name.trim() : "";
    const text = typeof form.text === "string" ? form.text : "";
    let name: string;
    try {
      name = policyFileName(rawName);
    } catch (error) {
      return policiesPage(c, 400, { name: rawName, text, error: { valid: false, message: (error as Error).message } });
    }
    try {
      const version = await services.policies.put(name, text);
      return c.redirect(`/console/policies?applied=${encodeURIComponent(name)}&version=${version}`, 303);
    } catch (error) {
      const problem = failure(error);
      if (problem === undefined) throw error;
      return policiesPage(c, 400, { name, text, error: problem });
    }
  });

  async function validate(name: string, text: string, withPlan: boolean): Promise<Validation> {
    if (services.policies.plan === undefined) {
      throw new ProblemError("not-found", "This gateway does not validate candidate policies");
    }
    try {
      const report = await services.policies.plan({ files: { [name]: text } }, PLAN_WINDOW);
      return withPlan ? { valid: true, plan: summary(report) } : { valid: true };
    } catch (error) {
      const problem = failure(error);
      if (problem === undefined) throw error;
      return problem;
    }
  }

  function policiesPage(
    c: Context<ConsoleEnv>,
    status: number,
    editor: { name: string; text: string; error?: Validation; applied?: string },
  ) {
    const sources = services.policies.sources();
    const writable = can(deps, c, "policy.write");
    const error = editor.error?.valid === false ? editor.error : undefined;
    return page(
      c,
      { title: "Policies", section: "policies", status },
      <>
        <h1>
          Policies <span class="hint">version {services.policies.version()}</span>
        </h1>
        {editor.applied ? <p id="policy-applied" class="ok">{editor.applied}</p> : null}
        {writable
          ? (
            <section class="card">
              <h2>Edit an operator file</h2>
              <form id="policy-form" method="post" action="/console/policies/apply">
                <Csrf session={sessionOf(c)} />
                <label>
                  File
                  <input id="policy-name" name="name" value={editor.name} placeholder="example.cedar" required />
                </label>
                <label>
                  Cedar
                  <textarea id="policy-editor" name="text" rows={14} spellcheck={false}>{editor.text}</textarea>
                </label>
                <div
                  id="policy-error"
                  class="error"
                  role="status"
                  data-state={error ? "invalid" : editor.text ? "pending" : "valid"}
                >
                  {error ? where(error) : ""}
                </div>
                <section id="policy-plan" class="plan"></section>
                <button id="policy-apply" type="submit">Apply</button>
              </form>
            </section>
          )
          : null}
        <h2>Effective set by source</h2>
        {sources.map((source) => (
          <section data-testid="policy-source" data-name={source.name} data-kind={source.kind} class="card source">
            <h3>
              {source.name} <span class="hint">{source.kind}</span> {writable && source.kind === "file"
                ? <a class="policy-edit" href={`/console/policies?edit=${encodeURIComponent(source.name)}`}>edit</a>
                : null}
            </h3>
            <pre>{source.text}</pre>
          </section>
        ))}
      </>,
    );
  }
}

/** A validation failure with its position, or undefined for an error that is not about the text. */
function failure(error: unknown): Validation | undefined {
  const { body } = toProblem(error);
  if (body.status !== 400 && body.status !== 422 && body.status !== 409) return undefined;
  const extra = body as unknown as { line?: unknown; column?: unknown; file?: unknown; source?: unknown };
  return {
    valid: false,
    message: body.detail,
    ...(typeof extra.line === "number" ? { line: extra.line } : {}),
    ...(typeof extra.column === "number" ? { column: extra.column } : {}),
    ...(typeof extra.file === "string"
      ? { file: extra.file }
      : typeof extra.source === "string"
      ? { file: extra.source }
      : {}),
  };
}

function where(error: Extract<Validation, { valid: false }>): string {
  // The engine's messages usually name the position already; say it once.
  if (error.line === undefined || error.message.includes(`line ${error.line}`)) return error.message;
  return `line ${error.line}${error.column !== undefined ? `, column ${error.column}` : ""}: ${error.message}`;
}

function summary(report: PlanReport): PlanSummary {
  const label = (group: PlanGroup) => ({
    label: `${group.plugin} ${group.action} ${group.policies.map((policy) => policy.id).join(", ")}`.trim(),
    count: group.decisions,
  });
  return {
    totals: report.totals,
    widenings: report.widenings.slice(0, 20).map(label),
    narrowings: report.narrowings.slice(0, 20).map(label),
  };
}
