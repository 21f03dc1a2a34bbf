import assert from "node:assert/strict";
import { sha256Hex } from "./_checks.ts";
import { RegistryError } from "./errors.ts";
import { FileStore } from "./file_store.ts";
import { MemoryStore } from "./memory_store.ts";
import { parseManifest } from "./parse_manifest.ts";
import { Registry } from "./registry.ts";
import { manifestOf, tempDir, wasmOf } from "./_test_utils.ts";

function base64(bytes: ArrayBuffer | Uint8Array): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

async function keyPair(): Promise<{ publicKey: string; sign: (bytes: Uint8Array) => Promise<string> }> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]) as CryptoKeyPair;
  return {
    publicKey: base64(await crypto.subtle.exportKey("raw", pair.publicKey)),
    sign: async (bytes) =>
      base64(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes as Uint8Array<ArrayBuffer>)),
  };
}

function isRegistryError(code: RegistryError["code"], plugin: string, version: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.name, "RegistryError");
    assert.equal(error.code, code);
    assert.equal(error.plugin, plugin);
    assert.equal(error.version, version);
    return true;
  };
}

Deno.test("Registry.install() stores the module with its computed sha256 and install time", async () => {
  await using dir = await tempDir();
  const registry = new Registry(new FileStore(dir.path));
  const text = await Deno.readTextFile(new URL("../../plugins/hello/plugin.yaml", import.meta.url));
  const manifest = parseManifest(text, "hello/plugin.yaml");
  const wasm = wasmOf("hello");
  const before = Date.now();
  const installed = await registry.install(wasm, manifest);
  assert.equal(installed.sha256, await sha256Hex(wasm));
  assert.ok(Date.parse(installed.installedAt) >= before - 1000);
  assert.equal(installed.signature, undefined);
  assert.deepEqual(await registry.get("hello"), installed);
  assert.deepEqual(await registry.get("hello", manifest.version), installed);
  assert.deepEqual(await registry.list(), [{ name: "hello", versions: ["1.0.0"], latest: "1.0.0" }]);
  assert.deepEqual(await registry.remove("hello"), ["1.0.0"]);
  assert.deepEqual(await registry.list(), []);
});

Deno.test("Registry.install() refuses a module whose sha256 differs from the expected one", async () => {
  const registry = new Registry(new MemoryStore());
  const wasm = wasmOf("a");
  const sha256 = await sha256Hex(wasm);
  const other = await sha256Hex(wasmOf("b"));
  await assert.rejects(
    registry.install(wasm, manifestOf("a", "1.0.0"), { sha256: other }),
    isRegistryError("sha256_mismatch", "a", "1.0.0"),
  );
  await assert.rejects(
    registry.install(wasm, manifestOf("a", "1.0.0", { sha256: other })),
    /Cannot install plugin "a@1.0.0": its wasm hashes to "[0-9a-f]{64}", not the manifest's sha256 "[0-9a-f]{64}"/,
  );
  await assert.rejects(
    registry.install(wasm, manifestOf("a", "1.0.0", { sha256 }), { sha256: other }),
    /not the given sha256/,
  );
  await assert.rejects(registry.install(wasm, manifestOf("a", "1.0.0"), { sha256: "abc" }), TypeError);
  assert.deepEqual(await registry.list(), []);
  // Upper-case hex matches too, and a manifest from plugin.yaml carries its hash.
  await registry.install(wasm, manifestOf("a", "1.0.0"), { sha256: sha256.toUpperCase() });
  const manifest = parseManifest(`name: b\nversion: 1.0.0\nsha256: "${sha256.toUpperCase()}"\n`, "plugin.yaml");
  assert.equal((await registry.install(wasm, manifest)).manifest.sha256, sha256);
});

Deno.test("Registry.install() with requireSignature accepts a trusted signature and refuses missing or bad ones", async () => {
  const trusted = await keyPair();
  const stranger = await keyPair();
  const registry = new Registry(new MemoryStore(), { requireSignature: true, trustedKeys: [trusted.publicKey] });
  const wasm = wasmOf("signed");
  const manifest = manifestOf("s", "1.0.0");

  await assert.rejects(registry.install(wasm, manifest), isRegistryError("signature_required", "s", "1.0.0"));
  await assert.rejects(registry.install(wasm, manifest), /without a signature: requireSignature is on/);
  for (
    const signature of [
      await trusted.sign(wasmOf("other bytes")), // signs something else
      await stranger.sign(wasm), // signed by an untrusted key
      "!!not base64!!",
      base64(new Uint8Array(64)),
      "",
    ]
  ) {
    await assert.rejects(
      registry.install(wasm, manifest, { signature }),
      isRegistryError("signature_invalid", "s", "1.0.0"),
      signature,
    );
  }
  assert.deepEqual(await registry.list(), []);

  const signature = await trusted.sign(wasm);
  const installed = await registry.install(wasm, manifest, { signature });
  assert.equal(installed.signature, signature);
  assert.equal((await registry.get("s"))?.signature, signature);
});

Deno.test("Registry.install() accepts a signature by any trusted key, also from the manifest", async () => {
  const [first, second] = [await keyPair(), await keyPair()];
  const registry = new Registry(new MemoryStore(), {
    requireSignature: true,
    trustedKeys: [first.publicKey, second.publicKey],
  });
  const wasm = wasmOf("x");
  const signature = await second.sign(wasm);
  const manifest = parseManifest(`name: x\nversion: 2.0.0\nsignature: ${signature}\n`, "plugin.yaml");
  assert.equal((await registry.install(wasm, manifest)).signature, signature);
  await assert.rejects(
    registry.install(wasm, manifestOf("y", "1.0.0"), { signature: await first.sign(wasmOf("z")) }),
    /its signature ".*" is not an Ed25519 signature of its wasm by any of the 2 trusted keys/,
  );
});

Deno.test("Registry.install() checks an offered signature against trusted keys even when not required", async () => {
  const trusted = await keyPair();
  const registry = new Registry(new MemoryStore(), { trustedKeys: [trusted.publicKey] });
  const wasm = wasmOf("optional");
  await registry.install(wasm, manifestOf("o", "1.0.0"));
  await assert.rejects(
    registry.install(wasm, manifestOf("o", "1.0.1"), { signature: await trusted.sign(wasmOf("else")) }),
    isRegistryError("signature_invalid", "o", "1.0.1"),
  );
  // Without trusted keys a signature cannot be checked, so it is kept as given.
  const open = new Registry(new MemoryStore());
  assert.equal((await open.install(wasm, manifestOf("o", "1.0.0"), { signature: "c2ln" })).signature, "c2ln");
});

Deno.test("new Registry() refuses malformed trusted keys and a requirement no key can meet", () => {
  assert.throws(
    () => new Registry(new MemoryStore(), { requireSignature: true }),
    /requireSignature needs trustedKeys/,
  );
  assert.throws(
    () => new Registry(new MemoryStore(), { trustedKeys: [base64(new Uint8Array(31))] }),
    /Trusted key 0 ".*" is invalid: a trusted key is base64 of a raw 32-byte Ed25519 public key/,
  );
  assert.throws(() => new Registry(new MemoryStore(), { trustedKeys: ["not base64"] }), RangeError);
  assert.throws(() => new Registry(new MemoryStore(), { trustedKeys: [1 as unknown as string] }), TypeError);
});

Deno.test("Registry.install() refuses to change an installed version unless overwrite is set", async () => {
  const registry = new Registry(new MemoryStore());
  const first = await registry.install(wasmOf("v1"), manifestOf("p", "1.0.0"));
  // Identical content: nothing changes, not even the install time.
  assert.deepEqual(await registry.install(wasmOf("v1"), manifestOf("p", "1.0.0")), first);
  // Key order does not make a manifest different.
  const reordered = Object.fromEntries(Object.entries(manifestOf("p", "1.0.0")).reverse()) as typeof first.manifest;
  assert.deepEqual(await registry.install(wasmOf("v1"), reordered), first);

  await assert.rejects(
    registry.install(wasmOf("v2"), manifestOf("p", "1.0.0")),
    isRegistryError("version_exists", "p", "1.0.0"),
  );
  await assert.rejects(
    registry.install(wasmOf("v1"), manifestOf("p", "1.0.0", { capabilities: ["fs.read"] })),
    /Cannot install plugin "p@1.0.0": it is installed with another manifest; set overwrite to replace it/,
  );
  assert.deepEqual(await registry.get("p"), first);

  const replaced = await registry.install(wasmOf("v2"), manifestOf("p", "1.0.0"), { overwrite: true });
  assert.notEqual(replaced.sha256, first.sha256);
  assert.deepEqual(await registry.get("p", "1.0.0"), replaced);
  // Another version is a new install, not a change.
  await registry.install(wasmOf("v3"), manifestOf("p", "1.1.0"));
  assert.equal((await registry.get("p"))?.manifest.version, "1.1.0");
});

Deno.test("Registry.install() lets one of two racing installs of a version win", async () => {
  await using dir = await tempDir();
  const registry = new Registry(new FileStore(dir.path));
  const results = await Promise.allSettled([
    registry.install(wasmOf("one"), manifestOf("p", "1.0.0")),
    registry.install(wasmOf("two"), manifestOf("p", "1.0.0")),
  ]);
  assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  const winner = results.find((r) => r.status === "fulfilled")!.value;
  assert.deepEqual(await registry.get("p"), winner);
});

Deno.test("Registry refuses names and versions the store would refuse, before any work", async () => {
  const registry = new Registry(new MemoryStore());
  await assert.rejects(registry.install(wasmOf("x"), manifestOf("../x", "1.0.0")), RangeError);
  await assert.rejects(registry.install(wasmOf("x"), manifestOf("x", "v1.0.0")), RangeError);
  await assert.rejects(registry.install([1] as unknown as Uint8Array, manifestOf("x", "1.0.0")), TypeError);
  await assert.rejects(registry.remove(".."), RangeError);
  await assert.rejects(registry.get(".."), RangeError);
});
