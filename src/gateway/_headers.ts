import type { HookOutput } from "./route_runner.ts";

/** Headers that belong to one connection and are never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** A copy of `headers` without hop-by-hop ones and those named in `Connection`. */
export function forwardable(headers: Headers): Headers {
  const out = new Headers();
  const named = (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) out.set(name, value);
  });
  return out;
}

/** Headers as a plain object of lower-cased names, as a hook sees them. */
export function plainHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => out[name] = value);
  return out;
}

/** Applies an envelope's header changes: removals first, then sets. */
export function applyHeaders(headers: Headers, change: HookOutput["headers"]): void {
  for (const name of change?.remove ?? []) headers.delete(name);
  for (const [name, value] of Object.entries(change?.set ?? {})) headers.set(name, value);
}
