// /v1/policies: the effective set, operator policy files written and removed, and the plan of a change.
import { Hono } from "hono";
import type { AuditWindow, PlanReport } from "../lifecycle/mod.ts";
import type { Allow, ApiEnv } from "./_api.ts";
import { quoteValue, readJsonObject, readText, singleQuery } from "./_input.ts";
import { ProblemError } from "./problem.ts";
import type { GatewayServices } from "./services.ts";
import { policyFileName } from "./policy_file_name.ts";

/** Longest request to explain: a request file is a few lines. */
const MAX_EXPLAIN_CHARS = 65_536;

/** The `/v1/policies` sub-app. */
export function policiesApi(services: GatewayServices, allow: Allow): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get("/", (c) => {
    allow(c, "policy.read");
    return c.json({
      version: services.policies.version(),
      sources: services.policies.sources(),
      policies: services.policies.list().map(({ id, effect, source, line }) => ({ id, effect, source, line })),
    });
  });

  // What a change would do to the recorded decisions: it reads policies and the audit, and changes nothing.
  app.post("/plan", async (c) => {
    allow(c, "policy.read");
    allow(c, "audit.read");
    const body = await readJsonObject(c, { maxBytes: services.maxBodyBytes, maxDepth: 4 });
    const unknown = Object.keys(body).find((key) => !PLAN_KEYS.has(key));
    if (unknown !== undefined) {
      throw new ProblemError(
        "bad-request",
        `Unknown member ${quoteValue(unknown)}: a plan takes "files", "remove", "last" and "since"`,
      );
    }
    const files = planFiles(body.files);
    const remove = planRemove(body.remove);
    if (body.last !== undefined && typeof body.last !== "number") {
      throw new ProblemError("bad-request", `"last" must be a positive integer, got ${quoteValue(body.last)}`);
    }
    const window = planWindow(body.last === undefined ? undefined : String(body.last), body.since);
    return c.json(await plan({ files, remove }, window));
  });

  // A decision explained: the request as `deno task policy explain` takes it; it reads policies and changes nothing.
  app.post("/explain", async (c) => {
    allow(c, "policy.read");
    if (!services.policies.explain) throw new ProblemError("not-found", "This gateway does not explain requests");
    const text = await readText(c, "The request");
    if (text.length > MAX_EXPLAIN_CHARS) {
      throw new ProblemError("payload-too-large", `The request is longer than ${MAX_EXPLAIN_CHARS} characters`);
    }
    return c.json(services.policies.explain(text));
  });

  app.put("/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyFileName(c.req.param("name"));
    const dryRun = singleQuery(c, "dryRun");
    if (dryRun !== undefined && dryRun !== "true" && dryRun !== "false") {
      throw new ProblemError("bad-request", `"dryRun" must be "true" or "false", got ${quoteValue(dryRun)}`);
    }
    // The engine bounds the text (size, nesting of every construct) before cedar-wasm sees it: a 400 with line and column.
    const text = await readText(c, "The policy text");
    if (dryRun === "true") {
      // The plan shows recorded requests: a dry run also needs audit.read.
      allow(c, "audit.read");
      const window = planWindow(singleQuery(c, "last"), singleQuery(c, "since"));
      return c.json({ name, dryRun: true, plan: await plan({ files: { [name]: text } }, window) });
    }
    const version = await services.policies.put(name, text);
    return c.json({ name, version });
  });

  app.delete("/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyFileName(c.req.param("name"));
    if (!await services.policies.remove(name)) {
      throw new ProblemError("not-found", `There is no operator policy "${name}"`);
    }
    return c.body(null, 204);
  });

  return app;

  function plan(
    change: { files: Record<string, string>; remove?: string[] },
    window: AuditWindow,
  ): Promise<PlanReport> {
    if (services.policies.plan === undefined) throw new ProblemError("not-found", "This gateway does not plan changes");
    return services.policies.plan(change, window);
  }
}

const PLAN_KEYS = new Set(["files", "remove", "last", "since"]);

/** The candidate files of a plan: `{ "<name>.cedar": "<text>" }`, each name as PUT takes it. */
function planFiles(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProblemError(
      "bad-request",
      `"files" must be an object of policy file names to their Cedar text, got ${quoteValue(value)}`,
    );
  }
  const files: Record<string, string> = {};
  for (const [raw, text] of Object.entries(value)) {
    if (typeof text !== "string") {
      throw new ProblemError("bad-request", `"files.${raw}" must be the policy text, got ${quoteValue(text)}`);
    }
    files[policyFileName(raw)] = text;
  }
  return files;
}

/** The operator files a plan removes. */
function planRemove(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((name) => typeof name !== "string")) {
    throw new ProblemError("bad-request", `"remove" must be a list of policy file names, got ${quoteValue(value)}`);
  }
  return value.map((name) => policyFileName(name));
}

/** The window of recorded events a plan replays: the last N, those since a time, or all. */
function planWindow(last: string | undefined, since: unknown): AuditWindow {
  const window: AuditWindow = {};
  if (last !== undefined) {
    if (!/^\d{1,9}$/.test(last) || Number(last) < 1) {
      throw new ProblemError("bad-request", `"last" must be a positive integer, got ${quoteValue(last)}`);
    }
    window.last = Number(last);
  }
  if (since !== undefined) {
    if (typeof since !== "string" || Number.isNaN(Date.parse(since))) {
      throw new ProblemError("bad-request", `"since" must be an ISO 8601 time, got ${quoteValue(since)}`);
    }
    window.since = since;
  }
  return window;
}
