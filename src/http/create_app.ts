import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { consoleApp } from "../console/mod.ts";
import { type ApiEnv, authorizer } from "./_api.ts";
import { auditApi } from "./_audit_api.ts";
import { authorizeApi } from "./_authorize_api.ts";
import { conformanceApi } from "./_conformance_api.ts";
import { pluginsApi } from "./_plugins_api.ts";
import { policiesApi } from "./_policies_api.ts";
import { Metrics } from "./metrics.ts";
import { OPENAPI } from "./openapi.ts";
import { problem, ProblemError, toProblem } from "./problem.ts";
import type { GatewayServices, StoreView } from "./services.ts";

/**
 * Builds keycard's HTTP API as a Hono app: health, metrics, OpenAPI, and the
 * `/v1` resources as sub-apps (plugins, conformance, policies, authorize,
 * audit), each route authenticated by bearer token and decided as a Cedar API
 * action. Every error is `application/problem+json` with a stable `type`,
 * translated in one error handler.
 *
 * @param services What the API serves (see {@linkcode GatewayServices}).
 * @param metrics Where calls are counted (shared with the route runner).
 * @returns The app and its metrics.
 *
 * @example Serve the API
 * ```ts ignore
 * import { createApp } from "./create_app.ts";
 * const { app } = createApp(services);
 * Deno.serve({ hostname: "127.0.0.1", port: 8080 }, app.fetch);
 * ```
 */
export function createApp(
  services: GatewayServices,
  metrics: Metrics = new Metrics(),
): { app: Hono<ApiEnv>; metrics: Metrics } {
  const app = new Hono<ApiEnv>();

  app.onError((error, c) => {
    const { body, headers } = toProblem(error);
    return c.body(JSON.stringify(body), body.status as 400, {
      "content-type": "application/problem+json",
      ...headers,
    });
  });
  app.notFound((c) =>
    c.body(JSON.stringify(problem("not-found", `No route ${c.req.method} ${c.req.path}`)), 404, {
      "content-type": "application/problem+json",
    })
  );

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get(
    "/readyz",
    (c) => {
      if (!services.ready()) {
        return c.body(JSON.stringify(problem("not-ready", "Policies or plugins are still loading")), 503, {
          "content-type": "application/problem+json",
        });
      }
      const failed = services.startFailures?.() ?? [];
      const store = services.store?.();
      // Degraded: serving, with the plugins that failed at start named, or from memory while the shared store is
      // down (still 200: a load balancer that took every replica out would turn a store outage into a full one).
      const degraded = failed.length > 0 || (store?.kind === "postgres" && store.state === "down");
      return c.json({
        status: degraded ? "degraded" : "ready",
        policyVersion: services.policies.version(),
        ...(failed.length ? { failed } : {}),
        ...(store ? { store } : {}),
      });
    },
  );
  // Plugin names and counts are not for anyone who can connect, unless the operator says so.
  if (services.metricsAccess !== "open") {
    app.use("/metrics", bearer(services), async (c, next) => {
      authorizer(services)(c, "audit.read");
      await next();
    });
  }
  app.get("/metrics", (c) => {
    const stats = services.stats();
    const text = metrics.render({
      queued: stats.queued,
      rejected: stats.rejected,
      instances: stats.instances,
      replaced: stats.replaced,
      recycled: stats.recycled,
      retired: stats.retired,
      ...(services.pluginStats ? { plugins: services.pluginStats() } : {}),
      ...(services.workerStats ? { workers: services.workerStats() } : {}),
      policyVersion: services.policies.version(),
      ...(services.policies.stats ? { engine: services.policies.stats() } : {}),
      decisions: services.audit.counters(),
      audit: services.audit.stats(),
      ...storeGauges(services.store?.()),
    });
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
  app.get("/openapi.json", (c) => c.json(OPENAPI));

  // Everything under /v1: a body limit, a bearer token, a Cedar decision.
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: services.maxBodyBytes,
      onError: () => {
        throw new ProblemError("payload-too-large", `Request body exceeds ${services.maxBodyBytes} bytes`);
      },
    }),
  );
  app.use("/v1/*", bearer(services));

  const allow = authorizer(services);
  app.route("/v1/plugins", pluginsApi(services, allow, metrics));
  app.route("/v1/conformance", conformanceApi(services, allow));
  app.route("/v1/policies", policiesApi(services, allow));
  app.route("/v1/authorize", authorizeApi(services, allow));
  app.route("/v1/audit", auditApi(services, allow));

  app.route(
    "/console",
    consoleApp(services, { metrics, ...(services.consoleSessions ? { sessions: services.consoleSessions } : {}) }),
  );

  // Everything else: the configured routes (plugin hook chains in front of upstreams).
  app.all("*", async (c) => {
    const response = await services.route?.(c.req.raw, remoteOf(c));
    if (response) return response;
    throw new ProblemError("not-found", `No route ${c.req.method} ${c.req.path}`);
  });

  return { app, metrics };
}

/** The client's address, as Deno.serve passes it (`""` in-process). */
function remoteOf(c: Context): string {
  return (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname ?? "";
}

/**
 * Authenticates the bearer token: sets the client, or answers 401; past the throttle's failures for the client's
 * address, 429 with Retry-After. A valid token is never throttled.
 */
function bearer(services: GatewayServices): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const client = match ? services.authenticate(match[1]!) : undefined;
    if (!client) {
      const wait = services.authThrottle?.fail(remoteOf(c)) ?? 0;
      if (wait > 0) {
        c.header("retry-after", String(wait));
        throw new ProblemError("throttled", `Too many failed authentications: retry after ${wait} s`, {
          retryAfterSeconds: wait,
        });
      }
      c.header("www-authenticate", 'Bearer realm="keycard"');
      throw new ProblemError(
        "unauthenticated",
        match ? "The bearer token is not valid" : "Send Authorization: Bearer <token>",
      );
    }
    c.set("client", client);
    await next();
  };
}

/** The shared store's gauges for /metrics, when there is one. */
function storeGauges(store: StoreView | undefined): { store?: { up: boolean; spooled: number } } {
  return store?.kind === "postgres" ? { store: { up: store.state === "up", spooled: store.spooled } } : {};
}
