import type { RouteConfig } from "../config/mod.ts";
import { problemResponse } from "./_problem_response.ts";

/** One request for a route's upstream. */
export interface UpstreamCall {
  route: RouteConfig & { upstream: string };
  request: Request;
  url: URL;
  /** The request path, normalized (see `normalizePath`): the upstream sees this, never the raw target. */
  path: string;
  /** The headers to send, as the request hooks left them; the `x-forwarded-*` ones are set here. */
  headers: Headers;
  /** The request body as the request hooks left it. */
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;
  /** The client's address. */
  remote: string;
}

/**
 * Sends a request to the route's upstream, the normalized request path appended, bounded by `timeouts.responseMs`.
 * @returns The upstream's response, or a problem (`failed`): 504 past the deadline, 502 when the upstream fails.
 */
export async function proxy(call: UpstreamCall): Promise<{ response: Response; failed: boolean }> {
  const { route, request, url, headers } = call;
  // Concatenated, not set through `pathname` (which would re-encode): the normalized path holds only segment
  // characters and upper-case percent-encodings, which the URL parser leaves as they are.
  const target = new URL(`${route.upstream}${call.path}${url.search}`);
  headers.set("x-forwarded-for", call.remote);
  headers.set("x-forwarded-proto", url.protocol.slice(0, -1));
  headers.set("x-forwarded-host", request.headers.get("host") ?? url.host);
  headers.delete("host");
  const timeout = AbortSignal.timeout(route.timeouts.responseMs);
  try {
    const response = await fetch(target, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? null : call.body,
      redirect: "manual",
      signal: timeout,
      // @ts-ignore: Deno needs this for a streamed request body
      duplex: "half",
    });
    return { response, failed: false };
  } catch (error) {
    if (timeout.aborted) {
      const detail = `Upstream of route "${route.name}" did not answer within ${route.timeouts.responseMs} ms`;
      return { response: problemResponse("deadline-exceeded", detail), failed: true };
    }
    const detail = `Upstream of route "${route.name}" failed: ${(error as Error).message}`;
    return { response: problemResponse("upstream-failed", detail, { route: route.name }), failed: true };
  }
}
