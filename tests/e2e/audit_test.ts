// The audit trail through the shipped commands: queries by plugin, action, decision and time, and the live SSE
// stream read over TCP, every read bounded.
import assert from "node:assert/strict";
import { bearer, BOUND, expectProblem, expectStatus, makeSite, startKeycard, within } from "./_server.ts";

const decoder = new TextDecoder();

/** Reads the stream until `pattern` matches what was read (bounded by the caller's signal). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp): Promise<string> {
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`The stream ended before ${pattern}: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

Deno.test("deno task start serves the audit trail: queries and the live stream", async (t) => {
  await using site = await makeSite();
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const caller = bearer(site.callerToken);
  const events = async (query: string) => {
    const response = await kc.fetch(`/v1/audit?${query}`, { headers: admin });
    return JSON.parse(await expectStatus(kc, response, 200)).events as Record<string, unknown>[];
  };

  let callId = "";
  await t.step(
    "a stamp call's clock.now decision is found by plugin and action, with its call id and caller",
    async () => {
      const response = await kc.fetch("/v1/plugins/stamp/invoke/stamp", { method: "POST", headers: caller, body: "a" });
      await expectStatus(kc, response, 200);
      callId = response.headers.get("x-keycard-call-id") ?? "";
      const found = await events("plugin=stamp&action=clock.now");
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.equal(found[0]!.callId, callId);
      assert.equal(found[0]!.caller, "app");
      assert.equal(found[0]!.decision, "allow");
    },
  );

  await t.step("a denied fs.read is found by decision=deny; limit and since bound the answer", async () => {
    const response = await kc.fetch("/v1/plugins/stamp/invoke/read_file", {
      method: "POST",
      headers: caller,
      body: "../other/secret.txt",
    });
    await response.body?.cancel();
    const denied = await events("plugin=stamp&decision=deny");
    assert.ok(denied.length >= 1, JSON.stringify(denied));
    assert.ok(denied.every((e) => e.decision === "deny" && e.plugin === "stamp"));
    assert.equal((await events("limit=1")).length, 1);
    assert.deepEqual(await events(`since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`), []);
  });

  await t.step("GET /v1/audit/stream: ready, then a live decision of the next stamp call", async () => {
    const client = AbortSignal.timeout(BOUND.request);
    const response = await fetch(`${kc.base}/v1/audit/stream?plugin=stamp&action=random.get`, {
      headers: admin,
      signal: client,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = response.body!.getReader();
    try {
      await within(BOUND.request, "the ready event", readUntil(reader, /event: ready\n/));
      const call = await kc.fetch("/v1/plugins/stamp/invoke/stamp", { method: "POST", headers: caller, body: "sse" });
      await expectStatus(kc, call, 200);
      const text = await within(BOUND.request, "a decision event", readUntil(reader, /event: decision\n[^]*?\n\n/));
      const data = /event: decision\n(?:id: .*\n)?data: (.*)\n/.exec(text)?.[1];
      assert.ok(data, text);
      const event = JSON.parse(data);
      assert.equal(event.plugin, "stamp");
      assert.equal(event.action, "random.get");
      assert.equal(event.callId, call.headers.get("x-keycard-call-id"));
    } finally {
      await reader.cancel().catch(() => {});
    }
  });

  await t.step("the audit needs the admin role: no token 401, the caller role 403, on the stream too", async () => {
    await expectProblem(await kc.fetch("/v1/audit"), 401, "unauthenticated");
    await expectProblem(await kc.fetch("/v1/audit", { headers: caller }), 403, "forbidden");
    await expectProblem(await kc.fetch("/v1/audit/stream", { headers: caller }), 403, "forbidden");
  });

  await t.step("bad queries are 400 problems", async () => {
    for (
      const query of ["limit=0", "limit=abc", "limit=10001", "decision=maybe", "since=garbage", "plugin=a&plugin=b"]
    ) {
      await expectProblem(await kc.fetch(`/v1/audit?${query}`, { headers: admin }), 400, "bad-request");
    }
  });
});
