// `deno task conform`: in process through main(), and once as the real
// command in a subprocess, for its exit codes.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { buildPlugins } from "../plugins/build.ts";
import { main } from "../src/cli/conform.ts";
import { denoCommand, watFixture } from "./_test_utils.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TESTDATA = fileURLToPath(new URL("./testdata/", import.meta.url));

/** The flags of the `conform` task in deno.json. */
const TASK_FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-env=CI,LOG_TOKENS,LOG_STREAM",
  "--v8-flags=--wasm-max-mem-pages=16384,--expose-gc",
];

interface Fixtures {
  dir: string;
  hello: string;
  helloManifest: string;
  trap: string;
  trapManifest: string;
  badManifest: string;
  stamp: string;
  stampManifest: string;
  loop: string;
  fail: string;
  [Symbol.asyncDispose](): Promise<void>;
}

async function fixtures(): Promise<Fixtures> {
  const dir = await Deno.makeTempDir({ prefix: "keycard-conform-cli-" });
  const [hello, stamp] = await buildPlugins({ only: ["hello", "stamp"] });
  const trap = `${dir}/trap.wasm`;
  await Deno.writeFile(trap, await watFixture("trap"));
  const loop = `${dir}/loop.wasm`;
  await Deno.writeFile(loop, await watFixture("extism_loop_forever"));
  const fail = `${dir}/fail.wasm`;
  await Deno.writeFile(fail, await watFixture("extism_fail"));
  return {
    dir,
    hello: hello!,
    helloManifest: `${ROOT}plugins/hello/plugin.yaml`,
    trap,
    trapManifest: `${TESTDATA}conform_trap.yaml`,
    badManifest: `${TESTDATA}conform_bad.yaml`,
    stamp: stamp!,
    stampManifest: `${ROOT}plugins/stamp/plugin.yaml`,
    loop,
    fail,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Runs main() with its output captured. */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  const stderr: string[] = [];
  const code = await main(args, { stdout: (text) => void (stdout += text), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr: stderr.join("\n") };
}

Deno.test("main() exits 0 for hello and writes the JSON report to --out", async () => {
  await using f = await fixtures();
  const out = `${f.dir}/report.json`;
  const result = await run([f.hello, "--manifest", f.helloManifest, "--format", "json", "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "");
  const report = JSON.parse(await Deno.readTextFile(out));
  assert.equal(report.plugin, "hello");
  assert.equal(report.passed, true);
  assert.equal(report.checks.length, 9);
});

Deno.test("main() exits 1 for a trapping plugin and prints the text report", async () => {
  await using f = await fixtures();
  const result = await run([f.trap, "-m", f.trapManifest]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /^FAIL exports\.run +"unreachable" on empty input failed: PluginTrapError/m);
  assert.match(result.stdout, /trap 1\.0\.0 is not conformant: 7 passed, 1 failed, 1 skipped/);
  assert.equal(result.stderr, "");
});

Deno.test("main() exits 1 for Extism's loop-forever and fail plugins, with and without a manifest", async () => {
  await using f = await fixtures();
  const loopManifest = `${f.dir}/loop.yaml`;
  await Deno.writeTextFile(loopManifest, "name: loop-forever\nexports: [loop]\nlimits: { deadlineMs: 200 }\n");
  const failManifest = `${f.dir}/fail.yaml`;
  await Deno.writeTextFile(failManifest, "name: fail\nexports: [run_test]\n");
  for (
    const [args, detail] of [
      [[f.loop], /^FAIL exports\.run +"loop" on empty input failed: PluginDeadlineError/m],
      [[f.loop, "--manifest", loopManifest], /^FAIL exports\.run +"loop" on empty input failed: PluginDeadlineError/m],
      [[f.fail], /^FAIL exports\.run +"run_test" on empty input failed: PluginReportedError/m],
      [[f.fail, "-m", failManifest], /^FAIL exports\.run +"run_test" on empty input failed: PluginReportedError/m],
    ] as const
  ) {
    const result = await run([...args]);
    assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stdout, detail);
  }
  // The manifest's own limits are reported, not applied: the run keeps keycard's deadline.
  const reported = await run([f.loop, "--manifest", loopManifest]);
  assert.match(reported.stdout, /^limits asked for: deadlineMs 200$/m);
});

Deno.test("main() --grants runs stamp under its manifest's grants", async () => {
  await using f = await fixtures();
  const result = await run([f.stamp, "--manifest", f.stampManifest, "--grants", "--format", "json"]);
  assert.equal(result.code, 0, result.stdout);
  const report = JSON.parse(result.stdout);
  assert.equal(report.grants, "grants");
  assert.ok(report.checks.some((c: { id: string; passed: boolean }) => c.id === "privileges.granted" && c.passed));
  const without = await run([f.stamp, "--grants"]);
  assert.equal(without.code, 2);
  assert.match(without.stderr, /^--grants needs --manifest/);
});

Deno.test("main() --propose keeps the exit code and proposes what a failing plugin tried", async () => {
  await using f = await fixtures();
  const wasm = `${f.dir}/undeclared.wasm`;
  await Deno.writeFile(wasm, await watFixture("conform_undeclared"));
  const manifest = `${TESTDATA}conform_undeclared.yaml`;
  const result = await run([wasm, "--manifest", manifest, "--propose"]);
  // It attempts env.get, which its capabilities do not declare: not conformant, with or without --propose.
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /^FAIL capabilities\.declared /m);
  assert.match(
    result.stdout,
    /^proposed least grant for undeclared \(from 2 runs\), for plugin\.yaml:\n {2}grants:\n {4}- env\.get: \{ names: \[REGION\] \} # 1 attempt on REGION\nwhich compiles to this Cedar:\n/m,
  );
  assert.match(result.stdout, /^ {2}when \{ \[EnvVar::"undeclared\/REGION"\]\.contains\(resource\) \};$/m);
  assert.match(result.stdout, /\nundeclared 1\.0\.0 is not conformant: 7 passed, 1 failed, 1 skipped in \d+ ms\n$/);
});

Deno.test("main() --propose with --out writes the proposal into the report and prints it", async () => {
  await using f = await fixtures();
  const out = `${f.dir}/report.json`;
  const result = await run([f.hello, "--manifest", f.helloManifest, "--propose", "--format", "json", "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  // hello makes no host call: one run, no grant, nothing in the manifest wider than that.
  assert.equal(
    result.stdout,
    "proposed least grant for hello (from 1 run), for plugin.yaml:\n  grants: []\n" +
      "which compiles to no Cedar: nothing is permitted\n",
  );
  const { proposal } = JSON.parse(await Deno.readTextFile(out));
  assert.deepEqual(proposal, {
    plugin: "hello",
    grants: [],
    yaml: "grants: []\n",
    cedar: "",
    cannotGrant: [],
    warnings: [],
    runs: 1,
    footprint: [],
  });
  // Without a manifest there is nothing to run the proposal under: the one run.
  const bare = await run([f.hello, "--propose", "--format", "junit"]);
  assert.equal(bare.code, (await run([f.hello, "--format", "junit"])).code, bare.stderr);
  assert.match(
    bare.stdout,
    /<system-out>no host calls attempted&#10;&#10;proposed least grant for plugin \(from 1 run\)/,
  );
});

Deno.test("main() writes JUnit to stdout", async () => {
  await using f = await fixtures();
  const result = await run([f.trap, "--manifest", f.trapManifest, "--format", "junit"]);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /);
  assert.match(
    result.stdout,
    /<testsuite name="keycard conformance: trap" tests="9" failures="1" errors="0" skipped="1"/,
  );
});

Deno.test("main() exits 2 on bad usage and unreadable input, naming the problem", async () => {
  await using f = await fixtures();
  const cases: [string[], RegExp][] = [
    [[], /^Missing the plugin module/],
    [[f.hello, f.trap], /^Expected one plugin module, got 2/],
    [[f.hello, "--bogus"], /Unknown option '--bogus'/],
    [[f.hello, "--format", "xml"], /^Unknown format "xml": expected one of text, json, junit/],
    [[`${f.dir}/missing.wasm`], /^Cannot read plugin module ".*missing\.wasm": No such file/],
    [[f.hello, "--manifest", `${f.dir}/missing.yaml`], /^Cannot read manifest ".*missing\.yaml": No such file/],
    [[f.hello, "--manifest", f.badManifest], /^Invalid manifest ".*conform_bad\.yaml" at line 7, column 1: /],
    [[f.hello, "--out", `${f.dir}/no/such/dir/report.txt`], /^Cannot write the report to ".*report\.txt"/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, `${JSON.stringify(args)}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, "");
  }
});

Deno.test("main() prints usage for --help", async () => {
  const result = await run(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^Usage: deno task conform <plugin\.wasm> \[--manifest plugin\.yaml\]/);
});

const DENO = denoCommand;

Deno.test({
  name: "deno run src/cli/conform.ts exits 0, 1 and 2 as a real command" +
    (DENO ? "" : " (ignored: needs --allow-run=deno)"),
  ignore: DENO === undefined,
  async fn() {
    await using f = await fixtures();
    const command = async (...args: string[]) => {
      const output = await new Deno.Command(DENO!, {
        args: ["run", ...TASK_FLAGS, "src/cli/conform.ts", ...args],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const decoder = new TextDecoder();
      return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
    };
    const [hello, trap, missing, flag, yaml, fail] = await Promise.all([
      command(f.hello, "--manifest", f.helloManifest),
      command(f.trap, "--manifest", f.trapManifest, "--format", "junit"),
      command(`${f.dir}/missing.wasm`),
      command(f.hello, "--bogus"),
      command(f.hello, "--manifest", f.badManifest),
      command(f.fail),
    ]);
    assert.equal(fail.code, 1, fail.stderr);
    assert.match(fail.stdout, /"run_test" on empty input failed: PluginReportedError/);
    assert.equal(hello.code, 0, hello.stderr);
    assert.match(hello.stdout, /hello 1\.0\.0 is conformant: 9 passed, 0 failed, 0 skipped/);
    assert.equal(trap.code, 1, trap.stderr);
    assert.match(trap.stdout, /<failure message="&quot;unreachable&quot; on empty input failed: /);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot read plugin module ".*missing\.wasm"/);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'/);
    assert.equal(yaml.code, 2);
    assert.match(yaml.stderr, /Invalid manifest ".*conform_bad\.yaml" at line 7, column 1/);
  },
});
