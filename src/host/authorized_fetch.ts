import { type IncomingMessage, request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { type IpAddress, parseIpAddress } from "../policy/parse_ip_address.ts";
import { HostCallError } from "../runtime/mod.ts";

/**
 * One hop of an outgoing HTTP request as the authorizer sees it: the URL after
 * WHATWG normalization and, in the `address` phase, the exact address that
 * will be connected to.
 */
export interface HttpTarget {
  /**
   * `"name"`: only the host as written is known; nothing has been resolved,
   * and nothing will be unless this decision allows it. `"address"`: `ip` is
   * the address that will be connected to. A host name is decided in both
   * phases, one after the other; a host written as an address only in the
   * `address` phase.
   */
  phase: "name" | "address";
  /** The parsed URL of this hop (a copy: changing it has no effect). */
  url: URL;
  /** The scheme without `:`, e.g. `"http"`, `"https"`, `"ftp"`. */
  scheme: string;
  /**
   * The lower-cased hostname; an address in canonical form (dotted IPv4,
   * RFC 5952 IPv6 without brackets, IPv4-mapped IPv6 as its IPv4 address).
   */
  host: string;
  /** The explicit port, else the scheme's default (0 when the scheme has none). */
  port: number;
  /**
   * The address that will be connected to, in canonical form (an IPv4-mapped
   * IPv6 address as the IPv4 address it is); absent in the `name` phase.
   */
  ip?: string;
  /** The upper-case method of this hop. */
  method: string;
  /** The pathname and search of this hop. */
  path: string;
  /** 0 for the first request, 1.. for each redirect followed. */
  hop: number;
}

/** Options of {@linkcode authorizedFetch}. */
export interface AuthorizedFetchOptions {
  /**
   * Decides every hop, redirects included, before anything is sent: a host
   * name first by name (before it is resolved), then by the address it
   * resolved to. Throw (normally `HostCallError("denied", …)`) to refuse.
   */
  authorize: (target: HttpTarget) => Promise<void> | void;
  /**
   * Resolves a hostname to addresses; the first one is decided and connected
   * to. Called only for a name `authorize` allowed in its `name` phase; IP
   * literals are never resolved. An answer that is not an IP address in
   * canonical form fails the hop.
   *
   * @default {A then AAAA records via `Deno.resolveDns`}
   */
  resolve?: (hostname: string) => Promise<string[]>;
  /**
   * How many redirects to follow before failing with `limit`.
   *
   * @default {5}
   */
  maxRedirects?: number;
  /**
   * The largest response body read, in bytes; a larger one fails with `limit`
   * once the cap is passed, without reading the rest.
   *
   * @default {1048576}
   */
  maxResponseBytes?: number;
  /**
   * The time allowed for the whole exchange, redirects included, in ms.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Aborts the exchange, e.g. at the deadline of the plugin call. */
  signal?: AbortSignal;
  /**
   * The largest request body accepted, in bytes.
   *
   * @default {1048576}
   */
  maxRequestBytes?: number;
  /**
   * Extra PEM root certificates trusted for https, in addition to the default
   * roots.
   *
   * @default {[]}
   */
  caCerts?: string[];
}

/** An HTTP request as a plugin asks for it. */
export interface HttpRequest {
  /** The absolute URL. */
  url: string;
  /**
   * One of GET HEAD POST PUT PATCH DELETE OPTIONS (any case).
   *
   * @default {"GET"}
   */
  method?: string;
  /** Request headers; `host` is refused, hop-by-hop headers are dropped. */
  headers?: Record<string, string>;
  /** The request body; not allowed with GET or HEAD. */
  body?: Uint8Array;
}

/** The response handed back to the plugin. */
export interface HttpResponse {
  /** The status code. */
  status: number;
  /** Headers with lower-cased names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The whole body, at most `maxResponseBytes`. */
  body: Uint8Array;
  /** The final URL, after redirects. */
  url: string;
}

const _METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const _HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);
/** Headers describing a body: dropped with the body when a redirect switches to GET. */
const _BODY_HEADERS = new Set(["content-type", "content-encoding", "content-language", "content-location"]);
const _REDIRECTS = new Set([301, 302, 303, 307, 308]);
const _DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };
const _TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const _BAD_VALUE = /[\0\r\n]/;
const _IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * Sends an HTTP request on behalf of a plugin, asking `authorize` before every
 * hop and connecting only to the address it approved.
 *
 * The URL is parsed with WHATWG `URL`, so `http://2130706433/`,
 * `http://0x7f000001/` and `http://127.1/` all reach `authorize` as host and ip
 * `127.0.0.1`. A host name is decided twice: first by name (`phase: "name"`,
 * no `ip`), before any DNS query, so a name no policy permits is never looked
 * up; then, resolved, by address (`phase: "address"`, the first address in
 * `target.ip`). The connection is pinned to that address for both http and
 * https (https still sends the hostname as SNI and verifies the certificate
 * against it), so a DNS answer that changes after the decision (DNS
 * rebinding) cannot redirect the request. Errors never name the address a
 * host name resolved to. Redirects are followed by hand and each hop is
 * decided again, in the same two phases; `Authorization` and `Cookie` are
 * dropped when the origin changes.
 *
 * @param request The request: URL, method, headers and body.
 * @param options The authorizer, resolver and bounds.
 * @returns The final response, its body read in full up to `maxResponseBytes`.
 * @throws {HostCallError} `invalid` for an unparsable URL, userinfo in a URL,
 * an unsupported method or scheme, a `host` header or a malformed header;
 * whatever `authorize` throws (normally `denied`); `limit` when the request
 * body, the response body or the redirect count passes its bound;
 * `unavailable` when resolution or the connection fails, on timeout, or when
 * `signal` aborts.
 *
 * @example Refuse a request to the cloud metadata address
 * ```ts
 * import { authorizedFetch } from "./authorized_fetch.ts";
 * import { HostCallError } from "../runtime/mod.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   authorizedFetch({ url: "http://169.254.169.254/latest/meta-data/" }, {
 *     authorize(target) {
 *       if (target.ip?.startsWith("169.254.")) {
 *         throw new HostCallError("denied", `Cannot fetch "${target.url}": link-local addresses are denied`);
 *       }
 *     },
 *   }),
 *   (error) => error instanceof HostCallError && error.code === "denied",
 * );
 * ```
 *
 * @example Fetch a JSON API
 * ```ts ignore
 * import { authorizedFetch } from "./authorized_fetch.ts";
 *
 * const response = await authorizedFetch(
 *   { url: "https://api.example.com/v1/items", headers: { accept: "application/json" } },
 *   { authorize: (target) => console.log(target.method, target.host, target.ip), timeoutMs: 5_000 },
 * );
 * console.log(response.status, new TextDecoder().decode(response.body));
 * ```
 */
export async function authorizedFetch(request: HttpRequest, options: AuthorizedFetchOptions): Promise<HttpResponse> {
  const maxRedirects = options.maxRedirects ?? 5;
  const maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  const maxRequestBytes = options.maxRequestBytes ?? 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const resolve = options.resolve ?? _resolveDns;

  let method = _method(request.method);
  let url = _parseUrl(request.url);
  let headers = _requestHeaders(request.headers ?? {});
  let body = request.body;
  if (body && (method === "GET" || method === "HEAD")) {
    throw new HostCallError("invalid", `Cannot send a body with method "${method}": GET and HEAD have no body`);
  }
  if (body && body.byteLength > maxRequestBytes) {
    throw new HostCallError(
      "limit",
      `Cannot send a body of ${body.byteLength} bytes to "${url.href}": it passes maxRequestBytes (${maxRequestBytes})`,
    );
  }

  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new HostCallError("unavailable", `Request to "${request.url}" timed out after ${timeoutMs} ms (timeoutMs)`),
    );
  }, timeoutMs);
  const onAbort = () => {
    controller.abort(
      new HostCallError("unavailable", `Request to "${request.url}" was aborted by the caller's signal`, {
        cause: options.signal?.reason,
      }),
    );
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  const signal = controller.signal;

  try {
    for (let hop = 0;; hop++) {
      signal.throwIfAborted();
      const decide = (target: HttpTarget) =>
        _race(Promise.resolve(options.authorize({ ...target, url: new URL(target.url.href) })), signal);
      const named = _target(url, method, hop);
      const literal = parseIpAddress(named.host);
      let address: IpAddress;
      if (literal) {
        address = literal;
      } else {
        await decide(named);
        _requireHttp(named);
        address = await _race(_resolve(named.host, resolve, signal), signal);
      }
      const target: HttpTarget = { ...named, phase: "address", ip: address.address };
      await decide(target);
      _requireHttp(target);
      // The plugin wrote an address itself, or must not learn where its name points.
      const hidden = literal ? undefined : address.address;
      const response = await _exchange(target, address.family, hidden, headers, body, options.caCerts, signal);
      const location = response.headers["location"];
      if (!_REDIRECTS.has(response.status) || location === undefined) {
        if (method === "HEAD") response.message.destroy();
        const bytes = method === "HEAD"
          ? new Uint8Array()
          : await _readBody(response, url, maxResponseBytes, signal, hidden);
        return { status: response.status, headers: response.headers, body: bytes, url: url.href };
      }
      response.message.destroy();
      if (hop >= maxRedirects) {
        throw new HostCallError(
          "limit",
          `Cannot follow the redirect from "${url.href}": it passes maxRedirects (${maxRedirects})`,
        );
      }
      const next = _parseUrl(location, url);
      if (
        response.status === 303 && method !== "GET" && method !== "HEAD" ||
        (response.status === 301 || response.status === 302) && method === "POST"
      ) {
        method = "GET";
        body = undefined;
        headers = headers.filter(([name]) => !_BODY_HEADERS.has(name));
      }
      if (next.origin !== url.origin) {
        headers = headers.filter(([name]) => name !== "authorization" && name !== "cookie");
      }
      url = next;
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The first hop's `name` phase target of a request, as {@linkcode authorizedFetch}
 * decides it: method, URL and host checked and canonicalized the same way.
 * @param url The absolute URL.
 * @param method The method (default GET, any case).
 * @param hop The hop (0 for the first).
 * @returns The target, nothing resolved.
 * @throws {HostCallError} `invalid` for a method not allowed, an unparsable URL, or userinfo in it.
 */
export function httpTarget(url: string, method?: string, hop = 0): HttpTarget {
  return _target(_parseUrl(url), _method(method), hop);
}

/** The method upper-cased, when it is one a plugin may send. */
function _method(method: string | undefined): string {
  const upper = (method ?? "GET").toUpperCase();
  if (!_METHODS.has(upper)) {
    throw new HostCallError(
      "invalid",
      `Cannot send method "${method}": only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS are allowed`,
    );
  }
  return upper;
}

/** Parses a URL (relative to `base` for redirects), refusing userinfo. */
function _parseUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new HostCallError("invalid", `Cannot parse URL "${text}": it is not an absolute URL`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new HostCallError("invalid", `Cannot fetch "${text}": URLs with userinfo are not allowed`);
  }
  return url;
}

/** Validates and lower-cases the caller's headers, dropping hop-by-hop ones. */
function _requestHeaders(headers: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!_TOKEN.test(name)) throw new HostCallError("invalid", `Cannot send header "${rawName}": not a valid name`);
    if (typeof value !== "string" || _BAD_VALUE.test(value)) {
      throw new HostCallError(
        "invalid",
        `Cannot send header "${rawName}": its value must be a string without CR, LF or NUL`,
      );
    }
    if (name === "host") {
      throw new HostCallError("invalid", `Cannot send header "${rawName}": the host header is set from the URL`);
    }
    // content-length is recomputed from the body; expect would stall on 100-continue.
    if (_HOP_BY_HOP.has(name) || name.startsWith("proxy-") || name === "content-length" || name === "expect") continue;
    out.push([name, value]);
  }
  return out;
}

/** Builds the `name` phase target of one hop: nothing is resolved here. */
function _target(url: URL, method: string, hop: number): HttpTarget {
  const scheme = url.protocol.slice(0, -1);
  const bracketed = url.hostname.startsWith("[") && url.hostname.endsWith("]");
  const hostname = (bracketed ? url.hostname.slice(1, -1) : url.hostname).toLowerCase();
  const host = parseIpAddress(hostname)?.address ?? hostname;
  const port = url.port === "" ? _DEFAULT_PORTS[scheme] ?? 0 : Number(url.port);
  return { phase: "name", url, scheme, host, port, method, path: url.pathname + url.search, hop };
}

/** Refuses schemes other than http and https (after they were decided, so the decision is audited). */
function _requireHttp(target: HttpTarget): void {
  if (target.scheme !== "http" && target.scheme !== "https") {
    throw new HostCallError(
      "invalid",
      `Cannot fetch "${target.url.href}": scheme "${target.scheme}" is not supported, only http and https`,
    );
  }
}

/**
 * Resolves a permitted host name to the address to decide and connect to. Its
 * errors never name what the resolver answered: the plugin must not learn
 * where a name points.
 */
async function _resolve(
  host: string,
  resolve: (hostname: string) => Promise<string[]>,
  signal: AbortSignal,
): Promise<IpAddress> {
  let addresses: string[];
  try {
    addresses = await resolve(host);
  } catch (error) {
    if (error instanceof HostCallError || signal.aborted) throw error;
    const code = (error as { code?: unknown })?.code;
    throw new HostCallError(
      "unavailable",
      `Cannot resolve "${host}": ${typeof code === "string" ? code : "the lookup failed"}`,
      { cause: error },
    );
  }
  const first = addresses[0];
  const address = typeof first === "string" ? parseIpAddress(first) : undefined;
  if (!address) {
    throw new HostCallError(
      "unavailable",
      `Cannot resolve "${host}": ${first === undefined ? "no addresses" : "the answer is not an IP address"}`,
    );
  }
  return address;
}

/** Resolves A then AAAA records, failing only when neither has an answer. */
async function _resolveDns(hostname: string): Promise<string[]> {
  const [a, aaaa] = await Promise.allSettled([
    Deno.resolveDns(hostname, "A"),
    Deno.resolveDns(hostname, "AAAA"),
  ]);
  const addresses = [...a.status === "fulfilled" ? a.value : [], ...aaaa.status === "fulfilled" ? aaaa.value : []];
  if (addresses.length === 0 && a.status === "rejected") throw a.reason;
  return addresses;
}

interface _Response {
  status: number;
  headers: Record<string, string>;
  message: IncomingMessage;
}

/**
 * Sends one hop over a connection pinned to `target.ip`. `node:http(s)` is used
 * rather than `fetch` because its `lookup` hook pins the address while the
 * URL keeps the hostname: `Host`, SNI and certificate checks use the name,
 * the socket goes to the authorized IP, and Deno's net permission is checked
 * against that IP. (`fetch` silently replaces a caller's `Host` unless the
 * client has `allowHost`, and `Deno.createHttpClient`'s tcp proxy does not do
 * TLS, so fetch could pin plain http only.) No agent: a pooled socket must
 * never carry a request to an address other than the one just authorized.
 */
function _exchange(
  target: HttpTarget,
  family: 4 | 6,
  hidden: string | undefined,
  headers: [string, string][],
  body: Uint8Array | undefined,
  caCerts: string[] | undefined,
  signal: AbortSignal,
): Promise<_Response> {
  const outgoing: Record<string, string> = {};
  for (const [name, value] of headers) outgoing[name] = name in outgoing ? `${outgoing[name]}, ${value}` : value;
  outgoing["host"] = target.url.host;
  if (body || ["POST", "PUT", "PATCH"].includes(target.method)) outgoing["content-length"] = `${body?.byteLength ?? 0}`;
  const ip = target.ip!;
  const options: RequestOptions & { ca?: string[] } = {
    method: target.method,
    hostname: target.host,
    port: target.port,
    path: target.path,
    headers: outgoing,
    agent: false,
    lookup: ((_hostname: string, lookupOptions: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      if (lookupOptions?.all) callback(null, [{ address: ip, family }]);
      else callback(null, ip, family);
    }) as RequestOptions["lookup"],
  };
  if (caCerts && caCerts.length > 0) options.ca = caCerts;
  const send = target.scheme === "https" ? httpsRequest : httpRequest;
  // Deno's net permission is checked inside node:net's lookup callback, where a
  // refusal is thrown out of reach of this promise and ends the process: ask first.
  const where = `${family === 6 ? `[${ip}]` : ip}:${target.port}`;
  if (Deno.permissions.querySync({ name: "net", host: where }).state !== "granted") {
    return Promise.reject(
      new HostCallError(
        "unavailable",
        hidden === undefined
          ? `Cannot fetch "${target.url.href}": this process may not connect to ${where} (Deno net permission)`
          : `Cannot fetch "${target.url.href}": this process may not connect to its address (Deno net permission)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      req.destroy();
      reject(signal.reason);
    };
    const req = send(options, (message) => {
      signal.removeEventListener("abort", onAbort);
      resolve({ status: message.statusCode ?? 0, headers: _responseHeaders(message.rawHeaders), message });
    });
    req.on("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(
        signal.aborted ? signal.reason : new HostCallError(
          "unavailable",
          hidden === undefined
            ? `Cannot fetch "${target.url.href}" from ${ip}: ${_message(error)}`
            : `Cannot fetch "${target.url.href}": ${_scrub(_message(error), hidden)}`,
          { cause: error },
        ),
      );
    });
    signal.addEventListener("abort", onAbort, { once: true });
    req.end(body);
  });
}

/** Lower-cases header names and joins repeated ones with `, `. */
function _responseHeaders(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

/** Reads the body chunk by chunk, stopping as soon as it passes `cap`. */
async function _readBody(
  response: _Response,
  url: URL,
  cap: number,
  signal: AbortSignal,
  hidden: string | undefined,
): Promise<Uint8Array> {
  const { message } = response;
  const tooLarge = (size: string) =>
    new HostCallError("limit", `Cannot read the response of "${url.href}": ${size} passes maxResponseBytes (${cap})`);
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > cap) {
    message.destroy();
    throw tooLarge(`its content-length ${declared}`);
  }
  const onAbort = () => message.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of message) {
      const bytes = chunk as Uint8Array;
      total += bytes.byteLength;
      if (total > cap) {
        message.destroy();
        throw tooLarge(`a body of more than ${cap} bytes`);
      }
      chunks.push(bytes);
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof HostCallError) throw error;
    const message = hidden === undefined ? _message(error) : _scrub(_message(error), hidden);
    throw new HostCallError("unavailable", `Cannot read the response of "${url.href}": ${message}`, {
      cause: error,
    });
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (signal.aborted) throw signal.reason;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Settles with `promise`, or rejects with the signal's reason once it aborts. */
function _race<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Removes the address a name resolved to, and anything else shaped like an address, from an error message. */
function _scrub(message: string, address: string): string {
  return message
    .replaceAll(address, "its address")
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, "an address")
    .replace(/\[?\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\]?/gi, "an address");
}
