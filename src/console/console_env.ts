import type { ConsoleSession } from "./session_store.ts";

/**
 * The Hono env of the console app: the signed-in session, once the session
 * middleware found one (undefined for a request without a live session).
 *
 * @example Read the session in a handler of the console app
 * ```ts
 * import { Hono } from "hono";
 * import type { ConsoleEnv } from "./console_env.ts";
 * const app = new Hono<ConsoleEnv>();
 * app.get("/whoami", (c) => c.text(c.get("session")?.client.id ?? "nobody"));
 * ```
 */
export type ConsoleEnv = { Variables: { session: ConsoleSession | undefined } };
