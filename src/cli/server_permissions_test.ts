import assert from "node:assert/strict";
import { DEFAULT_CONFIG, type KeycardConfig } from "../config/mod.ts";
import { permissionFlags, serverPermissions } from "./server_permissions.ts";

function config(overrides: Partial<KeycardConfig>): KeycardConfig {
  const dataDir = overrides.dataDir ?? "/var/lib/keycard";
  return {
    ...DEFAULT_CONFIG,
    dataDir,
    policies: "/etc/keycard/policies",
    audit: { ...DEFAULT_CONFIG.audit, file: `${dataDir}/audit.jsonl` },
    ...overrides,
  };
}

Deno.test("serverPermissions() grants the configured paths wherever they are, and nothing of the rest", () => {
  const permissions = serverPermissions(
    config({ plugins: [{ path: "/srv/p/hello" }, { path: "/srv/wasm/trap.wasm" }] }),
    { repo: "/opt/keycard", configFile: "/etc/keycard/keycard.yaml" },
  );
  assert.deepEqual(permissions.write, ["/var/lib/keycard", "/etc/keycard/policies"]);
  assert.deepEqual(permissions.read, [
    "/opt/keycard",
    "/etc/keycard/keycard.yaml",
    "/var/lib/keycard",
    "/etc/keycard/policies",
    "/srv/p/hello",
    "/srv/wasm/trap.wasm",
    "/srv/wasm/trap.yaml",
  ]);
  assert.equal(permissions.tempDir, "/var/lib/keycard/tmp");
  assert.ok(permissions.env.includes("KEYCARD_DATA_DIR"));
  assert.ok(!permissions.env.includes("HOME"));
});

Deno.test("serverPermissions() adds an audit directory outside the data dir, and folds paths inside others", () => {
  const permissions = serverPermissions(
    config({
      audit: { ...DEFAULT_CONFIG.audit, file: "/var/log/keycard/audit.jsonl" },
      plugins: [{ path: "/opt/keycard/plugins/hello" }],
    }),
    { repo: "/opt/keycard" },
  );
  assert.deepEqual(permissions.write, ["/var/lib/keycard", "/etc/keycard/policies", "/var/log/keycard"]);
  assert.ok(!permissions.read.includes("/opt/keycard/plugins/hello"), "inside the repo: already readable");
});

Deno.test("serverPermissions() refuses a path with a comma, which a permission list cannot hold", () => {
  assert.throws(
    () => serverPermissions(config({ dataDir: "/var/lib/a,b" }), { repo: "/opt/keycard" }),
    (error: unknown) => error instanceof RangeError && /"\/var\/lib\/a,b".*comma/.test(error.message),
  );
});

Deno.test("permissionFlags() names every permission, never -A", () => {
  const flags = permissionFlags(serverPermissions(config({}), { repo: "/opt/keycard" }));
  assert.deepEqual(flags.map((f) => f.split("=")[0]), ["--allow-read", "--allow-write", "--allow-net", "--allow-env"]);
  assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"));
});

Deno.test("serverPermissions() lets the server read the PostgreSQL client's PG* variables only with that store", () => {
  const files = serverPermissions(config({}), { repo: "/opt/keycard" });
  assert.ok(files.env.includes("KEYCARD_STORE_URL"));
  assert.ok(!files.env.includes("PGPASSWORD"));
  const postgres = serverPermissions(
    config({ store: { kind: "postgres", url: "postgres://k@db/k", auditRetentionDays: 30, timeoutMs: 5000 } }),
    { repo: "/opt/keycard" },
  );
  for (const name of ["PGPASSWORD", "PGHOST", "PGSSLNEGOTIATION", "USER"]) assert.ok(postgres.env.includes(name), name);
  assert.ok(!postgres.env.includes("HOME"));
});
