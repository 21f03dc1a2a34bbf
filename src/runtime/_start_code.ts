// Which exports of a module are start code (run once by keycard, under the
// deadline, never invocable) and whether `_start` is a WASI command's program.

/** Exports that are start code wherever they appear, in the order keycard runs them (after the start section). */
export const INIT_FUNCTIONS: readonly string[] = ["_initialize", "hs_init"];

/**
 * Exports a WASI command may carry beside `_start` without being a library:
 * allocators that toolchains (TinyGo, wit-bindgen) export for the host.
 */
const COMMAND_COMPANIONS: ReadonlySet<string> = new Set([
  "_initialize",
  "hs_init",
  "malloc",
  "free",
  "calloc",
  "realloc",
  "cabi_realloc",
]);

/** How a module starts. */
export interface StartPlan {
  /** Start functions by export name, in run order: `_initialize`, `_start` when it is not a command, `hs_init`. */
  init: string[];
  /** Whether `_start` is a WASI command's program: an ordinary export, never run at start. */
  command: boolean;
}

/**
 * Plans a module's start code from its function export names.
 *
 * `_start` is a command's program when the module exports no other function
 * (allocators aside), or when `command` says so; otherwise it is the
 * initializer some toolchains export it as (AssemblyScript's `--exportStart`,
 * as @assemblyscript/wasi-shim does, and older TinyGo), run at start as
 * Extism's JS SDK runs it.
 */
export function planStartCode(functions: readonly string[], command?: boolean): StartPlan {
  const hasStart = functions.includes("_start");
  const isCommand = hasStart &&
    (command ?? functions.every((name) => name === "_start" || COMMAND_COMPANIONS.has(name)));
  const init: string[] = [];
  if (functions.includes("_initialize")) init.push("_initialize");
  if (hasStart && !isCommand) init.push("_start");
  if (functions.includes("hs_init")) init.push("hs_init");
  return { init, command: isCommand };
}

/** Whether an export name is start code in a module planned as `plan`: never listed, never invocable. */
export function isStartExport(name: string, plan: StartPlan): boolean {
  return name.startsWith("__keycard") || INIT_FUNCTIONS.includes(name) || (name === "_start" && !plan.command);
}
