// A gateway over a temp dir for the HTTP suites: its own policies/ (PUT and
// DELETE write there), data dir and keycard.yaml, the repo's hello and stamp
// plugins, and two hostile plugins seeded from .wasm + .yaml (trap, memory
// bomb) that conformance would refuse to install through the API.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway, type Gateway } from "../src/gateway/mod.ts";
import { copyPolicies, examplePlugin, watFixture } from "./_test_utils.ts";
export { echoManifest, pluginForm } from "./_test_utils.ts";

const repo = new URL("../", import.meta.url);

/** Base URL of in-process requests. */
export const BASE = "http://keycard.test";

/** Options of {@linkcode startGateway}. */
export interface StartGatewayOptions {
  /** `server.maxBodyBytes`. @default {1048576} */
  maxBodyBytes?: number;
  /** `server.port` (only the e2e suite listens). @default {8080} */
  port?: number;
  /** Plugin limits over the fixture's (deadlineMs 500, instances 1, queue 2, inputBytes 65536). */
  limits?: Record<string, number>;
  /** Create the gateway (false: only write the files, for `serve()`). @default {true} */
  create?: boolean;
  /** More configured plugins, seeded like trap and bomb (operator-trusted: no conformance run). @default {[]} */
  plugins?: { name: string; wasm: Uint8Array; manifest: string }[];
  /** More `server:` settings, written as JSON (a YAML flow value), e.g. `{ metrics: "open" }`. @default {{}} */
  server?: Record<string, unknown>;
  /** More top-level YAML lines, e.g. a `ceilings:` or `routes:` section. @default {[]} */
  yaml?: string[];
}

/** A running fixture gateway. */
export interface GatewayFixture {
  /** The gateway; undefined when `create: false`. */
  gateway: Gateway;
  /** `gateway.app.request` against {@linkcode BASE}. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** `gateway.app.request` as if from the client address `remote` (what Deno.serve passes as `remoteAddr`). */
  requestFrom(remote: string, path: string, init?: RequestInit): Promise<Response>;
  /** Token of the `admin` client (role admin). */
  adminToken: string;
  /** Token of the `app` client (role caller). */
  callerToken: string;
  /** Token of the `viewer` client (role viewer, granted nothing by api.cedar). */
  viewerToken: string;
  /** The temp dir holding keycard.yaml, policies/, data/ and wasm/. */
  dir: string;
  /** Path of the fixture's keycard.yaml. */
  configPath: string;
  /** Closes the gateway and removes the temp dir. */
  close(): Promise<void>;
}

/** Hex SHA-256 of a token (as keycard.yaml stores it) or of bytes. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

function randomToken(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Authorization header for a token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/**
 * Starts a gateway over a fresh temp dir.
 *
 * @param options Server and limit settings.
 * @returns The gateway, a request helper, the tokens and the dir.
 */
export async function startGateway(options: StartGatewayOptions = {}): Promise<GatewayFixture> {
  // Build the example plugins first (no-op when up to date) so that seeding is quick.
  await examplePlugin("hello");
  await examplePlugin("stamp");
  const dir = await Deno.makeTempDir({ prefix: "keycard-http-" });
  try {
    const policies = await copyPolicies(dir);
    const wasmDir = join(dir, "wasm");
    await Deno.mkdir(wasmDir);
    await Deno.writeFile(join(wasmDir, "trap.wasm"), await watFixture("trap"));
    await Deno.writeTextFile(
      join(wasmDir, "trap.yaml"),
      "name: trap\nversion: 1.0.0\nexports:\n  - name: unreachable\n  - name: out_of_bounds\ncapabilities: []\n",
    );
    await Deno.writeFile(join(wasmDir, "bomb.wasm"), await watFixture("memory_grow_bomb"));
    await Deno.writeTextFile(
      join(wasmDir, "bomb.yaml"),
      "name: bomb\nversion: 1.0.0\nexports:\n  - name: grow\ncapabilities: []\nlimits: { memoryPages: 64 }\n",
    );

    for (const extra of options.plugins ?? []) {
      await Deno.writeFile(join(wasmDir, `${extra.name}.wasm`), extra.wasm);
      await Deno.writeTextFile(join(wasmDir, `${extra.name}.yaml`), extra.manifest);
    }

    const adminToken = randomToken("admin");
    const callerToken = randomToken("caller");
    const viewerToken = randomToken("viewer");
    const limits = { deadlineMs: 500, instances: 1, queue: 2, inputBytes: 65536, ...options.limits };
    const plugin = (name: string) => new URL(`plugins/${name}`, repo).pathname;
    const yaml = [
      "server:",
      "  host: 127.0.0.1",
      `  port: ${options.port ?? 8080}`,
      `  maxBodyBytes: ${options.maxBodyBytes ?? 1048576}`,
      ...Object.entries(options.server ?? {}).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
      `dataDir: ${JSON.stringify(join(dir, "data"))}`,
      `policies: ${JSON.stringify(policies)}`,
      "plugins:",
      `  - path: ${JSON.stringify(plugin("hello"))}`,
      `  - path: ${JSON.stringify(plugin("stamp"))}`,
      `  - path: ${JSON.stringify(join(wasmDir, "trap.wasm"))}`,
      `  - path: ${JSON.stringify(join(wasmDir, "bomb.wasm"))}`,
      ...(options.plugins ?? []).map((extra) => `  - path: ${JSON.stringify(join(wasmDir, `${extra.name}.wasm`))}`),
      "tokens:",
      `  - { id: app, sha256: "${sha256Hex(callerToken)}", roles: [caller] }`,
      `  - { id: viewer, sha256: "${sha256Hex(viewerToken)}", roles: [viewer] }`,
      "limits:",
      ...Object.entries(limits).map(([key, value]) => `  ${key}: ${value}`),
      ...(options.yaml ?? []),
      "",
    ].join("\n");
    const configPath = join(dir, "keycard.yaml");
    await Deno.writeTextFile(configPath, yaml);

    let gateway: Gateway | undefined;
    if (options.create !== false) {
      const { config } = await loadConfig({ path: configPath, env: {} });
      gateway = await createGateway(config, { adminToken });
    }
    let closed = false;
    return {
      gateway: gateway!,
      request: async (path, init) => await gateway!.app.request(new URL(path, BASE).href, init),
      requestFrom: async (remote, path, init) =>
        await gateway!.app.request(new URL(path, BASE).href, init, { remoteAddr: { hostname: remote } }),
      adminToken,
      callerToken,
      viewerToken,
      dir,
      configPath,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await gateway?.close();
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Awaits `promise`, failing after `ms`; the timer is always cleared (no leaked op).
 *
 * @param ms Time bound.
 * @param what Named in the failure.
 * @param promise What to await.
 * @returns Its value.
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a problem+json response, checking its status, content type and `type`. */
export async function expectProblem(
  response: Response,
  status: number,
  type: string,
): Promise<Record<string, unknown>> {
  const text = await response.text();
  const where = `${response.status} ${text.slice(0, 300)}`;
  if (response.status !== status) throw new Error(`Expected status ${status}, got ${where}`);
  const contentType = response.headers.get("content-type") ?? "";
  if (!contentType.startsWith("application/problem+json")) {
    throw new Error(`Expected application/problem+json, got ${JSON.stringify(contentType)}: ${where}`);
  }
  const body = JSON.parse(text) as Record<string, unknown>;
  if (body.type !== `/problems/${type}` || body.status !== status || typeof body.detail !== "string") {
    throw new Error(`Expected a /problems/${type} problem, got ${where}`);
  }
  return body;
}

/**
 * The `store:` lines of keycard.yaml for a replica on a PostgreSQL database (for `StartGatewayOptions.yaml`).
 *
 * @param url The database.
 * @param options The replica's name (else one is made and kept in its data dir) and the store's timeout.
 * @returns The lines.
 */
export function storeYaml(url: string, options: { replica?: string; timeoutMs?: number } = {}): string[] {
  return [
    "store:",
    "  kind: postgres",
    `  url: ${JSON.stringify(url)}`,
    ...(options.replica === undefined ? [] : [`  replica: ${options.replica}`]),
    ...(options.timeoutMs === undefined ? [] : [`  timeoutMs: ${options.timeoutMs}`]),
  ];
}

/** `init` with the fixture's admin token. */
export function asAdmin(fx: GatewayFixture, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...bearer(fx.adminToken), ...init.headers as Record<string, string> } };
}

/** Invokes an export as the `app` client (role caller). */
export async function invokeAsCaller(
  fx: GatewayFixture,
  plugin: string,
  exportName: string,
  body = "x",
): Promise<Response> {
  return await fx.request(`/v1/plugins/${plugin}/invoke/${exportName}`, {
    method: "POST",
    headers: bearer(fx.callerToken),
    body,
  });
}

/** The body of a 2xx response; anything else throws with its status and the start of its body. */
export async function expectOk(response: Response, what: string): Promise<string> {
  const text = await response.text();
  if (response.status < 200 || response.status > 299) {
    throw new Error(`${what}: ${response.status} ${text.slice(0, 300)}`);
  }
  return text;
}
