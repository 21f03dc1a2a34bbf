// /v1/audit: recent decisions, and the same live as server-sent events.
import { type Context, Hono } from "hono";
import type { AuditEvent } from "../audit/mod.ts";
import type { Allow, ApiEnv } from "./_api.ts";
import { streamAudit } from "./audit_stream.ts";
import { quoteValue, singleQuery } from "./_input.ts";
import { ProblemError } from "./problem.ts";
import type { GatewayServices } from "./services.ts";

/** The `/v1/audit` sub-app. */
export function auditApi(services: GatewayServices, allow: Allow): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get("/", async (c) => {
    allow(c, "audit.read");
    const query = auditQuery(c);
    // With a shared store, every replica's events; else this process's ring.
    const events = services.auditQuery ? await services.auditQuery(query) : services.audit.query(query);
    return c.json({ events: events.map(view) });
  });

  app.get("/stream", (c) => {
    allow(c, "audit.read");
    const { plugin, action, decision } = auditQuery(c);
    return streamAudit(c, services.audit, {
      matches: (event) =>
        (!plugin || event.plugin === plugin) && (!action || event.action === action) &&
        (!decision || event.decision === decision),
      view,
    });
  });

  return app;
}

/** An event as the API shows it: `count` always present (the file leaves out a count of 1). */
function view(event: AuditEvent): AuditEvent & { count: number } {
  return { ...event, count: event.count ?? 1 };
}

function auditQuery(c: Context<ApiEnv>) {
  const decision = singleQuery(c, "decision");
  if (decision !== undefined && decision !== "allow" && decision !== "deny") {
    throw new ProblemError("bad-request", `"decision" must be "allow" or "deny", got ${quoteValue(decision)}`);
  }
  const limitText = singleQuery(c, "limit");
  const limit = limitText === undefined ? 100 : /^\d{1,5}$/.test(limitText) ? Number(limitText) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new ProblemError("bad-request", `"limit" must be an integer from 1 to 10000, got ${quoteValue(limitText)}`);
  }
  const since = singleQuery(c, "since");
  const year = since === undefined ? undefined : new Date(since).getUTCFullYear();
  if (since !== undefined && !(year !== undefined && year >= 1 && year <= 9999)) {
    throw new ProblemError(
      "bad-request",
      `"since" must be an ISO 8601 time in the years 1 to 9999, got ${quoteValue(since)}`,
    );
  }
  const plugin = singleQuery(c, "plugin");
  const action = singleQuery(c, "action");
  for (const [key, value] of [["plugin", plugin], ["action", action]] as const) {
    if (value?.includes("\0")) throw new ProblemError("bad-request", `"${key}" must not hold a NUL character`);
  }
  return {
    limit,
    ...(plugin ? { plugin } : {}),
    ...(action ? { action } : {}),
    ...(decision ? { decision: decision as "allow" | "deny" } : {}),
    ...(since ? { since } : {}),
  };
}
