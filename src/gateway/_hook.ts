import type { HookConfig, RouteConfig } from "../config/mod.ts";
import { problemKind } from "../http/mod.ts";
import { type Envelope, EnvelopeError, parseEnvelope } from "./_envelope.ts";
import { recordOutcome } from "./_outcome.ts";
import { problemResponse } from "./_problem_response.ts";
import type { HookInput, RouteRunnerDeps } from "./route_runner.ts";

const encoder = new TextEncoder();

/**
 * Runs one hook: its `HookInput` (with the hook's config) in, its envelope out.
 * @returns The envelope; undefined when the hook failed open; a 503 problem when it failed closed. Either failure
 * is audited (`route.hook`) and counted.
 */
export async function runHook(
  deps: RouteRunnerDeps,
  route: RouteConfig,
  hook: HookConfig,
  input: HookInput,
  caller: string | undefined,
): Promise<Envelope | Response | undefined> {
  const started = performance.now();
  try {
    const out = await deps.invoke(
      hook.plugin,
      hook.export,
      encoder.encode(JSON.stringify({ ...input, config: hook.config })),
      { hostContext: caller ? { caller } : {} },
    );
    const output = parseEnvelope(out);
    recordOutcome(deps, route, hook, { kind: "ok", started, caller });
    return output;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    recordOutcome(deps, route, hook, {
      kind: error instanceof EnvelopeError ? "plugin-failed" : problemKind(error),
      started,
      caller,
      failure: {
        action: "route.hook",
        message,
        decision: hook.failure === "open" ? "allow" : "deny",
        reason: `hook "${hook.plugin}" "${hook.export}" failed ${hook.failure}: ${message}`,
      },
    });
    if (hook.failure === "open") return undefined;
    return problemResponse("hook-failed", `Hook "${hook.plugin}" of route "${route.name}" failed: ${message}`, {
      route: route.name,
      plugin: hook.plugin,
      export: hook.export,
    });
  }
}
