// Redaction through the shipped command: a plugin whose manifest config holds a secret writes it into a log line and
// uses it as a kv key and a URL path, and a route hook logs the request it was given (a bearer token, an x-api-key,
// its hook config, an AWS-like key); with `redact:` set, none of it reaches the audit file, GET /v1/audit, the live
// stream or the server's log, and the mask does. Every wait is bounded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import { bearer, BOUND, expectStatus, makeSite, pluginDir, startKeycard, within } from "./_server.ts";

const decoder = new TextDecoder();

function hex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads the stream until `done(text)` holds (bounded by the caller). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (text: string) => boolean) {
  let text = "";
  while (!done(text)) {
    const { value, done: ended } = await reader.read();
    if (ended) throw new Error(`The stream ended early: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

Deno.test("deno task start masks secrets in the audit file, /v1/audit, the live stream and plugin logs", async (t) => {
  const configSecret = `sk_test_${hex(12)}`;
  const hookSecret = `hook-${hex(8)}`;
  const apiKey = `k-${hex(10)}`;
  const awsKey = `AKIA${hex(8).toUpperCase()}`;
  await using site = await makeSite({ plugins: [], routes: [] });
  const leaky = join(site.dir, "leaky.wasm");
  await Deno.writeFile(leaky, await watFixture("leaky"));
  await Deno.writeTextFile(
    join(site.dir, "leaky.yaml"),
    [
      "name: leaky",
      "version: 1.0.0",
      "description: test-only plugin that leaks its api_key config and the requests it sees",
      "exports: [{ name: leak_config }, { name: on_request }]",
      "capabilities: [log.write, kv.get, http.request]",
      "grants:",
      "  - log.write: {}",
      "  - kv: { namespace: leaky }",
      "config:",
      `  api_key: ${configSecret}`,
      "  region: eu-west-1",
      "",
    ].join("\n"),
  );
  await site.writeConfig({
    plugins: [pluginDir("quoter"), leaky],
    routes: [
      "  - name: leak",
      "    match: { path: /leak, methods: [GET] }",
      "    auth: token",
      "    handler: { plugin: quoter, export: handle }",
      "    hooks:",
      `      - { plugin: leaky, on: request, export: on_request, config: { api_key: ${hookSecret} } }`,
    ],
  });
  await Deno.writeTextFile(
    site.configPath,
    // The second pattern passes the load-time check but backtracks polynomially: the server's V8 runs it in its
    // linear engine once it backtracks too long.
    'redact:\n  configKeys: [api_key]\n  patterns: ["AKIA[0-9A-F]{16}", "[0-9]+[0-9]+[0-9]+x"]\n',
    { append: true },
  );
  const secrets = [configSecret, hookSecret, apiKey, awsKey, site.callerToken];
  const assertClean = (where: string, text: string) => {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${where} holds ${secret}:\n${text}`);
  };

  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const stream = await fetch(`${kc.base}/v1/audit/stream?plugin=leaky`, {
    headers: admin,
    signal: AbortSignal.timeout(BOUND.request * 3),
  });
  assert.equal(stream.status, 200);
  const reader = stream.body!.getReader();
  try {
    await within(BOUND.request, "the ready event", readUntil(reader, (text) => text.includes("event: ready\n")));

    await t.step("the plugin leaks its config secret; a routed request's secrets reach its hook", async () => {
      const leak = await kc.fetch("/v1/plugins/leaky/invoke/leak_config", {
        method: "POST",
        headers: bearer(site.callerToken),
      });
      assert.equal(await expectStatus(kc, leak, 200), "ok");
      const routed = await kc.fetch("/leak", {
        headers: { ...bearer(site.callerToken), "x-api-key": apiKey, "x-note": `key ${awsKey}` },
      });
      await expectStatus(kc, routed, 200);
    });

    await t.step("the live stream carries the masked decisions (log, kv key, URL path), no secret", async () => {
      // leak_config: log.write, kv.get, http.request; on_request: log.write.
      const text = await within(
        BOUND.request,
        "four decision events",
        readUntil(reader, (text) => (text.match(/event: decision\n[^]*?\n\n/g) ?? []).length >= 4),
      );
      assertClean("the live stream", text);
      const events = [...text.matchAll(/event: decision\n(?:id: .*\n)?data: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
      const kv = events.find((e) => e.action === "kv.get");
      assert.ok(kv, text);
      assert.match(kv.resource, /\[REDACTED\]/);
    });

    await t.step("a slow pattern over a 3,000-digit header logged by the hook does not stall the gateway", async () => {
      const routed = await kc.fetch("/leak", {
        headers: { ...bearer(site.callerToken), "x-digits": "1".repeat(3000) },
      });
      await expectStatus(kc, routed, 200);
      await kc.run.stderr.waitFor(/"plugin":"leaky".*"message":"request .*1{3000}/);
    });

    await t.step("GET /v1/audit answers the masked events, no secret", async () => {
      const response = await kc.fetch("/v1/audit?plugin=leaky", { headers: admin });
      const text = await expectStatus(kc, response, 200);
      assertClean("GET /v1/audit", text);
      const { events } = JSON.parse(text) as { events: { action: string; resource: string }[] };
      assert.deepEqual(events.map((e) => e.action).sort(), [
        "http.request",
        "kv.get",
        "log.write",
        "log.write",
        "log.write",
      ]);
      assert.match(events.find((e) => e.action === "kv.get")!.resource, /\[REDACTED\]/);
    });

    await t.step("the plugin's log lines on the server's stderr are masked", async () => {
      const config = JSON.parse(await kc.run.stderr.waitFor(/"plugin":"leaky".*using api key/));
      assert.equal(config.message, "using api key [REDACTED]");
      const hook = JSON.parse(await kc.run.stderr.waitFor(/"plugin":"leaky".*"message":"request /));
      const input = JSON.parse(hook.message.slice("request ".length));
      assert.equal(input.headers.authorization, "[REDACTED]");
      assert.equal(input.headers["x-api-key"], "[REDACTED]");
      assert.equal(input.headers["x-note"], "key [REDACTED]");
      assert.deepEqual(input.config, { api_key: "[REDACTED]" });
      assert.equal(input.path, "/leak", "what is not secret stays");
    });
  } finally {
    await reader.cancel().catch(() => {});
  }

  await t.step("after the stop, neither the audit file nor any output of the server holds a secret", async () => {
    const status = await kc.stop();
    assert.equal(status.code, 0, kc.run.output());
    const file = await Deno.readTextFile(join(site.dataDir, "audit.jsonl"));
    assertClean("the audit file", file);
    assert.ok(file.includes(String.raw`"action":"kv.get","resource":"Key::\"leaky/leaky/[REDACTED]\""`), file);
    assertClean("the server's output", kc.run.output());
  });
});
