// Placeholder: built by the helper that owns this file.
import type { PolicyCliIo } from "./policy.ts";

/** Not built yet. */
export function run(_args: string[], io: PolicyCliIo): Promise<number> {
  io.stderr("not built yet");
  return Promise.resolve(2);
}
