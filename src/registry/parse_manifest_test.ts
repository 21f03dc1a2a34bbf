import assert from "node:assert/strict";
import { ManifestError, parseManifest } from "./parse_manifest.ts";

/** Asserts that `text` is refused with a ManifestError at `line`:`column` on `path`, its message matching `detail`. */
function refused(text: string, where: { line: number; column: number; path?: string }, detail: RegExp): void {
  assert.throws(() => parseManifest(text, "p.yaml"), (error: unknown) => {
    assert.ok(error instanceof ManifestError && error instanceof SyntaxError, String(error));
    assert.deepEqual(
      { line: error.line, column: error.column, path: error.path },
      { path: undefined, ...where },
      error.message,
    );
    assert.match(error.message, detail);
    return true;
  });
}

Deno.test("parseManifest() reads the example plugins' manifests", async () => {
  for (const name of ["hello", "stamp", "quoter", "redact", "header-guard"]) {
    const text = await Deno.readTextFile(new URL(`../../plugins/${name}/plugin.yaml`, import.meta.url));
    const manifest = parseManifest(text, `${name}/plugin.yaml`);
    assert.equal(manifest.name, name);
    assert.ok(manifest.exports.length > 0);
    assert.ok(manifest.exports.every((e) => e.samples.every((s) => typeof s.input === "string")));
  }
});

Deno.test("parseManifest() names line and column of bad YAML and bad fields", () => {
  refused("name: x\nversion: [1\n", { line: 3, column: 1 }, /not valid YAML/);
  refused(
    "name: x\nversion: one\n",
    { line: 2, column: 10, path: "version" },
    /p.yaml" at line 2, column 10: "version"/,
  );
  refused("name: a b\n", { line: 1, column: 7, path: "name" }, /got "a b"/);
  refused("- a\n", { line: 1, column: 1 }, /expected a map with at least a "name", got a list/);
  refused("version: 1.0.0\n", { line: 1, column: 1, path: "name" }, /"name" is required/);
  refused("name: x\ngrants: {}\n", { line: 2, column: 9, path: "grants" }, /expected a list, got a map/);
  refused("name: x\nlimitz: {}\n", { line: 2, column: 1, path: "limitz" }, /is not a known key/);
  refused("name: x\ncapabilities: [fs.reed]\n", { line: 2, column: 16, path: "capabilities[0]" }, /got "fs.reed"/);
});

Deno.test("parseManifest() refuses limits out of range with line, column, key and value", () => {
  refused(
    "name: x\nlimits:\n  deadlineMs: fast\n",
    { line: 3, column: 15, path: "limits.deadlineMs" },
    /^Invalid manifest "p.yaml" at line 3, column 15: "limits.deadlineMs" expected an integer of at least 1, got "fast"$/,
  );
  refused("name: x\nlimits: { deadlineMs: -1 }\n", { line: 2, column: 23, path: "limits.deadlineMs" }, /got -1$/);
  refused(
    "name: x\nlimits:\n  memoryPages: 70000\n",
    { line: 3, column: 16, path: "limits.memoryPages" },
    /expected an integer from 1 to 65536, got 70000$/,
  );
  refused("name: x\nlimits:\n  fuel: 3\n", { line: 3, column: 3, path: "limits.fuel" }, /is not a known key/);
  const manifest = parseManifest("name: x\nlimits: { deadlineMs: 250, memoryPages: 32 }\n", "p.yaml");
  assert.deepEqual(manifest.limits, { deadlineMs: 250, memoryPages: 32 });
  assert.deepEqual(parseManifest("name: x\n", "p.yaml").limits, {});
});

Deno.test("parseManifest() refuses a YAML alias bomb at once", () => {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) {
    const [from, to] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
    lines.push(`${to}: &${to} [${Array(9).fill(`*${from}`).join(",")}]`);
  }
  const started = performance.now();
  assert.throws(
    () => parseManifest(`name: x\n${lines.join("\n")}\n`, "bomb.yaml"),
    (error: unknown) =>
      error instanceof ManifestError &&
      /^Invalid manifest "bomb.yaml": not usable YAML: Excessive alias count/.test(error.message),
  );
  assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
});

Deno.test("parseManifest() reads samples as strings or { input, expect } and checks them", () => {
  const manifest = parseManifest(
    "name: x\nexports:\n  - run\n  - name: check\n    samples: [ok, { input: bad, expect: error }, { input: '' }]\n",
    "p.yaml",
  );
  assert.deepEqual(manifest.exports, [
    { name: "run", samples: [] },
    {
      name: "check",
      samples: [{ input: "ok", expect: "ok" }, { input: "bad", expect: "error" }, { input: "", expect: "ok" }],
    },
  ]);
  refused(
    "name: x\nexports:\n  - name: a\n    samples: [1]\n",
    { line: 4, column: 15, path: "exports[0].samples[0]" },
    /expected a string, or a map with "input"/,
  );
  refused(
    "name: x\nexports:\n  - name: a\n    samples: [{ input: q, expect: maybe }]\n",
    { line: 4, column: 35, path: "exports[0].samples[0].expect" },
    /expected "ok" or "error", got "maybe"/,
  );
  refused("name: x\nexports: [a, a]\n", { line: 2, column: 14, path: "exports[1].name" }, /repeats "a" of entry 0/);
});

Deno.test("parseManifest() reads an export's contentType and envelope", () => {
  const manifest = parseManifest(
    "name: x\nexports:\n  - { name: handle, contentType: 'text/plain; charset=utf-8', envelope: true }\n  - plain\n",
    "p.yaml",
  );
  assert.equal(manifest.exports[0]?.contentType, "text/plain; charset=utf-8");
  assert.equal(manifest.exports[0]?.envelope, true);
  assert.ok(!("contentType" in manifest.exports[1]!) && !("envelope" in manifest.exports[1]!));
  refused(
    "name: x\nexports:\n  - { name: a, contentType: nope }\n",
    { line: 3, column: 29, path: "exports[0].contentType" },
    /expected a media type/,
  );
  refused("name: x\nexports:\n  - { name: a, envelope: yes please }\n", {
    line: 3,
    column: 26,
    path: "exports[0].envelope",
  }, /expected true or false/);
});

Deno.test("parseManifest() checks grants as the gateway compiles them", () => {
  refused(
    "name: x\ngrants:\n  - log.write: {}\n  - fs.read: { dir: 3 }\n",
    { line: 4, column: 5, path: "grants[1]" },
    /"grants\[1\]" "fs.read" needs "dir"/,
  );
});

Deno.test("parseManifest() reads an optional sha256 and signature and checks their form", () => {
  const hash = "AB".repeat(32);
  const manifest = parseManifest(`name: x\nsha256: "${hash}"\nsignature: "c2lnbmF0dXJl"\n`, "p.yaml");
  assert.equal(manifest.sha256, hash.toLowerCase());
  assert.equal(manifest.signature, "c2lnbmF0dXJl");
  const plain = parseManifest("name: x\n", "p.yaml");
  assert.ok(!("sha256" in plain) && !("signature" in plain));
  refused("name: x\nsha256: abc\n", { line: 2, column: 9, path: "sha256" }, /expected 64 hexadecimal digits/);
  refused(`name: x\nsha256: ${"1".repeat(64)}\n`, { line: 2, column: 9, path: "sha256" }, /quote the hash/);
  refused("name: x\nsignature: not base64!\n", { line: 2, column: 12, path: "signature" }, /expected base64/);
  refused('name: x\nsignature: ""\n', { line: 2, column: 12, path: "signature" }, /expected base64/);
});
