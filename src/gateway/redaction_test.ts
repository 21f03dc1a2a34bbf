import assert from "node:assert/strict";
import { DEFAULT_CONFIG, type RouteConfig } from "../config/mod.ts";
import { createRedaction } from "./_redaction.ts";

const route = (config: Record<string, string>): RouteConfig => ({
  name: "r",
  match: { path: "/r" },
  handler: { plugin: "quoter", export: "handle" },
  auth: "token",
  timeouts: { connectMs: 1, responseMs: 1 },
  hooks: [{ plugin: "guard", on: "request", priority: 0, failure: "closed", export: "on_request", config }],
});

Deno.test("createRedaction() tracks the config values named by configKeys across plugin and route changes", () => {
  const lines: string[] = [];
  const redaction = createRedaction({ ...DEFAULT_CONFIG.redact, configKeys: ["api_key", "pin"] }, (l) => lines.push(l));
  redaction.track([{ name: "a", config: { api_key: "plugin-a-secret", region: "eu-west-1", pin: "42" } }], [
    route({ api_key: "hook-secret-1" }),
  ]);
  const mask = redaction.host.redactLog!;
  assert.equal(mask("plugin-a-secret hook-secret-1 eu-west-1 42"), "[REDACTED] [REDACTED] eu-west-1 42");
  assert.deepEqual(lines, [
    'keycard: redact: plugin "a" config "pin" has fewer than 4 characters (redact.minLength): it is not masked',
  ]);
  // Plugin "a" removed, the route reloaded without the hook's key: their values are no longer secrets.
  redaction.track([{ name: "b", config: { api_key: "plugin-b-secret", pin: "42" } }], [route({})]);
  assert.equal(mask("plugin-a-secret plugin-b-secret hook-secret-1"), "plugin-a-secret [REDACTED] hook-secret-1");
  assert.equal(lines.length, 2, "each short value is noted once per plugin and key");
});

Deno.test("createRedaction() learns the secret headers of routed requests and masks audit events", () => {
  const redaction = createRedaction(DEFAULT_CONFIG.redact, () => {});
  redaction.observe(new Request("http://gw/r", { headers: { cookie: "sid=session-0123", "x-api-key": "k-44556677" } }));
  const event = { resource: 'Key::"p/p/session-0123"', errors: ["bad key k-44556677"] };
  assert.deepEqual(redaction.audit.redact!(event as never), {
    resource: 'Key::"p/p/[REDACTED]"',
    errors: ["bad key [REDACTED]"],
  });
});

Deno.test("createRedaction() with nothing to mask passes no option, so that audit and logs skip masking", () => {
  const redaction = createRedaction({ ...DEFAULT_CONFIG.redact, headers: [] }, () => {});
  assert.deepEqual(redaction.audit, {});
  assert.deepEqual(redaction.host, {});
  assert.equal(redaction.line("anything"), "anything");
});
