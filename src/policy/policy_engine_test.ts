import assert from "node:assert/strict";
import { compileGrants } from "./compile_grants.ts";
import { PolicyValidationError } from "./errors.ts";
import { type AuthorizationRequest, PolicyEngine } from "./policy_engine.ts";
import { hostEntity, keyEntity, pathEntity, pluginEntity, runtimeEntity } from "./resources.ts";

const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));

function plugin(name: string) {
  return pluginEntity({ name, version: "1.0.0", sha256: "00" });
}

Deno.test("PolicyEngine.load() reports file, line and column, and keeps the running set", async () => {
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  const version = engine.version;
  const cases: [string, RegExp, number, number][] = [
    ["// ops\npermit (principal, action,\n  resource) when { 1 + };", /unexpected token/, 3, 24],
    ['permit (principal, action == Action::"fs.read", resource)\nwhen { resource.owner == "me" };', /owner/, 2, 8],
    ['permit (principal == Plugin::"x", action == Action::"nope", resource);', /nope/, 1, 1],
  ];
  for (const [text, message, line, column] of cases) {
    assert.throws(() => engine.load([{ name: "base.cedar", text: base }, { name: "ops.cedar", text }]), (error) => {
      assert.ok(error instanceof PolicyValidationError);
      assert.equal(error.source, "ops.cedar");
      assert.match(error.message, message);
      assert.equal(error.line, line, error.message);
      assert.ok(error.column !== undefined && error.column >= column - 1, `column ${error.column}`);
      return true;
    });
  }
  assert.equal(engine.version, version);
  assert.deepEqual(engine.sources().map((s) => s.name), ["base.cedar"]);
});

Deno.test("PolicyEngine.load() refuses duplicate policy ids across sources", async () => {
  const engine = await PolicyEngine.create({ schema });
  const text = '@id("same")\npermit (principal, action == Action::"clock.now", resource);';
  assert.throws(
    () => engine.load([{ name: "a.cedar", text }, { name: "b.cedar", text }]),
    /Policy id "same" is already used in "a.cedar"/,
  );
});

Deno.test("PolicyEngine.authorize() explains allow, forbid and default deny", async () => {
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/p", text: compileGrants("p", [{ "fs.read": { dir: "data/x" } }]) },
      {
        name: "ops.cedar",
        text: '@id("ops.no-keys")\nforbid (principal, action == Action::"fs.read", resource in Dir::"/data/x/keys");',
      },
    ],
  });
  const read = (path: string): AuthorizationRequest => ({
    principal: plugin("p"),
    action: "fs.read",
    resource: pathEntity(path, "File"),
    context: { caller: "" },
  });
  const allowed = engine.explain(read("/data/x/a.txt"));
  assert.equal(allowed.decision, "allow");
  assert.equal(allowed.reason, "permitted by grant.p.1");
  assert.equal(allowed.deciding[0]!.source, "grants/p");
  const forbidden = engine.authorize(read("/data/x/keys/k.pem"));
  assert.deepEqual([forbidden.decision, forbidden.reason], ["deny", "forbidden by ops.no-keys"]);
  assert.equal(engine.authorize(read("/data/xy/a.txt")).reason, "denied by default");
  assert.equal(engine.authorize({ ...read("/data/x/a.txt"), principal: plugin("other") }).reason, "denied by default");
  // The cache answers the same, and a reload drops it.
  assert.equal(engine.authorize(read("/data/x/a.txt")).cached, true);
  engine.load([{ name: "base.cedar", text: base }]);
  const after = engine.authorize(read("/data/x/a.txt"));
  assert.deepEqual([after.decision, after.cached], ["deny", false]);
});

/** A small deterministic PRNG so that failures reproduce. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

Deno.test("PolicyEngine fast path (slices + cache) agrees with plain isAuthorized on generated requests", async () => {
  const random = prng(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const plugins = Array.from({ length: 12 }, (_, i) => `p${i}`);
  const dirs = ["/a", "/a/b", "/a/bc", "/c", "/c/d/e"];
  const sources = [{ name: "base.cedar", text: base }];
  for (const name of plugins) {
    sources.push({
      name: `grants/${name}`,
      text: compileGrants(name, [
        { "fs.read": { dir: pick(dirs) } },
        { "fs.write": { dir: pick(dirs) } },
        { kv: { namespace: pick(["n1", "n2"]) } },
        { "http.request": { host: pick(["a.com", "b.com"]), methods: ["GET"] } },
        { "clock.now": {} },
      ]),
    });
  }
  sources.push({
    name: "ops.cedar",
    text: [
      '@id("ops.1") forbid (principal == Plugin::"p3", action, resource);',
      '@id("ops.2") forbid (principal, action == Action::"fs.write", resource in Dir::"/a/b");',
      '@id("ops.3") permit (principal == Plugin::"p1", action == Action::"random.get", resource) when { principal.version == "1.0.0" };',
      '@id("ops.5") permit (principal, action == Action::"random.get", resource == Runtime::"random");',
      '@id("ops.4") forbid (principal, action == Action::"http.request", resource) when { context.caller == "evil" };',
    ].join("\n"),
  });
  const engine = await PolicyEngine.create({ schema, sources });
  let allows = 0;
  let forbids = 0;
  for (let i = 0; i < 2000; i++) {
    const principal = plugin(pick([...plugins, "stranger"]));
    const caller = pick(["", "ci", "evil"]);
    let request: AuthorizationRequest;
    switch (pick(["fs", "kv", "http", "runtime"])) {
      case "fs":
        request = {
          principal,
          action: pick(["fs.read", "fs.write", "fs.list"]),
          resource: pathEntity(`${pick(dirs)}/${pick(["f", "g/h"])}`, "File"),
          context: { caller },
        };
        break;
      case "kv":
        request = {
          principal,
          action: pick(["kv.get", "kv.set"]),
          resource: keyEntity(principal.uid.id, pick(["n1", "n2"]), "k"),
          context: { caller },
        };
        break;
      case "http":
        request = {
          principal,
          action: "http.request",
          resource: hostEntity(
            { host: pick(["a.com", "b.com"]), port: 443, scheme: "https", ip: pick(["93.184.216.34", "10.1.2.3"]) },
            false,
          ),
          context: { caller, method: pick(["GET", "POST"]), path: "/", hop: 0 },
        };
        break;
      default:
        request = {
          principal,
          action: pick(["clock.now", "random.get"]),
          resource: runtimeEntity(pick(["clock", "random"])),
          context: { caller },
        };
    }
    const fast = engine.authorize(request);
    const plain = engine.authorizeUncached(request);
    assert.deepEqual(
      [fast.decision, fast.policies],
      [plain.decision, plain.policies],
      `request ${i}: ${JSON.stringify(request)}`,
    );
    if (fast.decision === "allow") allows++;
    else if (fast.policies.length > 0) forbids++;
  }
  // The generated mix exercises all three outcomes.
  assert.ok(allows > 150 && forbids > 100, `allows ${allows}, forbids ${forbids}`);
});

Deno.test("PolicyEngine.load() keeps unchanged slices and decides on the new set at once", async () => {
  const sources = [
    { name: "base.cedar", text: base },
    { name: "grants/a", text: compileGrants("a", [{ "clock.now": {} }]) },
    { name: "grants/b", text: compileGrants("b", [{ "clock.now": {} }]) },
  ];
  const engine = await PolicyEngine.create({ schema, sources });
  const clock = (name: string): AuthorizationRequest => ({
    principal: plugin(name),
    action: "clock.now",
    resource: runtimeEntity("clock"),
    context: { caller: "" },
  });
  assert.equal(engine.authorize(clock("a")).decision, "allow");
  assert.equal(engine.authorize(clock("b")).decision, "allow");
  // Only b's grants change: a keeps its slice, b's new grants apply at once.
  engine.load([sources[0]!, sources[1]!, { name: "grants/b", text: compileGrants("b", []) }]);
  assert.deepEqual([engine.authorize(clock("a")).decision, engine.authorize(clock("a")).reason], [
    "allow",
    "permitted by grant.a.1",
  ]);
  assert.equal(engine.authorize(clock("b")).decision, "deny");
  // A change to the unscoped policies reaches every slice.
  engine.load([
    ...sources.slice(0, 2),
    { name: "ops.cedar", text: '@id("ops.quiet") forbid (principal, action == Action::"clock.now", resource);' },
  ]);
  assert.equal(engine.authorize(clock("a")).reason, "forbidden by ops.quiet");
});
