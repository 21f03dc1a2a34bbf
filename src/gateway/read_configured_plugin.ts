import { basename, join } from "node:path";
import { type Manifest, parseManifest } from "../registry/mod.ts";
import { configuredPaths } from "../config/mod.ts";

/** A configured plugin read from disk: its module and manifest. */
export interface ConfiguredPlugin {
  /** The module's bytes. */
  wasm: Uint8Array;
  /** The parsed manifest. */
  manifest: Manifest;
}

/**
 * A configured plugin could not be read, built or loaded at start. Without
 * `strictStart` it is reported and skipped; with it, the start fails.
 *
 * @example
 * ```ts
 * import { StartError } from "./read_configured_plugin.ts";
 * new StartError("Plugin \"mine\" failed to load: trap", { path: "/srv/p/mine", plugin: "mine" }).plugin; // "mine"
 * ```
 */
export class StartError extends Error {
  /** The configured path. */
  readonly path: string;
  /** The plugin's name, once its manifest was read. */
  readonly plugin: string | undefined;

  /**
   * @param message What failed, naming the plugin and its path.
   * @param options The configured path, the plugin's name when known, and the cause.
   */
  constructor(message: string, options: { path: string; plugin?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StartError";
    this.path = options.path;
    this.plugin = options.plugin;
  }
}

/**
 * Reads a configured plugin: a built `.wasm` with an optional sibling `.yaml`
 * manifest (without one, the file name is the plugin's name), or a directory
 * with `plugin.yaml` and its own `build/plugin.wasm`. A directory with
 * AssemblyScript source (`assembly/`) newer than its module is refused as
 * stale: its build failed or did not run (`deno task start` builds configured
 * directories before the server starts; the gateway itself never builds).
 *
 * @param path The configured path, absolute.
 * @returns The module and manifest.
 * @throws {StartError} When the module or manifest is missing, unreadable, invalid or stale; the message names
 * the plugin and path.
 *
 * @example Read a built example plugin
 * ```ts ignore
 * import { readConfiguredPlugin } from "./read_configured_plugin.ts";
 * const { manifest } = await readConfiguredPlugin("/opt/keycard/plugins/hello");
 * manifest.name; // "hello"
 * ```
 */
export async function readConfiguredPlugin(path: string): Promise<ConfiguredPlugin> {
  const { isWasm, manifestPath, wasmPath } = configuredPaths(path);
  let manifest: Manifest;
  try {
    const text = await _readOptional(manifestPath);
    if (text === undefined && !isWasm) throw new Error(`it has no plugin.yaml`);
    manifest = parseManifest(text ?? `name: ${basename(path, ".wasm")}\n`, manifestPath);
  } catch (cause) {
    throw new StartError(`Cannot read plugin at "${path}": ${(cause as Error).message}`, { path, cause });
  }
  const plugin = manifest.name;
  const fail = (why: string, cause?: unknown) =>
    new StartError(`Cannot read plugin "${plugin}" at "${path}": ${why}`, { path, plugin, cause });
  let wasm: Uint8Array;
  let built: Deno.FileInfo;
  try {
    [wasm, built] = await Promise.all([Deno.readFile(wasmPath), Deno.stat(wasmPath)]);
  } catch (cause) {
    throw cause instanceof Deno.errors.NotFound
      ? fail(isWasm ? "no such file" : "it has no build/plugin.wasm (build it: deno task build:plugins --dir <path>)")
      : fail((cause as Error).message, cause);
  }
  if (!isWasm) {
    const source = await _newestMtime(join(path, "assembly"));
    if (source > (built.mtime?.getTime() ?? 0)) {
      throw fail("build/plugin.wasm is older than its source in assembly/: its build failed or did not run");
    }
  }
  return { wasm, manifest };
}

async function _readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Newest mtime (ms) of the files under `dir`, recursively; 0 when it does not exist. */
async function _newestMtime(dir: string): Promise<number> {
  let newest = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      const t = entry.isDirectory ? await _newestMtime(path) : (await Deno.stat(path)).mtime?.getTime() ?? 0;
      newest = Math.max(newest, t);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return newest;
}
