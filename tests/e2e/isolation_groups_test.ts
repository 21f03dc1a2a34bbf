// Isolation groups (issue 13) through the shipped command: keycard.yaml's `isolation:` puts hello and quoter in one
// group sharing one worker while stamp keeps workers of its own; the plugin views, calls (direct, through the /quote
// route, concurrent), an install over HTTP that joins the group, /metrics' group gauges and labels; and a bad
// `isolation:` section refused by `deno task start` with exit 2, one line with line and column, nothing started.
import assert from "node:assert/strict";
import { watFixture } from "../_test_utils.ts";
import {
  bearer,
  echoManifest,
  exists,
  expectStatus,
  type Keycard,
  makeSite,
  pluginDir,
  pluginForm,
  QUOTE_ROUTE,
  Run,
  type Site,
  startKeycard,
} from "./_server.ts";

/** The group of the suite: two example plugins by name and by pattern, and whatever is installed as tenant-*. */
const ISOLATION = [
  "isolation:",
  "  groups:",
  "    - name: tenants",
  "      workers: 1",
  '      plugins: ["hel*", quoter, "tenant-*"]',
  "",
];

/** A site configuring hello, quoter and stamp, with `isolation` lines appended to its keycard.yaml. */
async function siteWith(isolation: string[]): Promise<Site & { isolationLine: number }> {
  const site = await makeSite({ plugins: ["hello", "quoter", "stamp"].map(pluginDir), routes: QUOTE_ROUTE });
  const text = await Deno.readTextFile(site.configPath);
  await Deno.writeTextFile(site.configPath, text + isolation.join("\n"));
  // 1-based line of the first appended line (the file ends with a newline).
  return Object.assign(site, { isolationLine: text.split("\n").length });
}

/** GET /v1/plugins/<name>'s `isolation`. */
async function isolationOf(kc: Keycard, name: string): Promise<unknown> {
  const response = await kc.fetch(`/v1/plugins/${name}`, { headers: bearer(kc.adminToken) });
  const view = JSON.parse(await expectStatus(kc, response, 200));
  assert.equal(view.state, "loaded", JSON.stringify(view));
  return view.isolation;
}

/** The /metrics text, read with the admin token. */
async function scrape(kc: Keycard): Promise<string> {
  return await expectStatus(kc, await kc.fetch("/metrics", { headers: bearer(kc.adminToken) }), 200);
}

Deno.test("deno task start runs an isolation group: views, calls, installs and metrics show it", async (t) => {
  await using site = await siteWith(ISOLATION);
  await using kc = await startKeycard(site);
  const caller = bearer(site.callerToken);
  const invoke = async (plugin: string, exportName: string, body: string) =>
    await expectStatus(
      kc,
      await kc.fetch(`/v1/plugins/${plugin}/invoke/${exportName}`, { method: "POST", headers: caller, body }),
      200,
    );

  await t.step(
    "GET /v1/plugins/<name> shows the group of hello and quoter, and isolation: plugin for stamp",
    async () => {
      assert.deepEqual(await isolationOf(kc, "hello"), { group: "tenants" });
      assert.deepEqual(await isolationOf(kc, "quoter"), { group: "tenants" });
      assert.equal(await isolationOf(kc, "stamp"), "plugin");
      const list = await kc.fetch("/v1/plugins", { headers: bearer(kc.adminToken) });
      const { plugins } = JSON.parse(await expectStatus(kc, list, 200)) as {
        plugins: { name: string; isolation: unknown }[];
      };
      assert.deepEqual(
        plugins.map((p) => [p.name, p.isolation]).sort(),
        [["hello", { group: "tenants" }], ["quoter", { group: "tenants" }], ["stamp", "plugin"]],
      );
    },
  );

  await t.step("both plugins of the group answer, one at a time, at once, and through the /quote route", async () => {
    assert.equal(await invoke("hello", "greet", "group"), "Hello, group!");
    assert.equal(JSON.parse(await invoke("quoter", "describe", "")).name, "quoter");
    // The group has one worker: calls of both plugins interleave on it, each on its own instance.
    const answers = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          i % 2 === 0
            ? invoke("hello", "echo", `call ${i}`)
            : invoke("quoter", "describe", "").then((text) => JSON.parse(text).name),
      ),
    );
    assert.deepEqual(answers, Array.from({ length: 8 }, (_, i) => i % 2 === 0 ? `call ${i}` : "quoter"));
    const quote = await kc.fetch("/quote");
    assert.equal(JSON.parse(await expectStatus(kc, quote, 200)).path, "/quote");
    assert.equal(JSON.parse(await invoke("stamp", "stamp", "own")).input, "own");
  });

  await t.step("/metrics shows the group's workers and plugins, and a group label on its plugins only", async () => {
    const text = await scrape(kc);
    assert.match(text, /^keycard_group_workers\{group="tenants"\} 1$/m, text);
    assert.match(text, /^keycard_group_plugins\{group="tenants"\} 2$/m, text);
    assert.match(text, /^keycard_plugin_calls_total\{plugin="hello",group="tenants"\} [1-9]\d*$/m, text);
    assert.match(text, /^keycard_plugin_calls_total\{plugin="quoter",group="tenants"\} [1-9]\d*$/m, text);
    // One live worker in the group, an instance of each plugin: the two share it.
    assert.match(text, /^keycard_plugin_instances\{plugin="hello",group="tenants"\} 1$/m, text);
    assert.match(text, /^keycard_plugin_instances\{plugin="quoter",group="tenants"\} 1$/m, text);
    assert.match(text, /^keycard_plugin_calls_total\{plugin="stamp"\} [1-9]\d*$/m, text);
    assert.doesNotMatch(text, /\{plugin="stamp",group=/, text);
    const perWorker = Number(/^keycard_worker_plugins (\S+)$/m.exec(text)?.[1]);
    assert.ok(perWorker > 1, `more than one plugin per worker on average with a shared worker:\n${text}`);
  });

  await t.step("a plugin installed over HTTP whose name matches a pattern joins the group", async () => {
    const response = await kc.fetch("/v1/plugins/tenant-echo", {
      method: "PUT",
      headers: bearer(kc.adminToken),
      body: pluginForm(await watFixture("http_echo"), echoManifest("tenant-echo")),
    });
    assert.equal(JSON.parse(await expectStatus(kc, response, 201)).name, "tenant-echo");
    assert.deepEqual(await isolationOf(kc, "tenant-echo"), { group: "tenants" });
    assert.equal(await invoke("tenant-echo", "echo", "tenant"), "tenant");
    assert.equal(await invoke("hello", "greet", "still"), "Hello, still!");
    const text = await scrape(kc);
    assert.match(text, /^keycard_group_plugins\{group="tenants"\} 3$/m, text);
    assert.match(text, /^keycard_group_workers\{group="tenants"\} 1$/m, text);
    assert.match(text, /^keycard_plugin_instances\{plugin="tenant-echo",group="tenants"\} 1$/m, text);
  });
});

Deno.test("deno task start refuses a bad isolation section: exit 2, one line with its position, nothing run", async (t) => {
  const cases: { name: string; isolation: string[]; at: [number, number]; message: RegExp }[] = [
    {
      name: "a plugin name pattern listed in two groups",
      isolation: [
        "isolation:",
        "  groups:",
        "    - { name: tenants, plugins: [hello] }",
        "    - { name: others, plugins: [quoter, hello] }",
        "",
      ],
      at: [3, 41],
      message: /"isolation\.groups\[1\]\.plugins\[1\]" repeats "hello" of group "tenants": a plugin name pattern is/,
    },
    {
      name: "a group name used twice",
      isolation: [
        "isolation:",
        "  groups:",
        "    - { name: a, plugins: [hello] }",
        "    - { name: a, plugins: [quoter] }",
        "",
      ],
      at: [3, 15],
      message: /"isolation\.groups\[1\]\.name" repeats "a" of entry 0: group names are unique$/,
    },
    {
      name: "workers out of range",
      isolation: ["isolation:", "  groups:", "    - { name: a, workers: 0, plugins: [hello] }", ""],
      at: [2, 27],
      message: /"isolation\.groups\[0\]\.workers" expected an integer from 1 to 1024, got 0$/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using site = await siteWith(c.isolation);
      await using run = new Run(["task", "start", site.configPath]);
      const status = await run.exit(60_000);
      assert.equal(status.code, 2, run.output());
      const lines = run.stderr.lines.filter((line) => line !== "" && !line.startsWith("Task "));
      assert.equal(lines.length, 1, `one line expected:\n${run.output()}`);
      const [line, column] = [site.isolationLine + c.at[0], c.at[1]];
      assert.ok(
        lines[0]!.startsWith(`Invalid config "${site.configPath}" at line ${line}, column ${column}: `),
        `line ${line}, column ${column} expected:\n${run.output()}`,
      );
      assert.match(lines[0]!, c.message);
      assert.doesNotMatch(run.stderr.text(), /^\s+at /m, "no stack trace");
      assert.doesNotMatch(run.stdout.text(), /keycard serving on/);
      // Nothing started: the server never ran, so it created no data dir.
      assert.equal(await exists(site.dataDir), false);
    });
  }
});
