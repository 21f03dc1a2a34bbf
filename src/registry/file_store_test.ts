import assert from "node:assert/strict";
import { join } from "node:path";
import { FileStore } from "./file_store.ts";
import { recordOf, tempDir, wasmOf } from "./_test_utils.ts";

async function entries(path: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(path), (entry) => entry.name)).sort();
}

Deno.test("FileStore.put() lays out plugin.wasm and manifest.json per version, with no scratch left", async () => {
  await using dir = await tempDir();
  const record = await recordOf("hello", "1.0.0", { signature: "c2ln" });
  await new FileStore(dir.path).put(record);
  const versionDir = join(dir.path, "plugins", "hello", "1.0.0");
  assert.deepEqual(await entries(join(dir.path, "plugins", "hello")), ["1.0.0"]);
  assert.deepEqual(await entries(versionDir), ["manifest.json", "plugin.wasm"]);
  assert.deepEqual(await Deno.readFile(join(versionDir, "plugin.wasm")), record.wasm);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(versionDir, "manifest.json"))), {
    manifest: record.manifest,
    sha256: record.sha256,
    installedAt: record.installedAt,
    signature: "c2ln",
  });
  // Another object over the same directory (a restart) reads the same record.
  assert.deepEqual(await new FileStore(dir.path).get("hello"), record);
});

Deno.test("FileStore.put() over an existing version leaves only the new copy", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  await store.put(await recordOf("p", "1.0.0", { tag: "old" }));
  const next = await recordOf("p", "1.0.0", { tag: "new" });
  await store.put(next);
  assert.deepEqual(await entries(join(dir.path, "plugins", "p")), ["1.0.0"]);
  assert.deepEqual(await store.get("p", "1.0.0"), next);
});

Deno.test("FileStore.put() of one version from many callers at once ends with one whole copy", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  const records = await Promise.all(Array.from({ length: 8 }, (_, i) => recordOf("p", "1.0.0", { tag: `t${i}` })));
  await Promise.all([...records.map((r) => store.put(r)), store.put(await recordOf("p", "2.0.0"))]);
  assert.deepEqual(await entries(join(dir.path, "plugins", "p")), ["1.0.0", "2.0.0"]);
  const stored = await store.get("p", "1.0.0");
  assert.ok(records.some((r) => r.sha256 === stored?.sha256), "one of the writers' records, whole");
  assert.deepEqual(store.problems(), []);
});

Deno.test("FileStore.list() and get() ignore what a crash left behind and keep the previous version", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  const previous = await recordOf("p", "1.0.0");
  await store.put(previous);
  const pluginDir = join(dir.path, "plugins", "p");
  // A crash while writing the scratch directory of 2.0.0 ...
  const tmp = join(pluginDir, `.tmp-${crypto.randomUUID()}`);
  await Deno.mkdir(tmp);
  await Deno.writeFile(join(tmp, "plugin.wasm"), wasmOf("half"));
  // ... one made by an older writer that wrote in place, without manifest.json ...
  await Deno.mkdir(join(pluginDir, "2.0.0"));
  await Deno.writeFile(join(pluginDir, "2.0.0", "plugin.wasm"), wasmOf("half"));
  // ... one with a truncated manifest.json, and a plugin with nothing readable at all.
  await Deno.mkdir(join(pluginDir, "3.0.0"));
  await Deno.writeFile(join(pluginDir, "3.0.0", "plugin.wasm"), wasmOf("3"));
  await Deno.writeTextFile(join(pluginDir, "3.0.0", "manifest.json"), '{"manifest": {"name": "p", "vers');
  await Deno.mkdir(join(dir.path, "plugins", "q", "1.0.0"), { recursive: true });

  assert.deepEqual(await store.list(), [{ name: "p", versions: ["1.0.0"], latest: "1.0.0" }]);
  assert.deepEqual(await store.get("p"), previous);
  assert.equal(await store.get("p", "2.0.0"), undefined);
  assert.equal(await store.get("q"), undefined);
  const problems = store.problems();
  assert.deepEqual(problems.map((p) => p.path), [
    join(pluginDir, ".tmp-" + tmp.split(".tmp-")[1]),
    join(pluginDir, "2.0.0"),
    join(pluginDir, "3.0.0"),
    join(dir.path, "plugins", "q", "1.0.0"),
  ]);
  assert.match(problems[0]!.message, /left over by an install that did not finish; safe to delete/);
  assert.match(problems[1]!.message, /^Skipped "p@2.0.0" in ".*": manifest.json is missing/);
  assert.match(problems[2]!.message, /manifest.json is unusable: .*JSON/);
  assert.deepEqual(await Deno.readFile(join(pluginDir, "1.0.0", "plugin.wasm")), previous.wasm);

  // Installing 2.0.0 properly replaces the half-written directory and clears its problem.
  const next = await recordOf("p", "2.0.0");
  await store.put(next);
  assert.deepEqual(await store.get("p"), next);
  assert.ok(!store.problems().some((p) => p.path === join(pluginDir, "2.0.0")));
});

Deno.test("FileStore.list() reports the previous copy a crash mid-overwrite left aside", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  await store.put(await recordOf("p", "1.0.0"));
  const pluginDir = join(dir.path, "plugins", "p");
  await Deno.rename(join(pluginDir, "1.0.0"), join(pluginDir, ".old-0"));
  assert.deepEqual(await store.list(), []);
  assert.match(store.problems()[0]?.message ?? "", /the previous copy of a re-installed version; .*rename/);
});

Deno.test("FileStore.get() skips a version whose plugin.wasm changed on disk", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  const v1 = await recordOf("p", "1.0.0");
  await store.put(v1);
  await store.put(await recordOf("p", "2.0.0"));
  const wasmPath = join(dir.path, "plugins", "p", "2.0.0", "plugin.wasm");
  const bytes = await Deno.readFile(wasmPath);
  bytes[bytes.length - 1]! ^= 1;
  await Deno.writeFile(wasmPath, bytes);

  assert.equal(await store.get("p", "2.0.0"), undefined);
  assert.deepEqual(await store.get("p"), v1);
  assert.deepEqual(await store.list(), [{ name: "p", versions: ["1.0.0"], latest: "1.0.0" }]);
  const [problem, ...rest] = store.problems();
  assert.equal(rest.length, 0);
  assert.equal(problem?.path, join(dir.path, "plugins", "p", "2.0.0"));
  assert.match(
    problem.message,
    /plugin.wasm hashes to "[0-9a-f]{64}" but manifest.json says "[0-9a-f]{64}": it changed/,
  );

  await Deno.remove(wasmPath);
  assert.equal(await store.get("p", "2.0.0"), undefined);
  assert.match(store.problems()[0]?.message ?? "", /plugin.wasm cannot be read/);
  assert.deepEqual(await store.remove("p", "2.0.0"), ["2.0.0"]);
  assert.deepEqual(store.problems(), []);
});

Deno.test("FileStore.get() skips a manifest.json written for another plugin", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  await store.put(await recordOf("p", "1.0.0"));
  await Deno.rename(join(dir.path, "plugins", "p"), join(dir.path, "plugins", "q"));
  assert.equal(await store.get("q"), undefined);
  assert.match(store.problems()[0]?.message ?? "", /"manifest" is for "p@1.0.0", not this directory's/);
});

Deno.test("FileStore.list() reports stray entries and ignores other hidden files", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  await store.put(await recordOf("p", "1.0.0"));
  const plugins = join(dir.path, "plugins");
  await Deno.writeTextFile(join(plugins, "p", "latest"), "1.0.0");
  await Deno.writeTextFile(join(plugins, "README"), "hi");
  await Deno.writeTextFile(join(plugins, ".DS_Store"), "");
  await Deno.mkdir(join(plugins, ".rm-1"));
  assert.deepEqual(await store.list(), [{ name: "p", versions: ["1.0.0"], latest: "1.0.0" }]);
  assert.deepEqual(store.problems().map((p) => p.path), [
    join(plugins, ".rm-1"),
    join(plugins, "README"),
    join(plugins, "p", "latest"),
  ]);
});

Deno.test("FileStore.remove() deletes the plugin's directory with its last version", async () => {
  await using dir = await tempDir();
  const store = new FileStore(dir.path);
  await store.put(await recordOf("p", "1.0.0"));
  await store.put(await recordOf("p", "2.0.0"));
  await store.put(await recordOf("q", "1.0.0"));
  assert.deepEqual(await store.remove("p", "1.0.0"), ["1.0.0"]);
  assert.deepEqual(await entries(join(dir.path, "plugins")), ["p", "q"]);
  assert.deepEqual(await store.remove("p", "2.0.0"), ["2.0.0"]);
  assert.deepEqual(await entries(join(dir.path, "plugins")), ["q"]);
  assert.deepEqual(await store.remove("q"), ["1.0.0"]);
  assert.deepEqual(await entries(join(dir.path, "plugins")), []);
});

Deno.test("FileStore reads nothing from a directory that does not exist yet", async () => {
  await using dir = await tempDir();
  const store = new FileStore(join(dir.path, "absent"));
  assert.deepEqual(await store.list(), []);
  assert.equal(await store.get("p"), undefined);
  assert.deepEqual(await store.remove("p"), []);
  assert.throws(() => new FileStore(""), TypeError);
});
