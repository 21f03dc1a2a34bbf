// Attacks on the audit trail (invariant 2: every host call is counted, and no
// plugin can evict another plugin's events): real plugins flooding real host
// functions through a real PluginHost, real Cedar, real rotated files.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AuditEvent, AuditLog, type AuditLogOptions } from "../../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../../src/host/mod.ts";
import { Metrics } from "../../src/http/metrics.ts";
import { compileGrants, PolicyEngine } from "../../src/policy/mod.ts";
import { PluginHost, type PluginLimits } from "../../src/runtime/mod.ts";
import { bearer, startGateway, within } from "../_gateway_fixture.ts";
import { encoder, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";
import { readRotated } from "../_test_utils.ts";

const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));
const floodWasm = await watFixture("clock_flood");
const relayWasm = await watFixture("relay");

/** The flood fixture's input: how many host calls to make, 8 bytes little endian. */
function times(n: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
  return bytes;
}

/** Every line of `path`, `path.1`, ... (oldest file first), parsed. */
async function onDisk(path: string): Promise<AuditEvent[]> {
  return (await readRotated(path)).lines.map((line) => JSON.parse(line));
}

function sum(events: readonly AuditEvent[], filter: (event: AuditEvent) => boolean = () => true): number {
  return events.filter(filter).reduce((total, event) => total + (event.count ?? 1), 0);
}

interface World {
  host: PluginHost<CallerContext>;
  audit: AuditLog;
  path: string;
  /** The victim's one allowed clock.now: its call id. */
  victim(): Promise<string>;
  close(): Promise<void>;
}

/** A victim (relay, granted clock.now) and a flooder (clock_flood, granted nothing) over one audit log. */
async function world(
  audit: Omit<AuditLogOptions, "file"> & { maxBytes?: number; maxFiles?: number },
  floodLimits: Partial<PluginLimits> = {},
): Promise<World> {
  const root = await Deno.makeTempDir({ prefix: "keycard-audit-attack-" });
  await Deno.mkdir(join(root, "data"));
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/victim", text: compileGrants("victim", [{ "clock.now": {} }]) },
    ],
  });
  const path = join(root, "audit", "audit.jsonl");
  const { maxBytes = 64 * 1024, maxFiles = 2, ...rest } = audit;
  const log = new AuditLog({ ...rest, file: { path, maxBytes, maxFiles } });
  const kv = await KvStore.open(join(root, "kv.sqlite"));
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 20_000 },
    hostFunctions: createHostFunctions({
      engine,
      audit: log,
      fs: await FsCapability.open(join(root, "data")),
      kv,
      logSink: () => {},
    }),
  });
  await host.load(relayWasm, { name: "victim", version: "1.0.0" });
  await host.load(floodWasm, { name: "flood", version: "6.6.6", limits: floodLimits });
  await host.load(relayWasm, { name: "spray", version: "1.0.0" });
  return {
    host,
    audit: log,
    path,
    async victim() {
      const callId = crypto.randomUUID();
      const out = await host.invoke("victim", "clock_now", encoder.encode("{}"), { callId });
      assert.equal(out[0], 0, "the victim's clock.now is allowed");
      return callId;
    },
    async close() {
      await host.close();
      await log.close();
      kv.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

const isVictim = (callId: string) => (event: AuditEvent) => event.plugin === "victim" && event.callId === callId;

Deno.test("adversarial audit: floods cannot evict another plugin's events, and every decision is counted", async () => {
  const t = tally("audit");

  // The flood: 5 invocations of 12,000 denied clock.now each (2,000 past the 10,000 cap).
  const w = await world({ ringSize: 50 });
  try {
    const victim = await w.victim();
    const calls = 5;
    const perCall = 12_000;
    const started = performance.now();
    for (let call = 0; call < calls; call++) await w.host.invoke("flood", "flood", times(perCall));
    const floodMs = performance.now() - started;

    await t.attack("clock.now flood (5 x 12,000 denied) leaves another plugin's event in GET /v1/audit's ring", () => {
      assert.ok(w.audit.query({ plugin: "victim" }).some(isVictim(victim)), "victim gone from the ring (by plugin)");
      assert.ok(w.audit.query({ limit: Infinity }).some(isVictim(victim)), "victim gone from the ring (all)");
    });

    await w.audit.flush();
    const disk = await onDisk(w.path);

    await t.attack("the same flood leaves the event in the rotated files, at a few lines per invocation", () => {
      assert.ok(disk.some(isVictim(victim)), "victim gone from disk");
      const lines = disk.filter((event) => event.plugin === "flood").length;
      // Per call and 1 s window: 4 repeats of their own and one sum; per call one event of refusals.
      const windows = calls + Math.ceil(floodMs / 1000);
      assert.ok(lines <= windows * 5 + calls, `${lines} lines for ${calls * perCall} decisions in ${floodMs} ms`);
      console.log(`  flood: ${calls * perCall} decisions in ${floodMs.toFixed(0)} ms -> ${lines} lines on disk`);
    });

    await t.attack(
      "sum of count on disk == decisions made: 10,000 by Cedar + 2,000 refused past the cap, per call",
      () => {
        assert.equal(sum(disk, (event) => event.plugin === "flood"), calls * perCall);
        const refused = (event: AuditEvent) =>
          event.plugin === "flood" && /refused by the runtime \(limit\)/.test(event.reason ?? "");
        assert.equal(sum(disk, refused), calls * (perCall - 10_000));
        assert.equal(disk.filter(refused).length, calls, "one refusal event per call");
        assert.ok(disk.filter((event) => event.plugin === "flood").every((event) => event.decision === "deny"));
        const counted = w.audit.counters().filter((c) => c.plugin === "flood").reduce((total, c) => total + c.count, 0);
        assert.equal(counted, calls * perCall);
        const stats = w.audit.stats();
        assert.equal(stats.recorded, calls * perCall + 1);
        assert.equal(stats.recorded, stats.events + stats.aggregated + stats.pending);
        assert.equal(stats.pending, 0);
        assert.equal(stats.written, stats.events);
      },
    );

    await t.attack(
      "a sum keeps its first and last time and its call: one call's repeats never merge with another's",
      () => {
        const sums = disk.filter((event) => event.plugin === "flood" && event.lastTime !== undefined && !event.folded);
        assert.ok(sums.length >= calls);
        const perCallId = new Map<string, number>();
        for (const event of disk.filter((event) => event.plugin === "flood")) {
          perCallId.set(event.callId, (perCallId.get(event.callId) ?? 0) + (event.count ?? 1));
          if (event.lastTime !== undefined) assert.ok(event.lastTime >= event.time, JSON.stringify(event));
        }
        assert.deepEqual([...perCallId.values()], Array(calls).fill(perCall));
      },
    );

    await t.attack("/metrics renders the audit backlog, sums and folds from the log's stats", () => {
      const stats = w.audit.stats();
      const text = new Metrics().render({
        queued: 0,
        rejected: 0,
        instances: 0,
        replaced: 0,
        policyVersion: 1,
        decisions: w.audit.counters(),
        audit: stats,
      });
      assert.match(text, /^keycard_audit_backlog 0$/m);
      assert.match(text, new RegExp(`^keycard_audit_aggregated_decisions_total ${stats.aggregated}$`, "m"));
      assert.ok(stats.aggregated > calls * perCall * 0.99, `aggregated ${stats.aggregated}`);
      assert.match(text, /^keycard_audit_folded_decisions_total 0$/m);
      assert.match(text, new RegExp(`^keycard_audit_events_total ${stats.events}$`, "m"));
      assert.match(text, /^# TYPE keycard_audit_pending_decisions gauge$/m);
    });
  } finally {
    await w.close();
  }

  // Past a small cap, with every kind of host call the worker refuses on its own.
  const capped = await world({}, { hostCalls: 1000 });
  try {
    await t.attack(
      "host calls past the hostCalls cap are audited and counted: 1,000 decided + 2,000 refused",
      async () => {
        await capped.host.invoke("flood", "flood", times(3000));
        await capped.audit.flush();
        const events = capped.audit.query({ plugin: "flood", limit: Infinity });
        assert.equal(sum(events), 3000);
        const refused = events.filter((event) => event.resource === "(unresolved)");
        assert.equal(refused.length, 1);
        assert.equal(refused[0]!.count, 2000);
        assert.equal(refused[0]!.action, "clock.now");
        assert.match(refused[0]!.reason!, /more than 1000 host calls/);
        assert.equal(sum(events, (event) => event.reason === "denied by default"), 1000);
      },
    );

    await t.attack("Extism's log_info past the cap is counted as log.write refusals", async () => {
      await capped.host.invoke("flood", "flood_log", times(1500));
      await capped.audit.flush();
      const events = capped.audit.query({ plugin: "flood", action: "log.write", limit: Infinity });
      assert.equal(sum(events), 1500);
      assert.equal(sum(events, (event) => event.resource === "(unresolved)"), 500);
    });
  } finally {
    await capped.close();
  }

  // A spray of distinct decisions (a new resource and call every time): the budget folds it.
  const small = await world({
    ringSize: 40,
    maxBytes: 16 * 1024,
    maxFiles: 3,
    aggregate: { burst: 50, perSecond: 20 },
  });
  try {
    const victim = await small.victim();
    const sprays = 600;
    for (let index = 0; index < sprays; index++) {
      await small.host.invoke("spray", "env_get", encoder.encode(JSON.stringify({ name: `V${index}` })));
    }
    await small.audit.flush();
    const disk = await onDisk(small.path);

    await t.attack("a spray of 600 distinct denied env.get is folded past the plugin's budget, each counted", () => {
      assert.equal(sum(disk, (event) => event.plugin === "spray"), sprays);
      const folded = disk.filter((event) => event.plugin === "spray" && event.folded);
      assert.ok(folded.length >= 1, "nothing folded");
      assert.ok(folded.every((event) => event.resource === "*" && event.action === "env.get" && event.callId === "*"));
      assert.ok(disk.filter((event) => event.plugin === "spray").length < 150, "the spray was not bounded");
      assert.equal(small.audit.stats().folded, sum(folded));
    });

    await t.attack("the spray leaves another plugin's event in the ring and in files that hold 64 KiB", () => {
      assert.ok(small.audit.query({ limit: Infinity }).some(isVictim(victim)), "victim gone from the ring");
      assert.ok(disk.some(isVictim(victim)), "victim gone from disk");
    });
  } finally {
    await small.close();
  }

  await t.attack("a plugin with 10,000 distinct events cannot push 3 of another's out of a ring of 10", () => {
    const log = new AuditLog({ ringSize: 10, aggregate: false });
    const event = (plugin: string, index: number): AuditEvent => ({
      time: new Date(Date.UTC(2025, 0, 1) + index).toISOString(),
      callId: `c-${index}`,
      plugin,
      version: "1.0.0",
      action: "fs.read",
      resource: `File::"/f/${index}"`,
      decision: "deny",
      policies: [],
      errors: [],
      caller: null,
      durationUs: 1,
      reason: "denied by default",
    });
    for (let index = 0; index < 3; index++) log.record(event("victim", index));
    for (let index = 3; index < 10_003; index++) log.record(event("flood", index));
    assert.deepEqual(log.query({ plugin: "victim" }).map((found) => found.callId), ["c-2", "c-1", "c-0"]);
    assert.equal(log.query({ limit: Infinity }).length, 10);
    // Fair, not frozen: the victim's own new events push out its own oldest first only once it holds the most.
    assert.equal(log.query({ plugin: "flood", limit: Infinity }).length, 7);
  });

  await t.attack("a forged count (0, -5, 1.5, NaN, 2^60) on a recorded event counts as one decision", () => {
    const log = new AuditLog({ aggregate: false });
    for (const count of [0, -5, 1.5, NaN, 2 ** 60]) {
      log.record({
        time: new Date().toISOString(),
        callId: `c-${count}`,
        plugin: "p",
        version: "1",
        action: "clock.now",
        resource: 'Runtime::"clock"',
        decision: "deny",
        policies: [],
        errors: [],
        caller: null,
        durationUs: 1,
        count,
      });
    }
    assert.equal(log.stats().recorded, 5);
    assert.ok(log.query().every((event) => event.count === undefined));
  });

  // Through the gateway: GET /v1/audit and the SSE stream show sums with their count; /metrics the audit's work.
  const fx = await startGateway({
    limits: { deadlineMs: 10_000 },
    plugins: [{
      name: "flood",
      wasm: floodWasm,
      manifest: "name: flood\nversion: 1.0.0\nexports:\n  - name: flood\n  - name: flood_log\ncapabilities: []\n",
    }],
  });
  const admin = bearer(fx.adminToken);
  let floodEvents = 0;
  try {
    await t.attack(
      "GET /v1/audit/stream delivers the flood as a few events, the sum with its exact count",
      async () => {
        const controller = new AbortController();
        const response = await fx.request("/v1/audit/stream?plugin=flood", {
          headers: admin,
          signal: controller.signal,
        });
        assert.equal(response.status, 200);
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = "";
        const read = async (pattern: RegExp) => {
          while (!pattern.test(text)) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`stream ended before ${pattern}`);
            text += value;
          }
        };
        try {
          await within(5000, "ready", read(/event: ready/));
          const started = performance.now();
          const invoked = await fx.request("/v1/plugins/flood/invoke/flood", {
            method: "POST",
            headers: admin,
            body: times(5000),
          });
          assert.equal(invoked.status, 200, await invoked.text());
          const floodMs = performance.now() - started;
          const decisions = () =>
            text.split("\n").filter((line) => line.startsWith('data: {"time"')).map((line) =>
              JSON.parse(line.slice(6)) as AuditEvent
            );
          // Sums come when their 1 s window ends, by the log's timer: no further decision is needed.
          await within(
            5000,
            "the sums",
            (async () => {
              while (sum(decisions()) < 5000) await read(new RegExp(`[^]{${text.length + 1}}`));
            })(),
          );
          assert.equal(sum(decisions()), 5000);
          assert.ok(decisions().length <= 5 * (1 + Math.ceil(floodMs / 1000)), `${decisions().length} events`);
          assert.ok(decisions().some((event) => event.count! > 1000 && event.lastTime !== undefined));
        } finally {
          controller.abort();
          await reader.cancel().catch(() => {});
        }
      },
    );

    await t.attack("GET /v1/audit shows every event with its count, summing to the decisions made", async () => {
      const response = await fx.request("/v1/audit?plugin=flood&limit=10000", { headers: admin });
      assert.equal(response.status, 200);
      const { events } = await response.json() as { events: AuditEvent[] };
      assert.ok(events.every((event) => Number.isInteger(event.count) && event.count! >= 1));
      assert.equal(sum(events), 5000);
      assert.ok(events.length <= 25, `${events.length} events`);
      floodEvents = events.length;
    });

    await t.attack(
      "GET /metrics counts the flood's decisions exactly and shows the audit backlog and sums",
      async () => {
        const response = await fx.request("/metrics", { headers: admin });
        const text = await response.text();
        assert.equal(response.status, 200, text);
        assert.match(text, /keycard_decisions_total\{plugin="flood",action="clock.now",decision="deny"\} 5000/);
        assert.match(text, /^keycard_audit_backlog \d+$/m);
        const aggregated = Number(/^keycard_audit_aggregated_decisions_total (\d+)$/m.exec(text)?.[1]);
        assert.equal(aggregated, 5000 - floodEvents);
      },
    );
  } finally {
    await fx.close();
  }

  t.report();
});
