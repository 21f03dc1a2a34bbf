// The standing adversarial suite, area "policy-ci": attacks on policy as code in CI. Hostile test, request, manifest
// and audit files through `deno task policy ...` (subprocesses); dry runs and plans over the API that must change
// nothing; audit events a plugin (relay.wat) tries to forge or bloat through its inputs; secrets in kv keys, URL paths,
// query strings and headers, masked in the audit file, GET /v1/audit and the live stream; redaction patterns that
// would backtrack without V8's linear fallback; and a proposal over a plugin flooding distinct paths forever.
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkPattern } from "../../src/redact/mod.ts";
import { watFixture } from "../_test_utils.ts";
import { compileWat } from "../_wat.ts";
import {
  bearer,
  BOUND,
  expectProblem,
  expectStatus,
  type Keycard,
  makeSite,
  pluginDir,
  pluginForm,
  rawRequest,
  Run,
  startKeycard,
  within,
} from "../e2e/_server.ts";
import { tally } from "./_tally.ts";

const decoder = new TextDecoder();

function hex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `deno task policy <args>`: exit code and both outputs, bounded. */
async function policy(args: string[], ms = 60_000): Promise<{ code: number; out: string; err: string }> {
  await using run = new Run(["task", "policy", ...args]);
  const status = await run.exit(ms);
  return { code: status.code, out: run.stdout.text(), err: run.stderr.text() };
}

/** Every file of a directory with its text: what a dry run must leave as it was. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const entry of Deno.readDir(dir)) {
    files[entry.name] = entry.isFile ? await Deno.readTextFile(join(dir, entry.name)) : `(${entry.name})`;
  }
  return files;
}

/** One invocation of a fs.read flooder: distinct directories, forever (the run's deadline ends it). */
const FLOOD_WAT = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/user" "keycard_fs_read" (func $fs_read (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\\22path\\22:\\22data/flood/d00000000/f\\22}")
  (func (export "flood") (result i32)
    (local $n i32) (local $i i32) (local $d i32) (local $block i64)
    (loop $more
      (local.set $i (i32.const 0))
      (loop $digits
        (local.set $d (i32.and
          (i32.shr_u (local.get $n) (i32.mul (i32.sub (i32.const 7) (local.get $i)) (i32.const 4)))
          (i32.const 15)))
        (i32.store8 (i32.add (i32.const 21) (local.get $i))
          (i32.add (local.get $d) (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $d) (i32.const 10)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $digits (i32.lt_u (local.get $i) (i32.const 8))))
      (local.set $block (call $alloc (i64.const 33)))
      (local.set $i (i32.const 0))
      (loop $copy
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $copy (i32.lt_u (local.get $i) (i32.const 33))))
      (call $free (call $fs_read (local.get $block)))
      (call $free (local.get $block))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more))
    (i32.const 0)))`;

Deno.test("adversarial policy-ci: hostile policy files, dry runs, plans, audit forgery, redaction, proposals", async () => {
  const t = tally("policy-ci");
  const configSecret = `sk_test_${hex(6)}/${hex(6)}+${hex(4)}`;
  const apiKey = `k-${hex(10)}`;
  await using site = await makeSite({ plugins: [], routes: [] });
  const relay = join(site.dir, "relay.wasm");
  await Deno.writeFile(relay, await watFixture("relay"));
  await Deno.writeTextFile(
    join(site.dir, "relay.yaml"),
    [
      "name: relay",
      "version: 1.0.0",
      "description: relays its input to a host function",
      "exports: [{ name: kv_get }, { name: log_write }, { name: fs_read }, { name: http_request }, { name: clock_now }]",
      "capabilities: [kv.get, log.write, fs.read, http.request, clock.now]",
      "grants:",
      "  - log.write: {}",
      "  - kv: { namespace: relay }",
      "  - clock.now: {}",
      "config:",
      `  api_key: "${configSecret}"`,
      "",
    ].join("\n"),
  );
  const leaky = join(site.dir, "leaky.wasm");
  await Deno.writeFile(leaky, await watFixture("leaky"));
  await Deno.writeTextFile(
    join(site.dir, "leaky.yaml"),
    [
      "name: leaky",
      "version: 1.0.0",
      "description: logs the requests its hook sees",
      "exports: [{ name: leak_config }, { name: on_request }]",
      "capabilities: [log.write, kv.get, http.request]",
      "grants:",
      "  - log.write: {}",
      "",
    ].join("\n"),
  );
  await site.writeConfig({
    plugins: [pluginDir("quoter"), leaky, relay],
    routes: [
      "  - name: leak",
      "    match: { path: /leak, methods: [GET] }",
      "    auth: token",
      "    handler: { plugin: quoter, export: handle }",
      "    hooks:",
      "      - { plugin: leaky, on: request, export: on_request }",
    ],
  });
  await Deno.writeTextFile(site.configPath, "redact:\n  configKeys: [api_key]\n", { append: true });
  const secrets = [
    configSecret,
    encodeURIComponent(configSecret),
    JSON.stringify(configSecret).slice(1, -1),
    apiKey,
    site.callerToken,
  ];
  const assertClean = (where: string, text: string) => {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${where} holds ${secret}`);
  };

  // --- CLI: hostile files, each a subprocess (two at a time: the machine is shared).
  const work = join(site.dir, "work");
  const tests = join(work, "tests");
  await Deno.mkdir(tests, { recursive: true });
  const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) {
    const [name, prev] = [String.fromCharCode(97 + i), String.fromCharCode(96 + i)];
    bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(",")}]`);
  }
  const runTests = (entities: unknown) =>
    JSON.stringify([{
      name: "hostile",
      request: {
        principal: 'Client::"a"',
        action: 'Action::"plugin.call"',
        resource: 'Plugin::"hello"',
        context: {},
      },
      entities,
      decision: "deny",
      reason: [],
      num_errors: 0,
    }]);
  const deep = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
  await Deno.writeTextFile(join(tests, "bomb.yaml"), `${bomb.join("\n")}\ntests: []\n`);
  await Deno.writeTextFile(
    join(tests, "deep.yaml"),
    `tests:\n  - name: x\n    plugin: relay\n    clock.now: ${"[".repeat(20000)}${
      "]".repeat(20000)
    }\n    expect: allow\n`,
  );
  await Deno.writeTextFile(join(tests, "dotdot.json"), runTests("../../../../../../etc/passwd"));
  await Deno.writeTextFile(join(tests, "absolute.json"), runTests("/etc/passwd"));
  await Deno.symlink("/etc/passwd", join(tests, "passwd.json"));
  await Deno.writeTextFile(join(tests, "symlink.json"), runTests("passwd.json"));
  await Deno.writeTextFile(
    join(tests, "deep_entities.json"),
    runTests([{ uid: { type: "Client", id: "a" }, attrs: {}, parents: [] }]).replace(
      '"attrs":{}',
      `"attrs":${deep(5000)}`,
    ),
  );
  await Deno.writeTextFile(
    join(work, "deep_request.yaml"),
    `principal: Client::"a"\naction: plugin.call\nresource: Plugin::"hello"\ncontext:\n  x: ${deep(300)}\n`,
  );
  await Deno.writeTextFile(join(work, "bomb_request.yaml"), `${bomb.join("\n")}\nplugin: relay\nclock.now: {}\n`);
  await Deno.writeTextFile(
    join(work, "inject_name.yaml"),
    'name: "x\\"); permit (principal, action, resource); //"\nversion: 1.0.0\ndescription: x\n' +
      "exports: [{ name: a }]\ncapabilities: []\n",
  );
  await Deno.writeTextFile(
    join(work, "inject_grant.yaml"),
    "name: x\nversion: 1.0.0\ndescription: x\nexports: [{ name: a }]\ncapabilities: [kv.get, fs.read]\ngrants:\n" +
      '  - kv: { namespace: "x\\"); permit (principal, action, resource); //" }\n',
  );
  await Deno.writeTextFile(
    join(work, "escape_grant.yaml"),
    "name: x\nversion: 1.0.0\ndescription: x\nexports: [{ name: a }]\ncapabilities: [fs.read]\ngrants:\n" +
      "  - fs.read: { dir: data/../../etc }\n",
  );
  // An audit file copied from production, damaged: garbage, a torn line, a 50 MB line, hand-edited requests.
  const audit = join(work, "audit.jsonl");
  const event = {
    time: "2026-01-01T00:00:00.000Z",
    callId: "c",
    plugin: "relay",
    version: "1.0.0",
    action: "clock.now",
    resource: 'Runtime::"clock"',
    decision: "allow",
    policies: [],
    errors: [],
    caller: "",
    durationUs: 1,
    reason: "x",
    request: {
      principal: { uid: { type: "Plugin", id: "relay" }, attrs: {}, parents: [] },
      action: "clock.now",
      resource: { uid: { type: "Runtime", id: "clock" }, attrs: {}, parents: [] },
      context: { caller: "" },
    },
  };
  const edited = (change: (e: typeof event) => unknown) => JSON.stringify(change(structuredClone(event)));
  await Deno.writeTextFile(
    audit,
    [
      JSON.stringify(event),
      "\u0000\u00ff garbage",
      edited((e) => ({ ...e, request: { ...e.request, action: "no.such.action" } })),
      edited((e) => ({ ...e, request: { ...e.request, context: JSON.parse(deep(5000)) } })),
      edited((e) => ({ ...e, request: { ...e.request, principal: 'Plugin::"x"' } })),
      `"${"A".repeat(50_000_000)}`,
      '{"time":"2026-01-01T00:00:00.000Z","plugin":"relay","act',
    ].join("\n"),
  );
  const candidate = join(work, "candidate");
  await Deno.mkdir(candidate);
  for await (const entry of Deno.readDir(site.policiesDir)) {
    if (entry.name.endsWith(".cedar")) {
      await Deno.copyFile(join(site.policiesDir, entry.name), join(candidate, entry.name));
    }
  }
  const policiesBefore = await snapshot(site.policiesDir);
  const config = ["--config", site.configPath];
  const cli: [string, string[], (r: { code: number; out: string; err: string }) => void][] = [
    ["policy test: a billion-laughs YAML is refused (exit 2)", ["test", join(tests, "bomb.yaml"), ...config], (r) => {
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /alias/i);
    }],
    [
      "policy test: 20,000-deep YAML nesting is refused (exit 2)",
      ["test", join(tests, "deep.yaml"), ...config],
      (r) => assert.equal(r.code, 2, r.err),
    ],
    ...["dotdot", "absolute", "symlink"].map((name) =>
      [
        `policy test: a run-tests entities file outside the test dir (${name}) is refused`,
        ["test", join(tests, `${name}.json`), ...config],
        (r: { code: number; err: string; out: string }) => {
          assert.equal(r.code, 2, r.err);
          assert.match(r.err, /outside of the test file's directory/);
          assert.ok(!/root:x:0/.test(r.out + r.err), "no byte of /etc/passwd is shown");
        },
      ] as [string, string[], (r: { code: number; out: string; err: string }) => void]
    ),
    [
      "policy test: 5,000-deep entity attributes are refused (exit 2)",
      ["test", join(tests, "deep_entities.json"), ...config],
      (r) => assert.equal(r.code, 2, r.err),
    ],
    ["policy explain: a 300-deep context is decided within the engine's bounds", [
      "explain",
      join(work, "deep_request.yaml"),
      ...config,
    ], (r) => {
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Decision: deny/);
    }],
    ["policy explain: a billion-laughs request file is refused (exit 2)", [
      "explain",
      join(work, "bomb_request.yaml"),
      ...config,
    ], (r) => assert.equal(r.code, 2, r.err)],
    ...["inject_name", "inject_grant", "escape_grant"].map((name) =>
      [
        `policy compile: a manifest smuggling Cedar or escaping the data root (${name}) is refused`,
        ["compile", join(work, `${name}.yaml`)],
        (r: { code: number; err: string; out: string }) => {
          assert.equal(r.code, 2, `${r.out}\n${r.err}`);
          assert.ok(!/permit \(principal, action, resource\);\s*$/m.test(r.out), r.out);
        },
      ] as [string, string[], (r: { code: number; out: string; err: string }) => void]
    ),
    [
      "policy plan: a damaged audit file (garbage, torn, 50 MB line, edited requests) is counted, not a crash",
      ["plan", candidate, ...config, "--audit", audit, "--format", "json"],
      (r) => {
        assert.equal(r.code, 0, r.err.slice(0, 2000));
        const report = JSON.parse(r.out);
        const unreadable = report.skipped.find((s: { reason: string }) => s.reason === "unreadable");
        assert.ok(unreadable && unreadable.events >= 4, JSON.stringify(report.skipped));
        assert.ok(r.err.length < 10_000, "the warning quotes a bounded excerpt of the line");
      },
    ],
  ];
  for (let i = 0; i < cli.length; i += 2) {
    await Promise.all(
      cli.slice(i, i + 2).map(([name, args, check]) => t.attack(name, async () => check(await policy(args)))),
    );
  }
  await t.attack("policy CLI: no command changed the policies dir", async () => {
    assert.deepEqual(await snapshot(site.policiesDir), policiesBefore);
  });

  // --- Redaction patterns: what V8's linear engine cannot run must not be able to backtrack polynomially.
  for (
    const source of [
      "[0-9]+[0-9]+[0-9]+(?=x)",
      "(?=[0-9])[0-9]+[0-9]+[0-9]+x",
      "(?<![a-z])[0-9]+[0-9]+x",
      "[0-9]{1,300}[0-9]{1,300}[0-9]{1,300}x",
      "[0-9]+[0-9]{17}[0-9]+x",
      "(?:[0-9]+){20}x",
      `${"a?".repeat(30)}${"a".repeat(30)}(?!b)`,
    ]
  ) {
    await t.attack(`redact pattern ${JSON.stringify(source)} without a linear-time fallback is refused`, () => {
      assert.throws(() => checkPattern(source), SyntaxError);
    });
  }
  await t.attack("redact: the documented patterns are still accepted", () => {
    for (
      const source of [
        "sk_live_[A-Za-z0-9]{24}",
        "AKIA[0-9A-Z]{16}",
        "[0-9]+[0-9]+[0-9]+x",
        "(?:ghp|gho)_[A-Za-z0-9]{36}",
      ]
    ) {
      checkPattern(source);
    }
  });

  // --- The API, one gateway.
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const state = async (k: Keycard) => {
    const response = await k.fetch("/v1/policies", { headers: admin });
    const body = JSON.parse(await expectStatus(k, response, 200));
    return { version: body.version, sources: JSON.stringify(body.sources), files: await snapshot(site.policiesDir) };
  };
  const before = await state(kc);
  const unchanged = async (what: string) => assert.deepEqual(await state(kc), before, `${what} changed the policies`);
  const dryRun = (name: string, body: BodyInit, query = "") =>
    kc.fetch(`/v1/policies/${name}?dryRun=true${query}`, { method: "PUT", headers: admin, body });

  const stream = await fetch(`${kc.base}/v1/audit/stream`, { headers: admin, signal: AbortSignal.timeout(60_000) });
  assert.equal(stream.status, 200);
  const reader = stream.body!.getReader();
  let streamed = "";
  const readUntil = async (done: (text: string) => boolean) => {
    while (!done(streamed)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`The stream ended early: ${streamed.slice(-500)}`);
      streamed += decoder.decode(value, { stream: true });
    }
  };
  try {
    await within(BOUND.request, "the ready event", readUntil((text) => text.includes("event: ready\n")));

    for (
      const target of [
        "/v1/policies/..%2F..%2Fetc%2Fpasswd?dryRun=true",
        "/v1/policies/%2e%2e?dryRun=true",
        "/v1/policies/.hidden.cedar?dryRun=true",
        "/v1/policies/a%00b.cedar?dryRun=true",
      ]
    ) {
      await t.attack(`a dry run PUT named ${target} is refused and changes nothing`, async () => {
        const response = await rawRequest(kc, "PUT", target, {
          headers: admin,
          body: '@id("x") permit (principal, action, resource);',
        });
        assert.ok(response.status === 400 || response.status === 404, `${response.status} ${await response.text()}`);
        await unchanged(target);
      });
    }
    await t.attack("a dry run PUT of a name without .cedar plans and writes nothing", async () => {
      const response = await dryRun(
        "ghost.txt",
        '@id("ghost") permit (principal == Plugin::"nobody", action == Action::"clock.now", resource);',
      );
      const body = JSON.parse(await expectStatus(kc, response, 200));
      assert.equal(body.dryRun, true);
      await unchanged("a dry run");
    });
    await t.attack("a dry run PUT over the body limit is a 413 and changes nothing", async () => {
      await expectProblem(await dryRun("big.cedar", `// ${"x".repeat(2 * 1048576)}\n`), 413);
      await unchanged("a huge dry run");
    });
    await t.attack("a dry run PUT of invalid UTF-8 is a 400 and changes nothing", async () => {
      const bytes = new Uint8Array([...new TextEncoder().encode('@id("u") permit (principal, action, '), 0xff, 0xfe]);
      await expectProblem(await dryRun("utf8.cedar", bytes), 400);
      await unchanged("an invalid UTF-8 dry run");
    });
    await t.attack("a dry run PUT that would lock admins out is a 409 and changes nothing", async () => {
      const response = await dryRun(
        "lockout.cedar",
        '@id("lockout") forbid (principal, action == Action::"policy.write", resource);',
      );
      await expectProblem(response, 409);
      await unchanged("a lock-out dry run");
    });
    for (
      const [label, body] of [
        ["last: -1", { files: {}, last: -1 }],
        ["last: 0", { files: {}, last: 0 }],
        ["last: 1.5", { files: {}, last: 1.5 }],
        ["last: 1e12", { files: {}, last: 1e12 }],
        ['last: "5"', { files: {}, last: "5" }],
        ["since: garbage", { files: {}, since: "yesterday-ish" }],
        ["since: a number", { files: {}, since: 5 }],
        ["files: a path", { files: { "../../x.cedar": "" } }],
        ["remove: a path", { files: {}, remove: ["../base.cedar"] }],
        ["remove: base.cedar, locking admins out", { files: {}, remove: ["api.cedar"] }],
      ] as const
    ) {
      await t.attack(`POST /v1/policies/plan with ${label} is refused and changes nothing`, async () => {
        const response = await kc.fetch("/v1/policies/plan", {
          method: "POST",
          headers: { ...admin, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        assert.ok(response.status === 400 || response.status === 409, `${response.status} ${await response.text()}`);
        await unchanged(label);
      });
    }
    for (const query of ["&last=-1", "&last=1e3", "&last=99999999999", "&since=garbage", "&last=1&last=2"]) {
      await t.attack(`a dry run PUT with ${query} is a 400 and changes nothing`, async () => {
        await expectProblem(await dryRun("w.cedar", '@id("w") permit (principal, action, resource);', query), 400);
        await unchanged(query);
      });
    }

    await t.attack("dry runs and plans racing a real PUT: only the PUT lands, version +1", async () => {
      const real = '@id("ops.real") forbid (principal == Plugin::"nobody", action == Action::"clock.now", resource);';
      const results = await Promise.all([
        ...Array.from(
          { length: 4 },
          (_, i) => dryRun(`ghost${i}.cedar`, `@id("ghost${i}") permit (principal, action, resource);`),
        ),
        kc.fetch("/v1/policies/real.cedar", { method: "PUT", headers: admin, body: real }),
        ...Array.from({ length: 3 }, (_, i) =>
          kc.fetch("/v1/policies/plan", {
            method: "POST",
            headers: { ...admin, "content-type": "application/json" },
            body: JSON.stringify({
              files: { [`plan${i}.cedar`]: `@id("plan${i}") permit (principal, action, resource);` },
            }),
          })),
      ]);
      for (const response of results) await expectStatus(kc, response, 200);
      const after = await state(kc);
      assert.equal(after.version, before.version + 1);
      assert.deepEqual(Object.keys(after.files).sort(), [...Object.keys(before.files), "real.cedar"].sort());
      assert.equal(after.files["real.cedar"], real);
      assert.ok(!/ghost|plan\d/.test(after.sources), "no dry run's text is in force");
    });

    // --- A plugin's inputs: forged audit fields, oversized requests, secrets in every form.
    const invoke = async (name: string, input: string) => {
      const response = await kc.fetch(`/v1/plugins/relay/invoke/${name}`, {
        method: "POST",
        headers: bearer(site.callerToken),
        body: input,
      });
      await expectStatus(kc, response, 200);
    };
    const forged = `"}\n{"plugin":"admin","action":"policy.write","decision":"allow","caller":"root","x":"`;
    await t.attack("forged audit fields and secrets through kv keys, log lines and URLs (relay)", async () => {
      await invoke("kv_get", JSON.stringify({ key: `relay/${forged}${configSecret}` }));
      await invoke("kv_get", JSON.stringify({ key: `enc-${encodeURIComponent(configSecret)}` }));
      await invoke("kv_get", JSON.stringify({ key: `low-${encodeURIComponent(configSecret).toLowerCase()}` }));
      await invoke("log_write", JSON.stringify({ level: "warn", message: `${forged} key ${configSecret}` }));
      await invoke("log_write", JSON.stringify({ level: "warn", message: JSON.stringify({ key: configSecret }) }));
      await invoke(
        "http_request",
        JSON.stringify({
          url: `http://example.com/p/${configSecret}?q=${encodeURIComponent(configSecret)}`,
          method: "GET",
        }),
      );
      await invoke("fs_read", JSON.stringify({ path: `data/relay/${"d/".repeat(3000)}x` }));
      await invoke("http_request", JSON.stringify({ url: `http://example.com/${"a".repeat(20_000)}`, method: "GET" }));
    });
    await t.attack("secrets in a routed request's query string and headers reach the hook's log masked", async () => {
      const response = await kc.fetch(`/leak?token=${site.callerToken}&k=${encodeURIComponent(apiKey)}`, {
        headers: { ...bearer(site.callerToken), "x-api-key": apiKey },
      });
      await expectStatus(kc, response, 200);
    });
    await invoke("clock_now", "{}");

    await t.attack("the live stream carries every event masked, each one well-formed", async () => {
      await within(BOUND.request, "the marker event", readUntil((text) => text.includes('"action":"clock.now"')));
      assertClean("the live stream", streamed);
      for (const match of streamed.matchAll(/^data: (.*)$/gm)) {
        const parsed = JSON.parse(match[1]!);
        assert.notEqual(parsed.plugin, "admin", "a forged event");
      }
    });
    await t.attack("GET /v1/audit answers every event masked, none forged", async () => {
      const text = await expectStatus(kc, await kc.fetch("/v1/audit?limit=1000", { headers: admin }), 200);
      assertClean("GET /v1/audit", text);
      const { events } = JSON.parse(text) as { events: { plugin: string; action: string }[] };
      assert.ok(events.every((e) => e.plugin !== "admin"), "a forged event");
      assert.ok(events.some((e) => e.action === "kv.get"));
    });
    await t.attack("POST /v1/policies/plan counts the oversized requests as too large", async () => {
      const response = await kc.fetch("/v1/policies/plan", {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ files: {} }),
      });
      const report = JSON.parse(await expectStatus(kc, response, 200));
      assert.ok(report.skipped.some((s: { reason: string }) => s.reason === "too-large"), JSON.stringify(report));
      assertClean("the plan", JSON.stringify(report));
    });

    await t.attack("propose over a plugin flooding distinct paths forever: bounded in time and size", async () => {
      const wasm = await compileWat(FLOOD_WAT, "flood.wat");
      const manifest = "name: flood\nversion: 1.0.0\ndescription: floods fs.read\nexports:\n  - name: flood\n" +
        "capabilities: [fs.read]\n";
      const started = performance.now();
      const response = await kc.fetch("/v1/conformance?propose=true", {
        method: "POST",
        headers: admin,
        body: pluginForm(wasm, manifest),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await expectStatus(kc, response, 200);
      assert.ok(performance.now() - started < 45_000, "the run ends within its deadlines");
      // The report lists each distinct attempt (about 190 KB for 1,800 paths): bounded by the host-call cap and deadline.
      assert.ok(text.length < 2 * 1024 * 1024, `a report of ${text.length} characters`);
      const { proposal } = JSON.parse(text);
      assert.ok(proposal, text.slice(0, 500));
      assert.ok(proposal.grants.length <= 4, JSON.stringify(proposal.grants).slice(0, 500));
      assert.ok(proposal.yaml.length < 4096, proposal.yaml.slice(0, 500));
    });
  } finally {
    await reader.cancel().catch(() => {});
  }

  await t.attack("the audit file: one well-formed, bounded line per event, none forged, no secret", async () => {
    await kc.stop();
    const file = await Deno.readTextFile(join(site.dataDir, "audit.jsonl"));
    assertClean("the audit file", file);
    const lines = file.split("\n").slice(0, -1);
    for (const line of lines) {
      assert.ok(line.length < 64 * 1024, `a line of ${line.length} characters`);
      const parsed = JSON.parse(line);
      assert.notEqual(parsed.plugin, "admin", "a forged event");
    }
    const omitted = lines.map((line) => JSON.parse(line)).filter((e) => e.requestOmitted !== undefined);
    assert.ok(omitted.length >= 1, "the long URL leaves its request out");
    for (const parsed of lines.map((line) => JSON.parse(line))) {
      if (parsed.request !== undefined) assert.ok(JSON.stringify(parsed.request).length <= 8192, parsed.resource);
    }
    assertClean("the server's output", kc.run.output());
  });

  t.report();
});
