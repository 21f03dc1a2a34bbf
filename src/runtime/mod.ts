/**
 * The plugin runtime: loads Extism WebAssembly plugins into Deno Worker
 * isolates with no permissions, bounds every call (deadline, memory, sizes,
 * concurrency) and forwards host-function calls to the main thread. It knows
 * nothing of Cedar or HTTP: it is handed the host functions.
 *
 * @module
 */
export {
  DEFAULT_LIMITS,
  EXTISM_HOST_FUNCTIONS,
  type HostCallContext,
  type HostCallRefusal,
  type HostFunction,
  type HostStats,
  type InvokeOptions,
  type LoadOptions,
  PluginHost,
  type PluginHostOptions,
  type PluginInfo,
  type PluginLimits,
  type PluginStats,
  type WorkerStats,
} from "./plugin_host.ts";
export {
  HostCallError,
  PluginDeadlineError,
  type PluginErrorOptions,
  PluginLimitError,
  PluginLoadError,
  PluginMemoryError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  SaturatedError,
} from "./errors.ts";
export { WASI_FUNCTIONS } from "./_wasi.ts";
export { type FunctionSignature, inspectModule, type MemoryInfo, type ModuleInfo } from "./inspect_module.ts";
export { type InstrumentedModule, instrumentModule, type InstrumentOptions } from "./instrument_module.ts";
