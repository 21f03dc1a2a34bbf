import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { CONFIG_ENV_VARS, loadConfig, type LoadedConfig } from "../config/mod.ts";
import { permissionFlags, serverPermissions } from "./server_permissions.ts";
import { userError } from "./user_error.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** Flags every server process runs with, whatever the configuration. */
const SERVER_FLAGS = [
  "--no-prompt",
  "--unstable-no-legacy-abort",
  // A process-wide backstop under the per-plugin memory caps (1 GiB per wasm memory). A regular expression that
  // backtracks too long (an operator's redact pattern over a plugin's log line) goes on in V8's linear-time engine.
  "--v8-flags=--wasm-max-mem-pages=16384,--expose-gc,--enable-experimental-regexp-engine-on-excessive-backtracks",
];

/** Options of {@linkcode start}. */
export interface StartOptions {
  /** Where the launcher's own lines go (the server writes to the inherited stdout). @default {console.log} */
  log?: (line: string) => void;
  /** Where error lines go. @default {console.error} */
  error?: (line: string) => void;
  /** The environment (`KEYCARD_*`, `INIT_CWD`, `MALLOC_ARENA_MAX`). @default {the process environment, for the names it reads} */
  env?: Record<string, string | undefined>;
}

/**
 * `deno task start [config.yaml] [--dry-run]`: loads the configuration,
 * builds the configured plugin directories from their own source, derives the
 * least Deno permissions that configuration needs (see
 * {@linkcode serverPermissions}), prints them, and runs the server
 * (`main.ts serve`) as a child process with exactly those flags, passing
 * SIGINT, SIGTERM and SIGHUP on. `--dry-run` prints the permissions and the
 * command without starting anything.
 *
 * A config path (argument or `KEYCARD_CONFIG`) and `KEYCARD_DATA_DIR` are
 * relative to the directory the task was started from (`INIT_CWD`), as the
 * user typed them; without either, the checkout's `keycard.yaml` is used.
 *
 * @param args The arguments after `start`.
 * @param options Output and environment.
 * @returns The exit code: the server's, 0 after a dry run, 2 for a usage or
 * configuration error (one line naming the file, key and value).
 *
 * @example Print the permissions a configuration would run with
 * ```ts ignore
 * import { start } from "./start.ts";
 * await start(["keycard.yaml", "--dry-run"]); // 0
 * ```
 */
export async function start(args: string[], options: StartOptions = {}): Promise<number> {
  const log = options.log ?? console.log;
  const error = options.error ?? console.error;
  const env = options.env ?? _readEnv([...CONFIG_ENV_VARS, "INIT_CWD", "MALLOC_ARENA_MAX"]);
  const dryRun = args.includes("--dry-run");
  const positionals = args.filter((a) => a !== "--dry-run");
  const unknown = positionals.find((a) => a.startsWith("-"));
  if (unknown !== undefined || positionals.length > 1) {
    error(
      `Unknown argument ${JSON.stringify(unknown ?? positionals[1])}: usage: deno task start [config.yaml] [--dry-run]`,
    );
    return 2;
  }
  // Paths the user typed are relative to where the task was started; the default keycard.yaml is the checkout's.
  const typedFrom = env.INIT_CWD || Deno.cwd();
  const typed = (path: string | undefined) => path ? resolve(typedFrom, path) : undefined;
  const resolvedEnv = {
    ...env,
    KEYCARD_CONFIG: typed(env.KEYCARD_CONFIG),
    KEYCARD_DATA_DIR: typed(env.KEYCARD_DATA_DIR),
  };
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig({ ...(positionals[0] ? { path: typed(positionals[0]) } : {}), env: resolvedEnv });
  } catch (cause) {
    const message = userError(cause);
    if (message === undefined) throw cause;
    error(message);
    return 2;
  }
  const { config, source } = loaded;
  const configFile = source.startsWith("/") ? source : undefined;
  let permissions;
  try {
    permissions = serverPermissions(config, { repo: REPO, ...(configFile ? { configFile } : {}) });
  } catch (cause) {
    error((cause as Error).message);
    return 2;
  }
  const flags = permissionFlags(permissions);
  const command = [
    "run",
    `--config=${join(REPO, "deno.json")}`,
    ...SERVER_FLAGS,
    ...flags,
    join(REPO, "src", "cli", "main.ts"),
    "serve",
    ...(configFile ? [configFile] : []),
  ];
  log(`keycard: config ${source}`);
  log(`keycard: server permissions (derived from the config; plugin workers hold none):`);
  for (const flag of flags) log(`  ${flag}`);
  if (dryRun) {
    log(`keycard: would run: deno ${command.join(" ")}`);
    return 0;
  }

  const sources = await _sourceDirs(config.plugins.map((p) => p.path));
  if (sources.length > 0) await _build(sources, log, error);

  // The child's environment: paths resolved here, so it reads the same configuration.
  const childEnv: Record<string, string> = {
    // Plugin workers are threads that come and go (recycled after a budget); with glibc's default of one
    // malloc arena per thread, RSS kept what dead workers had held (3,000 fill-and-trap replacements: idle
    // RSS 261 MiB with the default, 182 MiB with 2 arenas; bench/soak.ts).
    MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX || "2",
  };
  if (resolvedEnv.KEYCARD_DATA_DIR) childEnv.KEYCARD_DATA_DIR = resolvedEnv.KEYCARD_DATA_DIR;
  const child = new Deno.Command("deno", {
    args: command,
    cwd: REPO,
    env: childEnv,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const forward = signals.map((signal) => {
    const pass = () => {
      try {
        child.kill(signal);
      } catch {
        // The child has already exited.
      }
    };
    Deno.addSignalListener(signal, pass);
    return [signal, pass] as const;
  });
  try {
    return (await child.status).code;
  } finally {
    for (const [signal, pass] of forward) Deno.removeSignalListener(signal, pass);
  }
}

/** The configured plugin directories that hold AssemblyScript source (`assembly/index.ts`). */
async function _sourceDirs(paths: readonly string[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const path of paths) {
    if (path.endsWith(".wasm")) continue;
    try {
      if ((await Deno.stat(join(path, "assembly", "index.ts"))).isFile) dirs.push(path);
    } catch {
      // No source: the directory must hold its own build/plugin.wasm (the server says so if not).
    }
  }
  return dirs;
}

/**
 * Builds plugin directories in a child process that may read only the
 * checkout and those directories and write only their `build/`. A failed build
 * is reported here; the server then reports that plugin as not loaded.
 */
async function _build(dirs: string[], log: (line: string) => void, error: (line: string) => void): Promise<void> {
  const output = await new Deno.Command("deno", {
    args: [
      "run",
      `--config=${join(REPO, "deno.json")}`,
      "--no-prompt",
      `--allow-read=${[REPO, ...dirs].join(",")}`,
      `--allow-write=${dirs.map((d) => join(d, "build")).join(",")}`,
      "--allow-env=CI,LOG_TOKENS,LOG_STREAM",
      join(REPO, "plugins", "build.ts"),
      ...dirs.flatMap((d) => ["--dir", d]),
    ],
    cwd: REPO,
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trimEnd();
  for (const line of text(output.stdout).split("\n").filter(Boolean)) log(`keycard: build: ${line}`);
  for (const line of text(output.stderr).split("\n").filter(Boolean)) error(`keycard: build: ${line}`);
}

/** Reads the named variables this process may read, without prompting. */
function _readEnv(names: readonly string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const variable of names) {
    if (Deno.permissions.querySync({ name: "env", variable }).state === "granted") {
      env[variable] = Deno.env.get(variable);
    }
  }
  return env;
}
