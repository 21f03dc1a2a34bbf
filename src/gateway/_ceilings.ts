import type { PluginLimits } from "../runtime/mod.ts";

/** One limit a manifest asks for past the operator's ceiling. */
export interface ExceededLimit {
  /** The limit's name, e.g. `deadlineMs`. */
  limit: keyof PluginLimits;
  /** What the manifest asks for. */
  value: number;
  /** The most `keycard.yaml` allows. */
  ceiling: number;
}

/** The limits of `requested` that are past their ceiling, in the order of `ceilings`. */
export function exceededCeilings(requested: Partial<PluginLimits>, ceilings: PluginLimits): ExceededLimit[] {
  const out: ExceededLimit[] = [];
  for (const [limit, ceiling] of Object.entries(ceilings) as [keyof PluginLimits, number][]) {
    const value = requested[limit];
    if (value !== undefined && value > ceiling) out.push({ limit, value, ceiling });
  }
  return out;
}

/** Why a plugin may not run with the limits it asks for, naming each limit, value and ceiling. */
export function describeExceeded(plugin: string, exceeded: readonly ExceededLimit[]): string {
  const list = exceeded.map((e) => `"${e.limit}" of ${e.value} past its ceiling of ${e.ceiling}`).join(", ");
  return `Plugin "${plugin}" asks for ${list}: "ceilings" in keycard.yaml bound what a manifest may ask for`;
}
