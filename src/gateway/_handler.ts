import type { HandlerConfig, RouteConfig } from "../config/mod.ts";
import { problem, toProblem } from "../http/mod.ts";
import { bodiless, readBody } from "./_body.ts";
import { type Envelope, EnvelopeError, parseEnvelope } from "./_envelope.ts";
import { applyHeaders } from "./_headers.ts";
import { recordOutcome } from "./_outcome.ts";
import { problemResponse } from "./_problem_response.ts";
import type { HookInput, RouteRunnerDeps } from "./route_runner.ts";

/** The content type of a plain handler's answer when neither the route nor the manifest names one. */
const DEFAULT_CONTENT_TYPE = "application/octet-stream";
/** `server.maxBodyBytes`' default: the largest request body read for a plain handler. */
const DEFAULT_MAX_BODY_BYTES = 16 << 20;

const encoder = new TextEncoder();

/** One request for a route's handler. */
export interface HandlerCall {
  route: RouteConfig;
  handler: HandlerConfig;
  /** The request body as the request hooks left it. */
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  /** What an enveloped handler gets. */
  hookInput: HookInput;
  caller: string | undefined;
}

/**
 * Calls a route's handler. A plain export gets the request body and its output is a 200 body with the route's or
 * the manifest's content type; an enveloped one (the route's or the manifest's `envelope: true`) gets the
 * `HookInput` JSON and answers `{status, headers, body}`.
 *
 * @returns The handler's response, or a problem (`failed`): the plugin's error by its usual kind, audited
 * (`route.handler`) and counted.
 */
export async function runHandler(
  deps: RouteRunnerDeps,
  call: HandlerCall,
): Promise<{ response: Response; failed: boolean }> {
  const { route, handler, caller } = call;
  const info = deps.exportInfo?.(handler.plugin, handler.export);
  const envelope = handler.envelope ?? info?.envelope ?? false;
  const contentType = handler.contentType ?? info?.contentType;
  let input: Uint8Array;
  if (envelope) input = encoder.encode(JSON.stringify(call.hookInput));
  else {
    const limit = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const body = await readBody(call.body, limit);
    if (body === undefined) {
      const detail = `Request body of route "${route.name}" exceeds ${limit} bytes`;
      return { response: problemResponse("payload-too-large", detail, { route: route.name }), failed: true };
    }
    input = body;
  }
  const started = performance.now();
  try {
    const output = await deps.invoke(handler.plugin, handler.export, input, {
      hostContext: caller ? { caller } : {},
    });
    const response = envelope ? enveloped(parseEnvelope(output), contentType) : new Response(
      output as Uint8Array<ArrayBuffer>,
      { status: 200, headers: { "content-type": contentType ?? DEFAULT_CONTENT_TYPE } },
    );
    recordOutcome(deps, route, handler, { kind: "ok", started, caller });
    return { response, failed: false };
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    if (error instanceof EnvelopeError) {
      const who = handler.envelope === undefined ? "plugin's manifest" : "route";
      message += ` (the ${who} says "${handler.export}" answers keycard's JSON envelope)`;
    }
    const { body, headers } = error instanceof EnvelopeError
      ? { body: problem("plugin-failed", message), headers: {} }
      : toProblem(error);
    const kind = body.type.slice("/problems/".length);
    recordOutcome(deps, route, handler, {
      kind,
      started,
      caller,
      failure: {
        action: "route.handler",
        message,
        decision: "deny",
        reason: `handler "${handler.plugin}" "${handler.export}" failed: ${message}`,
      },
    });
    const detail = `Handler "${handler.plugin}" "${handler.export}" of route "${route.name}" failed: ${message}`;
    const answer = { ...body, detail, route: route.name, plugin: handler.plugin, export: handler.export };
    const response = new Response(JSON.stringify(answer), {
      status: body.status,
      headers: { ...headers, "content-type": "application/problem+json" },
    });
    return { response, failed: true };
  }
}

/** The response an envelope describes; a body without a content type gets the route's or the manifest's. */
function enveloped(output: Envelope, contentType: string | undefined): Response {
  const status = output.status ?? 200;
  const response = new Response(bodiless(status) ? null : output.body ?? null, { status });
  applyHeaders(response.headers, output.headers);
  if (response.body && output.body?.length && !response.headers.has("content-type")) {
    response.headers.set("content-type", contentType ?? DEFAULT_CONTENT_TYPE);
  }
  return response;
}
