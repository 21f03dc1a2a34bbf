/** @jsxImportSource hono/jsx */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Metrics } from "../http/metrics.ts";
import { ProblemError, toProblem } from "../http/problem.ts";
import type { GatewayServices } from "../http/services.ts";
import { assets } from "./_assets.ts";
import { auditPages } from "./_audit_pages.tsx";
import { type ConsoleDeps, type ConsoleEnv, COOKIE } from "./_context.ts";
import { healthPage } from "./_health_page.tsx";
import { Csrf, page } from "./_layout.tsx";
import { playgroundPage } from "./_playground_page.tsx";
import { pluginsPages } from "./_plugins_pages.tsx";
import { policiesPages } from "./_policies_pages.tsx";
import { checkCsrf, type ConsoleSessions, SessionStore } from "./session_store.ts";
import { StreamRegistry } from "./_streams.ts";

/** The Content-Security-Policy of every console response: only the gateway's own files, no inline code. */
export const CONSOLE_CSP: string = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Options of {@linkcode consoleApp}. */
export interface ConsoleOptions {
  /** Where the console's plugin calls are counted, and whose call histograms the health page reads. @default {undefined} (not counted; no latency columns) */
  metrics?: Metrics;
  /** Where sessions live. @default {new SessionStore()} (in memory: 8-hour sessions, at most 256) */
  sessions?: ConsoleSessions;
}

/**
 * Builds the operator console, a Hono app to mount at `/console`: server-rendered
 * pages for plugins, audit, policies, health and a Cedar playground. A client
 * signs in with its API token; the console keeps a server-side session (an
 * HttpOnly, SameSite=Strict cookie at Path=/console, the token never reaches a
 * script), requires a per-session CSRF token and a same-origin request for
 * every mutation, and decides every action as a Cedar API action of the
 * session's client, as the `/v1` API does.
 *
 * @param services What the gateway serves (the same object the API is built from).
 * @param options The metrics to count calls in, and the session store.
 * @returns The console app.
 * @throws {RangeError} Never itself; a {@linkcode SessionStore} given with bad options throws when built.
 * @example Mount the console on the API app
 * ```ts ignore
 * import { consoleApp } from "./console_app.tsx";
 * app.route("/console", consoleApp(services, { metrics }));
 * ```
 */
export function consoleApp(services: GatewayServices, options: ConsoleOptions = {}): Hono<ConsoleEnv> {
  const deps: ConsoleDeps = {
    services,
    sessions: options.sessions ?? new SessionStore(),
    metrics: options.metrics,
    streams: new StreamRegistry(),
  };
  const app = new Hono<ConsoleEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", CONSOLE_CSP);
    c.header("x-content-type-options", "nosniff");
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "same-origin");
    c.header("cross-origin-opener-policy", "same-origin");
    if (!c.req.path.startsWith("/console/assets/")) c.header("cache-control", "no-store");
  });

  app.onError((error, c) => errorResponse(c, error));

  app.use(
    "*",
    bodyLimit({
      maxSize: services.maxBodyBytes,
      onError: () => {
        throw new ProblemError("payload-too-large", `Request body exceeds ${services.maxBodyBytes} bytes`);
      },
    }),
  );

  // A form body is parsed once, here: a malformed one (a multipart body without its boundary or parts) is a 400, never
  // a 500 out of a handler. Hono keeps the parsed body for the handlers.
  app.use("*", async (c, next) => {
    const type = c.req.header("content-type") ?? "";
    if (
      c.req.method === "POST" &&
      (type.startsWith("multipart/form-data") || type.startsWith("application/x-www-form-urlencoded"))
    ) {
      try {
        await c.req.parseBody();
      } catch (error) {
        if (error instanceof ProblemError) throw error;
        throw new ProblemError("bad-request", `The form body is malformed: ${(error as Error).message}`);
      }
    }
    await next();
  });

  // Who is signed in: a cookie naming a live session, else nobody.
  app.use("*", async (c, next) => {
    c.set("session", await deps.sessions.get(getCookie(c, COOKIE)));
    await next();
  });

  // Every mutation comes from a page of this origin, and (once signed in) carries the session's CSRF token.
  app.use("*", async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return await next();
    if (!sameOrigin(c)) {
      throw new ProblemError(
        "forbidden",
        "Cross-site request refused: the Origin or Sec-Fetch-Site is not this console's",
      );
    }
    if (c.req.path === "/console/session") return await next();
    const session = c.get("session");
    if (session === undefined) throw new ProblemError("unauthenticated", "Sign in to use the console");
    const presented = c.req.header("x-csrf-token") ?? await formField(c, "_csrf");
    if (!checkCsrf(session, presented)) {
      throw new ProblemError("forbidden", "The CSRF token is missing or wrong: reload the page and try again");
    }
    await next();
  });

  app.route("/assets", assets());

  app.get("/", (c) => c.redirect(c.get("session") ? "/console/plugins" : "/console/sign-in", 303));
  app.get("/sign-in", (c) => signInPage(c, 200));

  app.post("/session", async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token.trim() : "";
    const client = token === "" ? undefined : services.authenticate(token);
    if (!client) {
      const wait = services.authThrottle?.fail(remoteOf(c)) ?? 0;
      if (wait > 0) {
        c.header("retry-after", String(wait));
        return signInPage(c, 429, `Too many failed sign-ins: retry after ${wait} s`);
      }
      return signInPage(c, 401, token === "" ? "Enter an API token" : "The token is not valid");
    }
    // A fresh id on every sign-in (no fixation): a session id that came with the request is ended, never reused.
    const previous = getCookie(c, COOKIE);
    if (previous !== undefined) {
      await deps.sessions.delete(previous);
      deps.streams.endSession(previous);
    }
    const session = await deps.sessions.create(client);
    setCookie(c, COOKIE, session.id, {
      path: "/console",
      httpOnly: true,
      sameSite: "Strict",
      // Behind a TLS-terminating proxy the URL says http: its X-Forwarded-Proto counts (a client claiming https
      // only keeps its own cookie off plain http).
      secure: new URL(c.req.url).protocol === "https:" ||
        c.req.header("x-forwarded-proto")?.split(",")[0]?.trim().toLowerCase() === "https",
      // No Max-Age: a cookie of the browser session only; the server ends the session at its expiry anyway.
    });
    return c.redirect("/console/plugins", 303);
  });

  app.post("/sign-out", async (c) => {
    const session = c.get("session");
    if (session) {
      await deps.sessions.delete(session.id);
      deps.streams.endSession(session.id);
    }
    deleteCookie(c, COOKIE, { path: "/console", httpOnly: true, sameSite: "Strict" });
    return c.redirect("/console/sign-in", 303);
  });

  // Every other page needs a session: a browser is sent to sign in, a script gets a 401.
  app.use("*", async (c, next) => {
    if (c.get("session") !== undefined) return await next();
    if (c.req.method === "GET" && !c.req.path.startsWith("/console/audit/stream")) {
      return c.redirect("/console/sign-in", 303);
    }
    throw new ProblemError("unauthenticated", "Sign in to use the console");
  });

  pluginsPages(app, deps);
  auditPages(app, deps);
  policiesPages(app, deps);
  healthPage(app, deps);
  playgroundPage(app, deps);

  app.all("*", (c) => {
    throw new ProblemError("not-found", `No console page ${c.req.method} ${c.req.path}`);
  });

  return app;
}

function signInPage(c: Context<ConsoleEnv>, status: number, error?: string) {
  return page(
    c,
    { title: "Sign in", section: "none", status },
    <section class="card narrow">
      <h1>Sign in</h1>
      <form id="sign-in-form" method="post" action="/console/session">
        <label>
          API token
          <input id="token" name="token" type="password" autocomplete="off" required />
        </label>
        <button id="sign-in-submit" type="submit">Sign in</button>
      </form>
      {error ? <p id="sign-in-error" class="error" role="alert">{error}</p> : null}
      <p class="hint">The token stays on the server: the console keeps a session cookie scripts cannot read.</p>
    </section>,
  );
}

/** Errors as the console shows them: JSON for its JSON endpoints, else a page with the message. */
function errorResponse(c: Context<ConsoleEnv>, error: Error) {
  const { body, headers } = toProblem(error);
  for (const [key, value] of Object.entries(headers ?? {})) c.header(key, String(value));
  const wantsJson = (c.req.header("accept") ?? "").includes("application/json") ||
    c.req.path.startsWith("/console/policies/validate") || c.req.path.startsWith("/console/audit/stream");
  if (wantsJson) {
    return c.body(JSON.stringify(body), body.status as 400, { "content-type": "application/problem+json" });
  }
  return page(
    c,
    { title: body.title, section: "none", status: body.status },
    <section class="card">
      <h1>{body.title}</h1>
      <p id="error-message" class="error" role="alert">{body.detail}</p>
      {body.status === 401 ? <a href="/console/sign-in">Sign in</a> : <a href="/console/">Back to the console</a>}
      <Csrf session={undefined} />
    </section>,
  );
}

/**
 * Whether a mutation comes from this origin. Sec-Fetch-Site, which pages cannot set, decides when the browser sends
 * it (Chromium sends `Origin: null` on a form post under some referrer policies); else Origin must name this host.
 */
function sameOrigin(c: Context): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) return site === "same-origin";
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null") return false;
  try {
    return new URL(origin).host === new URL(c.req.url).host;
  } catch {
    return false;
  }
}

/** A field of a urlencoded or multipart body (parsed once; Hono caches the body for the handler). */
async function formField(c: Context, name: string): Promise<string | undefined> {
  const type = c.req.header("content-type") ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded") && !type.startsWith("multipart/form-data")) {
    return undefined;
  }
  const value = (await c.req.parseBody())[name];
  return typeof value === "string" ? value : undefined;
}

/** The client's address, as Deno.serve passes it (`""` in-process). */
function remoteOf(c: Context): string {
  return (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname ?? "";
}
