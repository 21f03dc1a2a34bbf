// Placeholder: built by the helper that owns this file.
import type { PolicyCliIo } from "./policy.ts";

function notYet(_args: string[], io: PolicyCliIo): Promise<number> {
  io.stderr("not built yet");
  return Promise.resolve(2);
}

/** Not built yet. */
export const validate = notYet;
/** Not built yet. */
export const explain = notYet;
/** Not built yet. */
export const compile = notYet;
