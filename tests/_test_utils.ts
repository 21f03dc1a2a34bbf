// Shared fixtures of the test suites: real plugins, built from source.
import assert from "node:assert/strict";
import process from "node:process";
import { buildPlugins } from "../plugins/build.ts";
import { compileWat } from "./_wat.ts";
import { HostCallError } from "../src/runtime/mod.ts";

const testdata = new URL("./testdata/", import.meta.url);

/** Compiles `tests/testdata/<name>.wat` to wasm bytes. */
export async function watFixture(name: string): Promise<Uint8Array> {
  const url = new URL(`${name}.wat`, testdata);
  return await compileWat(await Deno.readTextFile(url), `${name}.wat`);
}

/** Builds (when stale) and reads `plugins/<name>/build/plugin.wasm`. */
export async function examplePlugin(name: string): Promise<Uint8Array> {
  const [path] = await buildPlugins({ only: [name] });
  return await Deno.readFile(path!);
}

/** Process CPU time (user + system, all threads) in milliseconds. */
export function cpuTimeMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * Share of one core the process used over `ms` of idle waiting: near 0 when
 * nothing spins, near 1 (or more) when a thread is left burning.
 */
export async function idleCpuShare(ms = 300): Promise<number> {
  const before = cpuTimeMs();
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (cpuTimeMs() - before) / (performance.now() - start);
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/**
 * Copies the repo's `policies/` (schema and `.cedar` files) into `<dir>/policies`, where a gateway may write.
 * @returns The new policies directory.
 */
export async function copyPolicies(dir: string): Promise<string> {
  const policies = `${dir}/policies`;
  await Deno.mkdir(policies);
  const source = new URL("../policies/", import.meta.url);
  for await (const entry of Deno.readDir(source)) {
    if (entry.isFile && (entry.name.endsWith(".cedar") || entry.name === "keycard.cedarschema")) {
      await Deno.copyFile(new URL(entry.name, source), `${policies}/${entry.name}`);
    }
  }
  return policies;
}

/**
 * The Deno a test may run as a subprocess: `--allow-run=deno` in the test task
 * grants the `deno` on PATH (Deno.execPath() is the resolved binary, which a
 * name grant does not cover when `deno` is a symlink). Undefined when neither
 * is granted (e.g. under `npx deno`, with no `deno` on PATH).
 */
export const denoCommand: string | undefined = [Deno.execPath(), "deno"].find((command) =>
  Deno.permissions.querySync({ name: "run", command }).state === "granted"
);

/** A multipart body with `wasm` and (optional) `manifest`, as curl -F would send it. */
export function pluginForm(wasm: Uint8Array, manifest?: string): FormData {
  const form = new FormData();
  form.append("wasm", new Blob([wasm as Uint8Array<ArrayBuffer>], { type: "application/wasm" }), "plugin.wasm");
  if (manifest !== undefined) form.append("manifest", manifest);
  return form;
}

/** Manifest text of tests/testdata/http_echo.wat under a name and version. */
export function echoManifest(name: string, version = "1.0.0"): string {
  return `name: ${name}\nversion: ${version}\ndescription: echo test plugin\nexports:\n  - name: echo\n    samples: ["hi", ""]\ncapabilities: []\n`;
}

/** Lines of an audit file `path`, then of `path.1`, `path.2` ... read oldest file first, so in write order. */
export async function readRotated(path: string): Promise<{ files: string[]; lines: string[] }> {
  const files = [path];
  for (let index = 1;; index++) {
    try {
      await Deno.lstat(`${path}.${index}`);
    } catch {
      break;
    }
    files.push(`${path}.${index}`);
  }
  const lines: string[] = [];
  for (const file of files.toReversed()) {
    const text = await Deno.readTextFile(file);
    assert.ok(text === "" || text.endsWith("\n"), `${file} ends with a whole line`);
    lines.push(...text.split("\n").slice(0, -1));
  }
  return { files, lines };
}

/** Asserts that `promise` rejects with a {@linkcode HostCallError} of `code` (and a message matching `message`). */
export async function assertRefused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof HostCallError, `expected a HostCallError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

/**
 * Waits until `check` holds: it resolves to anything but `false` (a throw or `false` means not yet), polled every
 * 10 ms and bounded by `ms`. The condition is the event waited on (a replica following another, a writer's timer).
 *
 * @param what Named in the failure, with the last reason.
 * @param check The condition.
 * @param ms The bound.
 * @returns What `check` resolved to when it held.
 */
export async function eventually<T>(what: string, check: () => Promise<T>, ms = 5000): Promise<Exclude<T, false>> {
  const deadline = Date.now() + ms;
  for (;;) {
    let reason = "still false";
    try {
      const value = await check();
      if (value !== false) return value as Exclude<T, false>;
    } catch (error) {
      reason = (error as Error).message ?? String(error);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms: ${reason}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
