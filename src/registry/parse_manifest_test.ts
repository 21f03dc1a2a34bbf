import assert from "node:assert/strict";
import { ManifestError, parseManifest } from "./parse_manifest.ts";

Deno.test("parseManifest() reads the example plugins' manifests", async () => {
  for (const name of ["hello", "stamp"]) {
    const text = await Deno.readTextFile(new URL(`../../plugins/${name}/plugin.yaml`, import.meta.url));
    const manifest = parseManifest(text, `${name}/plugin.yaml`);
    assert.equal(manifest.name, name);
    assert.ok(manifest.exports.length > 0);
  }
});

Deno.test("parseManifest() names line and column of bad YAML and bad fields", () => {
  assert.throws(() => parseManifest("name: x\nversion: [1\n", "p.yaml"), (error: unknown) => {
    assert.ok(error instanceof ManifestError && error instanceof SyntaxError);
    assert.equal(error.line, 3);
    return true;
  });
  assert.throws(() => parseManifest("name: x\nversion: one\n", "p.yaml"), /p.yaml" at line 2, column 10: "version"/);
  assert.throws(() => parseManifest("name: a b\n", "p.yaml"), /"name" must be/);
  assert.throws(() => parseManifest("- a\n", "p.yaml"), /expected a map/);
  assert.throws(() => parseManifest("name: x\ngrants: {}\n", "p.yaml"), /"grants" must be a list/);
});

Deno.test("parseManifest() reads an optional sha256 and signature and checks their form", () => {
  const hash = "AB".repeat(32);
  const manifest = parseManifest(`name: x\nsha256: "${hash}"\nsignature: "c2lnbmF0dXJl"\n`, "p.yaml");
  assert.equal(manifest.sha256, hash.toLowerCase());
  assert.equal(manifest.signature, "c2lnbmF0dXJl");
  const plain = parseManifest("name: x\n", "p.yaml");
  assert.ok(!("sha256" in plain) && !("signature" in plain));
  assert.throws(() => parseManifest("name: x\nsha256: abc\n", "p.yaml"), /line 2, column 9: "sha256" must be 64 hex/);
  assert.throws(() => parseManifest(`name: x\nsha256: ${"1".repeat(64)}\n`, "p.yaml"), /in quotes/);
  assert.throws(() => parseManifest("name: x\nsignature: not base64!\n", "p.yaml"), /"signature" must be base64/);
  assert.throws(() => parseManifest('name: x\nsignature: ""\n', "p.yaml"), /"signature" must be base64/);
});
