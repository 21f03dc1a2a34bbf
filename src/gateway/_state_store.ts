// Where the gateway keeps shared state: files on this machine (the default) or a PostgreSQL database replicas share.
import { join } from "node:path";
import type { AuditEvent, AuditLog, AuditQuery } from "../audit/mod.ts";
import type { KeycardConfig, PostgresStoreConfig } from "../config/mod.ts";
import { KvStore, type PluginKv } from "../host/mod.ts";
import type { StoreView } from "../http/mod.ts";
import { type AuditWindow, readAuditEvents, type RecordedAudit } from "../lifecycle/mod.ts";
import type { PolicySource } from "../policy/mod.ts";
import { FileStore, type PluginStore } from "../registry/mod.ts";
import {
  type Change,
  ChangeFeed,
  connect,
  migrate,
  type PluginHead,
  PostgresAuditWriter,
  PostgresKvStore,
  PostgresPluginStore,
  PostgresPolicyStore,
  PostgresSessionStore,
  pruneAudit,
  queryAudit,
  readAuditWindow,
} from "../store/mod.ts";

/** What the gateway reads and writes, whichever store keeps it. */
export interface StateStore {
  /** `files` or `postgres`. */
  readonly kind: "files" | "postgres";
  /** Installed plugins. */
  readonly plugins: PluginStore;
  /** Plugin key-value entries. */
  readonly kv: PluginKv;
  /**
   * The operator policy files in force at start: the policy directory's (files), or the database's, seeded from the
   * directory by the first replica that ever started against it (postgres).
   */
  policyFiles(dirFiles: readonly PolicySource[]): Promise<PolicySource[]>;
  /** Writes operator policy files and removes others, at once where the store can. */
  writePolicies(change: { put: PolicySource[]; remove: string[] }): Promise<void>;
  /** The operator policy files when another replica changed them since this one last read or wrote them. */
  policyChanges(): Promise<PolicySource[] | undefined>;
  /** Each plugin's latest version (postgres), to compare with what this replica runs. */
  pluginHeads(): Promise<Map<string, PluginHead>>;
  /** Sends every event the audit log emits to the shared log too (postgres). */
  attachAudit(audit: AuditLog): void;
  /** Queries the shared audit log (postgres); undefined for files (the audit log's ring answers). */
  readonly auditQuery: ((filters: AuditQuery) => Promise<(AuditEvent & { replica?: string })[]>) | undefined;
  /** The recorded audit events in a window, oldest first, for a policy plan. */
  auditEvents(audit: AuditLog, window: AuditWindow): Promise<RecordedAudit>;
  /**
   * Calls `apply` after every change any replica makes, and after each reconnect (with no changes: catch up from
   * versions); never twice at once. No-op for files.
   */
  follow(apply: (changes: Change[]) => Promise<void>, onError: (error: unknown) => void): Promise<void>;
  /** The store as /readyz shows it; undefined for files. */
  view(): StoreView | undefined;
  /** Console sessions every replica shares (postgres); undefined for files (the console keeps them in memory). */
  readonly consoleSessions: PostgresSessionStore | undefined;
  /** Stops following, writes out the audit log, closes the connections. */
  close(): Promise<void>;
}

/** Options of {@linkcode openStateStore}. */
export interface OpenStateStoreOptions {
  /** Records the time of each store operation (`plugins.get`, `kv.set` ...). */
  observe?: (op: string, seconds: number) => void;
  /** Where lines for the operator go. */
  log: (line: string) => void;
}

/**
 * Opens the configured store. With PostgreSQL: connects (a clear error when the database cannot be reached), applies
 * the migrations (once, however many replicas start together), and opens the audit spool.
 *
 * @throws {StoreUnavailableError} When the database cannot be reached.
 * @throws {StoreSchemaError} When the database's schema is newer than this keycard or was edited.
 */
export async function openStateStore(config: KeycardConfig, options: OpenStateStoreOptions): Promise<StateStore> {
  if (config.store.kind === "postgres") return await openPostgres(config, config.store, options);
  const kv = await KvStore.open(join(config.dataDir, "kv.sqlite"));
  return {
    kind: "files",
    plugins: new FileStore(config.dataDir),
    kv,
    policyFiles: (dirFiles) => Promise.resolve([...dirFiles]),
    async writePolicies({ put, remove }) {
      for (const { name, text } of put) await writeAtomically(join(config.policies, name), text);
      for (const name of remove) await Deno.remove(join(config.policies, name));
    },
    policyChanges: () => Promise.resolve(undefined),
    pluginHeads: () => Promise.resolve(new Map()),
    attachAudit: () => {},
    auditQuery: undefined,
    async auditEvents(audit, window) {
      await audit.flush();
      return await readAuditEvents(config.audit.file, window);
    },
    follow: () => Promise.resolve(),
    view: () => undefined,
    consoleSessions: undefined,
    close() {
      kv.close();
      return Promise.resolve();
    },
  };
}

/** Milliseconds between audit retention sweeps. */
const RETENTION_EVERY_MS = 3_600_000;

async function openPostgres(
  config: KeycardConfig,
  store: PostgresStoreConfig,
  options: OpenStateStoreOptions,
): Promise<StateStore> {
  const replica = store.replica ?? await replicaId(config.dataDir);
  const sql = await connect(store.url, { applicationName: `keycard ${replica}` });
  let writer: PostgresAuditWriter | undefined;
  let feed: ChangeFeed | undefined;
  let retention: ReturnType<typeof setInterval> | undefined;
  let lastError: string | undefined;
  const close = async () => {
    if (retention !== undefined) clearInterval(retention);
    await feed?.close();
    await writer?.close();
    kv.close();
    await sql.end({ timeout: 5 });
  };
  const kv = timed(new PostgresKvStore(sql, { timeoutMs: store.timeoutMs }), "kv", options.observe);
  try {
    await migrate(sql);
    writer = await PostgresAuditWriter.open(sql, {
      replica,
      spoolPath: join(config.dataDir, "audit-spool.jsonl"),
      timeoutMs: store.timeoutMs,
    });
  } catch (error) {
    await close();
    throw error;
  }
  const plugins = timed(new PostgresPluginStore(sql, { timeoutMs: store.timeoutMs }), "plugins", options.observe);
  const policies = timed(new PostgresPolicyStore(sql, { timeoutMs: store.timeoutMs }), "policies", options.observe);
  /** The version of each operator policy file this replica runs. */
  let versions = new Map<string, number>();
  const consoleSessions = new PostgresSessionStore(sql, { timeoutMs: store.timeoutMs });
  const sweep = () => {
    pruneAudit(sql, store.auditRetentionDays).then(
      (deleted) => deleted > 0 && options.log(`keycard: audit retention: deleted ${deleted} events`),
      (error) => options.log(`keycard: audit retention failed: ${(error as Error).message}`),
    );
    consoleSessions.sweep().then(
      (deleted) => deleted > 0 && options.log(`keycard: console sessions: deleted ${deleted} expired`),
      (error) => options.log(`keycard: console session sweep failed: ${(error as Error).message}`),
    );
  };
  sweep();
  const timer = retention = setInterval(sweep, RETENTION_EVERY_MS);
  Deno.unrefTimer(timer as unknown as number);
  const read = async (): Promise<PolicySource[]> => {
    const rows = await policies.list();
    versions = new Map(rows.map((row) => [row.name, row.version]));
    return rows.map(({ name, text }) => ({ name, text }));
  };
  const auditWriter = writer;
  return {
    kind: "postgres",
    plugins,
    kv,
    consoleSessions,
    async policyFiles(dirFiles) {
      const seeded = await policies.seedOnce(dirFiles.map(({ name, text }) => ({ name, text })));
      if (seeded) options.log(`keycard: store: policies seeded from the policy directory (${dirFiles.length} files)`);
      return await read();
    },
    async writePolicies({ put, remove }) {
      const version = await policies.apply({ put: put.map(({ name, text }) => ({ name, text })), remove });
      // The versions this replica now runs: its own write's, never a re-read (another replica's write committed
      // meanwhile would look applied here). Several files take one number each: mark them unknown, so that the
      // next catch-up reads them.
      versions = new Map(versions);
      for (const { name } of put) versions.set(name, put.length === 1 ? version : -1);
      for (const name of remove) versions.delete(name);
    },
    async policyChanges() {
      const now = await policies.versions();
      const same = now.size === versions.size && [...now].every(([name, v]) => versions.get(name) === v);
      return same ? undefined : await read();
    },
    pluginHeads: () => plugins.heads(),
    attachAudit(audit) {
      audit.subscribe((event) => auditWriter.write(event));
    },
    auditQuery: (filters) => queryAudit(sql, filters, { timeoutMs: store.timeoutMs }),
    async auditEvents(audit, window) {
      await audit.flush();
      await auditWriter.flush();
      return { events: await readAuditWindow(sql, window), files: [], unreadable: { count: 0 } };
    },
    async follow(apply, onError) {
      feed = await ChangeFeed.listen(sql, {
        apply,
        onError: (error: unknown) => {
          lastError = error instanceof Error ? error.message : String(error);
          onError(error);
        },
      });
    },
    view() {
      const stats = auditWriter.stats();
      const state = feed?.connected === false ? "down" : "up";
      // Why, while it matters: the store is down or events still wait in the spool.
      const error = state === "down" || stats.spooled > 0 ? lastError ?? stats.lastError : undefined;
      return { kind: "postgres", state, replica, spooled: stats.spooled, ...(error === undefined ? {} : { error }) };
    },
    close,
  };
}

/** This replica's name: kept in `<dataDir>/replica-id`, made on first start. */
async function replicaId(dataDir: string): Promise<string> {
  const path = join(dataDir, "replica-id");
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (/^[A-Za-z0-9_.-]{1,64}$/.test(id)) return id;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  const id = `r-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  await Deno.mkdir(dataDir, { recursive: true });
  await writeAtomically(path, `${id}\n`);
  return id;
}

/** The same object, each method's time (to settle, failures included) observed as `<prefix>.<method>`. */
function timed<T extends object>(target: T, prefix: string, observe?: (op: string, seconds: number) => void): T {
  if (!observe) return target;
  return new Proxy(target, {
    get(object, key, receiver) {
      const value = Reflect.get(object, key, receiver);
      if (typeof value !== "function" || typeof key !== "string" || key === "constructor") return value;
      return (...args: unknown[]) => {
        const started = performance.now();
        const done = () => observe(`${prefix}.${key}`, (performance.now() - started) / 1000);
        let result: unknown;
        try {
          result = value.apply(object, args);
        } catch (error) {
          done();
          throw error;
        }
        if (result instanceof Promise) return result.finally(done);
        done();
        return result;
      };
    },
  });
}

/** Writes a file whole or not at all (a temp file renamed over it). */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(temp, text, { mode: 0o644 });
  await Deno.rename(temp, path);
}
