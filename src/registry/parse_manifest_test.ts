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
