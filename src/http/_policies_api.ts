// /v1/policies: the effective set, and operator policy files written and removed.
import { Hono } from "hono";
import type { Allow, ApiEnv } from "./_api.ts";
import { quoteValue, readText } from "./_input.ts";
import { ProblemError } from "./problem.ts";
import type { GatewayServices } from "./services.ts";

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

  app.put("/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyName(c.req.param("name"));
    // The engine bounds the text (size, nesting of every construct) before cedar-wasm sees it: a 400 with line and column.
    const text = await readText(c, "The policy text");
    const version = await services.policies.put(name, text);
    return c.json({ name, version });
  });

  app.delete("/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyName(c.req.param("name"));
    if (!await services.policies.remove(name)) {
      throw new ProblemError("not-found", `There is no operator policy "${name}"`);
    }
    return c.body(null, 204);
  });

  return app;
}

/** A policy file name: `<name>` or `<name>.cedar`, not hidden, no path. */
function policyName(raw: string): string {
  const name = raw.endsWith(".cedar") ? raw.slice(0, -".cedar".length) : raw;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    throw new ProblemError(
      "bad-request",
      `Policy name ${quoteValue(raw)} is invalid: a name is 1-128 letters, digits, "_", "-" or "." and does not ` +
        `start with "."`,
      { name: raw },
    );
  }
  return `${name}.cedar`;
}
