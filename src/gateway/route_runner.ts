import type { AuditLog } from "../audit/mod.ts";
import { asPluginContent } from "./_plugin_content.ts";
import type { RouteConfig } from "../config/mod.ts";
import type { AuthThrottle, Client, Metrics } from "../http/mod.ts";
import { type AuthorizationRequest, clientEntity, type Decision, type Entity } from "../policy/mod.ts";
import type { InvokeOptions } from "../runtime/mod.ts";
import { bodiless, peek, toBase64 } from "./_body.ts";
import { runHandler } from "./_handler.ts";
import { applyHeaders, forwardable, plainHeaders } from "./_headers.ts";
import { runHook } from "./_hook.ts";
import { problemResponse } from "./_problem_response.ts";
import { matches, specificity } from "./_route_match.ts";
import { normalizePath } from "./normalize_path.ts";
import { proxy } from "./_upstream.ts";

/** Bytes of a body a hook sees; larger bodies stream through untouched. */
export const HOOK_BODY_BYTES = 64 * 1024;

/** What a hook, or a handler that speaks keycard's envelope, receives (its input, as JSON). */
export interface HookInput {
  route: string;
  phase: "request" | "response";
  method: string;
  path: string;
  /** The raw query, without `?`. */
  query: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Base64 of the first 64 KiB of the body. */
  body: string;
  bodyTruncated: boolean;
  /** The client's address. */
  remote: string;
  /** The upstream's status (response phase). */
  status?: number;
  /** The hook's `config` from the route, when it has one. */
  config?: Record<string, string>;
}

/** What a hook, or a handler that speaks keycard's envelope, returns (its output, as JSON). */
export interface HookOutput {
  /** `false` stops the chain and answers with `status` (default 403) and `body`. @default {true} */
  allow?: boolean;
  /** On deny, the response status; otherwise a status override (the first one wins). */
  status?: number;
  headers?: { set?: Record<string, string>; remove?: string[] };
  /** Base64: replaces the body. */
  body?: string;
}

/** What the route runner needs from the gateway. */
export interface RouteRunnerDeps {
  authenticate(token: string): Client | undefined;
  authorize(request: AuthorizationRequest): Decision;
  invoke(plugin: string, exportName: string, input: Uint8Array, options: InvokeOptions<{ caller?: string }>): Promise<
    Uint8Array
  >;
  /**
   * What the installed manifest says of an export a handler calls: its content type, and whether it answers
   * keycard's JSON envelope; a route's own `contentType`/`envelope` go over these.
   * @default {() => undefined}
   */
  exportInfo?(plugin: string, exportName: string): { contentType?: string; envelope?: boolean } | undefined;
  /** The largest request body read whole for a plain handler, in bytes (`server.maxBodyBytes`). @default {16777216} */
  maxBodyBytes?: number;
  audit: AuditLog;
  metrics: Metrics;
  /** Counts failed authentications of `token` routes per client address (shared with the API). @default {none} */
  throttle?: AuthThrottle;
  /** `server.encodedSlashes`: whether a path with `%2F` is refused (400) or kept encoded. @default {"refuse"} */
  encodedSlashes?: "refuse" | "keep";
}

/**
 * Runs requests through routes: authentication and the `route.call` Cedar
 * action, request hooks in priority order, the upstream (or a handler
 * plugin), then response hooks. Each hook and handler is an ordinary plugin
 * call: its own isolate, its grants, the route's client as `context.caller`.
 * A handler gets the request body and answers the response body, unless the
 * route or the manifest says it speaks keycard's JSON envelope.
 */
export class RouteRunner {
  readonly #deps: RouteRunnerDeps;
  #routes: RouteConfig[] = [];

  /** @param deps Authentication, Cedar, plugin calls, audit and metrics. */
  constructor(deps: RouteRunnerDeps) {
    this.#deps = deps;
  }

  /** Swaps the route table at once: requests in flight finish on the table they started with. */
  setRoutes(routes: readonly RouteConfig[]): void {
    this.#routes = [...routes].sort((a, b) => specificity(b) - specificity(a));
  }

  /** The route table in force. */
  routes(): readonly RouteConfig[] {
    return this.#routes;
  }

  /** Finds the route of a request, if any. */
  match(method: string, path: string): RouteConfig | undefined {
    return this.#routes.find((route) => matches(route, method, path));
  }

  /**
   * Answers a request through its route.
   * @param request The incoming request.
   * @param remote The client's address.
   * @returns The response, or undefined when no route matches.
   */
  async handle(request: Request, remote: string): Promise<Response | undefined> {
    const url = new URL(request.url);
    // Matched and forwarded: the path as normalized from the raw target, never as the URL parser or an
    // upstream might read it (`new URL()` resolves "%2e%2e" but keeps "..%2f").
    let path: string;
    try {
      path = normalizePath(rawPath(request.url), { encodedSlashes: this.#deps.encodedSlashes ?? "refuse" });
    } catch (error) {
      if (error instanceof URIError) return problemResponse("bad-request", error.message);
      throw error;
    }
    const route = this.match(request.method, path);
    if (!route) return undefined;
    let client: Client | undefined;
    if (route.auth === "token") {
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
      client = match ? this.#deps.authenticate(match[1]!) : undefined;
      if (!client) {
        const wait = this.#deps.throttle?.fail(remote) ?? 0;
        if (wait > 0) {
          const response = problemResponse("throttled", `Too many failed authentications: retry after ${wait} s`, {
            retryAfterSeconds: wait,
          });
          response.headers.set("retry-after", String(wait));
          return response;
        }
        const response = problemResponse("unauthenticated", "Send Authorization: Bearer <token>");
        response.headers.set("www-authenticate", 'Bearer realm="keycard"');
        return response;
      }
      const resource: Entity = { uid: { type: "Route", id: route.name }, attrs: {}, parents: [] };
      const decision = this.#deps.authorize({
        principal: clientEntity({ id: client.id, roles: client.roles }),
        action: "route.call",
        resource,
        context: {},
      });
      if (decision.decision === "deny") {
        return problemResponse(
          "forbidden",
          `Client "${client.id}" may not call route "${route.name}": ${decision.reason}`,
        );
      }
    }
    const caller = client?.id;
    const headers = forwardable(request.headers);
    const peeked = await peek(request.body, HOOK_BODY_BYTES);
    // The request body as it stands: the client's stream, or the bytes a request hook put in its place.
    let body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null = peeked.whole;
    let { head, truncated } = peeked;
    const input = (phase: "request" | "response", h: Headers, b: Uint8Array, t: boolean): HookInput => ({
      route: route.name,
      phase,
      method: request.method,
      path,
      query: url.search.slice(1),
      headers: plainHeaders(h),
      body: toBase64(b),
      bodyTruncated: t,
      remote,
    });
    let statusOverride: number | undefined;
    const chain = (on: "request" | "response") =>
      route.hooks.filter((h) => h.on === on).map((h, i) => ({ h, i })).sort((a, b) =>
        a.h.priority - b.h.priority || a.i - b.i
      ).map(({ h }) => h);

    // Request hooks.
    for (const hook of chain("request")) {
      const output = await runHook(this.#deps, route, hook, input("request", headers, head, truncated), caller);
      if (output === undefined) continue; // failed open
      if (output instanceof Response) return output;
      if (output.allow === false) {
        const status = output.status ?? 403;
        const response = new Response(bodiless(status) ? null : output.body ?? null, { status });
        applyHeaders(response.headers, output.headers);
        return asPluginContent(response);
      }
      applyHeaders(headers, output.headers);
      statusOverride ??= output.status;
      if (output.body !== undefined) {
        body = output.body;
        head = body.subarray(0, HOOK_BODY_BYTES);
        truncated = body.length > HOOK_BODY_BYTES;
      }
    }

    // The handler plugin, or the upstream; their own failures answer at once.
    const { response, failed } = route.handler
      ? await runHandler(this.#deps, {
        route,
        handler: route.handler,
        body,
        hookInput: input("request", headers, head, truncated),
        caller,
      })
      : await proxy({ route: route as RouteConfig & { upstream: string }, request, url, path, headers, body, remote });
    if (failed) return response;
    // A handler's answer is the plugin's; an upstream's is the operator's, until a response hook changes it.
    let byPlugin = route.handler !== undefined;

    // Response hooks.
    const responseHeaders = forwardable(response.headers);
    let status = response.status;
    const responseChain = chain("response");
    let responseBody: BodyInit | null = response.body;
    if (responseChain.length > 0) {
      const peeked = await peek(response.body, HOOK_BODY_BYTES);
      responseBody = peeked.whole;
      for (const hook of responseChain) {
        const hookInput = { ...input("response", responseHeaders, peeked.head, peeked.truncated), status };
        const output = await runHook(this.#deps, route, hook, hookInput, caller);
        if (output === undefined) continue;
        if (output instanceof Response) return output;
        applyHeaders(responseHeaders, output.headers);
        if (output.headers !== undefined || output.body !== undefined) byPlugin = true;
        statusOverride ??= output.status;
        // A truncated body streams through untouched: the hook saw only its head.
        if (output.body !== undefined && !peeked.truncated) {
          responseBody = output.body;
          responseHeaders.delete("content-length");
        }
      }
    }
    if (statusOverride !== undefined) status = statusOverride;
    const nullBody = bodiless(status) || request.method === "HEAD";
    const answer = new Response(nullBody ? null : responseBody, { status, headers: responseHeaders });
    return byPlugin ? asPluginContent(answer) : answer;
  }
}

/** The path of a request URL as the client sent it: Deno keeps the target raw in `request.url`. */
function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}
