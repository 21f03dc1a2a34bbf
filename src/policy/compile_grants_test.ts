import assert from "node:assert/strict";
import { GrantTypes } from "./_grant_types.ts";
import { parsePolicies } from "./cedar/mod.ts";
import { compileGrants } from "./compile_grants.ts";
import { GrantError } from "./errors.ts";
import { type Grant, grant } from "./grant.ts";
import { freshCedar } from "./_cedar_instance.ts";

Deno.test("compileGrants() emits one annotated permit per grant, scoped to the plugin", () => {
  const text = compileGrants("deployer", [
    { "fs.read": { dir: "./data/certs" } },
    { "fs.write": { dir: "/data/deploy/" } },
    { "http.request": { host: "API.example.com", methods: ["get", "POST"] } },
    { kv: { namespace: "cache" } },
    { "env.get": { names: ["REGION", "STAGE"] } },
    { "log.write": {} },
  ]);
  const policies = text.split("\n\n");
  assert.equal(policies.length, 6);
  policies.forEach((policy, i) => {
    assert.match(policy, new RegExp(`^@id\\("grant\\.deployer\\.${i + 1}"\\)\\npermit \\(`));
    assert.match(policy, /principal == Plugin::"deployer"/);
  });
  assert.match(policies[0]!, /action == Action::"fs.read",\n {2}resource in Dir::"\/data\/certs"/);
  assert.match(policies[1]!, /resource in Dir::"\/data\/deploy"/);
  assert.match(policies[2]!, /resource.name == "api.example.com" && \["GET","POST"\].contains\(context.method\)/);
  assert.match(policies[3]!, /action in \[Action::"kv.get", Action::"kv.set", Action::"kv.delete"\]/);
  assert.match(policies[3]!, /resource in Namespace::"deployer\/cache"/);
  assert.match(policies[4]!, /\[EnvVar::"deployer\/REGION", EnvVar::"deployer\/STAGE"\].contains\(resource\)/);
  assert.match(policies[5]!, /resource == Runtime::"log"/);
});

Deno.test("compileGrants() names an address exactly so base.cedar lets it through", () => {
  const text = compileGrants("p", [{ "http.request": { host: "127.0.0.1", port: 9001 } }]);
  assert.match(text, /resource == Host::"127.0.0.1:9001"/);
  assert.throws(() => compileGrants("p", [{ "http.request": { host: "10.0.0.1" } }]), /needs "port" or "scheme"/);
});

Deno.test("compileGrants() writes a grant's host as requests see it: WHATWG host parsing, canonical addresses", () => {
  const host = (h: string) => compileGrants("p", [{ "http.request": { host: h, port: 8080 } }]);
  for (const form of ["127.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]", "::FFFF:7F00:1"]) {
    assert.match(host(form), /resource == Host::"127.0.0.1:8080"/, form);
  }
  assert.match(host("[0:0:0:0:0:0:0:1]"), /resource == Host::"\[::1\]:8080"/);
  assert.match(host("64:ff9b::10.0.0.1"), /resource == Host::"\[64:ff9b::a00:1\]:8080"/);
  assert.match(host("Bücher.Example"), /resource.name == "xn--bcher-kva.example"/);
  assert.match(host("*.Bücher.example"), /resource.name like "\*.xn--bcher-kva.example"/);
  assert.throws(() => host("*.10.0.0.1"), /"\*\." needs a name/);
  for (const bad of ["a b.com", "a/b.com", "user@a.com", "a.com:80", "[1::2::3]", "a%2fb.com", "a\u0000b.com"]) {
    assert.throws(() => host(bad), /is not a host name or address/, bad);
  }
});

Deno.test("compileGrants() accepts builders the same as manifest entries", () => {
  assert.equal(
    compileGrants("p", [grant("fs.write").under("./data/x"), grant("kv").namespace("c")]),
    compileGrants("p", [{ "fs.write": { dir: "./data/x" } }, { kv: { namespace: "c" } }]),
  );
});

Deno.test("compileGrants() of no grants is empty: deny by default", () => {
  assert.equal(compileGrants("p", []), "");
});

Deno.test("compileGrants() refuses malformed grants, naming their position", () => {
  const bad: [unknown, RegExp][] = [
    [{ "fs.rm": { dir: "x" } }, /Grant 1 of plugin "p": unknown kind "fs.rm"/],
    [{ "fs.read": {} }, /"fs.read" needs "dir"/],
    [{ "fs.read": { dir: "../../etc" } }, /escapes the data root/],
    [{ "fs.read": { dir: "a\u0000b" } }, /control character/],
    [{ "http.request": { host: "a.com", methods: ["BREW"] } }, /unknown HTTP method "BREW"/],
    [{ "http.request": { host: "a.com", port: 70000 } }, /"port" must be an integer/],
    [{ "http.request": { host: 'a.com") || true || ("' } }, /is not a host name/],
    [{ "env.get": { names: ["A B"] } }, /"names"/],
    [{ "kv": { namespace: "a/b" } }, /not a valid name/],
    [{ "fs.read": { dir: "a" }, "fs.write": { dir: "b" } }, /exactly one grant kind/],
    ["fs.read", /expected a map/],
  ];
  for (const [entry, message] of bad) {
    assert.throws(() => compileGrants("p", [entry as never]), (error: unknown) => {
      assert.ok(error instanceof GrantError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => compileGrants('p"', []), /Plugin name/);
});

Deno.test("compileGrants() output validates strictly against the shipped schema, for every grant form", async () => {
  // What lets the gateway skip validating grants under policies/keycard.cedarschema (PolicySource.trusted).
  const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
  const grants: Grant[] = [
    { "fs.read": { dir: "data/in" } },
    { "fs.write": { dir: "./data/out" } },
    { "fs.list": { dir: "/data" } },
    { "fs.delete": { dir: "data/tmp" } },
    { "http.request": { host: "api.example.com" } },
    { "http.request": { host: "*.example.org", port: 8443, scheme: "https", methods: ["GET", "POST"] } },
    { "http.request": { host: "127.0.0.1", port: 27501 } },
    { "http.request": { host: "[::1]", scheme: "http" } },
    { kv: { namespace: "state" } },
    { kv: { namespace: "shared", actions: ["get", "delete"] } },
    { "kv.get": { namespace: "a" } },
    { "kv.set": { namespace: "b" } },
    { "kv.delete": { namespace: "c" } },
    { "env.get": { names: ["REGION", "ZONE"] } },
    { "log.write": {} },
    { "clock.now": {} },
    { "random.get": {} },
  ];
  const kinds = new Set(grants.map((g) => Object.keys(g)[0]));
  assert.equal(kinds.size, 13, "every grant kind of GrantKinds is listed");
  const cedar = await freshCedar();
  const answer = cedar.validate({
    schema,
    policies: { staticPolicies: compileGrants("plugin-x", grants) },
    validationSettings: { mode: "strict" },
  } as never) as { type: string; validationErrors?: unknown[] };
  assert.equal(answer.type, "success");
  assert.deepEqual(answer.validationErrors, []);
  // And the evaluator's own type rules, which check trusted grants at every load, pass every form too.
  const json = cedar.schemaToJson(schema) as { type: string; json: unknown };
  const types = new GrantTypes(json.json);
  for (const policy of parsePolicies(compileGrants("plugin-x", grants))) {
    assert.deepEqual(types.check(policy.json), [], String(policy.json.annotations?.id));
  }
});
