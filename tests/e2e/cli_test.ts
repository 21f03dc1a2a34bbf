// The commands themselves: `deno task conform` (formats, --out, --grants, exit codes 0/1/2 on the example plugins,
// hostile fixtures and bad input), `deno task start --dry-run`, and configuration errors (one line, exit 2).
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import { builtPlugin, makeSite, pluginDir, REPO, Run } from "./_server.ts";

/** Runs a command to its end (bounded) and returns its exit code and output. */
async function run(args: string[], env: Record<string, string> = {}) {
  await using command = new Run(args, env);
  const status = await command.exit(60_000);
  return { code: status.code, stdout: command.stdout.text(), stderr: command.stderr.text(), output: command.output() };
}

/** stderr without deno task's own "Task ..." line. */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line !== "" && !line.startsWith("Task "));
}

/** A hostile fixture: its module and a manifest declaring its export with one sample. */
const HOSTILE = [
  ["extism_loop_forever", "loop"],
  ["extism_fail", "run_test"],
  ["infinite_loop", "spin"],
  ["trap", "unreachable"],
] as const;

Deno.test("deno task conform: exit 0 for the example plugins, 1 for hostile ones, 2 without a verdict", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "keycard-e2e-conform-" });
  try {
    const hello = join(pluginDir("hello"), "build", "plugin.wasm");
    await builtPlugin("hello"); // built by the start tests or examplePlugin; fails clearly if missing
    const helloManifest = join(pluginDir("hello"), "plugin.yaml");

    await t.step("hello passes: text report on stdout, exit 0", async () => {
      const result = await run(["task", "conform", hello, "--manifest", helloManifest]);
      assert.equal(result.code, 0, result.output);
      assert.match(result.stdout, /^PASS module\.valid/m);
      assert.match(result.stdout, /hello 1\.0\.0 is conformant/);
    });

    await t.step("--format json --out FILE writes the report there and nothing to stdout", async () => {
      const out = join(dir, "hello.json");
      const result = await run([
        "task",
        "conform",
        hello,
        "--manifest",
        helloManifest,
        "--format",
        "json",
        "--out",
        out,
      ]);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.stdout, "");
      const report = JSON.parse(await Deno.readTextFile(out));
      assert.deepEqual([report.plugin, report.version, report.passed], ["hello", "1.0.0", true]);
    });

    await t.step("every example plugin passes with its own manifest", async () => {
      for (const name of ["stamp", "header-guard", "redact", "quoter"]) {
        const wasm = join(pluginDir(name), "build", "plugin.wasm");
        const result = await run(["task", "conform", wasm, "--manifest", join(pluginDir(name), "plugin.yaml")]);
        assert.equal(result.code, 0, `${name}: ${result.output}`);
      }
    });

    for (const [fixture, exportName] of HOSTILE) {
      await t.step(`${fixture}.wat (${exportName}) fails: exit 1, JUnit names the failure`, async () => {
        const wasm = join(dir, `${fixture}.wasm`);
        await Deno.writeFile(wasm, await watFixture(fixture));
        const manifest = join(dir, `${fixture}.yaml`);
        await Deno.writeTextFile(
          manifest,
          `name: ${fixture.replaceAll("_", "-")}\nversion: 1.0.0\nexports:\n  - name: ${exportName}\n` +
            `    samples: [""]\ncapabilities: []\n`,
        );
        const result = await run(["task", "conform", wasm, "--manifest", manifest, "--format", "junit"]);
        assert.equal(result.code, 1, result.output);
        assert.match(result.stdout, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /);
        assert.match(result.stdout, /<failure /);
      });
    }

    await t.step(
      "a missing module, a missing manifest, a bad manifest, a bad format: exit 2, one message",
      async () => {
        const cases: [string[], RegExp][] = [
          [[join(dir, "missing.wasm")], /^Cannot read plugin module ".*missing\.wasm"/],
          [[hello, "--manifest", join(dir, "missing.yaml")], /^Cannot read manifest ".*missing\.yaml"/],
          [
            [hello, "--manifest", join(REPO, "tests", "testdata", "conform_bad.yaml")],
            /^Invalid manifest ".*" at line/,
          ],
          [[hello, "--format", "xml"], /^Unknown format "xml"/],
        ];
        for (const [args, message] of cases) {
          const result = await run(["task", "conform", ...args]);
          assert.equal(result.code, 2, result.output);
          assert.match(errorLines(result.stderr)[0] ?? "", message, result.output);
          assert.equal(result.stdout, "");
          assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
        }
      },
    );

    await t.step("--grants runs stamp under its manifest's grants: its host calls are permitted, exit 0", async () => {
      const stamp = join(pluginDir("stamp"), "build", "plugin.wasm");
      const manifest = join(pluginDir("stamp"), "plugin.yaml");
      const result = await run(["task", "conform", stamp, "--manifest", manifest, "--grants"]);
      assert.equal(result.code, 0, result.output);
      assert.match(result.stdout, /^PASS instantiate\.grants /m, result.output);
      assert.match(result.stdout, /^PASS privileges\.granted /m, result.output);
      for (const action of ["clock.now", "random.get", "kv.set", "fs.read"]) {
        const line = new RegExp(`^  ${action.replace(".", "\\.")} \\S+ x\\d+ \\(declared, \\d+ permitted\\)$`, "m");
        assert.match(result.stdout, line, result.output);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start --dry-run prints the derived permissions, the data dir in --allow-write", async () => {
  await using site = await makeSite();
  const result = await run(["task", "start", site.configPath, "--dry-run"]);
  assert.equal(result.code, 0, result.output);
  assert.match(result.stdout, new RegExp(`^keycard: config ${site.configPath}$`, "m"));
  const write = /^ {2}--allow-write=(.*)$/m.exec(result.stdout)?.[1]?.split(",");
  assert.ok(write, result.output);
  assert.ok(write.includes(site.dataDir), `${site.dataDir} not in ${write}`);
  assert.ok(write.includes(site.policiesDir), `${site.policiesDir} not in ${write}`);
  assert.ok(!write.some((path) => path === REPO || path.startsWith(`${REPO}/`)), `writes inside the repo: ${write}`);
  const read = /^ {2}--allow-read=(.*)$/m.exec(result.stdout)?.[1]?.split(",") ?? [];
  assert.ok(read.includes(site.configPath), result.output);
  assert.match(result.stdout, /^ {2}--allow-net$/m);
  assert.match(result.stdout, /^ {2}--allow-env=\S*KEYCARD_CONFIG/m);
  assert.doesNotMatch(result.stdout, /(^|\s)-A(\s|$)|--allow-all/);
  assert.match(result.stdout, /^keycard: would run: deno run /m);
  assert.doesNotMatch(result.stdout, /keycard serving on/);
  // Nothing started, so nothing was written.
  await assert.rejects(Deno.stat(site.dataDir), Deno.errors.NotFound);
});

Deno.test("deno task start refuses a bad configuration with one line and exit 2", async (t) => {
  await using site = await makeSite();
  const cases: {
    name: string;
    args: string[];
    env?: Record<string, string>;
    setup?: () => Promise<void>;
    message: RegExp;
  }[] = [
    {
      name: "a missing config file",
      args: [join(site.dir, "missing.yaml")],
      message: /missing\.yaml/,
    },
    {
      name: "YAML that does not parse",
      args: [site.configPath],
      setup: () => Deno.writeTextFile(site.configPath, "server: { port: 8080\n"),
      message: /keycard\.yaml.*line \d+/,
    },
    {
      name: "a wrong type, with line and column",
      args: [site.configPath],
      setup: () => Deno.writeTextFile(site.configPath, "server:\n  port: eighty\n"),
      message: /^Invalid config ".*keycard\.yaml" at line 2, column 9: "server\.port"/,
    },
    {
      name: "an unknown key",
      args: [site.configPath],
      setup: () => Deno.writeTextFile(site.configPath, "sever:\n  port: 0\n"),
      message: /sever/,
    },
    {
      name: "KEYCARD_ADMIN_TOKEN shorter than 16 characters",
      args: [site.configPath],
      env: { KEYCARD_ADMIN_TOKEN: "short" },
      setup: () => site.writeConfig({}),
      message: /KEYCARD_ADMIN_TOKEN/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await c.setup?.();
      const result = await run(["task", "start", ...c.args], c.env ?? {});
      assert.equal(result.code, 2, result.output);
      const lines = errorLines(result.stderr);
      assert.equal(lines.length, 1, `one line expected:\n${result.output}`);
      assert.match(lines[0]!, c.message);
      assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
      assert.doesNotMatch(result.stdout, /keycard serving on/);
    });
  }
});
