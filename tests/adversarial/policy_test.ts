// Hostile at every door (issue finding 1): policy text and request JSON shaped to overflow cedar-wasm's stack, and
// cedar-wasm killed outright. Each attack must be refused with a 4xx (or fail closed), change nothing, and leave
// decisions unaffected; a dead cedar-wasm must make the gateway fail closed, say so in /readyz, and recover.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CedarRuntime } from "../../src/policy/_cedar_instance.ts";
import { bearer, expectProblem, type GatewayFixture, startGateway } from "../_gateway_fixture.ts";
import { tally } from "./_tally.ts";

const when = (condition: string) => `permit (principal, action == Action::"fs.read", resource) when { ${condition} };`;
const chain = (n: number, op: string, term: string) => Array(n + 1).fill(term).join(op);
const nest = (n: number, open: string, inner: string, close: string) => open.repeat(n) + inner + close.repeat(n);

/** The state an attack must not change: the policy version and sources, the files under policies/. */
async function snapshot(fx: GatewayFixture): Promise<string> {
  const policies = await (await fx.request("/v1/policies", { headers: bearer(fx.adminToken) })).json();
  const files = [...Deno.readDirSync(join(fx.dir, "policies"))].map((e) => e.name).sort();
  return JSON.stringify([policies, files]);
}

let canaries = 0;
/** Decisions still made by cedar-wasm (an uncached dry run each time), and /readyz still 200. */
async function decides(fx: GatewayFixture): Promise<void> {
  const ask = async (roles: string[]) => {
    const response = await fx.request("/v1/authorize", {
      method: "POST",
      headers: { ...bearer(fx.adminToken), "content-type": "application/json" },
      body: JSON.stringify({
        principal: { type: "Client", id: `canary-${++canaries}`, attrs: { roles } },
        action: "policy.write",
        resource: { type: "Api", id: "keycard" },
      }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    const decision = await response.json();
    assert.equal(decision.cached, false);
    return decision.decision;
  };
  assert.equal(await ask(["admin"]), "allow");
  assert.equal(await ask(["caller"]), "deny");
  const ready = await fx.request("/readyz");
  assert.equal(ready.status, 200, await ready.clone().text());
  await ready.body?.cancel();
}

Deno.test("adversarial policy: deep, long and huge policy text and request JSON; a killed cedar-wasm", async () => {
  const t = tally("policy");
  const fx = await startGateway();
  try {
    const put = (name: string, text: string) =>
      fx.request(`/v1/policies/${name}`, { method: "PUT", headers: bearer(fx.adminToken), body: text });
    /** PUT the text: a 4xx problem of `type` naming `bound` (when given), nothing changed, decisions unaffected. */
    const refused = async (text: string, bound: string | undefined, status = 400, type = "invalid-policy") => {
      const before = await snapshot(fx);
      const body = await expectProblem(await put("hostile", text), status, type);
      if (bound !== undefined) {
        assert.match(String(body.detail), new RegExp(`\\(${bound}\\)`));
        assert.equal(body.source, "hostile.cedar");
        assert.ok(typeof body.line === "number" && typeof body.column === "number", JSON.stringify(body));
      }
      assert.equal(await snapshot(fx), before);
      await decides(fx);
    };
    const policies: [string, string, string | undefined, number?, string?][] = [
      ["150 nested parentheses (373 bytes)", when(nest(150, "(", "true", ")")), "maxNesting"],
      ["2,000 nested parentheses", when(nest(2000, "(", "true", ")")), "maxNesting"],
      ["10,000 unclosed parentheses", when("(".repeat(10_000)), "maxNesting"],
      ["200 nested sets", when(nest(200, "[", "1", "]") + " == [1]"), "maxNesting"],
      ["200 nested records", when(nest(200, "{a: ", "1", "}") + " == {a: 1}"), "maxNesting"],
      [
        "nesting in the scope",
        `permit (principal in ${nest(100, "(", 'Plugin::"x"', ")")}, action, resource);`,
        "maxNesting",
      ],
      ["nested function calls", when(nest(100, "ip(", '"1.2.3.4"', ")") + ".isIpv4()"), "maxNesting"],
      ["6,000 chained &&", when(chain(6000, " && ", "true")), "maxLogicalChain"],
      ["3,000 chained ||", when(chain(3000, " || ", "false")), "maxLogicalChain"],
      [
        "20 brackets of 20 && each",
        when(nest(20, "(true && " + "true && ".repeat(19), "true", ")")),
        "maxLogicalChain",
      ],
      ["500 chained +", when(chain(500, " + ", "1") + " == 1"), "maxOperatorChain"],
      ["500 chained *", when(chain(500, " * ", "1") + " == 1"), "maxOperatorChain"],
      ["500 chained binary -", when(chain(500, " - ", "1") + " == 1"), "maxOperatorChain"],
      ["1,000 ! in a row", when("!".repeat(1000) + "true"), "maxUnaryChain"],
      ["unary - through brackets", when(nest(20, "-(", "1", ")") + " == 1"), "maxUnaryChain"],
      ["400 nested if/then/else", when(nest(400, "if true then ", "true", " else false")), "maxIfNesting"],
      ["400 else-if", when("if false then false else ".repeat(400) + "true"), "maxIfNesting"],
      ["2,000 chained .attr", when("context" + ".a".repeat(2000) + ' == ""'), "maxMemberChain"],
      ["1,000 chained method calls", when('ip("1.2.3.4")' + ".isIpv4()".repeat(1000)), "maxMemberChain"],
      ["1,000 chained [index]", when("context" + '["a"]'.repeat(1000) + ' == ""'), "maxMemberChain"],
      ["has with a 1,000-long path", when("context has " + chain(1000, ".", "a")), "maxMemberChain"],
      ["a 100 KiB like pattern", when(`context.caller like "${"*a".repeat(50_000)}"`), "maxStringLength"],
      ["a 200 KiB string literal", when(`context.caller == "${"x".repeat(200_000)}"`), "maxStringLength"],
      ["a 100 KiB annotation", `@id("${"x".repeat(100_000)}")\n${when("true")}`, "maxStringLength"],
      ["a 600 KiB source", `// ${"x".repeat(600 * 1024)}\n${when("true")}`, "maxSourceBytes"],
      [
        "10,001 policies in one file",
        Array.from({ length: 10_001 }, (_, i) => `@id("h${i}") forbid(principal,action,resource);`).join("\n"),
        "maxPolicies",
      ],
      ["a 2 MiB body", "x".repeat(2 * 1024 * 1024), undefined, 413, "payload-too-large"],
    ];
    for (const [name, text, bound, status, type] of policies) {
      await t.attack(name, () => refused(text, bound, status, type));
    }
    await t.attack("deep nesting reported at its line and column", async () => {
      const text = `// ops\r\n\r\n${when("(((" + nest(40, "(", "true", ")") + ")))")}`;
      const body = await expectProblem(await put("hostile", text), 400, "invalid-policy");
      // The 33rd bracket: `{` opens the first, then "(((" and 29 of the 40.
      const column = text.split("\r\n")[2]!.indexOf("{") + 1 + 1 + 3 + 29;
      assert.deepEqual([body.line, body.column], [3, column], JSON.stringify(body));
    });

    // Request JSON: the edge bounds depth and size; the engine bounds depth and values again.
    const dryRun = (body: string) =>
      fx.request("/v1/authorize", {
        method: "POST",
        headers: { ...bearer(fx.adminToken), "content-type": "application/json" },
        body,
      });
    const request = (context: string) =>
      `{"principal":{"type":"Plugin","id":"hello"},"action":"fs.read","resource":{"type":"File","id":"/a"},` +
      `"context":${context}}`;
    const requests: [string, string, number, string][] = [
      ["a context nested 200 deep", request(nest(200, '{"a":', "1", "}")), 400, "bad-request"],
      ["a context nested 33 deep", request(nest(33, '{"a":', "1", "}")), 400, "bad-request"],
      ["sets nested 200 deep", request(`{"a":${nest(200, "[", "1", "]")}}`), 400, "bad-request"],
      [
        "an entity attribute nested 200 deep",
        request("{}").replace('"id":"hello"', `"id":"x","attrs":{"a":${nest(200, "[", "1", "]")}}`),
        400,
        "bad-request",
      ],
      ["a 1 MiB request", request(`{"a":"${"x".repeat(1024 * 1024)}"}`), 413, "payload-too-large"],
    ];
    for (const [name, body, status, type] of requests) {
      await t.attack(name, async () => {
        const before = await snapshot(fx);
        await expectProblem(await dryRun(body), status, type);
        assert.equal(await snapshot(fx), before);
        await decides(fx);
      });
    }
    await t.attack("a __expr escape of deep Cedar in the context", async () => {
      const response = await dryRun(request(`{"a":{"__expr":"${nest(2000, "(", "1", ")")}"}}`));
      assert.ok(response.status === 200 || (response.status >= 400 && response.status < 500), `${response.status}`);
      if (response.status === 200) assert.equal((await response.json()).decision, "deny");
      else await response.body?.cancel();
      await decides(fx);
    });
    await t.attack("a 5,000-segment entity type path", async () => {
      const response = await dryRun(request(`{"a":{"__entity":{"type":"${"A::".repeat(5000)}B","id":"x"}}}`));
      assert.equal(response.status, 200);
      assert.equal((await response.json()).decision, "deny");
      await decides(fx);
    });

    // cedar-wasm killed outright, as the 373-byte policy did before the bounds.
    await t.attack("a killed cedar-wasm: decisions go on in the evaluator, writes 503 until recovery", async () => {
      const runtime = await CedarRuntime.shared();
      assert.throws(() => runtime.unguarded.policySetTextToParts(when(nest(150, "(", "true", ")"))));
      // The TypeScript evaluator decides without cedar-wasm: ready, and an uncached decision is made, correctly.
      const ready = await fx.request("/readyz");
      assert.equal(ready.status, 200);
      await ready.body?.cancel();
      const decided = await dryRun(request(`{"caller":"broken"}`));
      assert.equal(decided.status, 200);
      assert.equal((await decided.json()).decision, "deny");
      // A write needs cedar-wasm's strict validation: 503 not-ready while it is replaced, nothing written.
      const before = await snapshot(fx);
      const during = await expectProblem(await put("during", when("true")), 503, "not-ready");
      assert.match(String(during.detail), /cedar-wasm failed \(RuntimeError: memory access out of bounds\)/);
      assert.equal(await snapshot(fx), before);
      let status = 503;
      for (let attempt = 0; attempt < 5 && status === 503; attempt++) {
        await runtime.recover();
        const after = await put("after", '@id("after") forbid (principal, action == Action::"fs.delete", resource);');
        status = after.status;
        await after.body?.cancel();
      }
      assert.equal(status, 200);
      await decides(fx);
    });
    await t.attack("every route keeps answering after the attacks", async () => {
      for (const path of ["/healthz", "/readyz", "/openapi.json"]) {
        const response = await fx.request(path);
        assert.equal(response.status, 200, path);
        await response.body?.cancel();
      }
      for (const path of ["/v1/plugins", "/v1/policies", "/v1/audit?limit=1"]) {
        const response = await fx.request(path, { headers: bearer(fx.adminToken) });
        assert.equal(response.status, 200, path);
        await response.body?.cancel();
      }
      const call = await fx.request("/v1/plugins/hello/call/greet", {
        method: "POST",
        headers: bearer(fx.callerToken),
        body: "keycard",
      });
      assert.ok(call.status < 500, `plugin call: ${call.status}`);
      await call.body?.cancel();
    });
  } finally {
    await fx.close();
  }
  t.report();
});
