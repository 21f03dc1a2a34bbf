import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig } from "./mod.ts";

async function load(text: string) {
  const dir = await Deno.makeTempDir({ prefix: "keycard_redact_config_" });
  try {
    const file = join(dir, "keycard.yaml");
    await Deno.writeTextFile(file, text);
    return (await loadConfig({ path: file, cwd: dir, env: {} })).config;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refused(text: string, message: RegExp): Promise<ConfigError> {
  const error = await load(text).then(() => assert.fail("expected a ConfigError"), (error: unknown) => error);
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  assert.match(error.message, message);
  return error;
}

Deno.test("loadConfig() reads redact: with header names lower-cased and defaults for what is left out", async () => {
  const config = await load(
    [
      "redact:",
      "  configKeys: [api_key, DB_PASSWORD]",
      "  headers: [Authorization, X-Upstream-Token, authorization]",
      '  patterns: ["sk_live_[A-Za-z0-9]{24}"]',
      "",
    ].join("\n"),
  );
  assert.deepEqual(config.redact, {
    mask: "[REDACTED]",
    configKeys: ["api_key", "DB_PASSWORD"],
    headers: ["authorization", "x-upstream-token"],
    patterns: ["sk_live_[A-Za-z0-9]{24}"],
    minLength: 4,
  });
  const empty = await load("redact:\n");
  assert.deepEqual(empty.redact.headers, ["authorization", "proxy-authorization", "cookie", "x-api-key"]);
  assert.deepEqual((await load('redact: { headers: [], mask: "***", minLength: 8 }\n')).redact, {
    mask: "***",
    configKeys: [],
    headers: [],
    patterns: [],
    minLength: 8,
  });
});

Deno.test("loadConfig() refuses a catastrophic, invalid or empty-matching redact pattern, naming the entry", async () => {
  const nested = await refused(
    'redact:\n  patterns:\n    - "tok_[a-z]+"\n    - "(a+)+$"\n',
    /line 4, column 7: "redact\.patterns\[1\]" Cannot use redaction pattern "\(a\+\)\+\$": .*nested quantifier/,
  );
  assert.equal(nested.path, "redact.patterns[1]");
  await refused('redact:\n  patterns: ["(unclosed"]\n', /"redact\.patterns\[0\]" .*not a valid regular expression/);
  await refused('redact:\n  patterns: ["x*"]\n', /"redact\.patterns\[0\]" .*matches the empty string/);
  await refused('redact:\n  patterns: ["(a)\\\\1"]\n', /back-reference/);
  await refused(`redact:\n  patterns: ["${"a".repeat(257)}"]\n`, /more than the limit of 256/);
});

Deno.test("loadConfig() refuses bad redact fields with their path", async () => {
  await refused("redact:\n  minLength: 2\n", /"redact\.minLength" expected an integer from 3 to 1024, got 2/);
  await refused('redact:\n  mask: ""\n', /"redact\.mask" expected a mask of 1-64 characters/);
  await refused('redact:\n  headers: ["bad header"]\n', /"redact\.headers\[0\]" expected an HTTP header name/);
  await refused("redact:\n  configKeys: api_key\n", /"redact\.configKeys" expected a list, got "api_key"/);
  await refused(
    "redact:\n  secrets: [x]\n",
    /"redact\.secrets" is not a known key \(expected one of "mask", "configKeys"/,
  );
});
