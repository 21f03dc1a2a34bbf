import assert from "node:assert/strict";
import type { AuditEvent } from "./audit_event.ts";
import { AuditLog } from "./audit_log.ts";
import { readRotated } from "../../tests/_test_utils.ts";

function event(index: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(Date.UTC(2025, 0, 1) + index * 1000).toISOString(),
    callId: `c-${String(index).padStart(6, "0")}`,
    plugin: "enrich",
    version: "1.0.0",
    action: "fs.read",
    resource: `File::"/data/x/${String(index).padStart(6, "0")}.txt"`,
    decision: "allow",
    policies: ["grant-data"],
    errors: [],
    caller: "alice",
    durationUs: 17,
    ...overrides,
  };
}

/** Stats of a log that summed, folded, evicted, rotated and failed nothing. */
const QUIET = { aggregated: 0, folded: 0, pending: 0, evicted: 0, queued: 0, rotations: 0, listenerErrors: 0 };

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "keycard_audit_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("AuditLog.query() returns the newest events first and overwrites the oldest once the ring is full", () => {
  const log = new AuditLog({ ringSize: 3 });
  for (let index = 0; index < 5; index++) log.record(event(index));
  assert.deepEqual(log.query().map((found) => found.callId), ["c-000004", "c-000003", "c-000002"]);
  assert.equal(log.stats().recorded, 5);
});

Deno.test("AuditLog.query() filters by plugin, action, decision and since, up to limit", () => {
  const log = new AuditLog();
  log.record(event(0));
  log.record(event(1, { plugin: "other" }));
  log.record(event(2, { action: "http.fetch" }));
  log.record(event(3, { decision: "deny", reason: "denied by default", policies: [] }));
  log.record(event(4));
  log.record(event(5));
  const ids = (found: AuditEvent[]) => found.map((one) => one.callId);
  assert.deepEqual(ids(log.query({ plugin: "other" })), ["c-000001"]);
  assert.deepEqual(ids(log.query({ action: "http.fetch" })), ["c-000002"]);
  assert.deepEqual(ids(log.query({ decision: "deny" })), ["c-000003"]);
  assert.deepEqual(ids(log.query({ plugin: "enrich", action: "fs.read", decision: "allow" })), [
    "c-000005",
    "c-000004",
    "c-000000",
  ]);
  assert.deepEqual(ids(log.query({ since: event(4).time })), ["c-000005", "c-000004"]);
  assert.deepEqual(ids(log.query({ since: new Date(event(3).time), decision: "allow" })), ["c-000005", "c-000004"]);
  assert.deepEqual(ids(log.query({ limit: 2 })), ["c-000005", "c-000004"]);
  assert.deepEqual(log.query({ limit: 0 }), []);
  assert.equal(log.query({ limit: Infinity }).length, 6);
});

Deno.test("AuditLog.query() defaults to the newest 100 events", () => {
  const log = new AuditLog();
  for (let index = 0; index < 150; index++) log.record(event(index));
  const found = log.query();
  assert.equal(found.length, 100);
  assert.equal(found[0]?.callId, "c-000149");
  assert.equal(found[99]?.callId, "c-000050");
});

Deno.test("AuditLog.query() refuses an invalid since or limit", () => {
  const log = new AuditLog();
  assert.throws(() => log.query({ since: "yesterday" }), { name: "RangeError", message: /since "yesterday"/ });
  assert.throws(() => log.query({ since: new Date(NaN) }), RangeError);
  assert.throws(() => log.query({ limit: -1 }), { name: "RangeError", message: /limit -1/ });
  assert.throws(() => log.query({ limit: 1.5 }), RangeError);
});

Deno.test("AuditLog() refuses invalid sizes and an empty path", () => {
  assert.throws(() => new AuditLog({ ringSize: 0 }), { name: "RangeError", message: /ringSize 0/ });
  assert.throws(() => new AuditLog({ file: { path: "a", maxBytes: 0 } }), /file\.maxBytes 0/);
  assert.throws(() => new AuditLog({ file: { path: "a", maxFiles: -1 } }), /file\.maxFiles -1/);
  assert.throws(() => new AuditLog({ file: { path: "" } }), TypeError);
});

Deno.test("AuditLog.record() keeps a frozen copy of the event", () => {
  const log = new AuditLog();
  const original = event(0);
  log.record(original);
  original.policies.push("late");
  original.plugin = "rewritten";
  const [stored] = log.query();
  assert.ok(stored);
  assert.equal(stored.plugin, "enrich");
  assert.deepEqual(stored.policies, ["grant-data"]);
  assert.ok(Object.isFrozen(stored) && Object.isFrozen(stored.policies));
});

Deno.test("AuditLog.subscribe() delivers each event until unsubscribed", () => {
  const log = new AuditLog();
  const seen: string[] = [];
  const unsubscribe = log.subscribe((one) => seen.push(one.callId));
  log.record(event(0));
  log.record(event(1));
  unsubscribe();
  unsubscribe();
  log.record(event(2));
  assert.deepEqual(seen, ["c-000000", "c-000001"]);
});

Deno.test("AuditLog.record() survives a throwing or rejecting listener", async () => {
  const log = new AuditLog();
  const seen: string[] = [];
  log.subscribe(() => {
    throw new Error("listener bug");
  });
  log.subscribe(() => Promise.reject(new Error("async listener bug")));
  log.subscribe((one) => seen.push(one.callId));
  log.record(event(0));
  await Promise.resolve(); // lets the rejection be handled
  assert.deepEqual(seen, ["c-000000"]);
  assert.equal(log.query().length, 1);
  assert.equal(log.stats().listenerErrors, 2);
});

Deno.test("AuditLog.subscribe() lets a listener unsubscribe itself during dispatch", () => {
  const log = new AuditLog();
  const seen: string[] = [];
  const unsubscribe = log.subscribe(() => {
    seen.push("first");
    unsubscribe();
  });
  log.subscribe(() => seen.push("second"));
  log.record(event(0));
  log.record(event(1));
  assert.deepEqual(seen, ["first", "second", "second"]);
});

Deno.test("AuditLog.counters() counts by plugin, action and decision", () => {
  const log = new AuditLog({ ringSize: 2 });
  log.record(event(0));
  log.record(event(1));
  log.record(event(2, { decision: "deny" }));
  log.record(event(3, { plugin: "other" }));
  log.record(event(4, { action: "http.fetch" }));
  const counters = log.counters();
  assert.deepEqual(counters, [
    { plugin: "enrich", action: "fs.read", decision: "allow", count: 2 },
    { plugin: "enrich", action: "fs.read", decision: "deny", count: 1 },
    { plugin: "other", action: "fs.read", decision: "allow", count: 1 },
    { plugin: "enrich", action: "http.fetch", decision: "allow", count: 1 },
  ]);
  counters[0]!.count = 99;
  assert.equal(log.counters()[0]?.count, 2);
});

Deno.test("AuditLog.flush() appends one JSON line per event, in order, to a 0o600 file in a new directory", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/nested/deeper/audit.jsonl`;
    const log = new AuditLog({ file: { path } });
    const events = [event(0), event(1, { decision: "deny", reason: "forbidden by p9" }), event(2, { caller: null })];
    for (const one of events) log.record(one);
    assert.equal(log.stats().queued, 3);
    await log.flush();
    const lines = (await Deno.readTextFile(path)).split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(lines.map((line) => JSON.parse(line)), events);
    assert.deepEqual(log.stats(), { ...QUIET, recorded: 3, events: 3, written: 3 });
    if (Deno.build.os !== "windows") assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    await log.close();
  });
});

Deno.test("AuditLog.flush() rotates to path.1, path.2 ... and keeps only maxFiles rotated files", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    const lineBytes = JSON.stringify(event(0)).length + 1; // every line has the same length
    const perFile = 4;
    const maxFiles = 3;
    const log = new AuditLog({ file: { path, maxBytes: lineBytes * perFile + lineBytes - 1, maxFiles } });
    const total = 30;
    for (let index = 0; index < total; index++) {
      log.record(event(index));
      if (index % 7 === 0) await log.flush(); // batches of varied sizes
    }
    await log.close();
    const { files, lines } = await readRotated(path);
    assert.deepEqual(files, [path, `${path}.1`, `${path}.2`, `${path}.3`]);
    for (const file of files) assert.ok((await Deno.stat(file)).size <= lineBytes * perFile);
    // 30 lines in files of 4: 7 rotations, 2 lines in the current file, 3 full rotated files kept.
    assert.equal(log.stats().rotations, 7);
    const kept = 2 + perFile * maxFiles;
    assert.equal(lines.length, kept);
    const expected = Array.from({ length: kept }, (_, offset) => event(total - kept + offset).callId);
    assert.deepEqual(lines.map((line) => JSON.parse(line).callId), expected);
  });
});

Deno.test("AuditLog.flush() gives a line longer than maxBytes a file of its own", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    await using log = new AuditLog({ file: { path, maxBytes: 64, maxFiles: 10 } });
    for (let index = 0; index < 3; index++) log.record(event(index));
    await log.flush();
    const { files, lines } = await readRotated(path);
    assert.equal(files.length, 3);
    assert.deepEqual(lines.map((line) => JSON.parse(line).callId), ["c-000000", "c-000001", "c-000002"]);
  });
});

Deno.test("AuditLog.flush() appends to an existing file and continues its rotation", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    const options = { file: { path, maxBytes: 2048, maxFiles: 1000 } };
    const first = new AuditLog(options);
    for (let index = 0; index < 50; index++) first.record(event(index));
    await first.close();
    const second = new AuditLog(options);
    for (let index = 50; index < 100; index++) second.record(event(index));
    await second.close();
    const { lines } = await readRotated(path);
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).callId),
      Array.from({ length: 100 }, (_, index) => event(index).callId),
    );
  });
});

Deno.test("AuditLog.flush() loses no event under concurrent records, flushes and many rotations", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    const maxBytes = 32 * 1024;
    const log = new AuditLog({ ringSize: 1000, file: { path, maxBytes, maxFiles: 100_000 } });
    const tasks = 40;
    const perTask = 500;
    const flushes: Promise<void>[] = [];
    await Promise.all(Array.from({ length: tasks }, async (_, task) => {
      for (let index = 0; index < perTask; index++) {
        log.record(event(task * perTask + index, { plugin: `p${task}` }));
        if (index % 7 === task % 7) await Promise.resolve();
        if (index % 50 === task % 50) await new Promise((resolve) => setTimeout(resolve, 0));
        if (index % 97 === 0) flushes.push(log.flush());
        if (index % 211 === task) await log.flush();
      }
    }));
    await Promise.all(flushes);
    await log.close();

    const { files, lines } = await readRotated(path);
    assert.equal(lines.length, tasks * perTask);
    const ids = new Set(lines.map((line) => JSON.parse(line).callId as string));
    assert.equal(ids.size, tasks * perTask);
    for (let index = 0; index < tasks * perTask; index++) assert.ok(ids.has(event(index).callId));
    for (const file of files) assert.ok((await Deno.stat(file)).size <= maxBytes);
    const stats = log.stats();
    assert.equal(stats.recorded, tasks * perTask);
    assert.equal(stats.written, tasks * perTask);
    assert.equal(stats.queued, 0);
    assert.equal(stats.rotations, files.length - 1);
    assert.ok(stats.rotations > 100, `${stats.rotations} rotations`);
    assert.equal(stats.lastError, undefined);
  });
});

Deno.test("AuditLog.flush() keeps events queued when a write fails and retries on the next flush", async () => {
  await withTempDir(async (dir) => {
    const blocker = `${dir}/logs`;
    await Deno.writeTextFile(blocker, "a file where the directory should be");
    const path = `${blocker}/audit.jsonl`;
    const log = new AuditLog({ file: { path } });
    log.record(event(0));
    log.record(event(1));
    await assert.rejects(log.flush(), { message: new RegExp(`Cannot write audit log "${path}"`) });
    log.record(event(2));
    const failed = log.stats();
    assert.equal(failed.written, 0);
    assert.equal(failed.queued, 3);
    assert.match(failed.lastError ?? "", /Cannot write audit log/);
    await assert.rejects(log.close()); // still blocked: close fails but keeps the events

    await Deno.remove(blocker);
    await log.close(); // a later close retries
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    assert.deepEqual(lines.map((line) => JSON.parse(line).callId), ["c-000000", "c-000001", "c-000002"]);
    assert.equal(log.stats().written, 3);
    assert.equal(log.stats().queued, 0);
  });
});

Deno.test("AuditLog.close() is idempotent and later records stay in memory only", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    const log = new AuditLog({ file: { path } });
    log.record(event(0));
    await Promise.all([log.close(), log.close()]);
    await log.close();
    log.record(event(1));
    await log.flush();
    await log.close();
    assert.equal((await Deno.readTextFile(path)).split("\n").length, 2);
    assert.equal(log.query().length, 2);
    assert.deepEqual(log.stats(), { ...QUIET, recorded: 2, events: 2, written: 1 });
  });
});

Deno.test("AuditLog[Symbol.asyncDispose]() flushes and closes the file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    {
      await using log = new AuditLog({ file: { path } });
      log.record(event(0));
    }
    assert.equal(JSON.parse(await Deno.readTextFile(path)).callId, "c-000000");
  });
});

Deno.test("AuditLog.emitSumsOf() emits one call's pending sums now, with their counts, and leaves other calls' pending", () => {
  const log = new AuditLog({ aggregate: { windowMs: 60_000, repeats: 2, burst: 1000, perSecond: 1000 } });
  const seen: AuditEvent[] = [];
  log.subscribe((e) => void seen.push(e));
  const at = new Date().toISOString();
  for (const callId of ["c-1", "c-2"]) {
    for (let i = 0; i < 5; i++) {
      log.record(event(0, { callId, time: at, action: "clock.now", resource: 'Clock::"system"' }));
    }
  }
  assert.equal(seen.length, 4, "two of each call on their own, three of each summed and pending");
  assert.equal(log.stats().pending, 6);
  log.emitSumsOf("c-1");
  assert.equal(seen.length, 5);
  assert.equal(seen[4]!.callId, "c-1");
  assert.equal(seen[4]!.count, 3);
  assert.equal(log.stats().pending, 3, "c-2's sum is still held");
  log.emitSumsOf("c-1");
  assert.equal(seen.length, 5, "nothing left of c-1");
  log.emitSumsOf("no-such-call");
  assert.equal(log.stats().pending, 3);
});
