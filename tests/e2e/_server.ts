// The e2e harness: keycard exactly as the README runs it, `deno task start <config.yaml>` in the checkout, with its
// config, policies and data dir in a temp dir outside the repository, a random port read off the start banner, and
// every wait bounded by an event (a line of output, a response, the process's exit).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { copyPolicies, denoCommand, examplePlugin } from "../_test_utils.ts";
import { parseRawResponse } from "../_raw_http.ts";
export { echoManifest, pluginForm } from "../_test_utils.ts";

/** The checkout: the cwd of every command, as a user would run it. */
export const REPO: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** The example plugins the suite configures, by absolute path. */
export const EXAMPLE_PLUGINS = ["hello", "stamp", "header-guard", "redact", "quoter"] as const;

/** Bounds of the suite's waits, in milliseconds. */
export const BOUND = { start: 60_000, stop: 20_000, request: 10_000, line: 10_000 } as const;

/** The Deno the suite runs commands with (see `denoCommand`): the `deno` on PATH under the test task's flags. */
export const DENO: string = denoCommand ?? "deno";

/**
 * The child's environment: `KEYCARD_*` cleared (an empty value counts as unset), so that only the config in the temp
 * dir is in force whatever the shell running the tests has set.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYCARD_CONFIG: "",
    KEYCARD_HOST: "",
    KEYCARD_PORT: "",
    KEYCARD_DATA_DIR: "",
    KEYCARD_ADMIN_TOKEN: "",
    KEYCARD_STORE_URL: "",
    DENO_NO_PACKAGE_JSON: "1",
    NO_COLOR: "1",
    ...extra,
  };
}

/** Hex SHA-256 of a token, as keycard.yaml stores it. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

function randomToken(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Options of {@linkcode makeSite}. */
export interface SiteOptions {
  /** Plugin paths to configure, absolute. @default {the five example plugins of the repo} */
  plugins?: string[];
  /** YAML lines of `routes:` entries (each starting with "  - "). @default {the shipped public /quote route} */
  routes?: string[];
  /** `strictStart`. @default {false} */
  strictStart?: boolean;
  /** `server.maxBodyBytes`. @default {1048576} */
  maxBodyBytes?: number;
}

/** A temp dir outside the repository holding keycard.yaml, a copy of policies/ and the data dir. */
export interface Site {
  dir: string;
  configPath: string;
  dataDir: string;
  policiesDir: string;
  /** Token of the `app` client (role caller), configured as SHA-256 in keycard.yaml. */
  callerToken: string;
  /** Token of the `viewer` client (a role api.cedar grants nothing). */
  viewerToken: string;
  /** Rewrites keycard.yaml (for SIGHUP reloads). */
  writeConfig(options: SiteOptions): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The shipped public route, as in keycard.yaml. */
export const QUOTE_ROUTE = [
  "  - name: quote",
  "    match: { path: /quote, methods: [GET] }",
  "    auth: public",
  "    handler: { plugin: quoter, export: handle }",
];

/** Absolute path of an example plugin directory. */
export function pluginDir(name: string): string {
  return join(REPO, "plugins", name);
}

/**
 * Creates a site: a temp dir with keycard.yaml (port 0, loopback), `policies/` copied from the repo and `data/`.
 * The example plugins are built first (no-op when up to date) so that the launcher's build step is quick.
 */
export async function makeSite(options: SiteOptions = {}): Promise<Site> {
  for (const name of EXAMPLE_PLUGINS) await examplePlugin(name);
  const dir = await Deno.makeTempDir({ prefix: "keycard-e2e-" });
  const policiesDir = await copyPolicies(dir);
  const dataDir = join(dir, "data");
  const configPath = join(dir, "keycard.yaml");
  const callerToken = randomToken("caller");
  const viewerToken = randomToken("viewer");
  const writeConfig = async (o: SiteOptions) => {
    const plugins = o.plugins ?? EXAMPLE_PLUGINS.map(pluginDir);
    const yaml = [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      `  maxBodyBytes: ${o.maxBodyBytes ?? 1048576}`,
      `dataDir: ${JSON.stringify(dataDir)}`,
      `policies: ${JSON.stringify(policiesDir)}`,
      `strictStart: ${o.strictStart ?? false}`,
      plugins.length ? "plugins:" : "plugins: []",
      ...plugins.map((path) => `  - path: ${JSON.stringify(path)}`),
      "tokens:",
      `  - { id: app, sha256: ${sha256Hex(callerToken)}, roles: [caller] }`,
      `  - { id: viewer, sha256: ${sha256Hex(viewerToken)}, roles: [viewer] }`,
      "limits:",
      "  deadlineMs: 1000",
      "routes:" + ((o.routes ?? QUOTE_ROUTE).length ? "" : " []"),
      ...(o.routes ?? QUOTE_ROUTE),
      "",
    ].join("\n");
    await Deno.writeTextFile(configPath, yaml);
  };
  await writeConfig(options);
  return {
    dir,
    configPath,
    dataDir,
    policiesDir,
    callerToken,
    viewerToken,
    writeConfig,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** SGR colour escapes (deno task colours its own lines; NO_COLOR is set, but be sure). */
const ANSI_ESCAPE = new RegExp(String.raw`\u001b\[[0-9;]*m`, "g");

/** Output of a process, line by line, with bounded waits for a line to appear. */
export class Lines {
  readonly lines: string[] = [];
  #waiters: { pattern: RegExp; from: number; resolve: (line: string) => void }[] = [];
  #ended = Promise.withResolvers<void>();
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    void this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) this.#push(line);
      }
    } catch {
      // The pipe closed under us: the process is gone.
    } finally {
      if (rest) this.#push(rest);
      this.#done = true;
      this.#ended.resolve();
      for (const waiter of this.#waiters.splice(0)) waiter.resolve("");
    }
  }

  #push(line: string): void {
    // deno task colours its own lines; the product's lines carry no escapes, but strip them all the same.
    const text = line.replace(ANSI_ESCAPE, "");
    this.lines.push(text);
    const index = this.lines.length - 1;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (index >= waiter.from && waiter.pattern.test(text)) {
        waiter.resolve(text);
        return false;
      }
      return true;
    });
  }

  /** Resolves when the stream has ended (the process closed it). */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** The output so far, as text. */
  text(): string {
    return this.lines.join("\n");
  }

  /**
   * Waits for a line matching `pattern` at or after line `from`.
   * @returns The line; throws when the stream ends first or after `ms`.
   */
  async waitFor(pattern: RegExp, options: { from?: number; ms?: number; what?: string } = {}): Promise<string> {
    const from = options.from ?? 0;
    const seen = this.lines.slice(from).find((line) => pattern.test(line));
    if (seen !== undefined) return seen;
    const what = options.what ?? String(pattern);
    if (this.#done) throw new Error(`The output ended without ${what}:\n${this.text()}`);
    const found = Promise.withResolvers<string>();
    this.#waiters.push({ pattern, from, resolve: found.resolve });
    const line = await within(options.ms ?? BOUND.line, `a line ${what}`, found.promise, () => this.text());
    if (line === "" && this.#done && !pattern.test("")) {
      throw new Error(`The output ended without ${what}:\n${this.text()}`);
    }
    return line;
  }
}

/**
 * Awaits `promise`, failing after `ms` (the timer is always cleared).
 * @param detail What to add to the failure (e.g. the output so far).
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>, detail?: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms${detail ? `:\n${detail()}` : ""}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A command of the README run as a subprocess in the checkout, its output read line by line. */
export class Run implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Lines;
  readonly status: Promise<Deno.CommandStatus>;
  #exited = false;
  #args: string[];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.#args = args;
    this.process = new Deno.Command(DENO, {
      args,
      cwd: REPO,
      env: childEnv(env),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.stdout = new Lines(this.process.stdout);
    this.stderr = new Lines(this.process.stderr);
    this.status = this.process.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Both outputs, for failure messages. */
  output(): string {
    return `--- stdout\n${this.stdout.text()}\n--- stderr\n${this.stderr.text()}`;
  }

  /** Waits for the exit (bounded), and for both outputs to be read to their end. */
  async exit(ms: number = BOUND.stop): Promise<Deno.CommandStatus> {
    const status = await within(ms, `the exit of deno ${this.#args.join(" ")}`, this.status, () => this.output());
    await within(5_000, "the end of the output", Promise.all([this.stdout.ended, this.stderr.ended]));
    return status;
  }

  /** Sends a signal to the `deno task` process (which passes it on); false when it has exited. */
  signal(signal: Deno.Signal): boolean {
    if (this.#exited) return false;
    try {
      this.process.kill(signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops the process if it still runs: SIGTERM (the launcher passes it to the server, which drains), then, if that
   * is not enough within the bound, SIGKILL of the whole process tree this run started.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      this.signal("SIGTERM");
      try {
        await within(BOUND.stop, "the stop", this.status);
      } catch {
        await killTree(this.process.pid);
        this.signal("SIGKILL");
        await within(BOUND.stop, "the kill", this.status).catch(() => {});
      }
    }
    await within(5_000, "the end of the output", Promise.all([this.stdout.ended, this.stderr.ended])).catch(() => {});
  }
}

/**
 * Source of a function `tree(pid)` for a `deno eval` helper: the descendants of `pid`, deepest first, read from
 * `/proc/<pid>/task/<tid>/children` (the test task itself may not read `/proc` or kill processes).
 */
export const TREE_SOURCE = `
  const tree = (pid) => {
    let kids = [];
    try {
      for (const task of Deno.readDirSync("/proc/" + pid + "/task")) {
        const text = Deno.readTextFileSync("/proc/" + pid + "/task/" + task.name + "/children").trim();
        if (text) kids = kids.concat(text.split(/\\s+/).map(Number));
      }
    } catch { /* gone */ }
    return kids.flatMap((kid) => [...tree(kid), kid]);
  };
`;

/**
 * SIGKILLs `pid` and its descendants. The test task may not call `Deno.kill` or read `/proc` itself, but it may run
 * `deno`: a short-lived helper with exactly those permissions walks `/proc/<pid>/task/<tid>/children` and kills the
 * processes this run started, by id, deepest first.
 */
async function killTree(pid: number): Promise<void> {
  const script = `${TREE_SOURCE}
    for (const pid of [...tree(${pid}), ${pid}]) { try { Deno.kill(pid, "SIGKILL"); } catch { /* gone */ } }
  `;
  await new Deno.Command(DENO, {
    args: ["eval", "--no-config", script],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output().catch(() => {});
}

/** A keycard started with `deno task start <config>`, serving on the port its banner names. */
export interface Keycard extends AsyncDisposable {
  run: Run;
  site: Site;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** The admin token: printed once on first start, else read from `<dataDir>/admin-token`. */
  adminToken: string;
  /** Whether this start printed the admin token. */
  printedToken: boolean;
  /** fetch against the server, bounded. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops it with a signal and returns its exit status (bounded). */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Runs `deno task start <site config>` and waits (bounded) for the banner: `keycard serving on ...`, then
 * `plugins: ...`, then the admin token when it is printed.
 */
export async function startKeycard(site: Site, env: Record<string, string> = {}): Promise<Keycard> {
  const firstStart = !await exists(join(site.dataDir, "admin-token")) && !env.KEYCARD_ADMIN_TOKEN;
  const run = new Run(["task", "start", site.configPath], env);
  try {
    const serving = await run.stdout.waitFor(/^keycard serving on http:\/\/127\.0\.0\.1:\d+ /, {
      ms: BOUND.start,
      what: "keycard serving on ...",
    });
    const base = /^keycard serving on (http:\/\/127\.0\.0\.1:\d+) /.exec(serving)![1]!;
    const pluginsLine = await run.stdout.waitFor(/^plugins: /);
    const from = run.stdout.lines.indexOf(pluginsLine);
    let adminToken: string;
    let printedToken = false;
    if (firstStart) {
      // A first start prints the token it generated, once, on the line after its header.
      const header = await run.stdout.waitFor(/^admin token \(shown once; /, { from: from + 1 });
      const at = run.stdout.lines.indexOf(header);
      adminToken = (await run.stdout.waitFor(/^ {2}\S+$/, { from: at + 1 })).trim();
      printedToken = true;
    } else {
      adminToken = (await Deno.readTextFile(join(site.dataDir, "admin-token"))).trim();
    }
    const bounded = (path: string, init: RequestInit = {}) =>
      fetch(new URL(path, base), { ...init, signal: init.signal ?? AbortSignal.timeout(BOUND.request) });
    return {
      run,
      site,
      base,
      adminToken,
      printedToken,
      fetch: bounded,
      async stop(signal: Deno.Signal = "SIGTERM") {
        run.signal(signal);
        return await run.exit();
      },
      [Symbol.asyncDispose]: () => run[Symbol.asyncDispose](),
    };
  } catch (error) {
    await run[Symbol.asyncDispose]();
    throw error;
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Authorization header for a token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/**
 * Reads a problem+json response: its status, content type and `type` (`/problems/<type>`), and a `detail` string.
 * @returns The body.
 */
export async function expectProblem(
  response: Response,
  status: number,
  type?: string,
): Promise<Record<string, unknown>> {
  const text = await response.text();
  const where = `${response.status} ${response.headers.get("content-type")} ${text.slice(0, 400)}`;
  if (response.status !== status) throw new Error(`Expected status ${status}, got ${where}`);
  if (!(response.headers.get("content-type") ?? "").startsWith("application/problem+json")) {
    throw new Error(`Expected application/problem+json, got ${where}`);
  }
  const body = JSON.parse(text) as Record<string, unknown>;
  if (body.status !== status || typeof body.detail !== "string" || typeof body.type !== "string") {
    throw new Error(`Expected a problem with status, type and detail, got ${where}`);
  }
  if (type !== undefined && body.type !== `/problems/${type}`) {
    throw new Error(`Expected a /problems/${type} problem, got ${where}`);
  }
  return body;
}

/** The built module of an example plugin (built by {@linkcode makeSite} or the launcher). */
export async function builtPlugin(name: string): Promise<Uint8Array> {
  return await Deno.readFile(join(pluginDir(name), "build", "plugin.wasm"));
}

/** The names (and versions) the server lists, sorted: what the bad-input checks compare before and after. */
export async function listPlugins(kc: Keycard): Promise<string[]> {
  const response = await kc.fetch("/v1/plugins", { headers: bearer(kc.adminToken) });
  if (response.status !== 200) throw new Error(`GET /v1/plugins: ${response.status} ${await response.text()}`);
  const { plugins } = await response.json() as { plugins: { name: string; version: string; sha256?: string }[] };
  return plugins.map((p) => `${p.name}@${p.version}${p.sha256 ? `#${p.sha256.slice(0, 12)}` : ""}`).sort();
}

/**
 * Checks a response's status; on a mismatch the failure carries the body and the tail of the server's log, where
 * the cause of a 500 is.
 * @returns The body text.
 */
export async function expectStatus(kc: Keycard, response: Response, status: number): Promise<string> {
  const text = await response.text();
  if (response.status !== status) {
    throw new Error(
      `Expected status ${status}, got ${response.status}: ${text.slice(0, 600)}\n--- server stderr (tail)\n` +
        kc.run.stderr.lines.slice(-25).join("\n"),
    );
  }
  return text;
}

/**
 * Sends one HTTP/1.1 request with its target exactly as written: fetch() and `new URL()` resolve `%2e%2e` and `..`
 * before sending, so a path such as `/v1/plugins/%2e%2e` needs a raw socket to reach the server at all.
 * @returns The response, read until the server closes the connection (bounded).
 */
export async function rawRequest(
  kc: Keycard,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<Response> {
  const { hostname, port } = new URL(kc.base);
  const body = typeof options.body === "string" ? new TextEncoder().encode(options.body) : options.body;
  const head = [
    `${method} ${target} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    "connection: close",
    ...Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    ...(body ? [`content-length: ${body.length}`] : []),
    "",
    "",
  ].join("\r\n");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const read = async () => {
      await conn.write(new TextEncoder().encode(head));
      if (body) await conn.write(body);
      return new Uint8Array(await new Response(conn.readable).arrayBuffer());
    };
    const { status, headers, body: rest } = parseRawResponse(
      await within(BOUND.request, `${method} ${target}`, read()),
    );
    headers.delete("transfer-encoding");
    headers.delete("content-length");
    return new Response(status === 204 ? null : rest, { status, headers });
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by reading to the end.
    }
  }
}
