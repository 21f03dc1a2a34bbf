import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, DEFAULT_CONFIG, loadConfig } from "./mod.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const HASH = "ab".repeat(32);

/** Runs `fn` in a fresh temp dir, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "keycard_config_" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `text` as `keycard.yaml` in `dir` and loads it, expecting a ConfigError. */
async function configError(dir: string, text: string, env: Record<string, string> = {}): Promise<ConfigError> {
  await Deno.writeTextFile(join(dir, "keycard.yaml"), text);
  const error = await loadConfig({ path: "keycard.yaml", cwd: dir, env }).then(
    () => assert.fail("expected a ConfigError"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  assert.ok(error instanceof SyntaxError);
  assert.equal(error.name, "ConfigError");
  return error;
}

Deno.test("loadConfig() returns the built-in defaults when the default keycard.yaml is absent", async () => {
  await inTempDir(async (dir) => {
    const { config, source, adminToken } = await loadConfig({ cwd: dir, env: {} });
    assert.equal(source, "(built-in defaults)");
    assert.equal(adminToken, undefined);
    assert.deepEqual(config, {
      server: {
        host: "127.0.0.1",
        port: 8080,
        maxBodyBytes: 16777216,
        metrics: "token",
        encodedSlashes: "refuse",
        authThrottle: { failures: 20, windowSeconds: 60, addresses: 10000 },
      },
      dataDir: join(dir, ".keycard"),
      policies: join(dir, "policies"),
      strictStart: false,
      plugins: [],
      tokens: [],
      registry: { requireSignature: false, trustedKeys: [] },
      limits: {
        deadlineMs: 1000,
        memoryPages: 256,
        inputBytes: 1048576,
        outputBytes: 1048576,
        hostCalls: 10000,
        hostIoBytes: 1048576,
        instances: 2,
        queue: 32,
        minInstances: 0,
      },
      ceilings: {
        deadlineMs: 5000,
        memoryPages: 1024,
        inputBytes: 16777216,
        outputBytes: 16777216,
        hostCalls: 100000,
        hostIoBytes: 16777216,
        instances: 4,
        queue: 64,
        minInstances: 2,
      },
      concurrency: { maxCalls: 16, queue: 256, idleMs: 60000, maxWorkers: 256 },
      audit: { file: join(dir, ".keycard", "audit.jsonl"), maxBytes: 10485760, maxFiles: 5, ringSize: 10000 },
      policyEngine: { evaluator: "typescript", shadowSample: 0.01 },
      routes: [],
      redact: {
        mask: "[REDACTED]",
        configKeys: [],
        headers: ["authorization", "proxy-authorization", "cookie", "x-api-key"],
        patterns: [],
        minLength: 4,
      },
      isolation: { groups: [] },
      store: { kind: "files" },
    });
    assert.ok(Object.isFrozen(DEFAULT_CONFIG.server));
  });
});

Deno.test("loadConfig() loads the shipped keycard.yaml and resolves paths against its own directory", async () => {
  await inTempDir(async (dir) => {
    // The working directory is elsewhere: paths must not follow it.
    const { config, source } = await loadConfig({ path: join(repo, "keycard.yaml"), cwd: dir, env: {} });
    assert.equal(source, join(repo, "keycard.yaml"));
    assert.equal(config.dataDir, join(repo, ".keycard"));
    assert.equal(config.policies, join(repo, "policies"));
    assert.deepEqual(
      config.plugins,
      ["hello", "stamp", "header-guard", "redact", "quoter"].map((name) => ({ path: join(repo, "plugins", name) })),
    );
    assert.equal(config.audit.file, join(repo, ".keycard", "audit.jsonl"));
    assert.deepEqual(config.tokens, []);
    assert.deepEqual(config.server, DEFAULT_CONFIG.server);
    assert.deepEqual(config.limits, DEFAULT_CONFIG.limits);
    await Deno.stat(join(config.policies, "keycard.cedarschema"));
    for (const plugin of config.plugins) await Deno.stat(join(plugin.path, "plugin.yaml"));

    // A copy in a subdirectory, named relative to the working directory.
    await Deno.mkdir(join(dir, "etc"));
    await Deno.copyFile(join(repo, "keycard.yaml"), join(dir, "etc", "keycard.yaml"));
    const copy = await loadConfig({ path: "etc/keycard.yaml", cwd: dir, env: {} });
    assert.equal(copy.source, join(dir, "etc", "keycard.yaml"));
    assert.equal(copy.config.policies, join(dir, "etc", "policies"));
    assert.equal(copy.config.plugins[0]?.path, join(dir, "etc", "plugins", "hello"));
  });
});

Deno.test("loadConfig() fills in defaults for left-out keys and empty sections", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "keycard.yaml"),
      [
        "server:",
        "tokens:",
        "limits: { deadlineMs: 250 }",
        "dataDir: /var/lib/keycard",
        "audit: { file: logs/audit.jsonl, maxFiles: 2 }",
      ].join("\n"),
    );
    const { config } = await loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(config.server, DEFAULT_CONFIG.server);
    assert.deepEqual(config.tokens, []);
    assert.deepEqual(config.limits, { ...DEFAULT_CONFIG.limits, deadlineMs: 250 });
    assert.equal(config.dataDir, "/var/lib/keycard");
    assert.deepEqual(config.audit, {
      ...DEFAULT_CONFIG.audit,
      file: "/var/lib/keycard/logs/audit.jsonl",
      maxFiles: 2,
    });

    await Deno.writeTextFile(join(dir, "keycard.yaml"), "# nothing set\n");
    assert.equal((await loadConfig({ cwd: dir, env: {} })).config.server.port, 8080);
  });
});

Deno.test("loadConfig() applies KEYCARD_* overrides from an explicit env object", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "conf"));
    await Deno.writeTextFile(join(dir, "conf", "other.yaml"), "server: { host: 127.0.0.1, port: 8081 }\n");
    const { config, adminToken, source } = await loadConfig({
      cwd: dir,
      env: {
        KEYCARD_CONFIG: "conf/other.yaml",
        KEYCARD_HOST: "0.0.0.0",
        KEYCARD_PORT: "9443",
        KEYCARD_DATA_DIR: "state",
        KEYCARD_ADMIN_TOKEN: "an-admin-token-of-some-length",
        OTHER: "ignored",
      },
    });
    assert.equal(source, join(dir, "conf", "other.yaml"));
    assert.deepEqual(config.server, { ...DEFAULT_CONFIG.server, host: "0.0.0.0", port: 9443 });
    // KEYCARD_DATA_DIR is relative to the working directory; the audit file follows it.
    assert.equal(config.dataDir, join(dir, "state"));
    assert.equal(config.audit.file, join(dir, "state", "audit.jsonl"));
    assert.equal(config.policies, join(dir, "conf", "policies"));
    assert.equal(adminToken, "an-admin-token-of-some-length");

    // Empty values count as unset; the path option wins over KEYCARD_CONFIG.
    const unset = await loadConfig({
      path: "conf/other.yaml",
      cwd: dir,
      env: { KEYCARD_CONFIG: "missing.yaml", KEYCARD_PORT: "", KEYCARD_ADMIN_TOKEN: "" },
    });
    assert.equal(unset.config.server.port, 8081);
    assert.equal("adminToken" in unset, false);
  });
});

Deno.test("loadConfig() refuses a bad KEYCARD_PORT, naming the variable", async () => {
  await inTempDir(async (dir) => {
    for (const port of ["eighty", "65536", "80.5", "-1", " 80"]) {
      await assert.rejects(loadConfig({ cwd: dir, env: { KEYCARD_PORT: port } }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.variable, "KEYCARD_PORT");
        assert.equal(error.path, "server.port");
        assert.equal(
          error.message,
          `Invalid environment variable KEYCARD_PORT (overrides "server.port"): ` +
            `expected an integer from 0 to 65535, got ${JSON.stringify(port)}`,
        );
        return true;
      });
    }
    await assert.rejects(loadConfig({ cwd: dir, env: { KEYCARD_HOST: "a host" } }), /KEYCARD_HOST/);
  });
});

Deno.test("loadConfig() refuses a short KEYCARD_ADMIN_TOKEN without quoting it", async () => {
  await inTempDir(async (dir) => {
    await assert.rejects(loadConfig({ cwd: dir, env: { KEYCARD_ADMIN_TOKEN: "hunter2" } }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.variable, "KEYCARD_ADMIN_TOKEN");
      assert.ok(!error.message.includes("hunter2"), error.message);
      assert.match(error.message, /at least 16 characters/);
      return true;
    });
  });
});

Deno.test("loadConfig() refuses an unknown key with its line and column", async () => {
  await inTempDir(async (dir) => {
    const error = await configError(dir, "server:\n  host: 127.0.0.1\n  prot: 8080\n");
    assert.equal(error.line, 3);
    assert.equal(error.column, 3);
    assert.equal(error.path, "server.prot");
    assert.equal(error.file, "keycard.yaml");
    assert.equal(
      error.message,
      'Invalid config "keycard.yaml" at line 3, column 3: "server.prot" is not a known key ' +
        '(expected one of "host", "port", "maxBodyBytes", "metrics", "encodedSlashes", "authThrottle")',
    );

    const top = await configError(dir, "dataDir: x\nplugin:\n  - path: a\n");
    assert.deepEqual([top.line, top.column, top.path], [2, 1, "plugin"]);
  });
});

Deno.test("loadConfig() refuses a value of the wrong type with line, column and path", async () => {
  await inTempDir(async (dir) => {
    const error = await configError(dir, "# gateway\nserver:\n  port: eighty\n");
    assert.deepEqual([error.line, error.column, error.path], [3, 9, "server.port"]);
    assert.equal(
      error.message,
      'Invalid config "keycard.yaml" at line 3, column 9: "server.port" expected an integer from 0 to 65535, got "eighty"',
    );

    const cases: [string, number, number, string, RegExp][] = [
      ["limits:\n  memoryPages: 1.5\n", 2, 16, "limits.memoryPages", /expected an integer from 1 to 65536, got 1\.5/],
      ["plugins:\n  - path: a\n  - b\n", 3, 5, "plugins[1]", /expected a map, got "b"/],
      ["plugins: plugins/hello\n", 1, 10, "plugins", /expected a list, got "plugins\/hello"/],
      ["registry:\n  requireSignature: yes\n", 2, 21, "registry.requireSignature", /expected true or false/],
      ["tokens:\n  - id: ci\n    roles: [caller]\n", 2, 5, "tokens[0].sha256", /is required: expected 64 hex/],
      ["tokens:\n  - { id: ci, sha256: " + HASH + ", roles: [] }\n", 2, 96, "tokens[0].roles", /at least one role/],
    ];
    for (const [text, line, column, path, message] of cases) {
      const error = await configError(dir, text);
      assert.deepEqual([error.line, error.column, error.path], [line, column, path], text);
      assert.match(error.message, message);
    }

    const list = await configError(dir, "- server\n");
    assert.deepEqual([list.line, list.column, list.path], [1, 1, undefined]);
    assert.match(list.message, /the file must be a map of settings, got a list/);
  });
});

Deno.test("loadConfig() reports the first problem in the file and counts the others", async () => {
  await inTempDir(async (dir) => {
    const error = await configError(dir, "audit:\n  maxFiles: 0\nserver:\n  port: -1\n  hots: x\n");
    assert.deepEqual([error.line, error.path], [2, "audit.maxFiles"]);
    assert.match(error.message, /\(and 2 more\)$/);
  });
});

Deno.test("loadConfig() reports YAML syntax errors with line and column", async () => {
  await inTempDir(async (dir) => {
    const error = await configError(dir, "server:\n  host: 127.0.0.1\n  port: [8080\ndataDir: x\n");
    assert.equal(error.path, undefined);
    assert.equal(typeof error.line, "number");
    assert.equal(typeof error.column, "number");
    assert.match(error.message, /^Invalid config "keycard.yaml" at line \d+, column \d+: not valid YAML: /);

    const duplicate = await configError(dir, "dataDir: a\ndataDir: b\n");
    assert.deepEqual([duplicate.line, duplicate.column], [2, 1]);
    assert.match(duplicate.message, /not valid YAML: Map keys must be unique/);

    const tab = await configError(dir, "server:\n\thost: x\n");
    assert.equal(tab.line, 2);
  });
});

Deno.test("loadConfig() requires a token's sha256 to be 64 hex digits and never quotes it", async () => {
  await inTempDir(async (dir) => {
    for (const sha256 of ["my-plain-secret-token", "ab".repeat(31), "zz".repeat(32), "ab".repeat(33)]) {
      const error = await configError(dir, `tokens:\n  - id: ci\n    sha256: ${sha256}\n    roles: [caller]\n`);
      assert.deepEqual([error.line, error.column, error.path], [3, 13, "tokens[0].sha256"]);
      assert.match(error.message, /expected 64 hex digits \(the SHA-256 of the token, never the token\), got \d+ char/);
      assert.ok(!error.message.includes(sha256), error.message);
    }

    const upper = HASH.toUpperCase();
    await Deno.writeTextFile(
      join(dir, "keycard.yaml"),
      `tokens:\n  - { id: ci, sha256: ${upper}, roles: [caller] }\n  - { id: ops, sha256: "${
        "0".repeat(64)
      }", roles: [admin, caller] }\n`,
    );
    const { config } = await loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(config.tokens, [
      { id: "ci", sha256: HASH, roles: ["caller"] },
      { id: "ops", sha256: "0".repeat(64), roles: ["admin", "caller"] },
    ]);

    const repeated = await configError(
      dir,
      `tokens:\n  - { id: ci, sha256: ${HASH}, roles: [caller] }\n  - { id: ci, sha256: ${
        "cd".repeat(32)
      }, roles: [caller] }\n`,
    );
    assert.deepEqual([repeated.line, repeated.path], [3, "tokens[1].id"]);
    assert.match(repeated.message, /repeats "ci" of entry 0: client ids are unique/);

    // YAML reads an all-digit hash as a number: the message says to quote it.
    const digits = await configError(dir, `tokens:\n  - { id: ci, sha256: ${"1".repeat(64)}, roles: [caller] }\n`);
    assert.match(digits.message, /got a number \(quote the hash\)/);
  });
});

Deno.test("loadConfig() refuses an explicitly named config file that does not exist", async () => {
  await inTempDir(async (dir) => {
    await assert.rejects(
      loadConfig({ path: "missing.yaml", cwd: dir, env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof Deno.errors.NotFound);
        assert.equal(error.message, 'Cannot read config "missing.yaml" named by the path option: no such file');
        return true;
      },
    );
    await assert.rejects(
      loadConfig({ cwd: dir, env: { KEYCARD_CONFIG: "etc/keycard.yaml" } }),
      /Cannot read config "etc\/keycard.yaml" named by KEYCARD_CONFIG: no such file/,
    );
  });
});

Deno.test({
  name: "loadConfig() reads KEYCARD_* from the process environment by default",
  // Needs --allow-env=KEYCARD_PORT to set the variable; the gate's test task may not grant it.
  ignore: Deno.permissions.querySync({ name: "env", variable: "KEYCARD_PORT" }).state !== "granted",
}, async () => {
  await inTempDir(async (dir) => {
    Deno.env.set("KEYCARD_PORT", "9191");
    try {
      const { config } = await loadConfig({ cwd: dir });
      assert.equal(config.server.port, 9191);
    } finally {
      Deno.env.delete("KEYCARD_PORT");
    }
  });
});

Deno.test({
  name: "loadConfig() treats KEYCARD_* it may not read as unset, without prompting",
  permissions: { read: true, write: false, env: ["LOG_TOKENS", "LOG_STREAM"] },
  fn: async () => {
    const { config, adminToken } = await loadConfig({ path: join(repo, "keycard.yaml") });
    assert.equal(config.server.port, 8080);
    assert.equal(adminToken, undefined);
  },
});

Deno.test("loadConfig() takes port 0 (any free port) from the file and from KEYCARD_PORT", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "keycard.yaml"), "server:\n  port: 0\nstrictStart: true\n");
    const { config } = await loadConfig({ cwd: dir, env: {} });
    assert.equal(config.server.port, 0);
    assert.equal(config.strictStart, true);
    const fromEnv = await loadConfig({ cwd: dir, env: { KEYCARD_PORT: "0" } });
    assert.equal(fromEnv.config.server.port, 0);
  });
});

Deno.test("loadConfig() refuses a strictStart that is not a boolean, with line and column", async () => {
  await inTempDir(async (dir) => {
    const error = await configError(dir, "strictStart: sometimes\n");
    assert.deepEqual([error.line, error.column, error.path], [1, 14, "strictStart"]);
    assert.match(error.message, /expected true or false, got "sometimes"/);
  });
});

Deno.test("loadConfig() takes ceilings over the defaults, raised to a default limit the file raised", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "keycard.yaml"),
      "limits: { deadlineMs: 8000 }\nceilings: { instances: 8 }\nserver: { metrics: open, authThrottle: { failures: 5 } }\n",
    );
    const { config } = await loadConfig({ path: "keycard.yaml", cwd: dir, env: {} });
    assert.equal(config.ceilings.instances, 8);
    assert.equal(config.ceilings.deadlineMs, 8000); // the default ceiling (5000) is below the configured default
    assert.equal(config.ceilings.memoryPages, 1024);
    assert.equal(config.server.metrics, "open");
    assert.deepEqual(config.server.authThrottle, { failures: 5, windowSeconds: 60, addresses: 10000 });
  });
});

Deno.test("loadConfig() refuses a ceiling below the default limit, and unknown server.metrics", async () => {
  await inTempDir(async (dir) => {
    const below = await configError(dir, "limits: { instances: 4 }\nceilings: { instances: 2 }\n");
    assert.equal(below.path, "ceilings.instances");
    assert.match(below.message, /at least the default limit "limits.instances" \(4\), got 2/);
    const metrics = await configError(dir, "server:\n  metrics: public\n");
    assert.equal(metrics.path, "server.metrics");
    assert.equal(metrics.line, 2);
    const slashes = await configError(dir, "server:\n  encodedSlashes: decode\n");
    assert.equal(slashes.path, "server.encodedSlashes");
  });
});

Deno.test("loadConfig() reads policyEngine and refuses a bad evaluator or sample with line and column", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "keycard.yaml");
    await Deno.writeTextFile(file, "policyEngine:\n  evaluator: cedar-wasm\n  shadowSample: 0.5\n");
    const { config } = await loadConfig({ path: file, cwd: dir, env: {} });
    assert.deepEqual(config.policyEngine, { evaluator: "cedar-wasm", shadowSample: 0.5 });
    for (
      const [text, pattern] of [
        [
          "policyEngine:\n  evaluator: rust\n",
          /line 2, column 14: "policyEngine.evaluator" expected "typescript" or "cedar-wasm", got "rust"/,
        ],
        [
          "policyEngine:\n  shadowSample: 2\n",
          /line 2, column 17: "policyEngine.shadowSample" expected a number from 0 to 1, got 2/,
        ],
        [
          "policyEngine:\n  shadowSample: half\n",
          /"policyEngine.shadowSample" expected a number from 0 to 1, got "half"/,
        ],
      ] as const
    ) {
      await Deno.writeTextFile(file, text);
      await assert.rejects(() => loadConfig({ path: file, cwd: dir, env: {} }), pattern);
    }
  });
});
