// What every console page shares: its Hono env (the session), its dependencies, and Cedar checks for the session's client.
import type { Context } from "hono";
import type { Entity } from "../policy/mod.ts";
import { allowApiAction, API, decideApiAction } from "../http/api_action.ts";
import type { Metrics } from "../http/metrics.ts";
import { ProblemError } from "../http/problem.ts";
import type { GatewayServices } from "../http/services.ts";
import type { ConsoleEnv } from "./console_env.ts";
import type { ConsoleSession, ConsoleSessions } from "./session_store.ts";
import type { StreamRegistry } from "./_streams.ts";

export type { ConsoleEnv } from "./console_env.ts";

/** What the console pages are built from. */
export interface ConsoleDeps {
  services: GatewayServices;
  sessions: ConsoleSessions;
  metrics: Metrics | undefined;
  /** The open live audit tails, ended with their session. */
  streams: StreamRegistry;
}

export { API } from "../http/api_action.ts";

/** The name of the session cookie. */
export const COOKIE = "keycard_console";

/** The session of a signed-in request; pages run behind the session guard, so there is one. */
export function sessionOf(c: Context<ConsoleEnv>): ConsoleSession {
  const session = c.get("session");
  if (session === undefined) throw new ProblemError("unauthenticated", "Sign in to use the console");
  return session;
}

/** Whether Cedar permits the session's client an API action, decided as the /v1 API decides it. */
export function can(deps: ConsoleDeps, c: Context<ConsoleEnv>, action: string, resource: Entity = API): boolean {
  return decide(deps, c, action, resource).decision === "allow";
}

/** Throws a 403 problem when Cedar denies the session's client an API action (the /v1 API's message). */
export function allow(deps: ConsoleDeps, c: Context<ConsoleEnv>, action: string, resource: Entity = API): void {
  allowApiAction(deps.services, sessionOf(c).client, action, resource);
}

function decide(deps: ConsoleDeps, c: Context<ConsoleEnv>, action: string, resource: Entity) {
  return decideApiAction(deps.services, sessionOf(c).client, action, resource);
}
