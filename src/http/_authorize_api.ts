// /v1/authorize: a dry run of one Cedar request, checked in full before the engine sees it.
import { Hono } from "hono";
import type { Entity, EntityUid } from "../policy/mod.ts";
import type { Allow, ApiEnv } from "./_api.ts";
import { quoteValue, readJsonObject } from "./_input.ts";
import { ProblemError } from "./problem.ts";
import type { GatewayServices } from "./services.ts";

/** Largest dry-run request, in bytes: far above any real one, far below the server's body limit. */
const MAX_BYTES = 65_536;
/** Deepest nesting of a dry-run request: deep enough for any schema's records, shallow for cedar-wasm's stack. */
const MAX_DEPTH = 32;
const KEYS = new Set(["principal", "action", "resource", "context"]);

/** The `/v1/authorize` sub-app. */
export function authorizeApi(services: GatewayServices, allow: Allow): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post("/", async (c) => {
    allow(c, "policy.read");
    const body = await readJsonObject(c, { maxBytes: MAX_BYTES, maxDepth: MAX_DEPTH });
    const unknown = Object.keys(body).filter((key) => !KEYS.has(key));
    if (unknown.length > 0) {
      throw new ProblemError(
        "bad-request",
        `Unknown member ${quoteValue(unknown[0])}: a request has "principal", "action", "resource" and "context"`,
      );
    }
    if (typeof body.action !== "string" || body.action === "") {
      throw new ProblemError("bad-request", `"action" must be a non-empty string, got ${quoteValue(body.action)}`);
    }
    return c.json(services.authorize({
      principal: entity(body.principal, "principal"),
      action: body.action,
      resource: entity(body.resource, "resource"),
      context: record(body.context, "context"),
    }));
  });
  return app;
}

function entity(value: unknown, name: string): Entity {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProblemError(
      "bad-request",
      `"${name}" must be an object with "type" and "id" strings, got ${quoteValue(value)}`,
    );
  }
  const { type, id, attrs, parents, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) {
    throw new ProblemError(
      "bad-request",
      `Unknown member ${quoteValue(extra)} of "${name}": an entity has "type", "id", "attrs" and "parents"`,
    );
  }
  if (parents !== undefined && !Array.isArray(parents)) {
    throw new ProblemError("bad-request", `"${name}.parents" must be a list, got ${quoteValue(parents)}`);
  }
  return {
    uid: uid({ type, id }, name),
    attrs: record(attrs, `${name}.attrs`),
    parents: (parents ?? []).map((parent: unknown, i: number) => uid(parent, `${name}.parents[${i}]`)),
  };
}

function uid(value: unknown, name: string): EntityUid {
  const v = value as { type?: unknown; id?: unknown } | null;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProblemError("bad-request", `"${name}" must be {"type", "id"}, got ${quoteValue(value)}`);
  }
  for (const key of ["type", "id"] as const) {
    if (typeof v[key] !== "string" || (key === "type" && v[key] === "")) {
      throw new ProblemError("bad-request", `"${name}.${key}" must be a non-empty string, got ${quoteValue(v[key])}`);
    }
  }
  return { type: v.type as string, id: v.id as string };
}

function record(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProblemError("bad-request", `"${name}" must be an object, got ${quoteValue(value)}`);
  }
  return value as Record<string, unknown>;
}
