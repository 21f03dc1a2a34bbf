import type { AuditLog } from "../audit/mod.ts";
import type { HandlerConfig, HookConfig, RouteConfig } from "../config/mod.ts";
import { type Client, type Metrics, problem, problemKind, type ProblemType } from "../http/mod.ts";
import { type AuthorizationRequest, clientEntity, type Decision, type Entity } from "../policy/mod.ts";
import type { InvokeOptions } from "../runtime/mod.ts";

/** Bytes of a body a hook sees; larger bodies stream through untouched. */
export const HOOK_BODY_BYTES = 64 * 1024;

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

/** What a hook receives (its input, as JSON). */
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

/** What a hook returns (its output, as JSON). */
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
  audit: AuditLog;
  metrics: Metrics;
}

class HookFailure extends Error {
  readonly hook: HookConfig | HandlerConfig;
  constructor(hook: HookConfig | HandlerConfig, message: string, options?: ErrorOptions) {
    super(message, options);
    this.hook = hook;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function problemResponse(kind: ProblemType, detail: string, extensions: Record<string, unknown> = {}): Response {
  const body = problem(kind, detail, extensions);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json" },
  });
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Reads up to `limit` bytes of a stream; returns them and a stream of the whole body (prefix + rest). */
async function peek(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ head: Uint8Array; truncated: boolean; whole: ReadableStream<Uint8Array> | null }> {
  if (!body) return { head: new Uint8Array(), truncated: false, whole: null };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  while (size <= limit) {
    const next = await reader.read();
    if (next.done) {
      done = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.length;
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  const whole = new ReadableStream<Uint8Array>({
    start(controller) {
      if (all.length) controller.enqueue(all);
      if (done) controller.close();
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { head: all.subarray(0, Math.min(limit, all.length)), truncated: !done || size > limit, whole };
}

function applyHeaders(headers: Headers, change: HookOutput["headers"]): void {
  for (const name of change?.remove ?? []) headers.delete(name);
  for (const [name, value] of Object.entries(change?.set ?? {})) headers.set(name, value);
}

function plainHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => out[name] = value);
  return out;
}

function forwardable(headers: Headers): Headers {
  const out = new Headers();
  const named = (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) out.set(name, value);
  });
  return out;
}

function parseOutput(hook: HookConfig | HandlerConfig, bytes: Uint8Array): HookOutput {
  let output: unknown;
  try {
    output = bytes.length === 0 ? {} : JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new HookFailure(hook, `Hook output is not JSON: ${(error as Error).message}`);
  }
  if (typeof output !== "object" || output === null || Array.isArray(output)) {
    throw new HookFailure(hook, "Hook output must be a JSON object");
  }
  const o = output as HookOutput;
  if (o.status === 0) delete o.status; // 0 means "no override"
  if (o.status !== undefined && (!Number.isInteger(o.status) || o.status < 100 || o.status > 599)) {
    throw new HookFailure(hook, `Hook output status ${JSON.stringify(o.status)} is not an HTTP status`);
  }
  if (o.body !== undefined && typeof o.body !== "string") {
    throw new HookFailure(hook, "Hook output body must be base64");
  }
  return o;
}

/**
 * Runs requests through routes: authentication and the `route.call` Cedar
 * action, request hooks in priority order, the upstream (or a handler
 * plugin), then response hooks. Each hook is an ordinary plugin call: its own
 * isolate, its grants, the route's client as `context.caller`.
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
    const route = this.match(request.method, url.pathname);
    if (!route) return undefined;
    let client: Client | undefined;
    if (route.auth === "token") {
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
      client = match ? this.#deps.authenticate(match[1]!) : undefined;
      if (!client) {
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
    const { head, truncated, whole } = await peek(request.body, HOOK_BODY_BYTES);
    let body: BodyInit | null = whole;
    const input = (phase: "request" | "response", h: Headers, b: Uint8Array, t: boolean): HookInput => ({
      route: route.name,
      phase,
      method: request.method,
      path: url.pathname,
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
      const output = await this.#runHook(route, hook, input("request", headers, head, truncated), caller);
      if (output === undefined) continue; // failed open
      if (output instanceof Response) return output;
      if (output.allow === false) {
        const response = new Response(output.body ? fromBase64(output.body) : null, { status: output.status ?? 403 });
        applyHeaders(response.headers, output.headers);
        return response;
      }
      applyHeaders(headers, output.headers);
      statusOverride ??= output.status;
      if (output.body !== undefined) body = fromBase64(output.body);
    }

    // The upstream, or a handler plugin.
    let response: Response;
    if (route.handler) {
      const output = await this.#runHook(route, route.handler, input("request", headers, head, truncated), caller);
      if (output === undefined || output instanceof Response) {
        return output ?? problemResponse("plugin-failed", `Handler of route "${route.name}" failed`);
      }
      response = new Response(output.body ? fromBase64(output.body) : null, { status: output.status ?? 200 });
      applyHeaders(response.headers, output.headers);
    } else {
      const target = new URL(route.upstream!);
      target.pathname = target.pathname.replace(/\/$/, "") + url.pathname;
      target.search = url.search;
      headers.set("x-forwarded-for", remote);
      headers.set("x-forwarded-proto", url.protocol.slice(0, -1));
      headers.set("x-forwarded-host", request.headers.get("host") ?? url.host);
      headers.delete("host");
      const timeout = AbortSignal.timeout(route.timeouts.responseMs);
      try {
        response = await fetch(target, {
          method: request.method,
          headers,
          body: request.method === "GET" || request.method === "HEAD" ? null : body,
          redirect: "manual",
          signal: timeout,
          // @ts-ignore: Deno needs this for a streamed request body
          duplex: "half",
        });
      } catch (error) {
        if (timeout.aborted) {
          return problemResponse(
            "deadline-exceeded",
            `Upstream of route "${route.name}" did not answer within ${route.timeouts.responseMs} ms`,
          );
        }
        return problemResponse(
          "upstream-failed",
          `Upstream of route "${route.name}" failed: ${(error as Error).message}`,
          { route: route.name },
        );
      }
    }

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
        const output = await this.#runHook(route, hook, hookInput, caller);
        if (output === undefined) continue;
        if (output instanceof Response) return output;
        applyHeaders(responseHeaders, output.headers);
        statusOverride ??= output.status;
        // A truncated body streams through untouched: the hook saw only its head.
        if (output.body !== undefined && !peeked.truncated) {
          responseBody = fromBase64(output.body);
          responseHeaders.delete("content-length");
        }
      }
    }
    if (statusOverride !== undefined) status = statusOverride;
    const nullBody = status === 204 || status === 304 || request.method === "HEAD";
    return new Response(nullBody ? null : responseBody, { status, headers: responseHeaders });
  }

  /** Runs one hook; a failure answers 503 (closed) or is skipped (open), audited and counted either way. */
  async #runHook(
    route: RouteConfig,
    hook: HookConfig | HandlerConfig,
    input: HookInput,
    caller: string | undefined,
  ): Promise<HookOutput | Response | undefined> {
    const started = performance.now();
    const config = "config" in hook && hook.config ? { config: hook.config } : {};
    try {
      const out = await this.#deps.invoke(
        hook.plugin,
        hook.export,
        encoder.encode(JSON.stringify({ ...input, ...config })),
        { hostContext: caller ? { caller } : {} },
      );
      const output = parseOutput(hook, out);
      this.#deps.metrics.observeCall(hook.plugin, hook.export, "ok", (performance.now() - started) / 1000);
      return output;
    } catch (error) {
      const kind = error instanceof HookFailure ? "plugin-failed" : problemKind(error);
      this.#deps.metrics.observeCall(hook.plugin, hook.export, kind, (performance.now() - started) / 1000);
      const failure = "failure" in hook ? hook.failure : "closed";
      const message = error instanceof Error ? error.message : String(error);
      this.#deps.audit.record({
        time: new Date().toISOString(),
        callId: crypto.randomUUID(),
        plugin: hook.plugin,
        version: "",
        action: "route.hook",
        resource: `Route::${JSON.stringify(route.name)}`,
        decision: failure === "open" ? "allow" : "deny",
        policies: [],
        errors: [message],
        caller: caller ?? null,
        durationUs: Math.round((performance.now() - started) * 1000),
        reason: `hook "${hook.plugin}" "${hook.export}" failed ${failure}: ${message}`,
      });
      if (failure === "open") return undefined;
      return problemResponse("hook-failed", `Hook "${hook.plugin}" of route "${route.name}" failed: ${message}`, {
        route: route.name,
        plugin: hook.plugin,
        export: hook.export,
      });
    }
  }
}

function specificity(route: RouteConfig): number {
  return route.match.path.endsWith("/*") ? route.match.path.length - 2 : route.match.path.length + 10_000;
}

function matches(route: RouteConfig, method: string, path: string): boolean {
  if (route.match.methods && !route.match.methods.includes(method)) return false;
  const pattern = route.match.path;
  if (!pattern.endsWith("/*")) return path === pattern;
  const prefix = pattern.slice(0, -2);
  return path === prefix || path.startsWith(prefix + "/");
}
