// /v1/plugins: list, read, install, remove, invoke.
import { Hono } from "hono";
import { checkPluginVersion } from "../registry/mod.ts";
import type { Allow, ApiEnv } from "./_api.ts";
import { pluginNameParam, readUpload, versionQuery } from "./_input.ts";
import type { Metrics } from "./metrics.ts";
import { ProblemError, problemKind } from "./problem.ts";
import type { GatewayServices } from "./services.ts";

/** The version of a plugin installed from a bare module with no `?version=`. */
const BARE_VERSION = "0.0.0";

/** The `/v1/plugins` sub-app. */
export function pluginsApi(services: GatewayServices, allow: Allow, metrics: Metrics): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get("/", async (c) => {
    allow(c, "plugin.read");
    return c.json({ plugins: await services.plugins.list() });
  });

  app.get("/:name", async (c) => {
    const name = pluginNameParam(c);
    const version = versionQuery(c, name);
    allow(c, "plugin.read", services.pluginResource(name));
    const plugin = await services.plugins.get(name, version);
    if (!plugin) {
      throw new ProblemError(
        "not-found",
        version ? `Plugin "${name}" has no version "${version}" installed` : `Plugin "${name}" is not installed`,
        { plugin: name, ...(version ? { version } : {}) },
      );
    }
    return c.json(plugin);
  });

  app.put("/:name", async (c) => {
    const name = pluginNameParam(c);
    const version = versionQuery(c, name);
    allow(c, "plugin.install", services.pluginResource(name));
    const upload = await readUpload(c);
    let manifest: string;
    if (upload.manifest === undefined) {
      if (c.req.header("content-type")?.toLowerCase().startsWith("multipart/")) {
        throw new ProblemError(
          "bad-request",
          'Multipart field "manifest" (plugin.yaml text) is missing; send a bare application/wasm body to install ' +
            "a module without one",
        );
      }
      manifest = bareManifest(name, version ?? BARE_VERSION);
    } else {
      if (upload.manifest.trim() === "") {
        throw new ProblemError("bad-request", 'Multipart field "manifest" (plugin.yaml text) is empty');
      }
      manifest = upload.manifest;
      if (version !== undefined) {
        throw new ProblemError(
          "bad-request",
          `"?version=${version}" applies to a bare application/wasm body only: the manifest says the version`,
          { version },
        );
      }
    }
    const { plugin, report } = await services.plugins.install(name, upload.wasm, manifest);
    return c.json({ name: plugin.name, version: plugin.version, sha256: plugin.sha256, report }, 201);
  });

  app.delete("/:name", async (c) => {
    const name = pluginNameParam(c);
    const version = versionQuery(c, name);
    allow(c, "plugin.remove", services.pluginResource(name));
    const removed = await services.plugins.remove(name, version);
    if (removed.length === 0) {
      throw new ProblemError(
        "not-found",
        version ? `Plugin "${name}" has no version "${version}" installed` : `Plugin "${name}" is not installed`,
        { plugin: name, ...(version ? { version } : {}) },
      );
    }
    return c.body(null, 204);
  });

  app.post("/:name/invoke/:export", async (c) => {
    const name = pluginNameParam(c);
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

  return app;
}

/**
 * The manifest of a module installed without one: its name (from the URL) and
 * version, and nothing else: no exports declared, no capabilities, no grants,
 * so the plugin may call no privileged host function (deny by default). The
 * values are JSON-quoted, so that a name such as `true` or `1e3` stays a string.
 */
function bareManifest(name: string, version: string): string {
  return `name: ${JSON.stringify(name)}\nversion: ${JSON.stringify(checkPluginVersion(version, name))}\n`;
}
