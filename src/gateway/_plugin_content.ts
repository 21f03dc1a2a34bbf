// What a plugin writes into a route's answer is untrusted content served on the gateway's origin, which is also the
// operator console's: it is sandboxed so that no script of it runs with that origin.

/**
 * The Content-Security-Policy of a route answer a plugin wrote or changed: a sandbox without `allow-same-origin`,
 * so a document of it (HTML, SVG, XML) runs, if at all, in an opaque origin that cannot read the console's pages,
 * ride its SameSite=Strict session cookie, nor register a service worker over the gateway's paths.
 */
export const PLUGIN_CONTENT_CSP = "sandbox allow-scripts allow-forms allow-popups allow-downloads";

/** Cookies of keycard's own that a plugin may never set (the console's session). */
const KEYCARD_COOKIE = /^\s*(__host-|__secure-)?keycard_console\s*=/i;

/**
 * A route answer a plugin wrote or changed, made safe to serve on the console's origin: the sandbox CSP is added
 * (beside any CSP the answer has: both apply), `nosniff` set, `Service-Worker-Allowed` and any cookie named like
 * the console's session dropped.
 *
 * @param response The answer.
 * @returns A new response with the same status and body.
 */
export function asPluginContent(response: Response): Response {
  const headers = new Headers();
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie" && name !== "service-worker-allowed") headers.append(name, value);
  });
  for (const cookie of response.headers.getSetCookie()) {
    if (!KEYCARD_COOKIE.test(cookie)) headers.append("set-cookie", cookie);
  }
  headers.append("content-security-policy", PLUGIN_CONTENT_CSP);
  headers.set("x-content-type-options", "nosniff");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
