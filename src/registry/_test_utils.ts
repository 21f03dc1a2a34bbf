// Fixtures shared by this folder's tests.
import { sha256Hex } from "./_checks.ts";
import type { Manifest } from "./parse_manifest.ts";
import type { StoredPlugin } from "./plugin_store.ts";

/** A minimal manifest. */
export function manifestOf(name: string, version: string, extra: Partial<Manifest> = {}): Manifest {
  return { name, version, exports: [], capabilities: [], grants: [], limits: {}, config: {}, ...extra };
}

/** An empty but valid wasm module followed by a custom section that makes the bytes unique to `tag`. */
export function wasmOf(tag: string): Uint8Array {
  const name = new TextEncoder().encode(tag);
  return new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 0, name.length + 1, name.length, ...name]);
}

/** A record as a store takes it. */
export async function recordOf(
  name: string,
  version: string,
  options: { tag?: string; signature?: string; report?: Record<string, unknown> } = {},
): Promise<StoredPlugin> {
  const wasm = wasmOf(options.tag ?? `${name}@${version}`);
  return {
    manifest: manifestOf(name, version),
    wasm,
    sha256: await sha256Hex(wasm),
    installedAt: "2025-06-01T12:00:00.000Z",
    ...(options.signature === undefined ? {} : { signature: options.signature }),
    ...(options.report === undefined ? {} : { report: options.report }),
  };
}

/** A temporary directory, deleted on dispose. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "keycard-registry-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}
