// The layout of a plugin configured in keycard.yaml's `plugins:`, shared by the
// gateway (which loads it) and the policy lifecycle (which reads its grants).
import { join } from "node:path";

/**
 * Where a configured plugin's files are: a `.wasm` with a sibling `.yaml`, or
 * a directory with `plugin.yaml` and `build/plugin.wasm`.
 * @param path The configured path.
 * @returns Whether it is a `.wasm`, and the manifest's and module's paths.
 */
export function configuredPaths(path: string): { isWasm: boolean; manifestPath: string; wasmPath: string } {
  const isWasm = path.endsWith(".wasm");
  return {
    isWasm,
    manifestPath: isWasm ? path.replace(/\.wasm$/, ".yaml") : join(path, "plugin.yaml"),
    wasmPath: isWasm ? path : join(path, "build", "plugin.wasm"),
  };
}
