import assert from "node:assert/strict";
import { compileGrants } from "./compile_grants.ts";
import { POLICY_LIMITS, scanCedarText } from "./_bounds.ts";
import { CedarRuntime } from "./_cedar_instance.ts";
import { PolicyValidationError } from "./errors.ts";
import {
  type AuthorizationRequest,
  PolicyEngine,
  PolicyEngineUnavailableError,
  type ShadowDisagreement,
} from "./policy_engine.ts";
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

// Bounds and recovery (issue "Hostile at every door", finding 1).
const when = (condition: string) =>
  `permit (principal, action == Action::"fs.read", resource) when {\n  ${condition}\n};`;
const clockFor = (name: string): AuthorizationRequest => ({
  principal: plugin(name),
  action: "clock.now",
  resource: runtimeEntity("clock"),
  context: { caller: "" },
});

Deno.test("PolicyEngine.load() refuses text past each bound with source, line, column and the bound, before Cedar", async () => {
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  const L = POLICY_LIMITS;
  const chain = (n: number, op: string, term: string) => Array(n + 1).fill(term).join(op);
  // Each case: the text, the bound, and the token its line and column must point at.
  const cases: [string, string, keyof typeof L, string][] = [
    ["brackets", when("(".repeat(150) + "true" + ")".repeat(150)), "maxNesting", "("],
    ["sets", when("[".repeat(L.maxNesting) + "1" + "]".repeat(L.maxNesting) + " == [1]"), "maxNesting", "["],
    ["records", when("{a: ".repeat(40) + "1" + "}".repeat(40) + " == {a: 1}"), "maxNesting", "{"],
    ["&&", when(chain(6000, " && ", "true")), "maxLogicalChain", "&&"],
    ["||", when(chain(L.maxLogicalChain + 1, " || ", "true")), "maxLogicalChain", "||"],
    ["+", when(chain(L.maxOperatorChain + 1, " + ", "1") + " == 1"), "maxOperatorChain", "+"],
    ["*", when(chain(L.maxOperatorChain + 1, " * ", "1") + " == 1"), "maxOperatorChain", "*"],
    ["!", when("!(".repeat(L.maxUnaryChain + 1) + "true" + ")".repeat(L.maxUnaryChain + 1)), "maxUnaryChain", "!"],
    [
      "-",
      when("-(".repeat(L.maxUnaryChain + 1) + "1" + ")".repeat(L.maxUnaryChain + 1) + " == 1"),
      "maxUnaryChain",
      "-",
    ],
    [
      "if",
      when("if true then ".repeat(L.maxIfNesting + 1) + "true" + " else false".repeat(L.maxIfNesting + 1)),
      "maxIfNesting",
      "if",
    ],
    ["else if", when("if true then true else ".repeat(L.maxIfNesting + 1) + "true"), "maxIfNesting", "if"],
    [".", when("context" + ".a".repeat(L.maxMemberChain + 1) + ' == ""'), "maxMemberChain", "."],
    ["()", when('ip("1.2.3.4")' + ".isIpv4()".repeat(L.maxMemberChain + 1)), "maxMemberChain", "."],
    ["[]", when("context" + '["a"]'.repeat(L.maxMemberChain + 1) + ' == ""'), "maxMemberChain", "["],
    ["like", when(`context.caller like "${"*a".repeat(L.maxStringLength)}"`), "maxStringLength", '"'],
    ["size", "// x\n" + " ".repeat(L.maxSourceBytes), "maxSourceBytes", " "],
  ];
  for (const [name, text, bound, token] of cases) {
    assert.throws(() => engine.load([{ name: "base.cedar", text: base }, { name: "ops.cedar", text }]), (error) => {
      assert.ok(error instanceof PolicyValidationError, `${name}: ${error}`);
      assert.equal(error.source, "ops.cedar", name);
      assert.match(error.message, new RegExp(`\\(${bound}\\)`), name);
      assert.equal(error.line, 2, `${name}: ${error.message}`);
      const at = text.split("\n")[1]!.slice(error.column! - 1);
      assert.ok(at.startsWith(token), `${name}: column ${error.column} points at ${JSON.stringify(at.slice(0, 10))}`);
      return true;
    });
  }
  // Nothing changed, and the engine still decides.
  assert.equal(engine.version, 1);
  assert.equal(engine.health().ready, true);
  assert.equal(engine.authorize(clockFor("p")).decision, "deny");
});

Deno.test("PolicyEngine.load() bounds a whole set: policies and bytes across sources", async () => {
  const engine = await PolicyEngine.create({ schema });
  const one = (i: number) => `@id("p${i}") permit (principal, action == Action::"clock.now", resource);\n`;
  const half = Math.ceil(POLICY_LIMITS.maxPolicies / 2);
  const a = Array.from({ length: half }, (_, i) => one(i)).join("");
  const b = Array.from({ length: half + 1 }, (_, i) => one(half + i)).join("");
  assert.throws(() => engine.load([{ name: "a.cedar", text: a }, { name: "b.cedar", text: b }]), (error) => {
    assert.ok(error instanceof PolicyValidationError);
    assert.match(error.message, /maxPolicies/);
    assert.deepEqual([error.source, error.line], ["b.cedar", POLICY_LIMITS.maxPolicies - half + 1]);
    return true;
  });
  const filler = "// " + "x".repeat(POLICY_LIMITS.maxSourceBytes - 10) + "\n";
  const many = Array.from({ length: POLICY_LIMITS.maxSetBytes / filler.length + 1 }, (_, i) => ({
    name: `f${i}.cedar`,
    text: filler,
  }));
  assert.throws(() => engine.load(many), /maxSetBytes/);
  assert.equal(engine.version, 1);
});

Deno.test("A policy at every bound at once passes the scan, and cedar-wasm survives all it does with it", async () => {
  const L = POLICY_LIMITS;
  // Member accesses, unary operators, ifs, arithmetic, brackets and && all at their bounds on one path.
  let inner = "context" + '["caller"]' + ".isEmpty()".repeat(L.maxMemberChain - 1);
  inner = "!!!!(" + "!".repeat(L.maxUnaryChain - 4) + "(" + inner + "))";
  inner = "if true then ".repeat(L.maxIfNesting) + inner + " else false".repeat(L.maxIfNesting);
  const arithmetic = Array(L.maxOperatorChain).fill("1").join(" + ") + " == 1";
  let text = `(${inner}) && ${arithmetic}`;
  const wraps = L.maxNesting - 5;
  for (let depth = 0; depth < wraps; depth++) text = `(true && ${text})`;
  text += " && true".repeat(L.maxLogicalChain - wraps - 1);
  const policy = when(text) + "\n" + when(`context.caller like "${"*".repeat(L.maxStringLength)}"`);
  assert.equal(scanCedarText(policy).violation, undefined);
  const runtime = await CedarRuntime.shared();
  await runtime.recover();
  const request = {
    principal: { type: "Plugin", id: "p" },
    action: { type: "Action", id: "fs.read" },
    resource: { type: "File", id: "/a" },
    context: { caller: "" },
    entities: [],
  };
  runtime.call((cedar) => {
    const parts = cedar.policySetTextToParts(policy);
    assert.equal(parts.type, "success");
    for (const part of parts.type === "success" ? parts.policies : []) cedar.policyToJson(part);
    cedar.validate({ schema, policies: { staticPolicies: policy }, validationSettings: { mode: "strict" } } as never);
    assert.equal(cedar.preparsePolicySet("bounds-test", { staticPolicies: policy }).type, "success");
    cedar.statefulIsAuthorized({ preparsedPolicySetId: "bounds-test", ...request } as never);
  });
  assert.equal(runtime.dead, undefined);
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  assert.equal(engine.health().ready, true);
});

Deno.test("PolicyEngine.authorize() refuses a request nested past the bound, as a deny that says so", async () => {
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  let deep: unknown = "x";
  for (let i = 0; i < 200; i++) deep = { a: deep };
  const decision = engine.authorize({ ...clockFor("p"), context: { caller: "", deep } });
  assert.equal(decision.decision, "deny");
  assert.match(decision.errors[0]!, /maxRequestDepth/);
  const wide = engine.authorize({ ...clockFor("p"), context: { caller: "", wide: Array(20_000).fill(1) } });
  assert.match(wide.errors[0]!, /maxRequestValues/);
  assert.equal(engine.health().ready, true);
});

Deno.test("PolicyEngine survives a killed cedar-wasm: fails closed, reports not ready, then decides correctly", async () => {
  // cedar-wasm deciding every uncached request: the path a set takes when it falls back.
  const engine = await PolicyEngine.create({
    schema,
    evaluator: "cedar-wasm",
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/a", text: compileGrants("a", [{ "clock.now": {} }, { "fs.read": { dir: "data" } }]) },
    ],
  });
  const read = (path: string): AuthorizationRequest => ({
    principal: plugin("a"),
    action: "fs.read",
    resource: pathEntity(path, "File"),
    context: { caller: "" },
  });
  assert.equal(engine.authorize(clockFor("a")).decision, "allow");
  const runtime = await CedarRuntime.shared();
  const restarts = runtime.restarts;
  // What hostile text did before the bounds: 150 nested parentheses, straight into cedar-wasm.
  assert.throws(() => runtime.unguarded.policySetTextToParts(when("(".repeat(150) + "true" + ")".repeat(150))));
  // The engine does not know yet; its next uncached decision finds out and fails closed.
  const broken = engine.authorize(read("/data/x.txt"));
  assert.deepEqual([broken.decision, broken.cached], ["deny", false]);
  assert.match(broken.unavailable ?? "", /cedar-wasm failed \(RuntimeError: memory access out of bounds\)/);
  assert.match(broken.reason, /^not decided: /);
  const health = engine.health();
  assert.equal(health.ready, false);
  assert.match(health.reason ?? "", /cedar-wasm failed/);
  assert.ok(engine.authorize(read("/data/y.txt")).unavailable, "still failing closed");
  const ops = { name: "ops.cedar", text: '@id("ops.1") forbid (principal, action == Action::"fs.read", resource);' };
  assert.throws(() => engine.load([...engine.sources(), ops]), PolicyEngineUnavailableError);
  // A decision made before the failure is still right: the cache answers it.
  assert.deepEqual([engine.authorize(clockFor("a")).decision, engine.authorize(clockFor("a")).cached], ["allow", true]);
  await engine.whenReady();
  assert.deepEqual(engine.health(), { ready: true, restarts: restarts + 1, deciding: true });
  assert.equal(engine.authorize(read("/data/x.txt")).decision, "allow");
  assert.equal(engine.authorize(read("/etc/passwd")).decision, "deny");
  assert.equal(engine.authorize(clockFor("b")).reason, "denied by default");
  assert.equal(engine.load([...engine.sources(), ops]), 2);
  assert.equal(engine.authorize(read("/data/x.txt")).reason, "forbidden by ops.1");
});

Deno.test("PolicyEngine.health() finds a dead cedar-wasm by itself and recovers", async () => {
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  const runtime = await CedarRuntime.shared();
  assert.throws(() => runtime.unguarded.policyToJson(when(Array(6001).fill("true").join(" && "))));
  assert.equal(engine.health().ready, false);
  await engine.whenReady();
  assert.equal(engine.health().ready, true);
  assert.equal(engine.authorize(clockFor("a")).reason, "denied by default");
});

Deno.test("PolicyEngine keeps deciding with the TypeScript evaluator while cedar-wasm is dead; loads wait for it", async () => {
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/a", text: compileGrants("a", [{ "fs.read": { dir: "data" } }]) },
    ],
  });
  assert.equal(engine.stats().evaluator, "typescript");
  const read = (path: string): AuthorizationRequest => ({
    principal: plugin("a"),
    action: "fs.read",
    resource: pathEntity(path, "File"),
    context: { caller: "" },
  });
  const runtime = await CedarRuntime.shared();
  assert.throws(() => runtime.unguarded.policySetTextToParts(when("(".repeat(150) + "true" + ")".repeat(150))));
  const health = engine.health();
  assert.deepEqual([health.ready, health.deciding], [false, true]);
  // Uncached decisions are still made, and right: they never touch cedar-wasm.
  const allowed = engine.authorize(read("/data/fresh.txt"));
  assert.deepEqual([allowed.decision, allowed.cached, allowed.unavailable], ["allow", false, undefined]);
  assert.equal(engine.authorize(read("/etc/shadow")).decision, "deny");
  await engine.whenReady();
  assert.equal(engine.health().ready, true);
  const ops = { name: "ops.cedar", text: '@id("ops.1") forbid (principal, action == Action::"fs.read", resource);' };
  assert.equal(engine.load([...engine.sources(), ops]), 2);
  assert.equal(engine.authorize(read("/data/fresh.txt")).reason, "forbidden by ops.1");
});

Deno.test("PolicyEngine shadow verification: sampled decisions are decided again by cedar-wasm and compared", async () => {
  const disagreements: ShadowDisagreement[] = [];
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/a", text: compileGrants("a", [{ "clock.now": {} }, { "fs.read": { dir: "data" } }]) },
    ],
    shadowSample: 1,
    onShadowDisagreement: (event) => disagreements.push(event),
  });
  for (const path of ["/data/a", "/data/b", "/etc/passwd"]) {
    engine.authorize({ principal: plugin("a"), action: "fs.read", resource: pathEntity(path, "File"), context: {} });
  }
  engine.authorize(clockFor("a"));
  engine.authorize(clockFor("a")); // cached: not sampled again
  engine.flushShadow();
  assert.deepEqual(engine.stats().shadow, { checked: 4, disagreements: 0, skipped: 0 });
  assert.deepEqual(disagreements, []);
  // A value the evaluator refuses and cedar-wasm takes (partial evaluation's `unknown`, which keycard never
  // builds): the evaluator denies, cedar-wasm allows; reported, and the entry stays the safer deny.
  const odd = { ...clockFor("a"), context: { caller: { __extn: { fn: "unknown", arg: "u" } } } };
  const ours = engine.authorize(odd);
  assert.equal(ours.decision, "deny");
  engine.flushShadow();
  assert.equal(engine.stats().shadow.disagreements, 1);
  const [first] = disagreements as ShadowDisagreement[];
  assert.deepEqual([first?.ours.decision, first?.theirs.decision, first?.version], ["deny", "allow", engine.version]);
  assert.deepEqual([engine.authorize(odd).decision, engine.authorize(odd).cached], ["deny", true]);
  engine.close();
});

Deno.test("PolicyEngine shadow verification samples by rate and skips checks queued before a reload", async () => {
  const engine = await PolicyEngine.create({
    schema,
    sources: [{ name: "grants/a", text: compileGrants("a", [{ "fs.read": { dir: "data" } }]) }],
    shadowSample: 0.25,
  });
  for (let i = 0; i < 40; i++) {
    engine.authorize({
      principal: plugin("a"),
      action: "fs.read",
      resource: pathEntity(`/data/${i}`, "File"),
      context: {},
    });
  }
  engine.load(engine.sources());
  engine.flushShadow();
  assert.deepEqual(engine.stats().shadow, { checked: 0, disagreements: 0, skipped: 10 });
  for (let i = 0; i < 40; i++) {
    engine.authorize({
      principal: plugin("a"),
      action: "fs.read",
      resource: pathEntity(`/data/${i}`, "File"),
      context: {},
    });
  }
  engine.flushShadow();
  assert.deepEqual(engine.stats().shadow, { checked: 10, disagreements: 0, skipped: 10 });
  await assert.rejects(() => PolicyEngine.create({ schema, shadowSample: 2 }), RangeError);
  engine.close();
});

Deno.test("PolicyEngine.load() refuses a template with a clear error (cedar-wasm's parts dropped it silently)", async () => {
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  const template = {
    name: "t.cedar",
    text: '// ops\n  permit (principal == ?principal, action == Action::"clock.now", resource);',
  };
  assert.throws(() => engine.load([...engine.sources(), template]), (error) => {
    assert.ok(error instanceof PolicyValidationError);
    assert.deepEqual([error.source, error.line, error.column], ["t.cedar", 2, 3]);
    assert.match(error.message, /Templates \(\?principal, \?resource\) are not supported/);
    return true;
  });
  assert.deepEqual([engine.version, engine.stats().evaluator, engine.stats().fallbackSets], [1, "typescript", 0]);
});

Deno.test("PolicyEngine remembers validated texts per schema: a restart skips validation, a changed schema does not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = [
      { name: "base.cedar", text: base },
      { name: "grants/a", text: compileGrants("a", [{ "fs.read": { dir: "data" } }]) },
    ];
    await PolicyEngine.create({ schema, sources, validationCache: dir });
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.equal(files.length, 1);
    const remembered = JSON.parse(await Deno.readTextFile(`${dir}/${files[0]}`));
    assert.equal(remembered.format, 2);
    assert.deepEqual(Object.values(remembered.texts), [2, 1], "each text with its policy count");
    // Proof that validation is skipped: an entry for a text the schema refuses is believed (only the cache can
    // put it there; a policy naming an unknown attribute then errors at evaluation, as Cedar skips it).
    const unchecked = '@id("odd") permit (principal, action == Action::"clock.now", resource) when { context.nope };';
    const { textHash } = await import("./_validation_cache.ts");
    remembered.texts[textHash(unchecked)] = 1;
    await Deno.writeTextFile(`${dir}/${files[0]}`, JSON.stringify(remembered));
    const restarted = await PolicyEngine.create({
      schema,
      sources: [...sources, { name: "ops.cedar", text: unchecked }],
      validationCache: dir,
    });
    assert.deepEqual(restarted.authorize(clockFor("a")).errors, ["odd: record does not have the attribute `nope`"]);
    // Another schema: its own file, every text validated again, and the odd one refused.
    await assert.rejects(
      () =>
        PolicyEngine.create({
          schema: schema + "\n",
          sources: [...sources, { name: "ops.cedar", text: unchecked }],
          validationCache: dir,
        }),
      PolicyValidationError,
    );
    // A corrupt cache file is ignored: everything is validated.
    await Deno.writeTextFile(`${dir}/${files[0]}`, "{not json");
    await assert.rejects(
      () => PolicyEngine.create({ schema, sources: [{ name: "ops.cedar", text: unchecked }], validationCache: dir }),
      PolicyValidationError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PolicyEngine skips cedar-wasm's validation of a trusted source and checks it by the evaluator's type rules", async () => {
  // Text strict validation refuses (a Long compared with a String) that the scope and attribute rules let through:
  // only a trusted source gets past, and evaluates as Cedar would (the comparison is false: no permit).
  const typed = '@id("t") permit (principal == Plugin::"a", action == Action::"clock.now", resource) ' +
    "when { principal.version == 1 };";
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "grants/t", text: typed, trusted: true }] });
  assert.equal(engine.authorize(clockFor("a")).decision, "deny");
  await assert.rejects(
    () => PolicyEngine.create({ schema, sources: [{ name: "grants/t", text: typed }] }),
    PolicyValidationError,
  );
  // What the type rules catch, trusted or not: an attribute the resource type lacks, an unknown action,
  // an action that does not apply to the scope's types.
  const refused: [string, RegExp][] = [
    ['@id("u") permit (principal, action == Action::"clock.now", resource) when { resource.nope };', /resource\.nope/],
    ['@id("v") permit (principal, action == Action::"fs.nope", resource);', /unknown action Action::"fs\.nope"/],
    [
      '@id("w") permit (principal == Client::"c", action == Action::"fs.read", resource in Dir::"/a");',
      /does not apply to principals of type Client/,
    ],
    [
      '@id("x") permit (principal, action == Action::"fs.read", resource in Namespace::"a/b");',
      /does not apply to resources of or in type Namespace/,
    ],
    ['@id("y") permit (principal, action == Action::"kv.get", resource) when { context.nope == 1 };', /context\.nope/],
  ];
  for (const [text, message] of refused) {
    await assert.rejects(
      () => PolicyEngine.create({ schema, sources: [{ name: "grants/t", text, trusted: true }] }),
      (error: PolicyValidationError) => error.problems.some((p) => p.source === "grants/t" && message.test(p.message)),
      text,
    );
  }
});

Deno.test("PolicyEngine keys a frozen plugin principal once, and never keeps a key for one that can change", async () => {
  const engine = await PolicyEngine.create({
    schema,
    sources: [{
      name: "ops.cedar",
      text:
        '@id("v1") permit (principal, action == Action::"clock.now", resource) when { principal.version == "1.0.0" };',
    }],
  });
  const info = { name: "a", version: "1.0.0", sha256: "00" };
  const frozen = pluginEntity(info);
  assert.equal(pluginEntity(info), frozen, "one entity per plugin principal object");
  assert.ok(Object.isFrozen(frozen) && Object.isFrozen(frozen.attrs));
  const clock = (principal: typeof frozen): AuthorizationRequest => ({
    principal,
    action: "clock.now",
    resource: runtimeEntity("clock"),
    context: {},
  });
  assert.equal(engine.authorize(clock(frozen)).decision, "allow");
  // A new version is a new entity, keyed afresh.
  info.version = "2.0.0";
  const upgraded = pluginEntity(info);
  assert.notEqual(upgraded, frozen);
  assert.equal(engine.authorize(clock(upgraded)).decision, "deny");
  // An entity a caller may change in place is keyed on every decision.
  const open = {
    uid: { type: "Plugin", id: "b" },
    attrs: { version: "1.0.0" } as Record<string, unknown>,
    parents: [],
  };
  assert.equal(engine.authorize(clock(open)).decision, "allow");
  open.attrs.version = "3.0.0";
  assert.deepEqual([engine.authorize(clock(open)).decision, engine.authorize(clock(open)).cached], ["deny", true]);
});

Deno.test("PolicyEngine: built resources are frozen and shared; a changed copy is decided afresh", async () => {
  const engine = await PolicyEngine.create({
    schema,
    sources: [{
      name: "ops.cedar",
      text: [
        '@id("read") permit (principal, action == Action::"fs.read", resource in Dir::"/in");',
        '@id("owned") forbid (principal, action == Action::"fs.read", resource) when { resource has owner };',
      ].join("\n"),
    }],
  });
  const file = pathEntity("/in/a.txt", "File");
  assert.equal(pathEntity("/in/a.txt", "File"), file, "one entity per path while it is used");
  assert.throws(() => {
    (file.attrs as Record<string, unknown>).owner = "x";
  }, TypeError);
  assert.throws(() => file.parents.push({ type: "Dir", id: "/" }), TypeError);
  const request = (resource: typeof file): AuthorizationRequest => ({
    principal: plugin("p"),
    action: "fs.read",
    resource,
    context: { caller: "" },
  });
  assert.deepEqual([engine.authorize(request(file)).decision, engine.authorize(request(file)).cached], ["allow", true]);
  const owned = { ...file, attrs: { owner: "x" } };
  const first = engine.authorize(request(owned));
  assert.deepEqual([first.decision, first.cached], ["deny", false], "not the built entity's cached allow");
  const moved = { ...file, parents: [{ type: "Dir", id: "/out" }] };
  assert.equal(engine.authorize(request(moved)).decision, "deny");
  // Another engine (another set) sharing the same built entity decides on its own set.
  const other = await PolicyEngine.create({ schema, sources: [] });
  const elsewhere = other.authorize(request(file));
  assert.deepEqual([elsewhere.decision, elsewhere.cached], ["deny", false]);
  assert.equal(engine.authorize(request(file)).decision, "allow");
});

Deno.test("PolicyEngine skips the bounds scan of remembered texts, and their counts still bound the set", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = [{ name: "base.cedar", text: base }];
    await PolicyEngine.create({ schema, sources, validationCache: dir });
    const [file] = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
    const saved = JSON.parse(await Deno.readTextFile(file!));
    // Only the cache can say base.cedar holds more policies than a set may: the remembered count is what counts.
    const hash = Object.keys(saved.texts)[0]!;
    saved.texts[hash] = POLICY_LIMITS.maxPolicies + 1;
    await Deno.writeTextFile(file!, JSON.stringify(saved));
    await assert.rejects(
      () => PolicyEngine.create({ schema, sources, validationCache: dir }),
      (error: PolicyValidationError) => error.problems.some((p) => p.message.includes("(maxPolicies)")),
    );
    // The first format (a list of hashes) is read as empty: everything is scanned and validated again.
    await Deno.writeTextFile(file!, JSON.stringify([hash]));
    const engine = await PolicyEngine.create({ schema, sources, validationCache: dir });
    assert.equal(engine.policies().length, 2);
    assert.equal(JSON.parse(await Deno.readTextFile(file!)).format, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
