// Load generators of bench/http_load.ts: wrk (preferred: a separate process
// in C) and, when wrk is missing, N concurrent fetch loops in this process,
// which compete with the server for the same cores. Both are bounded by a
// duration; the fetch loops also by a request count.

/** One HTTP target: what every request of a run sends. */
export interface LoadTarget {
  /** Label in the table. */
  name: string;
  url: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  /** ASCII only (it is embedded in wrk's Lua script). */
  body?: string;
}

/** What one run measured. */
export interface LoadResult {
  name: string;
  /** `wrk`, `fetch` (in-process HTTP client) or `direct` (no HTTP). */
  tool: string;
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses other than 2xx/3xx (wrk) or other than 200 (fetch, direct). */
  non2xx: number;
  /** Socket errors and timeouts (wrk) or thrown errors (fetch, direct). */
  errors: number;
}

/** Connections, threads (wrk only) and seconds of one run. */
export interface LoadOptions {
  connections: number;
  threads: number;
  seconds: number;
}

/** Requests one in-process run may make, whatever its duration: keeps the sample arrays bounded. */
const MAX_REQUESTS = 3_000_000;

/** Why `name` does not run (not found, not permitted), or `undefined` when it runs. */
async function cannotRun(name: string, args: string[]): Promise<string | undefined> {
  try {
    const { code } = await new Deno.Command(name, { args, stdout: "null", stderr: "null" }).output();
    return code === 0 || code === 1 ? undefined : `exited with ${code}`; // `wrk -v` exits 1 after its version
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/**
 * Finds wrk; when it is missing and this process runs as root, installs it
 * with apt-get (bounded to 5 minutes). Returns `"wrk"` or `undefined`.
 */
export async function ensureWrk(log: (line: string) => void): Promise<string | undefined> {
  const missing = await cannotRun("wrk", ["-v"]);
  if (missing === undefined) return "wrk";
  if (!missing.startsWith("NotFound")) {
    log(`wrk cannot run (${missing}): falling back to fetch loops`);
    return undefined;
  }
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch {
    // No --allow-sys=uid: do not try to install.
  }
  if (uid !== 0) {
    log(`wrk is not installed and this process is not root (uid ${uid ?? "unknown"}): falling back to fetch loops`);
    return undefined;
  }
  log("wrk is not installed: apt-get update && apt-get install -y wrk ...");
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "wrk"]]) {
    const ok = await withTimeout(300_000, async (signal) => {
      try {
        const out = await new Deno.Command("apt-get", { args, env, stdout: "null", stderr: "piped", signal }).output();
        if (!out.success) log(`apt-get ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
        return out.success;
      } catch (error) {
        log(`apt-get ${args.join(" ")} could not run: ${(error as Error).message}`);
        return false;
      }
    });
    if (!ok) return undefined;
  }
  const still = await cannotRun("wrk", ["-v"]);
  if (still === undefined) return "wrk";
  // --allow-run=wrk names nothing when wrk was missing at start-up: the task also allows /usr/bin/wrk.
  log(`wrk was installed but cannot run (${still}): falling back to fetch loops`);
  return undefined;
}

async function withTimeout<T>(ms: number, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await task(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new TypeError(`Only printable ASCII goes into the Lua script: ${text}`);
  return JSON.stringify(text); // printable ASCII: JSON escapes (\" and \\) are Lua escapes too
}

/** The Lua script that sets the method, headers and body of every wrk request. */
function wrkScript(target: LoadTarget): string {
  const lines = [`wrk.method = ${luaString(target.method)}`];
  if (target.body !== undefined) lines.push(`wrk.body = ${luaString(target.body)}`);
  for (const [name, value] of Object.entries(target.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  return lines.join("\n") + "\n";
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const factor = UNIT_MS[unit];
  if (factor === undefined) throw new Error(`Unknown wrk time unit "${unit}"`);
  return Number(value) * factor;
}

/**
 * Parses wrk's `--latency` report.
 *
 * @throws {Error} When a line it needs is missing.
 */
export function parseWrk(name: string, text: string): LoadResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const match = re.exec(text);
    if (!match) throw new Error(`wrk output has no ${what}:\n${text}`);
    return match;
  };
  const total = need(/(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b/, "request count");
  const p50 = need(/^\s*50%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, "p50");
  const p99 = need(/^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, "p99");
  const rps = need(/Requests\/sec:\s+([\d.]+)/, "Requests/sec");
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    name,
    tool: "wrk",
    requests: Number(total[1]),
    seconds: toMs(total[2]!, total[3]!) / 1000,
    rps: Number(rps[1]),
    p50Ms: toMs(p50[1]!, p50[2]!),
    p99Ms: toMs(p99[1]!, p99[2]!),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

/**
 * Runs wrk against `target`; the Lua script goes to `scratchDir`. wrk is
 * killed if it outlives its duration by 30 s.
 *
 * @returns The parsed report and wrk's raw output.
 */
export async function runWrk(
  target: LoadTarget,
  options: LoadOptions & { scratchDir: string },
): Promise<{ result: LoadResult; raw: string }> {
  const script = `${options.scratchDir}/${crypto.randomUUID()}.lua`;
  await Deno.writeTextFile(script, wrkScript(target));
  try {
    const args = [
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      "--timeout",
      "5s",
      "--latency",
      "-s",
      script,
      target.url,
    ];
    const out = await withTimeout(
      (options.seconds + 30) * 1000,
      (signal) => new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped", signal }).output(),
    );
    const raw = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`wrk exited with ${out.code}:\n${raw}`);
    return { result: parseWrk(target.name, raw), raw };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * Runs `call` from `concurrency` loops for `seconds` (and at most
 * {@linkcode MAX_REQUESTS} calls), timing each. `call` resolves to whether
 * the answer was the expected one.
 */
export async function runLoops(
  name: string,
  tool: string,
  call: () => Promise<boolean>,
  options: { concurrency: number; seconds: number },
): Promise<LoadResult> {
  const latencies = new Float64Array(MAX_REQUESTS);
  let count = 0;
  let bad = 0;
  let errors = 0;
  const started = performance.now();
  const end = started + options.seconds * 1000;
  async function loop(): Promise<void> {
    while (count < MAX_REQUESTS) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        if (!await call()) bad++;
      } catch {
        errors++;
      }
      latencies[count++] = performance.now() - t0;
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.subarray(0, count).sort();
  return {
    name,
    tool,
    requests: count,
    seconds,
    rps: count / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    non2xx: bad,
    errors,
  };
}

/** The fallback: `connections` fetch loops in this process (one pooled keep-alive client). */
export async function runFetch(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: options.connections });
  try {
    const init: RequestInit & { client: Deno.HttpClient } = {
      method: target.method,
      headers: target.headers ?? {},
      client,
    };
    return await runLoops(target.name, "fetch", async () => {
      const response = await fetch(target.url, target.body === undefined ? init : { ...init, body: target.body });
      await response.arrayBuffer();
      return response.status === 200;
    }, { concurrency: options.connections, seconds: options.seconds });
  } finally {
    client.close();
  }
}

/**
 * Reads the integer of a `--key=value` flag.
 * @throws {RangeError} When the value is not an integer in [min, max].
 */
export function intFlag(key: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${key} expects an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Exits the process (code 3) if a benchmark is still running after `ms`: it must stop by itself. Returns the timer. */
export function startWatchdog(ms: number, log: (line: string) => void): ReturnType<typeof setTimeout> {
  const watchdog = setTimeout(() => {
    log(`still running after ${ms / 1000} s: exiting`);
    Deno.exit(3);
  }, ms);
  Deno.unrefTimer(watchdog);
  return watchdog;
}
