/**
 * The operator console: server-rendered pages at `/console` for plugins,
 * audit, policies, health and a Cedar playground, signed in with an API token
 * and decided by Cedar as the `/v1` API is.
 *
 * @example Mount it on the gateway's app
 * ```ts ignore
 * import { consoleApp } from "./mod.ts";
 * app.route("/console", consoleApp(services, { metrics }));
 * ```
 *
 * @module
 */
export { CONSOLE_CSP, consoleApp, type ConsoleOptions } from "./console_app.tsx";
export type { ConsoleEnv } from "./console_env.ts";
export {
  checkCsrf,
  type ConsoleSession,
  type ConsoleSessions,
  SessionStore,
  type SessionStoreOptions,
} from "./session_store.ts";
