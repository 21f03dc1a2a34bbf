import type { RouteConfig } from "../config/mod.ts";

/** Orders routes: exact paths before prefixes, longer prefixes before shorter ones. */
export function specificity(route: RouteConfig): number {
  return route.match.path.endsWith("/*") ? route.match.path.length - 2 : route.match.path.length + 10_000;
}

/** Whether a route takes a request of this method and path. */
export function matches(route: RouteConfig, method: string, path: string): boolean {
  if (route.match.methods && !route.match.methods.includes(method)) return false;
  const pattern = route.match.path;
  if (!pattern.endsWith("/*")) return path === pattern;
  const prefix = pattern.slice(0, -2);
  return path === prefix || path.startsWith(prefix + "/");
}
