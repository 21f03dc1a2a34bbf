/**
 * Builds every `plugins/<name>/assembly/index.ts` to
 * `plugins/<name>/build/plugin.wasm` with AssemblyScript (programmatic API).
 *
 * CLI: `deno task build:plugins [--force] [name...]`
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";

/** Repository root (the parent of `plugins/`). */
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PLUGINS_DIR = join(ROOT, "plugins");
const PDK_DIR = join(ROOT, "pdk", "assemblyscript", "assembly");
const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * The PDK's abort handler, as an AssemblyScript internal path (relative to
 * the repository root, which is asc's baseDir, without `.ts`).
 */
const ABORT_FN = "pdk/assemblyscript/assembly/index/abortHandler";

/** Options of {@linkcode buildPlugins}. */
export interface BuildOptions {
  /** Build only these plugins (directory names under `plugins/`). */
  only?: string[];
  /** Rebuild even when the output is newer than every source. */
  force?: boolean;
  /** Progress messages (one line each); silent when omitted. */
  log?: (line: string) => void;
}

/** Absolute path of a plugin's build output. */
export function pluginWasmPath(name: string): string {
  return join(PLUGINS_DIR, name, "build", "plugin.wasm");
}

/** Names of the plugins under `plugins/` (those with `assembly/index.ts`), sorted. */
export async function listPlugins(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(PLUGINS_DIR)) {
    if (!entry.isDirectory) continue;
    if (await isFile(join(PLUGINS_DIR, entry.name, "assembly", "index.ts"))) {
      names.push(entry.name);
    }
  }
  return names.sort();
}

/**
 * Builds the plugins (all, or `options.only`) and returns the absolute paths
 * of their `build/plugin.wasm`, in plugin-name order. A plugin whose output is
 * newer than all its sources, the PDK and this script is skipped unless
 * `options.force`. Safe against concurrent builds (temp file + rename).
 * Throws one Error naming every plugin that failed, with asc's messages.
 */
export async function buildPlugins(
  options: BuildOptions = {},
): Promise<string[]> {
  const all = await listPlugins();
  const names = options.only ?? all;
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown plugin(s): ${unknown.join(", ")} (known: ${all.join(", ")})`,
    );
  }
  const log = options.log ?? (() => {});
  const pdkMtime = Math.max(
    await newestMtime(PDK_DIR),
    await mtimeOf(THIS_FILE),
  );
  const outputs: string[] = [];
  const failures: string[] = [];
  for (const name of [...new Set(names)].sort()) {
    const out = pluginWasmPath(name);
    outputs.push(out);
    const srcMtime = Math.max(
      pdkMtime,
      await newestMtime(join(PLUGINS_DIR, name, "assembly")),
    );
    if (!options.force && (await mtimeOf(out)) > srcMtime) {
      log(`${name}: up to date`);
      continue;
    }
    const started = performance.now();
    try {
      const size = await buildOne(name, out);
      const ms = Math.round(performance.now() - started);
      log(`${name}: built ${relative(ROOT, out)} (${size} bytes, ${ms} ms)`);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      failures.push(`plugin "${name}": ${msg}`);
    }
  }
  if (failures.length > 0) {
    throw new Error(`build failed:\n${failures.join("\n")}`);
  }
  return outputs;
}

/** Compiles one plugin with asc and atomically writes `out`; returns its size. */
async function buildOne(name: string, out: string): Promise<number> {
  // Loaded lazily: importing the compiler costs ~0.3 s, skipped when up to date.
  const { default: asc } = await import("assemblyscript/asc");
  const entry = `plugins/${name}/assembly/index.ts`;
  let wasm: Uint8Array | undefined;
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([
    entry,
    "--baseDir",
    ROOT,
    "--outFile",
    "plugin.wasm",
    "-O3",
    "--runtime",
    "incremental",
    "--use",
    `abort=${ABORT_FN}`,
    "--noColors",
  ], {
    stdout,
    stderr,
    readFile(filename: string, baseDir: string): string | null {
      try {
        return Deno.readTextFileSync(join(baseDir, filename));
      } catch {
        return null;
      }
    },
    writeFile(filename: string, contents: Uint8Array | string): void {
      if (filename.endsWith(".wasm") && typeof contents !== "string") {
        wasm = contents;
      }
    },
    listFiles(dirname: string, baseDir: string): string[] | null {
      try {
        return [...Deno.readDirSync(join(baseDir, dirname))]
          .filter((e) => e.isFile && e.name.endsWith(".ts"))
          .map((e) => e.name);
      } catch {
        return null;
      }
    },
  });
  if (error) {
    let details = stderr.toString().trim();
    if (details.includes(ABORT_FN)) {
      details += "\nhint: the plugin must import the PDK " +
        '(import "../../../pdk/assemblyscript/assembly/index")';
    }
    throw new Error(`asc: ${error.message}${details ? `\n${details}` : ""}`);
  }
  if (!wasm) throw new Error("asc produced no .wasm output");
  const dir = join(PLUGINS_DIR, name, "build");
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(
    dir,
    `.plugin.wasm.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  try {
    await Deno.writeFile(tmp, wasm);
    await Deno.rename(tmp, out);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  return wasm.byteLength;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** mtime in ms, or 0 when the path does not exist. */
async function mtimeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/** Newest mtime (ms) of the files under `dir`, recursively (0 if none). */
async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory ? await newestMtime(path) : await mtimeOf(path);
    if (t > newest) newest = t;
  }
  return newest;
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => a !== "--force" && a !== "-f");
  const force = args.length !== Deno.args.length;
  try {
    await buildPlugins({
      only: args.length > 0 ? args : undefined,
      force,
      log: (line) => console.log(line),
    });
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
