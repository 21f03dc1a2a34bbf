// HTTP/1.1 over a raw socket, for request targets that fetch() and `new URL()` would rewrite before sending
// (`%2e%2e`, `..`, `\`, `//`), and a real upstream that records the raw targets it receives.
import { within } from "./_gateway_fixture.ts";

/** A response read from a raw socket: status, headers and the whole body as text. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * Sends one request with its target exactly as written and reads the response until the server closes.
 *
 * @param port The server's port on 127.0.0.1.
 * @param target The request target, sent byte for byte.
 * @param headers More request headers.
 * @returns Status, headers and body (a chunked body is decoded).
 */
export async function rawGet(port: number, target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const head = [
    `GET ${target} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    "connection: close",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ].join("\r\n");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const read = async () => {
    await conn.write(new TextEncoder().encode(head));
    return new Uint8Array(await new Response(conn.readable).arrayBuffer());
  };
  return parseRawResponse(await within(10_000, `GET ${target}`, read()));
}

/**
 * Parses an HTTP/1.1 response read off a socket until it closed.
 *
 * @param bytes The whole response.
 * @returns Status, headers and body (a chunked body is decoded).
 */
export function parseRawResponse(bytes: Uint8Array): RawResponse {
  const text = new TextDecoder().decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, split).split("\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? "")?.[1]);
  const headers = new Headers(lines.map((line) => {
    const at = line.indexOf(":");
    return [line.slice(0, at).trim(), line.slice(at + 1).trim()] as [string, string];
  }));
  let body = text.slice(split + 4);
  if (headers.get("transfer-encoding")?.includes("chunked")) {
    let out = "";
    while (body.length) {
      const eol = body.indexOf("\r\n");
      const size = parseInt(body.slice(0, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      body = body.slice(eol + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body };
}

/** An upstream on 127.0.0.1 that answers 200 with the raw request target it received, and records it. */
export interface RecordingUpstream {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Every raw target received (path and query, as sent on the request line), in order. */
  targets: string[];
  close(): Promise<void>;
}

/** Starts a {@linkcode RecordingUpstream}. */
export function recordingUpstream(): RecordingUpstream {
  const targets: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    // Deno keeps the request target as sent: no dot segment resolved, no percent-encoding touched.
    const url = request.url;
    const target = url.slice(url.indexOf("/", url.indexOf("://") + 3));
    targets.push(target);
    return new Response(`upstream saw ${target}`);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    targets,
    close: () => server.shutdown(),
  };
}
