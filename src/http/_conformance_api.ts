// /v1/conformance: the admission suite on an upload, installing nothing.
import { Hono } from "hono";
import type { Allow, ApiEnv } from "./_api.ts";
import { quoteValue, readUpload, singleQuery } from "./_input.ts";
import { ProblemError } from "./problem.ts";
import type { GatewayServices } from "./services.ts";

/** The `/v1/conformance` sub-app; `?propose=true` adds the least grant proposed from the run (`proposal`). */
export function conformanceApi(services: GatewayServices, allow: Allow): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post("/", async (c) => {
    allow(c, "conformance.run");
    const propose = singleQuery(c, "propose");
    if (propose !== undefined && propose !== "true" && propose !== "false") {
      throw new ProblemError("bad-request", `"propose" must be "true" or "false", got ${quoteValue(propose)}`);
    }
    const { wasm, manifest } = await readUpload(c);
    return c.json(await services.conformance(wasm, manifest || undefined, { propose: propose === "true" }));
  });
  return app;
}
