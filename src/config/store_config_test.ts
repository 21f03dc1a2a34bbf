import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig } from "./mod.ts";

async function load(text: string, env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "keycard_store_config_" });
  try {
    const file = join(dir, "keycard.yaml");
    await Deno.writeTextFile(file, text);
    return (await loadConfig({ path: file, cwd: dir, env })).config;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refused(text: string, env: Record<string, string> = {}): Promise<ConfigError> {
  const error = await load(text, env).then(() => assert.fail("expected a ConfigError"), (error: unknown) => error);
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  return error;
}

Deno.test("loadConfig(): the store is files unless the file or KEYCARD_STORE_URL names PostgreSQL", async () => {
  assert.deepEqual((await load("")).store, { kind: "files" });
  assert.deepEqual((await load("store:\n  kind: files\n")).store, { kind: "files" });
  assert.deepEqual((await load("store:\n  kind: postgres\n  url: postgres://k@db:5432/k\n")).store, {
    kind: "postgres",
    url: "postgres://k@db:5432/k",
    auditRetentionDays: 30,
    timeoutMs: 5000,
  });
  const full = await load(
    "store:\n  kind: postgres\n  url: postgresql://k:pw@db/k\n  replica: eu-1\n  auditRetentionDays: 7\n  timeoutMs: 250\n",
  );
  assert.deepEqual(full.store, {
    kind: "postgres",
    url: "postgresql://k:pw@db/k",
    replica: "eu-1",
    auditRetentionDays: 7,
    timeoutMs: 250,
  });
  // The variable wins over the file, and turns a files store into PostgreSQL.
  const env = { KEYCARD_STORE_URL: "postgres://k@other:5433/k" };
  assert.deepEqual((await load("", env)).store, {
    kind: "postgres",
    url: "postgres://k@other:5433/k",
    auditRetentionDays: 30,
    timeoutMs: 5000,
  });
  const over = await load("store:\n  kind: postgres\n  url: postgres://k@db/k\n  replica: a\n", env);
  assert.equal(over.store.kind === "postgres" && over.store.url, "postgres://k@other:5433/k");
  assert.equal(over.store.kind === "postgres" && over.store.replica, "a");
});

Deno.test("loadConfig() refuses a bad store section with its line, and never quotes a password", async () => {
  const noUrl = await refused("store:\n  kind: postgres\n");
  assert.equal(noUrl.path, "store.url");
  assert.match(noUrl.message, /is required with kind: postgres/);
  const scheme = await refused("store:\n  kind: postgres\n  url: mysql://root:hunter2@db/k\n");
  assert.equal(scheme.path, "store.url");
  assert.equal(scheme.line, 3);
  assert.match(scheme.message, /expected a postgres:\/\/ or postgresql:\/\/ URL, got mysql:\/\/db\/k/);
  assert.doesNotMatch(scheme.message, /hunter2/);
  const junk = await refused("store:\n  kind: postgres\n  url: 'not a url secret-pw'\n");
  assert.doesNotMatch(junk.message, /secret-pw/);
  const noDb = await refused("store:\n  kind: postgres\n  url: postgres://k@db\n");
  assert.match(noDb.message, /with a host and a database name/);
  const filesWithUrl = await refused("store:\n  url: postgres://k@db/k\n");
  assert.equal(filesWithUrl.path, "store.url");
  assert.match(filesWithUrl.message, /applies only with kind: postgres/);
  assert.equal((await refused("store:\n  kind: mysql\n")).path, "store.kind");
  assert.equal(
    (await refused("store:\n  kind: postgres\n  url: postgres://k@db/k\n  replica: 'a b'\n")).path,
    "store.replica",
  );
  assert.equal(
    (await refused("store:\n  kind: postgres\n  url: postgres://k@db/k\n  timeoutMs: 5\n")).path,
    "store.timeoutMs",
  );
  assert.equal((await refused("store:\n  colour: blue\n")).path, "store.colour");
  const variable = await refused("", { KEYCARD_STORE_URL: "http://user:pw123@db/k" });
  assert.equal(variable.variable, "KEYCARD_STORE_URL");
  assert.doesNotMatch(variable.message, /pw123/);
});
