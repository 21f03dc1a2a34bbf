// Operator policies through the shipped commands: read the effective set, put a Cedar file (in force at once and
// written to the policies dir outside the repo), see it decide a plugin's host call and a dry run, delete it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { bearer, exists, expectStatus, makeSite, startKeycard } from "./_server.ts";

const FORBID_RANDOM = `@id("ops.no-random")
forbid (principal == Plugin::"stamp", action == Action::"random.get", resource);
`;

const RANDOM_REQUEST = JSON.stringify({
  principal: { type: "Plugin", id: "stamp" },
  action: "random.get",
  resource: { type: "Runtime", id: "random" },
  context: { caller: "app" },
});

Deno.test("deno task start serves policies: read, put, decide, dry run, delete", async (t) => {
  await using site = await makeSite();
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const stamp = async () => {
    const response = await kc.fetch("/v1/plugins/stamp/invoke/stamp", {
      method: "POST",
      headers: bearer(site.callerToken),
      body: "p",
    });
    return JSON.parse(await expectStatus(kc, response, 200));
  };
  const authorize = async () => {
    const response = await kc.fetch("/v1/authorize", {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: RANDOM_REQUEST,
    });
    return JSON.parse(await expectStatus(kc, response, 200));
  };
  let version = 0;

  await t.step("GET /v1/policies: the operator files of the copied dir and the plugins' compiled grants", async () => {
    const body = JSON.parse(await expectStatus(kc, await kc.fetch("/v1/policies", { headers: admin }), 200));
    version = body.version;
    assert.equal(typeof version, "number");
    const names = body.sources.map((s: { name: string }) => s.name);
    for (const name of ["api.cedar", "base.cedar", "grants/stamp"]) assert.ok(names.includes(name), names.join(", "));
    assert.ok(body.policies.some((p: { id: string }) => p.id === "grant.stamp.2"), JSON.stringify(body.policies));
  });

  await t.step("before: stamp gets its nonce and the dry run allows random.get", async () => {
    const record = await stamp();
    assert.match(record.nonce, /^[0-9a-f]{16}$/);
    const decision = await authorize();
    assert.equal(decision.decision, "allow", JSON.stringify(decision));
  });

  await t.step("PUT /v1/policies/ops-no-random: in force at once, written to the policies dir", async () => {
    const response = await kc.fetch("/v1/policies/ops-no-random", {
      method: "PUT",
      headers: { ...admin, "content-type": "text/plain" },
      body: FORBID_RANDOM,
    });
    const body = JSON.parse(await expectStatus(kc, response, 200));
    assert.equal(body.name, "ops-no-random.cedar");
    assert.ok(body.version > version, JSON.stringify(body));
    assert.equal(await Deno.readTextFile(join(site.policiesDir, "ops-no-random.cedar")), FORBID_RANDOM);
    const listed = JSON.parse(await expectStatus(kc, await kc.fetch("/v1/policies", { headers: admin }), 200));
    assert.ok(listed.policies.some((p: { id: string; effect: string }) => p.id === "ops.no-random"));
  });

  await t.step("the forbid decides: stamp's random.get is denied (an error value), the dry run says why", async () => {
    const record = await stamp();
    assert.equal(record.nonce, null);
    assert.ok(
      record.errors.some((e: { part: string; code: string }) => e.part === "nonce" && e.code === "denied"),
      JSON.stringify(record.errors),
    );
    assert.equal(typeof record.now.unixMs, "number"); // the other grants stand
    const decision = await authorize();
    assert.equal(decision.decision, "deny");
    assert.match(JSON.stringify(decision), /ops\.no-random/);
  });

  await t.step("DELETE /v1/policies/ops-no-random: 204, the file is gone, the nonce is back", async () => {
    const response = await kc.fetch("/v1/policies/ops-no-random", { method: "DELETE", headers: admin });
    await expectStatus(kc, response, 204);
    assert.equal(await exists(join(site.policiesDir, "ops-no-random.cedar")), false);
    assert.match((await stamp()).nonce, /^[0-9a-f]{16}$/);
    assert.equal((await authorize()).decision, "allow");
  });

  await t.step("POST /v1/authorize decides API actions too: the caller role may call, not install", async () => {
    const ask = async (action: string) => {
      const response = await kc.fetch("/v1/authorize", {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({
          principal: { type: "Client", id: "app", attrs: { roles: ["caller"] } },
          action,
          resource: { type: "Plugin", id: "hello" },
        }),
      });
      return JSON.parse(await expectStatus(kc, response, 200)).decision;
    };
    assert.equal(await ask("plugin.call"), "allow");
    assert.equal(await ask("plugin.install"), "deny");
  });
});
