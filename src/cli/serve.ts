import { join } from "node:path";
import { loadConfig } from "../config/mod.ts";
import { createGateway } from "../gateway/mod.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Config file; @default {KEYCARD_CONFIG or ./keycard.yaml} */
  configPath?: string;
  /** Where the banner goes. @default {console.log} */
  log?: (line: string) => void;
  /** Stop serving when this aborts (instead of on SIGINT/SIGTERM only). */
  signal?: AbortSignal;
}

/**
 * Returns the admin token: `KEYCARD_ADMIN_TOKEN` when set, else the one kept in
 * `<dataDir>/admin-token`, else a new one written there with mode 0600.
 *
 * @param dataDir The gateway's data directory.
 * @param fromEnv `KEYCARD_ADMIN_TOKEN`, if set.
 * @returns The token and whether it was created now (then it is printed once).
 */
export async function adminToken(dataDir: string, fromEnv?: string): Promise<{ token: string; created: boolean }> {
  if (fromEnv) return { token: fromEnv, created: false };
  const path = join(dataDir, "admin-token");
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length >= 16) return { token, created: false };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  await Deno.mkdir(dataDir, { recursive: true });
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  await Deno.chmod(path, 0o600);
  return { token, created: true };
}

/**
 * Serves the gateway from its configuration until SIGINT/SIGTERM (or the
 * signal): then it stops accepting, lets in-flight requests and plugin calls
 * finish, flushes the audit log and exits.
 *
 * @param options Config path, logger, stop signal.
 * @returns When the server has drained and closed.
 */
export async function serve(options: ServeOptions = {}): Promise<void> {
  const log = options.log ?? console.log;
  const { config, adminToken: fromEnv, source } = await loadConfig(
    options.configPath ? { path: options.configPath } : {},
  );
  const admin = await adminToken(config.dataDir, fromEnv);
  // Scratch space (conformance sandboxes) lives under the data dir, where the server may write; a crash
  // may have left some behind.
  await Deno.remove(join(config.dataDir, "tmp"), { recursive: true }).catch(() => {});
  const gateway = await createGateway(config, { adminToken: admin.token });
  const stop = new AbortController();
  // Listen for the stop signal before anything slow, and honour one that came early.
  const shutdown = () => stop.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, shutdown);
  options.signal?.addEventListener("abort", shutdown, { once: true });
  if (options.signal?.aborted) shutdown();
  const closed = Promise.withResolvers<void>();
  const listen = new Promise<Deno.NetAddr>((resolve) => {
    const server = Deno.serve({
      hostname: config.server.host,
      port: config.server.port,
      signal: stop.signal,
      onListen: (addr) => resolve(addr as Deno.NetAddr),
    }, gateway.app.fetch);
    void server.finished.then(() => closed.resolve());
  });
  const addr = await listen;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  log(`keycard serving on http://${host}:${addr.port} (config ${source})`);
  const plugins = await gateway.services.plugins.list();
  const named = (state: string) => plugins.filter((p) => p.state === state).map((p) => `${p.name}@${p.version}`);
  const failedNames = named("failed");
  log(
    `plugins: ${named("loaded").join(", ") || "none"}${
      failedNames.length ? ` (not loaded: ${failedNames.join(", ")})` : ""
    }`,
  );
  const store = gateway.services.store?.();
  if (store?.kind === "postgres") {
    log(
      `store: postgres, replica ${store.replica} (${store.state}${
        store.spooled ? `, ${store.spooled} audit events spooled` : ""
      })`,
    );
  }
  if (gateway.startFailures().length > 0) {
    log(`degraded start: ${gateway.startFailures().length} failure(s), listed above and at /readyz`);
  }
  if (admin.created) {
    log(`admin token (shown once; kept in ${join(config.dataDir, "admin-token")}, mode 0600):`);
    log(`  ${admin.token}`);
  }
  // SIGHUP re-reads keycard.yaml's routes and swaps them in without dropping a request.
  const reload = async () => {
    try {
      const next = await loadConfig(options.configPath ? { path: options.configPath } : {});
      gateway.setRoutes(next.config.routes);
      log(`routes reloaded: ${next.config.routes.map((r) => r.name).join(", ") || "none"}`);
    } catch (error) {
      log(`routes not reloaded, the running ones stay: ${(error as Error).message}`);
    }
  };
  const onHup = () => void reload();
  Deno.addSignalListener("SIGHUP", onHup);
  try {
    await closed.promise; // Deno.serve drains in-flight requests before `finished` settles
  } finally {
    // The listeners stay until the gateway has closed: Ctrl-C signals the whole process group, so the
    // server gets the signal from the terminal and again from the launcher, and a second signal with no
    // listener would kill it mid-drain.
    try {
      await gateway.close();
      log("keycard stopped");
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, shutdown);
      Deno.removeSignalListener("SIGHUP", onHup);
    }
  }
}
