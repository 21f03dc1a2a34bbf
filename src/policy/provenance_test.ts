// Provenance: every decision names the policy set that made it by content, and each deciding policy's source and
// line, whether it came from the evaluator, cedar-wasm or the cache.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { compileGrants } from "./compile_grants.ts";
import { type AuthorizationRequest, PolicyEngine, policySetHash, type PolicySource } from "./policy_engine.ts";
import { pathEntity, pluginEntity } from "./resources.ts";

const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));

const OPS = [
  "// ops policies",
  "",
  '@id("ops.no-keys")',
  'forbid (principal, action == Action::"fs.read", resource in Dir::"/data/x/keys");',
  "",
  '@id("ops.read-y")',
  'permit (principal == Plugin::"p", action == Action::"fs.read", resource in Dir::"/data/y");',
  "",
].join("\n");

function sources(ops = OPS): PolicySource[] {
  return [
    { name: "base.cedar", text: base },
    { name: "grants/p", text: compileGrants("p", [{ "fs.read": { dir: "data/x" } }]), trusted: true },
    { name: "ops.cedar", text: ops },
  ];
}

function read(path: string): AuthorizationRequest {
  return {
    principal: pluginEntity({ name: "p", version: "1.0.0", sha256: "00" }),
    action: "fs.read",
    resource: pathEntity(path, "File"),
    context: { caller: "" },
  };
}

Deno.test("policySetHash() is sha256 of the sorted name and text-hash lines, whatever the order", () => {
  const set = sources();
  const hex = (text: string) => createHash("sha256").update(text).digest("hex");
  const lines = set.map((s) => `${JSON.stringify(s.name)} ${hex(s.text)}\n`).sort().join("");
  assert.equal(policySetHash(set), `sha256:${hex(lines)}`);
  assert.equal(policySetHash(set.toReversed()), policySetHash(set));
  assert.match(policySetHash([]), /^sha256:[0-9a-f]{64}$/);
});

Deno.test("PolicyEngine.policySet changes when and only when the sources change", async () => {
  const engine = await PolicyEngine.create({ schema, sources: sources() });
  const first = engine.policySet;
  assert.equal(first, policySetHash(sources()));
  // The same sources again (another order, trusted or not): another version, the same set.
  engine.load(sources().toReversed().map(({ name, text }) => ({ name, text })));
  assert.equal(engine.version, 2);
  assert.equal(engine.policySet, first);
  // One byte of one text, or one name, is another set.
  engine.load(sources(OPS + " "));
  const edited = engine.policySet;
  assert.notEqual(edited, first);
  engine.load(sources().map((s) => s.name === "ops.cedar" ? { ...s, name: "ops2.cedar" } : s));
  assert.notEqual(engine.policySet, first);
  assert.notEqual(engine.policySet, edited);
  // Back to the first sources: the first hash, in this engine and in a fresh one.
  engine.load(sources());
  assert.equal(engine.policySet, first);
  assert.equal((await PolicyEngine.create({ schema, sources: sources() })).policySet, first);
  // A refused set changes nothing.
  assert.throws(() => engine.load(sources("permit (principal, action, resource) when { 1 + };")));
  assert.equal(engine.policySet, first);
});

Deno.test("PolicyEngine.authorize() names each deciding policy's source and line, cached or not", async () => {
  const engine = await PolicyEngine.create({ schema, sources: sources() });
  const allowed = engine.authorize(read("/data/x/a.txt"));
  assert.equal(allowed.decision, "allow");
  assert.equal(allowed.cached, false);
  assert.equal(allowed.policySet, engine.policySet);
  const grant = engine.policies().find((p) => p.id === allowed.policies[0])!;
  assert.deepEqual(allowed.deciding, [{ id: grant.id, source: "grants/p", line: grant.line }]);

  const forbidden = engine.authorize(read("/data/x/keys/k.pem"));
  assert.equal(forbidden.decision, "deny");
  assert.deepEqual(forbidden.deciding, [{ id: "ops.no-keys", source: "ops.cedar", line: 3 }]);
  const permitted = engine.authorize(read("/data/y/b.txt"));
  assert.deepEqual(permitted.deciding, [{ id: "ops.read-y", source: "ops.cedar", line: 6 }]);
  const byDefault = engine.authorize(read("/etc/passwd"));
  assert.deepEqual([byDefault.reason, byDefault.deciding], ["denied by default", []]);

  // From the cache: the same provenance.
  const again = engine.authorize(read("/data/x/keys/k.pem"));
  assert.equal(again.cached, true);
  assert.equal(again.policySet, forbidden.policySet);
  assert.deepEqual(again.deciding, forbidden.deciding);

  // A new set moves the policy: the cache is per set, so the next decision names the new line and set.
  engine.load(sources("\n\n" + OPS));
  const moved = engine.authorize(read("/data/x/keys/k.pem"));
  assert.equal(moved.cached, false);
  assert.notEqual(moved.policySet, forbidden.policySet);
  assert.deepEqual(moved.deciding, [{ id: "ops.no-keys", source: "ops.cedar", line: 5 }]);
  assert.equal(engine.authorize(read("/data/x/keys/k.pem")).cached, true);
});

Deno.test("PolicyEngine.check() decides on the candidate set and names it; the set in force is untouched", async () => {
  const engine = await PolicyEngine.create({ schema, sources: sources() });
  const inForce = engine.policySet;
  const candidate = sources('@id("ops.wide")\npermit (principal, action == Action::"fs.read", resource);');
  const [decision] = engine.check(candidate, [read("/etc/passwd")]);
  assert.equal(decision?.decision, "allow");
  assert.equal(decision?.policySet, policySetHash(candidate));
  assert.deepEqual(decision?.deciding, [{ id: "ops.wide", source: "ops.cedar", line: 1 }]);
  assert.equal(engine.policySet, inForce);
  assert.equal(engine.authorize(read("/etc/passwd")).decision, "deny");
});

Deno.test("PolicyEngine with evaluator cedar-wasm gives the same provenance", async () => {
  const engine = await PolicyEngine.create({ schema, sources: sources(), evaluator: "cedar-wasm" });
  const decision = engine.authorize(read("/data/x/keys/k.pem"));
  assert.deepEqual(decision.deciding, [{ id: "ops.no-keys", source: "ops.cedar", line: 3 }]);
  assert.equal(decision.policySet, policySetHash(sources()));
});
