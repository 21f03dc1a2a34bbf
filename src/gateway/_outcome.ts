import type { HandlerConfig, HookConfig, RouteConfig } from "../config/mod.ts";
import type { RouteRunnerDeps } from "./route_runner.ts";

/** How a hook or handler call of a route ended, for metrics and the audit log. */
export interface StepOutcome {
  /** `"ok"`, or the problem kind of the failure (e.g. `deadline-exceeded`). */
  kind: string;
  /** When the call started, from `performance.now()`. */
  started: number;
  /** The route's client, if any. */
  caller: string | undefined;
  /** On failure: what went wrong, and whether the request went on without the step (`allow`) or not. */
  failure?: { action: "route.hook" | "route.handler"; message: string; decision: "allow" | "deny"; reason: string };
}

/** Counts a call in the metrics and, when it failed, records it in the audit log. */
export function recordOutcome(
  deps: Pick<RouteRunnerDeps, "audit" | "metrics">,
  route: RouteConfig,
  step: HookConfig | HandlerConfig,
  outcome: StepOutcome,
): void {
  const ms = performance.now() - outcome.started;
  deps.metrics.observeCall(step.plugin, step.export, outcome.kind, ms / 1000);
  const failure = outcome.failure;
  if (!failure) return;
  deps.audit.record({
    time: new Date().toISOString(),
    callId: crypto.randomUUID(),
    plugin: step.plugin,
    version: "",
    action: failure.action,
    resource: `Route::${JSON.stringify(route.name)}`,
    decision: failure.decision,
    policies: [],
    errors: [failure.message],
    caller: outcome.caller ?? null,
    durationUs: Math.round(ms * 1000),
    reason: failure.reason,
  });
}
