/**
 * keycard: a policy-as-code gateway for Extism WebAssembly plugins.
 *
 * This module is the library surface. The runtime ({@linkcode PluginHost})
 * runs each plugin in its own permissionless isolate with deadlines, memory
 * caps and bounded concurrency.
 *
 * @example Run a plugin
 * ```ts ignore
 * import { PluginHost } from "./mod.ts";
 * await using host = new PluginHost();
 * const plugin = await host.load(await Deno.readFile("plugins/hello/build/plugin.wasm"), { name: "hello" });
 * const out = await host.invoke(plugin, "greet", "keycard");
 * console.log(new TextDecoder().decode(out)); // Hello, keycard!
 * ```
 *
 * @module
 */
export {
  DEFAULT_LIMITS,
  HostCallError,
  inspectModule,
  instrumentModule,
  PluginDeadlineError,
  PluginHost,
  PluginLimitError,
  PluginLoadError,
  PluginMemoryError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  SaturatedError,
} from "./src/runtime/mod.ts";
export type {
  HostCallContext,
  HostFunction,
  HostStats,
  InstrumentedModule,
  InstrumentOptions,
  InvokeOptions,
  LoadOptions,
  MemoryInfo,
  ModuleInfo,
  PluginErrorOptions,
  PluginHostOptions,
  PluginInfo,
  PluginLimits,
} from "./src/runtime/mod.ts";
