// The standing adversarial suite, area "lifecycle": kill -9 of the whole server (the `deno task start` tree) in the
// middle of an install, in the middle of a policy write and right after acknowledged calls, then a restart on the
// same data dir through the shipped command. What must hold after each restart: every acknowledged install and policy
// is there; an interrupted one is there whole or not at all (listed, invocable, same sha256, its policy in force);
// the registry, the policy set and decisions are consistent; no audit line of an acknowledged call is lost.
//
// The kill is armed before the request and fired by an event, not a timer: a helper (`deno eval`, which the test task
// may run; the test itself may not call Deno.kill) watches the data dir or its stdin and SIGKILLs the process tree by
// id, deepest first, the moment the named file appears, the way tests/e2e/_server.ts stops a tree.
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import {
  bearer,
  BOUND,
  DENO,
  echoManifest,
  expectStatus,
  type Keycard,
  listPlugins,
  makeSite,
  pluginForm,
  type Site,
  startKeycard,
  TREE_SOURCE,
  within,
} from "../e2e/_server.ts";
import { tally } from "./_tally.ts";

const KILLER = `
const pid = Number(Deno.env.get("KILL_PID"));
const watch = Deno.env.get("KILL_WATCH");
const pattern = new RegExp(Deno.env.get("KILL_PATTERN") || "$^");
${TREE_SOURCE}
const kill = (why) => {
  for (const p of [...tree(pid), pid]) { try { Deno.kill(p, "SIGKILL"); } catch { /* gone */ } }
  console.log("killed " + why);
  Deno.exit(0);
};
if (watch) {
  const watcher = Deno.watchFs(watch, { recursive: true });
  console.log("armed");
  for await (const event of watcher) {
    const hit = event.paths.find((path) => pattern.test(path));
    if (hit) kill(event.kind + " " + hit);
  }
} else {
  console.log("armed");
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  kill("on cue");
}
`;

/** A helper process armed to SIGKILL a keycard's process tree on a file event under `watch`, or on cue. */
class Killer {
  readonly #process: Deno.ChildProcess;
  readonly #out: Promise<string>;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  private constructor(kc: Keycard, watch?: { dir: string; pattern: RegExp }) {
    this.#process = new Deno.Command(DENO, {
      args: ["eval", "--no-config", KILLER],
      env: {
        DENO_NO_PACKAGE_JSON: "1",
        NO_COLOR: "1",
        KILL_PID: String(kc.run.process.pid),
        KILL_WATCH: watch?.dir ?? "",
        KILL_PATTERN: watch?.pattern.source ?? "",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines = this.#process.stdout.pipeThrough(new TextDecoderStream());
    const reader = lines.getReader();
    let text = "";
    const armed = Promise.withResolvers<void>();
    this.armed = armed.promise;
    this.#out = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += value;
        if (text.includes("armed")) armed.resolve();
      }
    })();
  }

  readonly armed: Promise<void>;

  /** Starts a killer and waits until it is armed (its watch is in place). */
  static async arm(kc: Keycard, watch?: { dir: string; pattern: RegExp }): Promise<Killer> {
    const killer = new Killer(kc, watch);
    await within(BOUND.line, "the killer to arm", killer.armed);
    return killer;
  }

  /** Fires at once (a killer armed without a watch). */
  async fire(): Promise<void> {
    this.#writer ??= this.#process.stdin.getWriter();
    await this.#writer.write(new TextEncoder().encode("go\n"));
  }

  /** Waits for the kill (bounded) and for the keycard to be gone; returns what the killer saw. */
  async done(kc: Keycard): Promise<string> {
    await within(BOUND.stop, "the kill", this.#process.status);
    await within(BOUND.stop, "the keycard to die", kc.run.status);
    const out = (await this.#out).replace(/^armed\n/, "");
    await this.#writer?.close().catch(() => {});
    if (!this.#writer) await this.#process.stdin.close().catch(() => {});
    return out.trim();
  }
}

/** The installed versions of echo and their sha256, read one by one. */
async function echoVersions(kc: Keycard): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const listed = (await plugins(kc)).find((p) => p.name === "echo");
  for (const version of listed?.versions ?? []) {
    const one = await kc.fetch(`/v1/plugins/echo?version=${version}`, { headers: bearer(kc.adminToken) });
    out.set(version, (JSON.parse(await expectStatus(kc, one, 200)) as { sha256: string }).sha256);
  }
  return out;
}

async function plugins(kc: Keycard): Promise<{ name: string; version: string; versions?: string[]; sha256: string }[]> {
  const response = await kc.fetch("/v1/plugins", { headers: bearer(kc.adminToken) });
  return (JSON.parse(await expectStatus(kc, response, 200)) as { plugins: never[] }).plugins;
}

async function policyIds(kc: Keycard): Promise<string[]> {
  const response = await kc.fetch("/v1/policies", { headers: bearer(kc.adminToken) });
  return (JSON.parse(await expectStatus(kc, response, 200)).policies as { id: string }[]).map((p) => p.id);
}

async function invokeEcho(kc: Keycard, site: Site, version?: string): Promise<Response> {
  const query = version ? `?version=${version}` : "";
  return await kc.fetch(`/v1/plugins/echo/invoke/echo${query}`, {
    method: "POST",
    headers: bearer(site.callerToken),
    body: "still here",
  });
}

/** What must hold of the registry after a restart: every listed plugin is whole (readable and invocable). */
async function registryConsistent(kc: Keycard, site: Site): Promise<void> {
  for (const p of await plugins(kc)) {
    for (const version of p.versions ?? [p.version]) {
      const one = await kc.fetch(`/v1/plugins/${p.name}?version=${version}`, { headers: bearer(kc.adminToken) });
      await expectStatus(kc, one, 200);
    }
  }
  const echo = await invokeEcho(kc, site);
  assert.equal(await expectStatus(kc, echo, 200), "still here");
}

const policy = (id: string) =>
  `@id("${id}")\npermit (principal == Plugin::"hello", action == Action::"clock.now", resource);\n`;

Deno.test("adversarial lifecycle: kill -9 mid-install, mid-policy-write and after acknowledged calls", async () => {
  const t = tally("lifecycle");
  await using site = await makeSite({ routes: [] });
  const echo1 = await watFixture("http_echo");
  // Same behaviour, different bytes (a custom section appended): a different sha256 for version 2.0.0.
  const echo2 = new Uint8Array([...echo1, 0, 5, 4, ...new TextEncoder().encode("v2!x")]);
  const sha = async (bytes: Uint8Array) =>
    Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
  const acked: string[] = [];
  const stampCall = async (kc: Keycard) => {
    const response = await kc.fetch("/v1/plugins/stamp/invoke/kv_counter", {
      method: "POST",
      headers: bearer(site.callerToken),
    });
    await expectStatus(kc, response, 200);
    acked.push(response.headers.get("x-keycard-call-id")!);
  };
  const auditCallIds = async () => {
    const text = await Deno.readTextFile(join(site.dataDir, "audit.jsonl")).catch(() => "");
    return new Set(text.split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { callId?: string }).callId));
  };
  let before: string[] = [];
  // What the interrupted requests answered, if anything: an answer is an acknowledgement that must survive.
  let install2Answer: number | string = "";
  let putAnswer: number | string = "";

  {
    // First life: acknowledged state, then a kill the moment the install's temp dir appears.
    await using kc = await startKeycard(site);
    const admin = bearer(kc.adminToken);
    const install1 = await kc.fetch("/v1/plugins/echo", {
      method: "PUT",
      headers: admin,
      body: pluginForm(echo1, echoManifest("echo")),
    });
    await expectStatus(kc, install1, 201);
    await expectStatus(
      kc,
      await kc.fetch("/v1/policies/ops-one", { method: "PUT", headers: admin, body: policy("ops.one") }),
      200,
    );
    for (let i = 0; i < 3; i++) await stampCall(kc);
    before = await listPlugins(kc);
    const killer = await Killer.arm(kc, { dir: join(site.dataDir, "plugins", "echo"), pattern: /\/\.tmp-[^/]+$/ });
    const install2 = kc.fetch("/v1/plugins/echo", {
      method: "PUT",
      headers: admin,
      body: pluginForm(echo2, echoManifest("echo", "2.0.0")),
    }).then((r) => r.status, () => "no answer");
    const why = await killer.done(kc);
    install2Answer = await install2;
    await t.attack(`kill -9 mid-install (${why.replace(site.dataDir, "<data>")}; answer: ${install2Answer})`, () => {
      assert.match(why, /^killed /);
      assert.ok(install2Answer === "no answer" || install2Answer === 201, `the install answered ${install2Answer}`);
    });
  }

  let echo2Whole = false;
  {
    // Second life: echo 1.0.0 and ops.one are there; echo 2.0.0 whole or absent; then a kill mid-policy-write.
    await using kc = await startKeycard(site);
    await t.attack(
      "after a kill mid-install: the acknowledged install is there and the registry is whole",
      async () => {
        const versions = await echoVersions(kc);
        assert.equal(versions.get("1.0.0"), await sha(echo1), JSON.stringify([...versions]));
        if (install2Answer === 201) assert.ok(versions.has("2.0.0"), "an acknowledged install was lost");
        if (versions.has("2.0.0")) {
          assert.equal(versions.get("2.0.0"), await sha(echo2), "a partial 2.0.0 is listed");
          echo2Whole = true;
        }
        assert.deepEqual([...versions.keys()].filter((v) => v !== "2.0.0"), ["1.0.0"]);
        await registryConsistent(kc, site);
        const others = (await listPlugins(kc)).filter((p) => !p.startsWith("echo@"));
        assert.deepEqual(others, before.filter((p) => !p.startsWith("echo@")));
      },
    );
    await t.attack("after a kill mid-install: the acknowledged policy is in force", async () => {
      assert.ok((await policyIds(kc)).includes("ops.one"));
    });
    // Calls acknowledged just before the kill: their audit lines must be on disk by then.
    for (let i = 0; i < 5; i++) await stampCall(kc);
    const admin = bearer(kc.adminToken);
    const killer = await Killer.arm(kc, { dir: site.policiesDir, pattern: /ops-two\.cedar\.tmp-[^/]+$/ });
    const put = kc.fetch("/v1/policies/ops-two", { method: "PUT", headers: admin, body: policy("ops.two") })
      .then((r) => r.status, () => "no answer");
    const why = await killer.done(kc);
    putAnswer = await put;
    await t.attack(
      `kill -9 mid-policy-write (${why.replace(site.policiesDir, "<policies>")}; answer: ${putAnswer})`,
      () => {
        assert.match(why, /^killed /);
        assert.ok(putAnswer === "no answer" || putAnswer === 200, `the policy write answered ${putAnswer}`);
      },
    );
  }

  {
    // Third life: ops.one there, ops.two whole or absent, decisions work; no acknowledged audit line or KV write lost.
    await using kc = await startKeycard(site);
    await t.attack("after a kill mid-policy-write: the set is consistent and decisions work", async () => {
      const ids = await policyIds(kc);
      assert.ok(ids.includes("ops.one"), ids.join(","));
      const dryRun = await kc.fetch("/v1/authorize", {
        method: "POST",
        headers: bearer(kc.adminToken),
        body: JSON.stringify({
          principal: { type: "Plugin", id: "hello" },
          action: "clock.now",
          resource: { type: "Runtime", id: "clock" },
        }),
      });
      const decision = JSON.parse(await expectStatus(kc, dryRun, 200));
      assert.equal(decision.decision, "allow", JSON.stringify(decision));
      const files = [...Deno.readDirSync(site.policiesDir)].map((e) => e.name);
      if (putAnswer === 200) assert.ok(ids.includes("ops.two"), "an acknowledged policy write was lost");
      if (ids.includes("ops.two")) {
        assert.equal(await Deno.readTextFile(join(site.policiesDir, "ops-two.cedar")), policy("ops.two"));
      } else {
        assert.ok(!files.includes("ops-two.cedar"), "ops-two.cedar is on disk but not in force");
      }
      await registryConsistent(kc, site);
    });
    await t.attack("no audit line of an acknowledged call is lost", async () => {
      const ids = await auditCallIds();
      const lost = acked.filter((id) => !ids.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged calls have no audit line`);
    });
    await t.attack("the KV writes of acknowledged calls survived", async () => {
      const response = await kc.fetch("/v1/plugins/stamp/invoke/kv_counter", {
        method: "POST",
        headers: bearer(site.callerToken),
      });
      assert.equal(await expectStatus(kc, response, 200), String(acked.length + 1));
    });
    await t.attack("after two kills the registry, the policies and echo are whole", async () => {
      await registryConsistent(kc, site);
      assert.ok((await policyIds(kc)).includes("ops.one"));
      assert.equal((await echoVersions(kc)).has("2.0.0"), echo2Whole);
    });
  }
  t.report();
});
