import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, type IsolationConfig, isolationGroupOf, loadConfig } from "./mod.ts";

/** Writes `text` as `keycard.yaml` in a fresh temp dir, loads it, and removes the dir. */
async function load(text: string): Promise<ReturnType<typeof loadConfig>> {
  const dir = await Deno.makeTempDir({ prefix: "keycard_isolation_" });
  try {
    await Deno.writeTextFile(join(dir, "keycard.yaml"), text);
    return await loadConfig({ path: "keycard.yaml", cwd: dir, env: {} });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Loads `text`, expecting a ConfigError. */
async function refused(text: string): Promise<ConfigError> {
  const error = await load(text).then(() => assert.fail(`expected a ConfigError for:\n${text}`), (e: unknown) => e);
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  return error;
}

Deno.test("loadConfig() reads isolation groups in order, with 2 workers for a group that leaves them out", async () => {
  const { config } = await load([
    "isolation:",
    "  groups:",
    "    - name: tenants",
    "      workers: 3",
    '      plugins: ["tenant-*", hello]',
    "    - name: ops.core_1",
    "      plugins: [stamp]",
    "",
  ].join("\n"));
  assert.deepEqual(config.isolation, {
    groups: [
      { name: "tenants", workers: 3, plugins: ["tenant-*", "hello"] },
      { name: "ops.core_1", workers: 2, plugins: ["stamp"] },
    ],
  });
});

Deno.test("loadConfig() gives every plugin workers of its own when isolation is absent or empty", async () => {
  for (const text of ["", "isolation:\n", "isolation: {}\n", "isolation:\n  groups:\n", "isolation:\n  groups: []\n"]) {
    const { config } = await load(text);
    assert.deepEqual(config.isolation, { groups: [] }, JSON.stringify(text));
  }
});

Deno.test("loadConfig() refuses a group name used twice, pointing at the second", async () => {
  const error = await refused([
    "isolation:",
    "  groups:",
    "    - { name: tenants, plugins: [a] }",
    "    - name: tenants",
    "      plugins: [b]",
    "",
  ].join("\n"));
  assert.deepEqual([error.line, error.column, error.path], [4, 13, "isolation.groups[1].name"]);
  assert.equal(
    error.message,
    'Invalid config "keycard.yaml" at line 4, column 13: "isolation.groups[1].name" repeats "tenants" of entry 0: ' +
      "group names are unique",
  );
});

Deno.test("loadConfig() refuses a plugin name pattern listed in two groups, or twice in one", async () => {
  const twoGroups = await refused([
    "isolation:",
    "  groups:",
    '    - { name: a, plugins: ["tenant-*"] }',
    "    - name: b",
    "      plugins:",
    "        - hello",
    '        - "tenant-*"',
    "",
  ].join("\n"));
  assert.deepEqual([twoGroups.line, twoGroups.column, twoGroups.path], [7, 11, "isolation.groups[1].plugins[1]"]);
  assert.equal(
    twoGroups.message,
    'Invalid config "keycard.yaml" at line 7, column 11: "isolation.groups[1].plugins[1]" repeats "tenant-*" of ' +
      'group "a": a plugin name pattern is listed in one group, once',
  );

  const oneGroup = await refused("isolation:\n  groups:\n    - { name: a, plugins: [x, y, x] }\n");
  assert.deepEqual([oneGroup.line, oneGroup.path], [3, "isolation.groups[0].plugins[2]"]);
  assert.match(oneGroup.message, /repeats "x" of group "a"/);
});

Deno.test("loadConfig() refuses bad isolation settings with line, column and what it expects", async () => {
  const cases: [string, number, number, string | undefined, RegExp][] = [
    ["isolation: plugin\n", 1, 12, "isolation", /expected a map, got "plugin"/],
    ["isolation:\n  group: []\n", 2, 3, "isolation.group", /is not a known key \(expected one of "groups"\)/],
    ["isolation:\n  groups: tenants\n", 2, 11, "isolation.groups", /expected a list, got "tenants"/],
    ["isolation:\n  groups:\n    - tenants\n", 3, 7, "isolation.groups[0]", /expected a map, got "tenants"/],
    [
      "isolation:\n  groups:\n    - { plugins: [a] }\n",
      3,
      7,
      "isolation.groups[0].name",
      /is required: expected a group name of 1-64 letters/,
    ],
    [
      "isolation:\n  groups:\n    - { name: tenants/a, plugins: [a] }\n",
      3,
      15,
      "isolation.groups[0].name",
      /expected a group name of 1-64 letters, digits, '_', '\.' or '-', got "tenants\/a"/,
    ],
    [
      `isolation:\n  groups:\n    - { name: ${"g".repeat(65)}, plugins: [a] }\n`,
      3,
      15,
      "isolation.groups[0].name",
      /expected a group name of 1-64 letters/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, workers: 0, plugins: [a] }\n",
      3,
      27,
      "isolation.groups[0].workers",
      /expected an integer from 1 to 1024, got 0/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, workers: 1025, plugins: [a] }\n",
      3,
      27,
      "isolation.groups[0].workers",
      /expected an integer from 1 to 1024, got 1025/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, workers: two, plugins: [a] }\n",
      3,
      27,
      "isolation.groups[0].workers",
      /expected an integer from 1 to 1024, got "two"/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g }\n",
      3,
      7,
      "isolation.groups[0].plugins",
      /is required: expected a list of plugin name patterns/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, plugins: [] }\n",
      3,
      27,
      "isolation.groups[0].plugins",
      /expected at least one plugin name pattern, got an empty list/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, plugins: hello }\n",
      3,
      27,
      "isolation.groups[0].plugins",
      /expected a list of plugin name patterns, got "hello"/,
    ],
    [
      'isolation:\n  groups:\n    - { name: g, plugins: ["tenant/*"] }\n',
      3,
      28,
      "isolation.groups[0].plugins[0]",
      /expected a plugin name pattern \(1-128 letters, digits, '_', '\.', '-' or '\*', not starting with '\.'\), got "tenant\/\*"/,
    ],
    [
      'isolation:\n  groups:\n    - { name: g, plugins: [".hidden"] }\n',
      3,
      28,
      "isolation.groups[0].plugins[0]",
      /expected a plugin name pattern .*, got "\.hidden"/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, plugins: [42] }\n",
      3,
      28,
      "isolation.groups[0].plugins[0]",
      /expected a plugin name pattern .*, got 42/,
    ],
    [
      "isolation:\n  groups:\n    - { name: g, plugins: [a], plugin: [b] }\n",
      3,
      32,
      "isolation.groups[0].plugin",
      /is not a known key \(expected one of "name", "workers", "plugins"\)/,
    ],
  ];
  for (const [text, line, column, path, message] of cases) {
    const error = await refused(text);
    assert.deepEqual([error.line, error.column, error.path], [line, column, path], text);
    assert.match(error.message, message, text);
    assert.match(error.message, /^Invalid config "keycard\.yaml" at line \d+, column \d+: /, text);
  }
});

const CONFIG: { isolation: IsolationConfig } = {
  isolation: {
    groups: [
      { name: "tenant-a", workers: 2, plugins: ["tenant-a-*"] },
      { name: "tenants", workers: 4, plugins: ["tenant-*", "hello", "*.audit.*", "x*y*z"] },
      { name: "rest", workers: 1, plugins: ["*"] },
    ],
  },
};

Deno.test("isolationGroupOf() takes the first group in file order whose pattern matches", () => {
  assert.equal(isolationGroupOf(CONFIG, "tenant-a-billing"), "tenant-a");
  assert.equal(isolationGroupOf(CONFIG, "tenant-b-billing"), "tenants");
  assert.equal(isolationGroupOf(CONFIG, "hello"), "tenants");
  // Everything else falls to the catch-all group written last.
  assert.equal(isolationGroupOf(CONFIG, "stamp"), "rest");
});

Deno.test("isolationGroupOf() matches '*' to any run of characters, none included, and the rest literally", () => {
  const only = (...plugins: string[]) => ({ isolation: { groups: [{ name: "g", workers: 2, plugins }] } });
  const cases: [string, string, boolean][] = [
    ["hello", "hello", true],
    ["hello", "hello2", false],
    ["hello", "Hello", false],
    ["hello", "hell", false],
    ["tenant-*", "tenant-", true],
    ["tenant-*", "tenant-a.b_c", true],
    ["tenant-*", "tenant", false],
    ["tenant-*", "xtenant-a", false],
    ["*-audit", "a-audit", true],
    ["*-audit", "-audit", true],
    ["*-audit", "a-audit-2", false],
    ["a.b", "a.b", true],
    ["a.b", "aXb", false],
    ["x*y*z", "xyz", true],
    ["x*y*z", "x-y-y-z", true],
    ["x*y*z", "x-z-y", false],
    ["*a*a*b", "aab", true],
    ["*a*a*b", "ab", false],
    ["**", "anything", true],
    ["*", "a", true],
  ];
  for (const [pattern, name, matches] of cases) {
    assert.equal(isolationGroupOf(only(pattern), name), matches ? "g" : undefined, `${pattern} ~ ${name}`);
  }
});

Deno.test("isolationGroupOf() leaves a plugin no group matches to workers of its own", () => {
  assert.equal(isolationGroupOf({ isolation: { groups: [] } }, "hello"), undefined);
  assert.equal(isolationGroupOf({ isolation: { groups: CONFIG.isolation.groups.slice(0, 2) } }, "stamp"), undefined);
});

Deno.test("isolationGroupOf() stays fast on a pattern of many stars that almost matches", () => {
  const pattern = `${"*a".repeat(60)}*b`.slice(0, 128);
  const name = "a".repeat(128);
  const started = performance.now();
  assert.equal(
    isolationGroupOf({ isolation: { groups: [{ name: "g", workers: 2, plugins: [pattern] }] } }, name),
    undefined,
  );
  // A backtracking regular expression built from this pattern takes minutes; the matcher is quadratic at worst.
  assert.ok(performance.now() - started < 100, `${performance.now() - started} ms`);
});
