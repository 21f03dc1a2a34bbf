import assert from "node:assert/strict";
import { freshCedar } from "../_cedar_instance.ts";
import { mutate, randomPolicy, seededRandom } from "./_parse_generate.ts";
import { INVALID_CONDITIONS, INVALID_POLICIES, VALID_CONDITIONS, VALID_POLICIES } from "./_parse_test_cases.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, type ParsedPolicy, parsePolicies } from "./parse_policies.ts";
import { CedarSyntaxError } from "./syntax_error.ts";

// The oracle: an instance of our own, so that nothing else's crash reaches it.
// Every text here stays far below the nesting that kills cedar-wasm.
const cedar = await freshCedar();

/**
 * A parse's JSON as cedar-wasm writes it: Longs as numbers. Number(bigint)
 * rounds as JSON.parse rounds cedar-wasm's exact digits, so the two agree
 * beyond 2^53 too (the exact values are checked on their own below).
 */
function asCedarJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? Number(v) : v)));
}

function condition(body: string): string {
  return `permit (principal, action, resource) when { ${body} };`;
}

/** What cedar-wasm makes of one policy or template: its JSON, or its refusal. */
function cedarJson(text: string, template: boolean): unknown {
  const answer = template ? cedar.templateToJson(text) : cedar.policyToJson(text);
  if (answer.type !== "success") {
    assert.fail(`cedar-wasm refuses ${JSON.stringify(text)}: ${JSON.stringify(answer.errors)}`);
  }
  return answer.json;
}

function refusal(text: string, options?: Parameters<typeof parsePolicies>[1]): CedarSyntaxError {
  try {
    parsePolicies(text, options);
  } catch (error) {
    if (error instanceof CedarSyntaxError) return error;
    throw error;
  }
  return assert.fail(`parsePolicies() accepts ${JSON.stringify(text.slice(0, 200))}`);
}

/** The policies' texts in the order cedar-wasm lists them: by id, as strings (`policy10` before `policy2`). */
function byId(text: string, policies: ParsedPolicy[], template: boolean): string[] {
  return policies.filter((p) => p.template === template).sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((p) => text.slice(p.start, p.end));
}

Deno.test("parsePolicies() turns every valid condition into the JSON cedar-wasm makes of it", () => {
  assert.ok(VALID_CONDITIONS.length >= 150);
  for (const body of VALID_CONDITIONS) {
    const text = condition(body);
    const policies = parsePolicies(text);
    assert.equal(policies.length, 1, text);
    assert.equal(policies[0]!.template, false, text);
    assert.deepStrictEqual(asCedarJson(policies[0]!.json), cedarJson(text, false), text);
  }
});

Deno.test("parsePolicies() turns every valid policy and template into the JSON cedar-wasm makes of it", () => {
  for (const text of VALID_POLICIES) {
    const policies = parsePolicies(text);
    assert.equal(policies.length, 1, text);
    // templateToJson refuses a static policy and policyToJson a template: the flag is checked too.
    assert.deepStrictEqual(asCedarJson(policies[0]!.json), cedarJson(text, policies[0]!.template), text);
  }
});

Deno.test("parsePolicies() refuses every condition cedar-wasm refuses", () => {
  assert.ok(INVALID_CONDITIONS.length >= 60);
  for (const body of INVALID_CONDITIONS) {
    const text = condition(body);
    assert.equal(cedar.policySetTextToParts(text).type, "failure", text);
    assert.equal(cedar.policyToJson(text).type, "failure", text);
    refusal(text);
  }
});

Deno.test("parsePolicies() refuses every policy text cedar-wasm refuses", () => {
  for (const text of INVALID_POLICIES) {
    assert.equal(cedar.policySetTextToParts(text).type, "failure", text);
    refusal(text);
  }
});

Deno.test("parsePolicies() names policies policy0, policy1, ... over templates and static policies together", () => {
  // cedar-wasm lists static policies and templates apart, each kind in the order of its ids as strings:
  // after a template, eleven static policies are policy1..policy11, and policy10 comes before policy2.
  const template = "permit (principal == ?principal, action, resource);";
  const statics = Array.from(
    { length: 11 },
    (_, i) => `permit (principal, action, resource) when { context.k == ${i} };`,
  );
  const text = [template, ...statics].join("\n");
  const policies = parsePolicies(text);
  assert.deepStrictEqual(policies.map((p) => p.id), Array.from({ length: 12 }, (_, i) => `policy${i}`));
  assert.deepStrictEqual(policies.map((p) => p.template), [true, ...statics.map(() => false)]);
  const parts = cedar.policySetTextToParts(text);
  assert.equal(parts.type, "success");
  assert.deepStrictEqual(parts.policies, byId(text, policies, false));
  assert.deepStrictEqual(parts.policy_templates, byId(text, policies, true));
  assert.deepStrictEqual(parts.policies.slice(0, 3), [statics[0], statics[9], statics[10]]);
});

Deno.test("parsePolicies() splits a whole set of every valid policy and condition as cedar-wasm does", () => {
  const texts = [...VALID_POLICIES, ...VALID_CONDITIONS.map(condition)];
  const text = texts.join("\n");
  const policies = parsePolicies(text);
  assert.equal(policies.length, texts.length);
  policies.forEach((policy, i) => {
    const [alone] = parsePolicies(texts[i]!);
    assert.equal(policy.id, `policy${i}`);
    assert.equal(text.slice(policy.start, policy.end), texts[i]!.slice(alone!.start));
    assert.deepStrictEqual(policy.json, alone!.json);
  });
  const parts = cedar.policySetTextToParts(text);
  assert.equal(parts.type, "success");
  assert.deepStrictEqual(parts.policies, byId(text, policies, false));
  assert.deepStrictEqual(parts.policy_templates, byId(text, policies, true));
});

Deno.test("parsePolicies() agrees with cedar-wasm on 4,000 seeded random and mutated texts", () => {
  const random = seededRandom(20_240_601);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 4000; i++) {
    let text = randomPolicy(random);
    if (random() < 0.3) text += `\n${randomPolicy(random)}`;
    if (random() < 0.5) text = mutate(random, text);
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === "failure") {
      refusal(text);
      refused++;
      continue;
    }
    const policies = parsePolicies(text);
    assert.deepStrictEqual(byId(text, policies, false), parts.policies, text);
    assert.deepStrictEqual(byId(text, policies, true), parts.policy_templates, text);
    for (const policy of policies) {
      const slice = text.slice(policy.start, policy.end);
      assert.deepStrictEqual(asCedarJson(policy.json), cedarJson(slice, policy.template), slice);
    }
    accepted++;
  }
  // Both verdicts are well represented.
  assert.ok(accepted > 800 && refused > 800, `${accepted} accepted, ${refused} refused`);
});

Deno.test("parsePolicies() keeps integer literals exact and takes a minus before a literal as Cedar does", () => {
  const [policy] = parsePolicies(
    condition("9223372036854775807 == -9223372036854775808 && 9007199254740993 == --5 && -(5) == - 5"),
  );
  const body = policy!.json.conditions[0]!.body;
  assert.deepStrictEqual(body, {
    "&&": {
      left: {
        "&&": {
          left: { "==": { left: { Value: 9223372036854775807n }, right: { Value: -9223372036854775808n } } },
          right: { "==": { left: { Value: 9007199254740993n }, right: { neg: { arg: { Value: -5n } } } } },
        },
      },
      right: { "==": { left: { neg: { arg: { Value: 5n } } }, right: { Value: -5n } } },
    },
  });
  assert.match(refusal(condition("9223372036854775808")).message, /integer literal 9223372036854775808 is too large/);
  assert.match(refusal(condition("-9223372036854775809")).message, /too large/);
  assert.match(refusal(condition("-(9223372036854775808)")).message, /too large/);
});

Deno.test("parsePolicies() reads annotations as Cedar does: a valueless one is null, a repeated one an error", () => {
  const [policy] = parsePolicies('@id("a")\n@advice\n@if("\\u{41}")\npermit (principal, action, resource);');
  assert.deepStrictEqual(policy!.json.annotations, { advice: null, id: "a", if: "A" });
  assert.equal(parsePolicies("permit (principal, action, resource);")[0]!.json.annotations, undefined);
  const error = refusal('@id("a")\n@id("b") permit (principal, action, resource);');
  assert.deepStrictEqual([error.line, error.column, error.detail], [2, 1, "duplicate annotation @id"]);
});

Deno.test("parsePolicies() refuses a 100,000-deep nesting at the first level past the bound", () => {
  const n = 100_000;
  const bombs = [
    condition(`${"(".repeat(n)}1${")".repeat(n)}`),
    condition(`${"!(".repeat(n)}true${")".repeat(n)}`),
    condition(`${"-(".repeat(n)}1${")".repeat(n)}`),
    condition(`${"[".repeat(n)}1${"]".repeat(n)}`),
    condition(`${"{a: ".repeat(n)}1${"}".repeat(n)}`),
    condition(`${"ip(".repeat(n)}"1"${")".repeat(n)}`),
    condition(`${"context.contains(".repeat(n)}1${")".repeat(n)}`),
    condition(`${"if true then ".repeat(n)}1${" else 2".repeat(n)}`),
    `permit (principal == ${"(".repeat(n)}User::"a"${")".repeat(n)}, action, resource);`,
    `permit (principal, action in ${"(".repeat(n)}[Action::"a"]${")".repeat(n)}, resource);`,
  ];
  for (const text of bombs) {
    const error = refusal(text, { maxBytes: 8 << 20 });
    assert.match(error.message, /nesting deeper than the limit of 64 levels/);
    // It stopped where the nesting passed the bound, without reading on.
    assert.ok(error.offset < 40 + 20 * DEFAULT_MAX_DEPTH, `${text.slice(0, 50)}: at ${error.offset}`);
  }
  // Unclosed: the same.
  assert.match(refusal(`permit (principal, action, resource) when { ${"(".repeat(n)}`).message, /nesting deeper/);
  // A maxDepth past what the stack holds is refused cleanly, never a RangeError.
  const error = refusal(condition(`${"(".repeat(n)}1${")".repeat(n)}`), { maxDepth: 1e9 });
  assert.match(error.message, /too deeply/);
});

Deno.test("parsePolicies() counts chains of operators and members as the nesting of their JSON", () => {
  const n = 100_000;
  // Flat in the text, but JSON as deep as they are long (a left fold): bounded like parentheses.
  for (const body of [`1${" + 1".repeat(n)}`, `true${" && true".repeat(n)}`, `context${".a".repeat(n)}`]) {
    assert.match(refusal(condition(body), { maxBytes: 8 << 20 }).message, /nested deeper than the limit of 64 levels/);
  }
  assert.match(refusal(condition("!!!!!true")).message, /too many occurrences of "!"/);
  assert.match(refusal(condition(`${"-".repeat(n)}1`)).message, /too many occurrences of "-"/);
  // 64 levels are fine and the JSON is cedar-wasm's; 65 are not, unless maxDepth allows it.
  const deepest = condition(`${"(".repeat(DEFAULT_MAX_DEPTH)}1${")".repeat(DEFAULT_MAX_DEPTH)}`);
  assert.deepStrictEqual(asCedarJson(parsePolicies(deepest)[0]!.json), cedarJson(deepest, false));
  const chain = condition(`1${" + 1".repeat(DEFAULT_MAX_DEPTH)}`);
  assert.deepStrictEqual(asCedarJson(parsePolicies(chain)[0]!.json), cedarJson(chain, false));
  const deeper = condition(`${"(".repeat(DEFAULT_MAX_DEPTH + 1)}1${")".repeat(DEFAULT_MAX_DEPTH + 1)}`);
  assert.match(refusal(deeper).message, /nesting deeper/);
  assert.equal(parsePolicies(deeper, { maxDepth: 65 }).length, 1);
  assert.match(refusal(condition("((1))"), { maxDepth: 1 }).message, /limit of 1 levels/);
  assert.match(refusal(condition(`1${" + 1".repeat(DEFAULT_MAX_DEPTH + 1)}`)).message, /nested deeper/);
});

Deno.test("parsePolicies() refuses text over maxBytes, counting UTF-8 bytes", () => {
  const policy = "permit (principal, action, resource);";
  const padded = (bytes: number) => `${policy}//${"x".repeat(bytes - policy.length - 2)}`;
  assert.equal(parsePolicies(padded(DEFAULT_MAX_BYTES)).length, 1);
  const error = refusal(padded(DEFAULT_MAX_BYTES + 1));
  assert.equal(
    error.detail,
    `policy text of ${DEFAULT_MAX_BYTES + 1} bytes is over the limit of ${DEFAULT_MAX_BYTES} bytes`,
  );
  // 400,000 two-byte characters: 400,038 UTF-16 units, 800,039 bytes.
  const wide = `${policy}//${"é".repeat(400_000)}`;
  assert.equal(parsePolicies(wide).length, 1);
  assert.match(refusal(wide, { maxBytes: 800_000 }).message, /800039 bytes is over the limit of 800000/);
  assert.match(refusal(`${policy}//${"x".repeat(20 << 20)}`).message, /over the limit/);
});

Deno.test("parsePolicies() refuses an unterminated string at its opening quote", () => {
  const text = 'permit (principal, action, resource)\nwhen { context.a == "abc };\n';
  const error = refusal(text);
  assert.deepStrictEqual([error.offset, error.line, error.column], [text.indexOf('"'), 2, 21]);
  assert.match(
    error.message,
    /^Invalid Cedar at line 2, column 21: unterminated string literal starting "\\"abc };\\n"$/,
  );
  assert.match(refusal('permit (principal, action, resource) when { "abc\\').message, /unterminated string/);
  // A backslash before a line feed is no escape in Cedar: the string does not go on.
  assert.match(
    refusal('permit (principal, action, resource) when { "a\\\nb" };').message,
    /backslash at the end of a line/,
  );
});

Deno.test("parsePolicies() points its errors at the offending token, quoting it and saying what was expected", () => {
  const cases: [string, number, number, RegExp][] = [
    ["permit (principal, action, resource)\nwhen {\n  context.a == foo\n};", 3, 16, /invalid variable "foo"/],
    [
      "permit (principal, action, resource)\npermit (principal, action, resource);",
      2,
      1,
      /expected ";" to end the policy, found "permit"/,
    ],
    [
      'permit (principal, action, resource) when { true }\n@id("x")',
      2,
      1,
      /expected ";" or another condition, found "@"/,
    ],
    ["permit (principal, action, resource) when { 1 < 2 < 3 };", 1, 51, /multiple relational operators/],
    ["forbid (principal, action, resource) when { context.a.if };", 1, 55, /reserved and cannot be used: if/],
    ['permit (principal, action, resource) when { "a\\qb" };', 1, 47, /invalid escape "\\\\q"/],
    ["permit (principal, action)", 1, 26, /expected "," after the action's constraint, found "\)"/],
    ["permit (principal, action, resource) when { 1 # 2 };", 1, 47, /unexpected character "#"/],
    ["allow (principal, action, resource);", 1, 1, /invalid policy effect "allow": expected "permit" or "forbid"/],
    [
      'permit (principal, action == User::"a", resource);',
      1,
      30,
      /expected an entity of type Action, found "User::\\"a\\""/,
    ],
    ["permit (principal, action, resource) when { [1, 2 };", 1, 51, /expected "," or "]" in the set, found "}"/],
    ["permit (principal, action, resource) when", 1, 42, /expected "\{" after "when", found end of input/],
  ];
  for (const [text, line, column, message] of cases) {
    const error = refusal(text);
    assert.ok(error instanceof SyntaxError);
    assert.equal(error.name, "CedarSyntaxError");
    assert.deepStrictEqual([error.line, error.column], [line, column], `${text}: ${error.message}`);
    const lines = text.split("\n");
    assert.equal(error.offset, lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0) + column - 1);
    assert.match(error.detail, message);
    assert.equal(error.message, `Invalid Cedar at line ${line}, column ${column}: ${error.detail}`);
  }
});

Deno.test("parsePolicies() places each policy in the text: UTF-16 offsets from its first annotation to its semicolon", () => {
  const first = '// header\n@id("a") // the first\npermit (principal, action, resource);';
  const second = '@id("b")\r\n  forbid (principal, action, resource)\r\n  when { "😀" == "x" };';
  const third = 'permit (principal == ?principal, action, resource) when { "\uD800" == "\uFFFD" };';
  const text = `${first}\n\n  ${second} ${third}\n// trailer`;
  const policies = parsePolicies(text);
  // The third starts on the second's last line, after its emoji (two UTF-16 units).
  assert.deepStrictEqual(
    policies.map(({ id, template, line, column }) => [id, template, line, column]),
    [["policy0", false, 2, 1], ["policy1", false, 5, 3], ["policy2", true, 7, 25]],
  );
  assert.equal(text.slice(policies[0]!.start, policies[0]!.end), first.slice(10));
  assert.equal(text.slice(policies[1]!.start, policies[1]!.end), second);
  assert.equal(text.slice(policies[2]!.start, policies[2]!.end), third);
  // A lone surrogate reaches Cedar as U+FFFD (cedar-wasm takes UTF-8), as cedar-wasm's own split shows.
  const parts = cedar.policySetTextToParts(text);
  assert.equal(parts.type, "success");
  assert.deepStrictEqual(parts.policy_templates, [third.replace("\uD800", "\uFFFD")]);
  assert.deepStrictEqual(policies[2]!.json.conditions[0]!.body, {
    "==": { left: { Value: "\uFFFD" }, right: { Value: "\uFFFD" } },
  });
  assert.deepStrictEqual(parsePolicies(""), []);
  assert.deepStrictEqual(parsePolicies("  // nothing but a comment\n"), []);
});

Deno.test("parsePolicies() parses 10,000 grant-shaped policies in one pass", () => {
  const texts = Array.from(
    { length: 10_000 },
    (_, i) =>
      `@id("grants/p${i}#0") permit (principal == Plugin::"p${i}", action == Action::"fs.read", resource in Dir::"/data/p${i}") when { context.size < 10 };`,
  );
  const text = texts.join("\n");
  const started = performance.now();
  const policies = parsePolicies(text, { maxBytes: 4 << 20 });
  const elapsed = performance.now() - started;
  assert.equal(policies.length, 10_000);
  assert.deepStrictEqual([policies[9_999]!.id, policies[9_999]!.line, policies[9_999]!.column], [
    "policy9999",
    10_000,
    1,
  ]);
  assert.deepStrictEqual(policies[1234]!.json.principal, { op: "==", entity: { type: "Plugin", id: "p1234" } });
  // Linear, not a latency target (that is measured on an idle machine): tens of ms per 1,000 there.
  assert.ok(elapsed < 10_000, `${elapsed} ms`);
});
