import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { testOnDatabase } from "../../../tests/_postgres_kv.ts";
import { recordOf } from "../../registry/_test_utils.ts";
import { StoreUnavailableError } from "../errors.ts";
import { type Change, ChangeFeed, type ChangeFeedOptions } from "./change_feed.ts";
import { PostgresPluginStore } from "./postgres_plugin_store.ts";
import { connect } from "./connect.ts";
import { startTcpProxy } from "../../../tests/_tcp_proxy.ts";

const WAIT_MS = 15_000;

/** What a feed's `apply` and `onError` received, with bounded waits for what has not arrived yet. */
class Recorder {
  readonly calls: Change[][] = [];
  readonly errors: unknown[] = [];
  #wake: (() => void) | undefined;

  /** Records a call; `gate`, when set, is awaited inside it (apply blocks). */
  gate: Promise<void> | undefined;
  /** Throws from the next calls while above zero. */
  failures = 0;

  readonly options: ChangeFeedOptions = {
    apply: async (changes) => {
      this.calls.push(changes);
      this.#wake?.();
      if (this.gate !== undefined) await this.gate;
      if (this.failures > 0) {
        this.failures--;
        throw new Error("apply failed on purpose");
      }
    },
    onError: (error) => {
      this.errors.push(error);
      this.#wake?.();
    },
  };

  /** Waits until `done()` holds, woken by each call and error; fails after WAIT_MS. */
  async until(what: string, done: () => boolean): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!done()) {
        await new Promise<void>((resolve, reject) => {
          this.#wake = resolve;
          timer = setTimeout(() => reject(new Error(`Waited ${WAIT_MS} ms for ${what}`)), WAIT_MS);
        });
        clearTimeout(timer);
      }
    } finally {
      clearTimeout(timer);
      this.#wake = undefined;
    }
  }

  /** Every change applied so far. */
  applied(): Change[] {
    return this.calls.flat();
  }
}

/** Waits for a condition that no callback announces (a server-side state), polling it; bounded. */
async function poll<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Waited ${WAIT_MS} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function listenerPid(admin: Sql): Promise<number | undefined> {
  const rows = await admin`SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()`;
  return rows[0]?.pid;
}

testOnDatabase("ChangeFeed: a put on one replica reaches the feed of another, after a first catch-up", async (db) => {
  const recorder = new Recorder();
  const feed = await ChangeFeed.listen(await db.connect(), recorder.options);
  try {
    assert.equal(feed.connected, true);
    await recorder.until("the first catch-up", () => recorder.calls.length >= 1);
    assert.deepEqual(recorder.calls[0], []);
    const other = new PostgresPluginStore(await db.connect());
    const before = Date.now();
    await other.put(await recordOf("hello", "1.0.0"));
    await recorder.until("the put", () => recorder.applied().length >= 1);
    const [change] = recorder.applied();
    assert.equal(change?.kind, "plugin");
    assert.equal(change?.name, "hello");
    assert.equal(change?.change, (await other.heads()).get("hello")?.change);
    assert.ok(change!.at >= before - 1000 && change!.at <= Date.now() + 1000, String(change?.at));
    assert.deepEqual(recorder.errors, []);
  } finally {
    await feed.close();
  }
});

testOnDatabase(
  "ChangeFeed: after its connection is terminated the feed listens again and catches up with apply([])",
  async (db) => {
    const recorder = new Recorder();
    const admin = await db.connect();
    const writer = new PostgresPluginStore(await db.connect());
    const feed = await ChangeFeed.listen(await db.connect(), recorder.options);
    try {
      await recorder.until("the first catch-up", () => recorder.calls.length >= 1);
      for (let round = 1; round <= 3; round++) {
        const pid = await poll("the LISTEN backend", () => listenerPid(admin));
        const callsBefore = recorder.calls.length;
        await admin`SELECT pg_terminate_backend(${pid})`;
        // Written while the feed may be disconnected: the notification can be lost, the catch-up cannot.
        await writer.put(await recordOf("p", `${round}.0.0`));
        await recorder.until(
          `the catch-up after reconnect ${round}`,
          () => recorder.calls.slice(callsBefore).some((call) => call.length === 0),
        );
        const next = await poll("a new LISTEN backend", async () => {
          const now = await listenerPid(admin);
          return now !== pid ? now : undefined;
        });
        assert.notEqual(next, pid);
        assert.equal(feed.connected, true);
      }
      // Heard again: a write after the reconnect arrives as a change.
      await writer.put(await recordOf("after", "1.0.0"));
      await recorder.until("the write after reconnecting", () => recorder.applied().some((c) => c.name === "after"));
    } finally {
      await feed.close();
    }
  },
);

testOnDatabase(
  "ChangeFeed: while the database is away the feed is not connected and retries; when it is back it catches up",
  async (db) => {
    const direct = await db.connect();
    await using proxy = await startTcpProxy({ hostname: direct.options.host[0]!, port: direct.options.port[0]! });
    const viaProxy = await connect(`postgres://keycard@127.0.0.1:${proxy.port}/${direct.options.database}`);
    const recorder = new Recorder();
    const feed = await ChangeFeed.listen(viaProxy, recorder.options);
    try {
      await recorder.until("the first catch-up", () => recorder.calls.length >= 1);
      proxy.cut();
      // Each attempt to listen again is refused and reported; the client backs off between them.
      await recorder.until("two refused attempts", () => recorder.errors.length >= 2);
      assert.equal(feed.connected, false);
      for (const error of recorder.errors) {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, /^Cannot listen for changes again: the database is unreachable \(\w+\)$/);
      }
      // A change made meanwhile is never heard; the catch-up after the outage stands for it.
      await new PostgresPluginStore(direct).put(await recordOf("during", "1.0.0"));
      const calls = recorder.calls.length;
      proxy.restore();
      await recorder.until(
        "the catch-up after the outage",
        () => recorder.calls.slice(calls).some((c) => c.length === 0),
      );
      assert.equal(feed.connected, true);
      await new PostgresPluginStore(direct).put(await recordOf("after", "1.0.0"));
      await recorder.until("the write after the outage", () => recorder.applied().some((c) => c.name === "after"));
    } finally {
      await feed.close();
      await viaProxy.end({ timeout: 0 });
    }
  },
);

testOnDatabase(
  "ChangeFeed: changes heard while apply runs are applied together in a later call, none lost",
  async (db) => {
    const recorder = new Recorder();
    let open!: () => void;
    recorder.gate = new Promise((resolve) => open = resolve);
    const feed = await ChangeFeed.listen(await db.connect(), recorder.options);
    try {
      // The first catch-up blocks in apply; 20 writes arrive meanwhile.
      await recorder.until("the first catch-up", () => recorder.calls.length >= 1);
      const writer = new PostgresPluginStore(await db.connect());
      const written: number[] = [];
      for (let i = 0; i < 20; i++) {
        await writer.put(await recordOf(`p${i}`, "1.0.0"));
        written.push((await writer.heads()).get(`p${i}`)!.change);
      }
      await poll("20 pending changes", () => feed.pending === 20 ? true : undefined);
      assert.equal(recorder.calls.length, 1, "apply ran again while it was running");
      recorder.gate = undefined;
      open();
      await recorder.until("every change", () => recorder.applied().length >= 20);
      assert.equal(recorder.calls.length, 2);
      assert.deepEqual(recorder.calls[1]!.map((c) => c.change), written);
      assert.equal(feed.pending, 0);
    } finally {
      open();
      await feed.close();
    }
  },
);

testOnDatabase("ChangeFeed: an apply that throws is reported and retried until it succeeds", async (db) => {
  const recorder = new Recorder();
  recorder.failures = 2;
  const feed = await ChangeFeed.listen(await db.connect(), { ...recorder.options, maxRetryDelayMs: 200 });
  try {
    await recorder.until("the third attempt", () => recorder.calls.length >= 3);
    assert.deepEqual([...recorder.calls], [[], [], []]);
    assert.equal(recorder.errors.length, 2);
    assert.match(String(recorder.errors[0]), /apply failed on purpose/);
    // A failed batch of changes is applied again whole.
    recorder.failures = 1;
    await new PostgresPluginStore(await db.connect()).put(await recordOf("p", "1.0.0"));
    await recorder.until("the retried change", () => recorder.calls.length >= 5);
    assert.deepEqual(recorder.calls.slice(3).map((call) => call.map((c) => c.name)), [["p"], ["p"]]);
    assert.equal(recorder.errors.length, 3);
  } finally {
    await feed.close();
  }
});

testOnDatabase("ChangeFeed: a notification it cannot read is reported and followed by a catch-up", async (db) => {
  const recorder = new Recorder();
  const sql = await db.connect();
  const feed = await ChangeFeed.listen(sql, recorder.options);
  try {
    await recorder.until("the first catch-up", () => recorder.calls.length >= 1);
    await sql`SELECT pg_notify('keycard_changes', 'not json')`;
    await recorder.until("the catch-up after garbage", () => recorder.calls.length >= 2);
    assert.deepEqual(recorder.calls[1], []);
    assert.ok(recorder.errors[0] instanceof SyntaxError, String(recorder.errors[0]));
    assert.match((recorder.errors[0] as Error).message, /^Change notification "not json" is not JSON$/);
    for (
      const payload of [
        '{"kind":"other","name":"x","change":1,"at":1}',
        '{"kind":"plugin","name":"","change":1,"at":1}',
        '{"kind":"policy","name":"a.cedar","change":0,"at":1}',
        "[]",
      ]
    ) {
      const calls = recorder.calls.length;
      await sql`SELECT pg_notify('keycard_changes', ${payload})`;
      await recorder.until(`the catch-up after ${payload}`, () => recorder.calls.length > calls);
      assert.deepEqual(recorder.calls.at(-1), []);
      assert.ok(recorder.errors.at(-1) instanceof TypeError, String(recorder.errors.at(-1)));
    }
    assert.equal(recorder.errors.length, 5);
  } finally {
    await feed.close();
  }
});

testOnDatabase("ChangeFeed.close() stops listening and retrying, and waits for a running apply", async (db) => {
  const recorder = new Recorder();
  recorder.failures = 1_000;
  const admin = await db.connect();
  const feed = await ChangeFeed.listen(await db.connect(), recorder.options);
  await recorder.until("a failed apply", () => recorder.errors.length >= 1);
  // Closing during the wait before a retry ends the wait at once.
  await feed.close();
  await feed.close();
  assert.equal(feed.connected, false);
  const calls = recorder.calls.length;
  await poll("the LISTEN backend to end", async () => (await listenerPid(admin)) === undefined ? true : undefined);
  await new PostgresPluginStore(await db.connect()).put(await recordOf("p", "1.0.0"));
  assert.equal(recorder.calls.length, calls);

  // A close during a running apply returns once it has returned.
  const second = new Recorder();
  let open!: () => void;
  second.gate = new Promise((resolve) => open = resolve);
  const blocked = await ChangeFeed.listen(await db.connect(), second.options);
  await second.until("the first catch-up", () => second.calls.length >= 1);
  let closed = false;
  const closing = blocked.close().then(() => closed = true);
  await Promise.resolve();
  assert.equal(closed, false);
  open();
  await closing;
  assert.equal(closed, true);
});

Deno.test("ChangeFeed.listen() fails as unavailable at once when nothing listens at the database's address", async () => {
  const { default: postgres } = await import("postgres");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const sql = postgres(`postgres://keycard@127.0.0.1:${port}/keycard`, { onnotice: () => {}, connect_timeout: 5 });
  try {
    const started = performance.now();
    await assert.rejects(
      ChangeFeed.listen(sql, { apply: () => Promise.resolve(), timeoutMs: 10_000 }),
      (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.equal(error.message, "Cannot listen for changes: the database is unreachable (ECONNREFUSED)");
        return true;
      },
    );
    assert.ok(performance.now() - started < 5000);
    await assert.rejects(ChangeFeed.listen(sql, {} as ChangeFeedOptions), TypeError);
  } finally {
    await sql.end({ timeout: 0 });
  }
});
