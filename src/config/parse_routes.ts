import { parseYaml } from "./_parse_yaml.ts";
import { ROUTES_FILE_SCHEMA } from "./_schema.ts";
import type { RouteConfig } from "./config.ts";

/**
 * Parses and validates a YAML document of routes, `routes:` at its top level
 * and no other key, by the rules of `routes` in `keycard.yaml`; for replacing
 * the routes while the gateway runs.
 *
 * - `name`: 1-64 letters, digits, `_`, `.` or `-`, unique among the routes.
 * - `match.path`: starts with `/`; exact, or a prefix ending in `/*` that takes
 *   the prefix itself and everything below. No other `*`, no spaces, `?`, `#`,
 *   empty, `.` or `..` segments, and nothing of the gateway's own `/v1/`, `/console/`,
 *   `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
 * - `match.methods`: any case, of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS;
 *   absent for any. No two routes have the same path and a method in common.
 * - Exactly one of `upstream` (an `http:`/`https:` URL without credentials,
 *   query or fragment) and `handler` (`{ plugin, export = "handle",
 *   contentType?, envelope? }`; `contentType` a media type such as
 *   `text/plain; charset=utf-8`, `envelope` true or false; left out, the
 *   manifest export's own apply).
 * - `auth`: `token` (the default) or `public`; `timeouts`:
 *   `{ connectMs = 2000, responseMs = 10000 }`.
 * - `hooks`: `{ plugin, on: request | response, priority = 0,
 *   failure: closed (default) | open, export = "on_request" | "on_response",
 *   config = {} }`, config values strings.
 *
 * @param text The YAML text.
 * @param source The name used in errors, e.g. a file name or `request body`.
 * @returns The routes in the order written, with every default filled in.
 * @throws {ConfigError} On YAML syntax errors, unknown keys and every broken rule, with line, column and path
 * (e.g. `routes[0].hooks[1].on`) of the first problem.
 *
 * @example Parse a routes document
 * ```ts
 * import { parseRoutes } from "./parse_routes.ts";
 * const routes = parseRoutes(
 *   "routes:\n  - { name: quote, match: { path: /quote, methods: [get] }, handler: { plugin: quoter } }\n",
 *   "routes.yaml",
 * );
 * routes[0]?.match; // { path: "/quote", methods: ["GET"] }
 * routes[0]?.handler; // { plugin: "quoter", export: "handle" }
 * ```
 */
export function parseRoutes(text: string, source: string): RouteConfig[] {
  return parseYaml(text, source, ROUTES_FILE_SCHEMA, 'the document must be a map with a "routes" list').routes;
}
