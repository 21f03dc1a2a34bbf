/**
 * Builds AssemblyScript plugins with asc's programmatic API: every
 * `plugins/<name>/assembly/index.ts` to `plugins/<name>/build/plugin.wasm`,
 * or any plugin directory given with `--dir` (`deno task start` builds the
 * configured ones that way, each with its own source).
 *
 * CLI: `deno task build:plugins [--force] [name...]`, or `[--force] --dir PATH [--dir PATH ...]`
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { dirname, join, relative, resolve } from "node:path";

/** Repository root (the parent of `plugins/`). */
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PLUGINS_DIR = join(ROOT, "plugins");
const PDK_DIR = join(ROOT, "pdk", "assemblyscript", "assembly");
const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * asc's baseDir: the file system root, so that a plugin directory anywhere
 * (inside the repository or not) builds the same way.
 */
const BASE_DIR = "/";

/**
 * The PDK's abort handler, as an AssemblyScript internal path (relative to
 * asc's baseDir, without `.ts`).
 */
const ABORT_FN = `${relative(BASE_DIR, PDK_DIR)}/index/abortHandler`;

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

/** What {@linkcode buildPluginDirs} did for one directory. */
export interface DirBuild {
  /** The plugin directory, absolute. */
  dir: string;
  /** Its build output, `<dir>/build/plugin.wasm`. */
  out: string;
  /** `"built"`, `"up to date"`, or `"failed"` (then `error` says why). */
  status: "built" | "up to date" | "failed";
  /** asc's messages when the build failed. */
  error?: string;
}

/**
 * Builds plugin directories anywhere on disk: each `<dir>/assembly/index.ts`
 * to `<dir>/build/plugin.wasm`, skipping outputs newer than all their
 * sources, the PDK and this script unless `options.force`. Safe against
 * concurrent builds (temp file + rename). A failure is reported per
 * directory, never thrown, so one broken plugin does not hide the others.
 *
 * @param dirs Plugin directories (each with `assembly/index.ts`).
 * @param options `force` and a progress logger (`only` is ignored).
 * @returns One result per directory, in the order given.
 */
export async function buildPluginDirs(dirs: readonly string[], options: BuildOptions = {}): Promise<DirBuild[]> {
  const log = options.log ?? (() => {});
  const pdkMtime = Math.max(await newestMtime(PDK_DIR), await mtimeOf(THIS_FILE));
  const results: DirBuild[] = [];
  for (const given of dirs) {
    const dir = resolve(given);
    const out = join(dir, "build", "plugin.wasm");
    const srcMtime = Math.max(pdkMtime, await newestMtime(join(dir, "assembly")));
    if (!options.force && (await mtimeOf(out)) > srcMtime) {
      log(`${dir}: up to date`);
      results.push({ dir, out, status: "up to date" });
      continue;
    }
    const started = performance.now();
    try {
      const size = await buildOne(dir, out);
      const ms = Math.round(performance.now() - started);
      log(`${dir}: built ${relative(dir, out)} (${size} bytes, ${ms} ms)`);
      results.push({ dir, out, status: "built" });
    } catch (err) {
      // The old output no longer matches the source: never leave it to be loaded as if it did.
      await Deno.remove(out).catch(() => {});
      results.push({ dir, out, status: "failed", error: err instanceof Error ? err.message : String(err) });
    }
  }
  return results;
}

/**
 * Builds the plugins under `plugins/` (all, or `options.only`) and returns
 * the absolute paths of their `build/plugin.wasm`, in plugin-name order.
 * Throws one Error naming every plugin that failed, with asc's messages.
 */
export async function buildPlugins(
  options: BuildOptions = {},
): Promise<string[]> {
  const all = await listPlugins();
  const names = [...new Set(options.only ?? all)].sort();
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown plugin(s): ${unknown.join(", ")} (known: ${all.join(", ")})`,
    );
  }
  const results = await buildPluginDirs(names.map((name) => join(PLUGINS_DIR, name)), options);
  const failures = results.flatMap((r, i) => r.status === "failed" ? [`plugin "${names[i]}": ${r.error}`] : []);
  if (failures.length > 0) {
    throw new Error(`build failed:\n${failures.join("\n")}`);
  }
  return results.map((r) => r.out);
}

/** Compiles the plugin in `dir` with asc and atomically writes `out`; returns its size. */
async function buildOne(dir: string, out: string): Promise<number> {
  // Loaded lazily: importing the compiler costs ~0.3 s, skipped when up to date.
  const { default: asc } = await import("assemblyscript/asc");
  const entry = relative(BASE_DIR, join(dir, "assembly", "index.ts"));
  let wasm: Uint8Array | undefined;
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([
    entry,
    "--baseDir",
    BASE_DIR,
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
  const buildDir = dirname(out);
  await Deno.mkdir(buildDir, { recursive: true });
  const tmp = join(
    buildDir,
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
  const { parseArgs } = await import("node:util");
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { force: { type: "boolean", short: "f" }, dir: { type: "string", multiple: true } },
  });
  const log = (line: string) => console.log(line);
  try {
    if (values.dir) {
      // Plugin directories anywhere (`deno task start` builds the configured ones this way).
      const results = await buildPluginDirs(values.dir, { force: values.force ?? false, log });
      const failed = results.filter((r) => r.status === "failed");
      for (const r of failed) console.error(`Cannot build plugin directory "${r.dir}": ${r.error}`);
      if (failed.length > 0) Deno.exit(1);
    } else {
      await buildPlugins({
        ...(positionals.length > 0 ? { only: positionals } : {}),
        force: values.force ?? false,
        log,
      });
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
