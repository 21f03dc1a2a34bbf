import assert from "node:assert/strict";
import { checkPluginName, checkPluginVersion, PluginIdError } from "./mod.ts";

Deno.test("checkPluginName() refuses dot names, paths, control characters and odd lengths with PluginIdError", () => {
  const bad = ["", ".", "..", ".hidden", "a/b", "a\\b", "a b", "a\u0000b", "tab\t", "x".repeat(129), "é", "%2e%2e"];
  for (const name of bad) {
    assert.throws(
      () => checkPluginName(name),
      (error: unknown) => error instanceof PluginIdError && error.field === "name" && error.value === name,
      JSON.stringify(name),
    );
  }
  for (const name of ["a", "hello-world", "Hello_2", "a.b", "x".repeat(128)]) assert.equal(checkPluginName(name), name);
  assert.throws(() => checkPluginName(7), TypeError);
});

Deno.test("checkPluginVersion() takes canonical semver only, quoting the value and the plugin", () => {
  for (const version of ["", "garbage", "../../x", "v1.0.0", "1.0", "01.0.0", " 1.0.0"]) {
    assert.throws(
      () => checkPluginVersion(version, "p"),
      (error: unknown) =>
        error instanceof PluginIdError && error.field === "version" &&
        error.message.startsWith(`Version ${JSON.stringify(version)} of plugin "p" is invalid`),
    );
  }
  assert.equal(checkPluginVersion("1.2.3-rc.1+build.5"), "1.2.3-rc.1+build.5");
});
