// /v1/conformance: the admission suite on an upload, installing nothing.
import { Hono } from "hono";
import type { Allow, ApiEnv } from "./_api.ts";
import { readUpload } from "./_input.ts";
import type { GatewayServices } from "./services.ts";

/** The `/v1/conformance` sub-app. */
export function conformanceApi(services: GatewayServices, allow: Allow): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post("/", async (c) => {
    allow(c, "conformance.run");
    const { wasm, manifest } = await readUpload(c);
    return c.json(await services.conformance(wasm, manifest || undefined));
  });
  return app;
}
