/**
 * The PostgreSQL server of the tests that need one.
 *
 * CI starts a throwaway cluster and sets `KEYCARD_TEST_PG_URL` (see
 * `.ci/run`); that URL is used when set. Otherwise, when Debian's
 * PostgreSQL binaries are installed and this process may run them, a
 * throwaway cluster is started here (initdb in a temp dir, trust auth, a
 * free port on 127.0.0.1, its socket in the temp dir) and stopped on dispose
 * or, at the latest, when the test module unloads. Otherwise there is no
 * server, the reason is printed, and the tests are ignored by name.
 */
import postgres from "postgres";

/** A server the tests may create databases on, as a superuser. */
export interface TestPostgres extends AsyncDisposable {
  /** URL of the server's maintenance database. */
  readonly url: string;
  /** Where it comes from: `KEYCARD_TEST_PG_URL` or the throwaway cluster's directory. */
  readonly origin: string;
}

/** A database of its own for one test, dropped on dispose. */
export interface TestDatabase extends AsyncDisposable {
  /** Its URL. */
  readonly url: string;
  /** Its name. */
  readonly name: string;
}

const PG_ROOT = "/usr/lib/postgresql";

/**
 * The server for this test module: `KEYCARD_TEST_PG_URL`, else a throwaway
 * cluster, else undefined (the reason is printed once).
 *
 * @returns The server, or undefined when this machine or process has none.
 * @throws {Error} When binaries and permissions are there but the cluster does not start (its log is quoted).
 */
export async function startTestPostgres(): Promise<TestPostgres | undefined> {
  const url = envUrl();
  if (url !== undefined) {
    return { url, origin: "KEYCARD_TEST_PG_URL", [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const bin = findBin();
  if (bin === undefined) {
    console.warn(`PostgreSQL tests ignored: KEYCARD_TEST_PG_URL is unset and no ${PG_ROOT}/*/bin/initdb exists`);
    return undefined;
  }
  const runner = pickRunner(bin);
  if (runner === undefined) {
    console.warn(
      `PostgreSQL tests ignored: KEYCARD_TEST_PG_URL is unset and this process may not start ${bin}/initdb ` +
        `(grant --allow-run=runuser as root, or --allow-run=${bin}/initdb,${bin}/pg_ctl otherwise)`,
    );
    return undefined;
  }
  return await startCluster(bin, runner);
}

/**
 * Creates a database with a random name on `server`; dispose drops it,
 * ending whatever connections are still open on it.
 *
 * @param server The server's URL (any database the user may connect to).
 * @returns The new database.
 */
export async function createTestDatabase(server: string): Promise<TestDatabase> {
  const name = `keycard_test_${crypto.randomUUID().replaceAll("-", "")}`;
  await admin(server, `CREATE DATABASE ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    [Symbol.asyncDispose]: () => admin(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function admin(server: string, statement: string): Promise<void> {
  const sql = postgres(server, { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function envUrl(): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: "KEYCARD_TEST_PG_URL" }).state !== "granted") return;
  return Deno.env.get("KEYCARD_TEST_PG_URL") || undefined;
}

function findBin(): string | undefined {
  let versions: number[];
  try {
    versions = [...Deno.readDirSync(PG_ROOT)].map((entry) => Number(entry.name)).filter(Number.isInteger);
  } catch {
    return undefined;
  }
  for (const version of versions.sort((a, b) => b - a)) {
    const bin = `${PG_ROOT}/${version}/bin`;
    try {
      if (Deno.statSync(`${bin}/initdb`).isFile && Deno.statSync(`${bin}/pg_ctl`).isFile) return bin;
    } catch {
      // Not this version.
    }
  }
  return undefined;
}

/** How a PostgreSQL binary is run: as the `postgres` user through runuser (root), or as this user. */
type Runner = (binary: string, args: string[]) => Deno.Command;

function pickRunner(bin: string): Runner | undefined {
  const granted = (command: string) => Deno.permissions.querySync({ name: "run", command }).state === "granted";
  // initdb and postgres refuse to run as root; runuser is how root runs them.
  if (granted("runuser")) {
    return (binary, args) => new Deno.Command("runuser", { args: ["-u", "postgres", "--", binary, ...args] });
  }
  if (granted(`${bin}/initdb`) && granted(`${bin}/pg_ctl`)) {
    return (binary, args) => new Deno.Command(binary, { args });
  }
  return undefined;
}

async function run(runner: Runner, binary: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  const { success, stdout, stderr } = await runner(binary, args).output();
  const decoder = new TextDecoder();
  return { ok: success, output: `${decoder.decode(stdout)}${decoder.decode(stderr)}`.trim() };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function startCluster(bin: string, runner: Runner): Promise<TestPostgres> {
  const dir = await Deno.makeTempDir({ prefix: "keycard_pg_" });
  // The postgres user creates the data directory inside ours.
  await Deno.chmod(dir, 0o777);
  const data = `${dir}/data`;
  const pgCtl = `${bin}/pg_ctl`;
  let stopped = false;
  const stopArgs = ["-D", data, "-m", "immediate", "-w", "stop"];
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    runner(pgCtl, stopArgs).outputSync();
    Deno.removeSync(dir, { recursive: true });
  };
  try {
    const init = await run(runner, `${bin}/initdb`, [
      "-D",
      data,
      "-A",
      "trust",
      "-U",
      "keycard",
      "-E",
      "UTF8",
      "--no-locale",
      "-N",
    ]);
    if (!init.ok) throw new Error(`initdb failed in "${data}": ${init.output}`);
    // A free port can be taken between the check and the start: try another.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const options = `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
      const start = await run(runner, pgCtl, [
        "-D",
        data,
        "-o",
        options,
        "-l",
        `${data}/log`,
        "-w",
        "-t",
        "60",
        "start",
      ]);
      if (start.ok) {
        // Stops the cluster even when no test disposes of it (sync, as unload handlers cannot await).
        addEventListener("unload", stopSync);
        return {
          url: `postgres://keycard@127.0.0.1:${port}/postgres`,
          origin: dir,
          [Symbol.asyncDispose]: async () => {
            if (stopped) return;
            stopped = true;
            removeEventListener("unload", stopSync);
            await run(runner, pgCtl, stopArgs);
            await Deno.remove(dir, { recursive: true });
          },
        };
      }
      if (attempt === 3) {
        const log = await Deno.readTextFile(`${data}/log`).catch(() => "");
        throw new Error(`PostgreSQL did not start in "${data}": ${start.output}\n${log}`);
      }
    }
  } catch (error) {
    stopSync();
    throw error;
  }
}

/** A pool on an address where nothing listens: every connection is refused at once. */
export interface RefusedDatabase extends AsyncDisposable {
  /** The pool (`postgres` client) on it. */
  readonly sql: postgres.Sql;
}

/**
 * A pool on a port of 127.0.0.1 that was free a moment ago, so that connecting is refused (ECONNREFUSED) at once;
 * dispose ends the pool.
 *
 * @returns The pool.
 */
export function refusedDatabase(): RefusedDatabase {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const sql = postgres(`postgres://keycard@127.0.0.1:${port}/keycard`, { onnotice: () => {}, connect_timeout: 5 });
  return { sql, [Symbol.asyncDispose]: () => sql.end({ timeout: 0 }) };
}

/** A pool on a server that takes connections and never answers, as a stalled or half-dead database does. */
export interface SilentDatabase extends AsyncDisposable {
  /** The pool (`postgres` client) on it. */
  readonly sql: postgres.Sql;
}

/**
 * Starts a server on 127.0.0.1 that accepts connections and says nothing, and a pool on it whose connect timeout
 * (30 s) is longer than any store timeout under test; dispose ends the pool, the server and every held connection.
 *
 * @param options The pool's size.
 * @returns The pool.
 */
export function silentDatabase(options: { max?: number } = {}): SilentDatabase {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  const sql = postgres(`postgres://keycard@127.0.0.1:${listener.addr.port}/keycard`, {
    ...(options.max === undefined ? {} : { max: options.max }),
    connect_timeout: 30,
    onnotice: () => {},
  });
  return {
    sql,
    async [Symbol.asyncDispose]() {
      await sql.end({ timeout: 0 });
      listener.close();
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // Closed by the client.
        }
      }
      await accepting;
    },
  };
}
