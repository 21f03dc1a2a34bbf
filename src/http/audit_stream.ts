// The live audit tail as server-sent events, for /v1/audit/stream and the console's.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AuditEvent, AuditLog } from "../audit/mod.ts";

/** Options of {@linkcode streamAudit}. */
export interface StreamAuditOptions {
  /** Which events the reader wants. @default {every event} */
  matches?: (event: AuditEvent) => boolean;
  /** How an event is sent. @default {the event as is} */
  view?: (event: AuditEvent) => unknown;
  /** Called once when the stream ends (the reader left or the server closes it). */
  onEnd?: () => void;
  /** Ends the stream when aborted (the session it was opened for ended). @default {never} */
  signal?: AbortSignal;
  /**
   * Asked again at every keep-alive (15 s of silence) and at most every 15 s while events flow: the stream ends when
   * it answers false (a session ended elsewhere, e.g. signed out on another replica). @default {always true}
   */
  stillAllowed?: () => boolean | Promise<boolean>;
}

/** Events kept for a reader that stopped reading; past it, new ones are not queued for that reader. */
const MAX_QUEUED = 1000;
/** A `ping` event after this long without events, so that proxies keep the connection. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Streams every event the audit log records from now on as server-sent events: `ready` first, then one `decision`
 * event per event (its `id` the call id), and a `ping` after 15 s of silence.
 *
 * @param c The request's context.
 * @param audit The audit log to follow.
 * @param options Which events, how they are shown, and what to do at the end.
 * @returns The streaming response.
 *
 * @example Serve the tail of denials
 * ```ts ignore
 * app.get("/denials", (c) => streamAudit(c, audit, { matches: (e) => e.decision === "deny" }));
 * ```
 */
export function streamAudit(c: Context, audit: AuditLog, options: StreamAuditOptions = {}): Response {
  const { matches = () => true, view = (event: AuditEvent) => event, signal, stillAllowed } = options;
  // A HEAD has no body to stream: answered with the headers alone, holding no subscription and no place.
  if (c.req.method === "HEAD") {
    options.onEnd?.();
    return new Response(null, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  }
  return streamSSE(c, async (stream) => {
    const queue: AuditEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = audit.subscribe((event) => {
      // A reader that stopped reading must not grow the queue without bound.
      if (!matches(event) || queue.length >= MAX_QUEUED) return;
      queue.push(event);
      wake?.();
    });
    let closed = false;
    const close = () => {
      closed = true;
      wake?.();
    };
    stream.onAbort(close);
    if (signal?.aborted) closed = true;
    signal?.addEventListener("abort", close, { once: true });
    let checked = performance.now();
    try {
      if (!closed) await stream.writeSSE({ event: "ready", data: "{}" });
      while (!closed) {
        if (queue.length === 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, KEEP_ALIVE_MS);
          });
          clearTimeout(timer);
          wake = undefined;
          if (closed) break;
          if (queue.length === 0) await stream.writeSSE({ event: "ping", data: "{}" });
        }
        if (stillAllowed && performance.now() - checked >= KEEP_ALIVE_MS) {
          checked = performance.now();
          if (!(await stillAllowed())) break;
        }
        if (closed) break;
        for (const event of queue.splice(0)) {
          await stream.writeSSE({ event: "decision", id: event.callId, data: JSON.stringify(view(event)) });
        }
      }
    } finally {
      signal?.removeEventListener("abort", close);
      unsubscribe();
      options.onEnd?.();
    }
  });
}
