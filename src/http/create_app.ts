import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import type { AuditEvent } from "../audit/mod.ts";
import { clientEntity, type Entity } from "../policy/mod.ts";
import { Metrics } from "./metrics.ts";
import { OPENAPI } from "./openapi.ts";
import { problem, ProblemError, problemKind, toProblem } from "./problem.ts";
import type { Client, GatewayServices } from "./services.ts";

type Env = { Variables: { client: Client } };

const API: Entity = { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] };
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Builds keycard's HTTP API as a Hono app: health, metrics, OpenAPI, and the
 * `/v1` routes, each authenticated by bearer token and decided as a Cedar API
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
): { app: Hono<Env>; metrics: Metrics } {
  const app = new Hono<Env>();

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
    (c) =>
      services.ready()
        ? c.json({
          // Degraded: serving, with the plugins that failed at start named.
          status: services.startFailures?.().length ? "degraded" : "ready",
          policyVersion: services.policies.version(),
          ...(services.startFailures?.().length ? { failed: services.startFailures() } : {}),
        })
        : c.body(JSON.stringify(problem("not-ready", "Policies or plugins are still loading")), 503, {
          "content-type": "application/problem+json",
        }),
  );
  app.get("/metrics", (c) => {
    const stats = services.stats();
    const text = metrics.render({
      queued: stats.queued,
      rejected: stats.rejected,
      instances: stats.instances,
      replaced: stats.replaced,
      policyVersion: services.policies.version(),
      decisions: services.audit.counters(),
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
  app.use("/v1/*", async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const client = match ? services.authenticate(match[1]!) : undefined;
    if (!client) {
      c.header("www-authenticate", 'Bearer realm="keycard"');
      throw new ProblemError(
        "unauthenticated",
        match ? "The bearer token is not valid" : "Send Authorization: Bearer <token>",
      );
    }
    c.set("client", client);
    await next();
  });

  /** Decides an API action for the current client; throws 403 when Cedar denies. */
  function allow(c: Context<Env>, action: string, resource: Entity = API): void {
    const client = c.get("client");
    const decision = services.authorize({
      principal: clientEntity({ id: client.id, roles: client.roles }),
      action,
      resource,
      context: {},
    });
    if (decision.decision === "deny") {
      throw new ProblemError(
        "forbidden",
        `Client "${client.id}" may not ${action} ${resource.uid.type}::${
          JSON.stringify(resource.uid.id)
        }: ${decision.reason}`,
        { action, policies: decision.policies },
      );
    }
  }

  function pluginName(c: Context<Env>): string {
    const name = c.req.param("name") ?? "";
    if (!NAME.test(name)) throw new ProblemError("bad-request", `Plugin name ${JSON.stringify(name)} is not valid`);
    return name;
  }

  app.get("/v1/plugins", async (c) => {
    allow(c, "plugin.read");
    return c.json({ plugins: await services.plugins.list() });
  });

  app.get("/v1/plugins/:name", async (c) => {
    const name = pluginName(c);
    allow(c, "plugin.read", services.pluginResource(name));
    const version = c.req.query("version");
    const plugin = await services.plugins.get(name, version);
    if (!plugin) {
      throw new ProblemError(
        "not-found",
        version ? `Plugin "${name}" has no version "${version}" installed` : `Plugin "${name}" is not installed`,
        { plugin: name },
      );
    }
    return c.json(plugin);
  });

  app.put("/v1/plugins/:name", async (c) => {
    const name = pluginName(c);
    allow(c, "plugin.install", services.pluginResource(name));
    const { wasm, manifest } = await readUpload(c, true);
    const { plugin, report } = await services.plugins.install(name, wasm, manifest!);
    return c.json({ name: plugin.name, version: plugin.version, sha256: plugin.sha256, report }, 201);
  });

  app.delete("/v1/plugins/:name", async (c) => {
    const name = pluginName(c);
    allow(c, "plugin.remove", services.pluginResource(name));
    const removed = await services.plugins.remove(name, c.req.query("version"));
    if (removed.length === 0) {
      throw new ProblemError("not-found", `Plugin "${name}" has no such version installed`, { plugin: name });
    }
    return c.body(null, 204);
  });

  app.post("/v1/plugins/:name/invoke/:export", async (c) => {
    const name = pluginName(c);
    const exportName = c.req.param("export");
    allow(c, "plugin.call", services.pluginResource(name));
    const input = new Uint8Array(await c.req.arrayBuffer());
    const callId = crypto.randomUUID();
    const started = performance.now();
    c.header("x-keycard-call-id", callId);
    try {
      const output = await services.invoke(name, exportName, input, {
        callId,
        hostContext: { caller: c.get("client").id },
      });
      const ms = performance.now() - started;
      metrics.observeCall(name, exportName, "ok", ms / 1000);
      c.header("server-timing", `plugin;dur=${ms.toFixed(3)}`);
      return c.body(output as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/octet-stream" });
    } catch (error) {
      const ms = performance.now() - started;
      const kind = problemKind(error);
      // Names from the URL become labels only when they exist: a caller must not grow /metrics at will.
      if (kind === "not-found") metrics.observeCall("(unknown)", "(unknown)", kind, ms / 1000);
      else metrics.observeCall(name, exportName, kind, ms / 1000);
      c.header("server-timing", `plugin;dur=${ms.toFixed(3)}`);
      throw error;
    }
  });

  app.post("/v1/conformance", async (c) => {
    allow(c, "conformance.run");
    const { wasm, manifest } = await readUpload(c, false);
    return c.json(await services.conformance(wasm, manifest));
  });

  app.get("/v1/policies", (c) => {
    allow(c, "policy.read");
    return c.json({
      version: services.policies.version(),
      sources: services.policies.sources(),
      policies: services.policies.list().map(({ id, effect, source, line }) => ({ id, effect, source, line })),
    });
  });

  app.put("/v1/policies/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyName(c.req.param("name"));
    const text = await c.req.text();
    const version = await services.policies.put(name, text);
    return c.json({ name, version });
  });

  app.delete("/v1/policies/:name", async (c) => {
    allow(c, "policy.write");
    const name = policyName(c.req.param("name"));
    if (!await services.policies.remove(name)) {
      throw new ProblemError("not-found", `There is no operator policy "${name}"`);
    }
    return c.body(null, 204);
  });

  app.post("/v1/authorize", async (c) => {
    allow(c, "policy.read");
    const body = await readJson(c);
    const request = body as { principal?: unknown; action?: unknown; resource?: unknown; context?: unknown };
    const entity = (value: unknown, name: string): Entity => {
      const v = value as { type?: unknown; id?: unknown; attrs?: unknown; parents?: unknown } | undefined;
      if (typeof v?.type !== "string" || typeof v.id !== "string") {
        throw new ProblemError("bad-request", `"${name}" needs "type" and "id" strings`);
      }
      return {
        uid: { type: v.type, id: v.id },
        attrs: (typeof v.attrs === "object" && v.attrs !== null ? v.attrs : {}) as Record<string, unknown>,
        parents: Array.isArray(v.parents) ? v.parents as Entity["parents"] : [],
      };
    };
    if (typeof request.action !== "string") throw new ProblemError("bad-request", `"action" must be a string`);
    const decision = services.authorize({
      principal: entity(request.principal, "principal"),
      action: request.action,
      resource: entity(request.resource, "resource"),
      context: (typeof request.context === "object" && request.context !== null ? request.context : {}) as Record<
        string,
        unknown
      >,
    });
    return c.json(decision);
  });

  app.get("/v1/audit", (c) => {
    allow(c, "audit.read");
    return c.json({ events: services.audit.query(auditQuery(c)) });
  });

  app.get("/v1/audit/stream", (c) => {
    allow(c, "audit.read");
    const { plugin, action, decision } = auditQuery(c);
    return streamSSE(c, async (stream) => {
      const queue: AuditEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = services.audit.subscribe((event) => {
        if (plugin && event.plugin !== plugin) return;
        if (action && event.action !== action) return;
        if (decision && event.decision !== decision) return;
        queue.push(event);
        wake?.();
      });
      let closed = false;
      stream.onAbort(() => {
        closed = true;
        wake?.();
      });
      try {
        await stream.writeSSE({ event: "ready", data: "{}" });
        while (!closed) {
          if (queue.length === 0) {
            let timer: ReturnType<typeof setTimeout> | undefined;
            await new Promise<void>((resolve) => {
              wake = resolve;
              timer = setTimeout(resolve, 15_000); // keep-alive
            });
            clearTimeout(timer);
            wake = undefined;
            if (queue.length === 0 && !closed) await stream.writeSSE({ event: "ping", data: "{}" });
          }
          for (const event of queue.splice(0)) {
            await stream.writeSSE({ event: "decision", id: event.callId, data: JSON.stringify(event) });
          }
        }
      } finally {
        unsubscribe();
      }
    });
  });

  // Everything else: the configured routes (plugin hook chains in front of upstreams).
  app.all("*", async (c) => {
    const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
    const response = await services.route?.(c.req.raw, info?.remoteAddr?.hostname ?? "");
    if (response) return response;
    throw new ProblemError("not-found", `No route ${c.req.method} ${c.req.path}`);
  });

  return { app, metrics };
}

function policyName(raw: string): string {
  const name = raw.endsWith(".cedar") ? raw.slice(0, -".cedar".length) : raw;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    throw new ProblemError(
      "bad-request",
      `Policy name ${JSON.stringify(raw)} is not valid: use letters, digits, "_", "-"`,
    );
  }
  return `${name}.cedar`;
}

function auditQuery(c: Context<Env>) {
  const decision = c.req.query("decision");
  if (decision !== undefined && decision !== "allow" && decision !== "deny") {
    throw new ProblemError("bad-request", `"decision" must be "allow" or "deny", got ${JSON.stringify(decision)}`);
  }
  const limitText = c.req.query("limit");
  const limit = limitText === undefined ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new ProblemError(
      "bad-request",
      `"limit" must be an integer from 1 to 10000, got ${JSON.stringify(limitText)}`,
    );
  }
  const since = c.req.query("since");
  if (since !== undefined && Number.isNaN(Date.parse(since))) {
    throw new ProblemError("bad-request", `"since" must be an ISO 8601 time, got ${JSON.stringify(since)}`);
  }
  const plugin = c.req.query("plugin");
  const action = c.req.query("action");
  return {
    limit,
    ...(plugin ? { plugin } : {}),
    ...(action ? { action } : {}),
    ...(decision ? { decision: decision as "allow" | "deny" } : {}),
    ...(since ? { since } : {}),
  };
}

async function readJson(c: Context<Env>): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch (error) {
    throw new ProblemError("bad-request", `Request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ProblemError("bad-request", "Request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Reads `wasm` (+ `manifest`) from multipart, or a bare `application/wasm` body. */
async function readUpload(
  c: Context<Env>,
  manifestRequired: boolean,
): Promise<{ wasm: Uint8Array; manifest?: string }> {
  const type = c.req.header("content-type") ?? "";
  if (type.startsWith("application/wasm")) {
    if (manifestRequired) {
      throw new ProblemError(
        "bad-request",
        "Send multipart/form-data with a `wasm` file and a `manifest` (plugin.yaml)",
      );
    }
    return { wasm: new Uint8Array(await c.req.arrayBuffer()) };
  }
  if (!type.startsWith("multipart/form-data")) {
    throw new ProblemError(
      "unsupported-media-type",
      `Expected multipart/form-data${manifestRequired ? "" : " or application/wasm"}, got ${JSON.stringify(type)}`,
    );
  }
  let form: Record<string, string | File | (string | File)[]>;
  try {
    form = await c.req.parseBody({ all: false });
  } catch (error) {
    throw new ProblemError("bad-request", `Malformed multipart body: ${(error as Error).message}`);
  }
  const wasm = form.wasm;
  if (!(wasm instanceof File)) throw new ProblemError("bad-request", "Multipart field `wasm` (a file) is missing");
  const manifest = form.manifest;
  const manifestText = manifest instanceof File ? await manifest.text() : typeof manifest === "string" ? manifest : "";
  if (manifestRequired && manifestText === "") {
    throw new ProblemError("bad-request", "Multipart field `manifest` (plugin.yaml text) is missing");
  }
  return { wasm: new Uint8Array(await wasm.arrayBuffer()), ...(manifestText ? { manifest: manifestText } : {}) };
}
