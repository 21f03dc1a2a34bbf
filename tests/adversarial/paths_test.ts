// The standing adversarial suite, area "paths": file-path attacks through a real plugin (relay.wat, one export per
// host function) and a WASI plugin (wasi_files.wat, path_open under a preopen), under fs.* grants for one directory,
// with real Cedar and real files. What must hold for every attack: no byte outside the grant is read or written (a
// snapshot of every file outside data/x, and a canary beside the data root, are compared before and after), a read
// never returns a secret, every call leaves an audit trace, every allowed decision names a file inside /data/x, and
// an attack meant to escape is refused and audited as a denial.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../../src/host/mod.ts";
import { compileGrants, type Grant, PolicyEngine } from "../../src/policy/mod.ts";
import { PluginHost } from "../../src/runtime/mod.ts";
import { decoder, encoder, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

const SECRETS = ["CANARY-OUTSIDE-ROOT", "SECRET-OF-XY", "SECRET-AT-ROOT", "SECRET-IN-X-DOT"];
const GRANTS: Grant[] = [
  { "fs.read": { dir: "data/x" } },
  { "fs.write": { dir: "data/x" } },
  { "fs.list": { dir: "data/x" } },
  { "fs.delete": { dir: "data/x" } },
];

type Reply = { ok: true; text: string } | { ok: false; code: string; message: string };
type Fn = "fs_read" | "fs_write" | "fs_list" | "fs_delete";

interface Site {
  /** Holds the data root, the canary beside it, and the state (audit, kv) outside both. */
  outer: string;
  root: string;
  host: PluginHost<CallerContext>;
  audit: AuditLog;
  /** Calls a relay export with raw input bytes. */
  raw(fn: Fn, input: Uint8Array): Promise<Reply>;
  close(): Promise<void>;
}

async function site(): Promise<Site> {
  const outer = await Deno.realPath(await Deno.makeTempDir({ prefix: "keycard-adv-paths-" }));
  const root = join(outer, "root");
  await Deno.mkdir(join(root, "data", "x"), { recursive: true });
  await Deno.mkdir(join(root, "data", "xy"), { recursive: true });
  await Deno.mkdir(join(root, "data", "x."), { recursive: true });
  await Deno.mkdir(join(outer, "state"));
  await Deno.mkdir(join(outer, "outside-dir"));
  await Deno.writeTextFile(join(outer, "canary.txt"), SECRETS[0]!);
  await Deno.writeTextFile(join(outer, "outside-dir", "inner.txt"), SECRETS[0]!);
  await Deno.writeTextFile(join(root, "data", "xy", "secret.txt"), SECRETS[1]!);
  await Deno.writeTextFile(join(root, "secret.txt"), SECRETS[2]!);
  await Deno.writeTextFile(join(root, "data", "x.", "secret.txt"), SECRETS[3]!);
  await Deno.writeTextFile(join(root, "data", "x", "a.txt"), "in x");
  // Links a plugin cannot make but an operator (or another process) might leave in the data root.
  const x = join(root, "data", "x");
  await Deno.symlink("../../../canary.txt", join(x, "out-file"));
  await Deno.symlink(join(outer, "canary.txt"), join(x, "out-abs"));
  await Deno.symlink("../../../outside-dir", join(x, "out-dir"));
  await Deno.symlink("../xy", join(x, "to-xy"));
  await Deno.symlink("../../secret.txt", join(x, "to-root-secret"));
  await Deno.symlink("../../../made-outside.txt", join(x, "dangling-out"));
  await Deno.symlink("../../../new-outside-dir/f.txt", join(x, "dangling-deep"));
  await Deno.symlink("loop", join(x, "loop"));
  await Deno.symlink("chain2", join(x, "chain1"));
  await Deno.symlink("out-file", join(x, "chain2"));
  await Deno.symlink("/etc", join(x, "etc"));
  await Deno.symlink("/proc/self", join(x, "proc-self"));
  await Deno.symlink(".", join(x, "self"));

  const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
  const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      { name: "grants/relay", text: compileGrants("relay", GRANTS) },
      { name: "grants/files", text: compileGrants("files", GRANTS) },
    ],
  });
  const audit = new AuditLog({ ringSize: 100_000, file: { path: join(outer, "state", "audit.jsonl") } });
  const kv = await KvStore.open(join(outer, "state", "kv.sqlite"));
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 5000 },
    spareWorkers: 0,
    hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(root), kv }),
  });
  await host.load(await watFixture("relay"), { name: "relay", version: "1.0.0" });
  await host.load(await watFixture("wasi_files"), { name: "files", preopens: ["/data/x"] });
  return {
    outer,
    root,
    host,
    audit,
    async raw(fn, input) {
      const out = await host.invoke("relay", fn, input);
      const payload = decoder.decode(out.subarray(1));
      if (out[0] === 0) return { ok: true, text: payload };
      return { ok: false, ...JSON.parse(payload) };
    },
    async close() {
      await host.close();
      await audit.close();
      kv.close();
      await Deno.remove(outer, { recursive: true });
    },
  };
}

/**
 * Every entry under `outer` except the state dir and regular files inside data/x (where the grant allows writes):
 * path -> content, link target or "dir". Links inside data/x are kept, so that replacing one shows.
 */
async function snapshot(s: Site): Promise<Map<string, string>> {
  const granted = join(s.root, "data", "x") + "/";
  const state = join(s.outer, "state");
  const out = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (path === state) continue;
      const info = await Deno.lstat(path);
      if (info.isSymlink) out.set(path, `-> ${await Deno.readLink(path)}`);
      else if (info.isDirectory) {
        if (!path.startsWith(granted)) out.set(path, "dir");
        await walk(path);
      } else if (!path.startsWith(granted)) out.set(path, await Deno.readTextFile(path));
    }
  }
  await walk(s.outer);
  return out;
}

function json(path: unknown): Uint8Array {
  return encoder.encode(JSON.stringify({ path }));
}

const GRANTED = /^(File|Dir)::"\/data\/x(\/|")/;

/**
 * Runs one attack on every fs export (write with a body), then checks what must hold.
 * `escape`: the path names something outside data/x, so every call must be refused and audited as a denial.
 */
async function attackPath(s: Site, input: Uint8Array, escape: boolean): Promise<void> {
  const before = await snapshot(s);
  for (const fn of ["fs_read", "fs_write", "fs_list", "fs_delete"] as const) {
    const recorded = s.audit.stats().recorded;
    const body = fn === "fs_write" ? new Uint8Array([...input, 0, ...encoder.encode("PWNED")]) : input;
    const reply = await s.raw(fn, body);
    const fresh = s.audit.stats().recorded - recorded;
    assert.ok(fresh >= 1, `${fn} left no audit trace`);
    const events = s.audit.query({ limit: fresh });
    for (const event of events.filter((e) => e.decision === "allow")) {
      assert.match(event.resource, GRANTED, `${fn} allowed ${event.resource}`);
    }
    if (reply.ok) {
      for (const secret of SECRETS) assert.ok(!reply.text.includes(secret), `${fn} returned ${secret}`);
    }
    if (escape) {
      assert.ok(!reply.ok, `${fn} escaped: ${reply.ok && reply.text.slice(0, 80)}`);
      assert.ok(["denied", "invalid", "not_found", "io"].includes(reply.code), `${fn}: ${reply.code}`);
      assert.ok(events.some((e) => e.decision === "deny"), `${fn} refused without a deny event`);
    }
  }
  assert.deepEqual(await snapshot(s), before, "something outside data/x changed");
}

// Paths meant to leave data/x: each must be refused by every fs export.
const ESCAPES: [string, string][] = [
  ["dot-dot above the root", "../canary.txt"],
  ["dot-dot after the grant", "data/x/../../../canary.txt"],
  ["many dot-dots", `data/x/${"../".repeat(40)}canary.txt`],
  ["leading slash then dot-dot", "/../canary.txt"],
  ["double slash then dot-dot", "//../canary.txt"],
  ["dot-dot to the sibling", "data/x/../xy/secret.txt"],
  ["dot-dot with doubled slashes", "data/x/..//..//data/xy/secret.txt"],
  ["dot and dot-dot mixed", "data/x/./.././xy/./secret.txt"],
  ["dot-dot through a file", "data/x/a.txt/../../xy/secret.txt"],
  ["dot-dot through a missing dir", "data/x/missing/../../xy/secret.txt"],
  ["dot-dot at the end", "data/x/.."],
  ["dot-dot to the root file", "data/x/../../secret.txt"],
  ["absolute host path", "/etc/passwd"],
  ["proc environ", "/proc/self/environ"],
  ["file URL", "file:///etc/passwd"],
  ["the root itself", "/"],
  ["dot for the root", "."],
  ["sibling prefix", "data/xy/secret.txt"],
  ["sibling prefix via slash-dot", "data/./xy/secret.txt"],
  ["trailing-dot sibling dir", "data/x./secret.txt"],
  ["trailing-space sibling", "data/x /a.txt"],
  ["upper-case dir", "DATA/X/a.txt"],
  ["upper-case grant dir", "data/X/a.txt"],
  ["symlink to a file outside (relative)", "data/x/out-file"],
  ["symlink to a file outside (absolute)", "data/x/out-abs"],
  ["symlink to a dir outside", "data/x/out-dir/inner.txt"],
  ["symlink to a dir outside, listed", "data/x/out-dir"],
  ["symlink to the sibling", "data/x/to-xy/secret.txt"],
  ["symlink to the root's file", "data/x/to-root-secret"],
  ["dangling symlink out", "data/x/dangling-out"],
  ["dangling symlink into a missing dir", "data/x/dangling-deep"],
  ["symlink chain out", "data/x/chain1"],
  ["symlink to /etc", "data/x/etc/passwd"],
  ["symlink to /proc/self", "data/x/proc-self/environ"],
  ["symlink loop", "data/x/loop"],
  ["NUL then dot-dot", "data/x/a.txt\u0000/../../../canary.txt"],
  ["NUL alone", "data/x/\u0000"],
  ["newline", "data/x/a.txt\n../../../canary.txt"],
  ["carriage return", "data/x/\r/../../xy/secret.txt"],
  ["tab", "data/x/\t"],
  ["escape character", "data/x/\u001b[2J"],
  ["DEL", "data/x/\u007f"],
  ["backslash dot-dot", "data\\x\\..\\..\\..\\canary.txt"],
  ["backslash above the root", "..\\canary.txt"],
  ["mixed slashes", "data/x/..\\..\\xy/secret.txt"],
  ["empty path", ""],
  ["over 4096 bytes", `data/x/${"a/".repeat(2100)}a.txt`],
  ["over 4096 bytes of dot-dots", `data/x/${"../".repeat(1400)}canary.txt`],
  ["over 4096 bytes in multi-byte characters", `data/x/${"\u00e9".repeat(2100)}`],
  ["host path of the canary", "CANARY_PATH"],
];

// Paths that look like tricks but name something inside data/x (or nothing): any allow must stay inside the grant.
const INSIDE: [string, string][] = [
  ["percent-encoded dot-dot", "data/x/%2e%2e/%2e%2e/%2e%2e/canary.txt"],
  ["double percent-encoding", "data/x/%252e%252e/%252e%252e/canary.txt"],
  ["encoded slash", "data/x/..%2f..%2f..%2fcanary.txt"],
  ["overlong UTF-8 in percent form", "data/x/%c0%ae%c0%ae/%c0%ae%c0%ae/canary.txt"],
  ["two-dot leader", "data/x/\u2025/\u2025/xy/secret.txt"],
  ["fullwidth dots", "data/x/\uff0e\uff0e/\uff0e\uff0e/xy/secret.txt"],
  ["fullwidth solidus", "data/x/..\uff0f..\uff0fxy\uff0fsecret.txt"],
  ["division slash", "data/x/..\u2215..\u2215canary.txt"],
  ["fraction slash", "data/x/..\u2044..\u2044canary.txt"],
  ["zero-width space in dot-dot", "data/x/.\u200b./.\u200b./canary.txt"],
  ["combining dot", "data/x/.\u0307/xy"],
  ["right-to-left override", "data/x/\u202etxt.a"],
  ["three dots", "data/x/..."],
  // ".." is resolved before links are followed, so this names data/x/xy/secret.txt, inside the grant.
  ["self link then dot-dot", "data/x/self/self/../../xy/secret.txt"],
  ["trailing dot", "data/x/a.txt."],
  ["trailing slash", "data/x/a.txt/"],
  ["trailing slash-dot", "data/x/a.txt/."],
  ["upper-case file", "data/x/A.TXT"],
  ["segment of 255 bytes", `data/x/${"b".repeat(255)}`],
  ["segment of 256 bytes", `data/x/${"b".repeat(256)}`],
  ["just under 4096 bytes", `data/x/${"c/".repeat(2040)}`],
];

Deno.test("adversarial paths: no byte leaves or enters outside the granted directory", async () => {
  const t = tally("paths");
  const s = await site();
  try {
    for (const [name, path] of ESCAPES) {
      const real = path === "CANARY_PATH" ? join(s.outer, "canary.txt") : path;
      await t.attack(`${name}: ${JSON.stringify(real.slice(0, 60))}`, () => attackPath(s, json(real), true));
    }
    for (const [name, path] of INSIDE) {
      await t.attack(`${name}: ${JSON.stringify(path.slice(0, 60))}`, () => attackPath(s, json(path), false));
    }

    // Requests that are not the shape a path is read from.
    const rawInputs: [string, Uint8Array][] = [
      [
        "overlong UTF-8 dot-dots",
        new Uint8Array([...encoder.encode('{"path":"data/x/'), ...[0xc0, 0xae, 0xc0, 0xae, 0x2f], ...[
          0xc0,
          0xae,
          0xc0,
          0xae,
        ], ...encoder.encode('/canary.txt"}')]),
      ],
      [
        "overlong UTF-8 slash",
        new Uint8Array([
          ...encoder.encode('{"path":"data/x/..'),
          0xc0,
          0xaf,
          ...encoder.encode(".."),
          0xc0,
          0xaf,
          ...encoder.encode('xy/secret.txt"}'),
        ]),
      ],
      ["lone surrogate", encoder.encode('{"path":"data/x/\\ud800/../../xy/secret.txt"}')],
      [
        "raw NUL inside the JSON",
        new Uint8Array([...encoder.encode('{"path":"data/x/a.txt'), 0, ...encoder.encode('/../../../canary.txt"}')]),
      ],
      ["duplicate key, escape last", encoder.encode('{"path":"data/x/a.txt","path":"../canary.txt"}')],
      ["__proto__ path", encoder.encode('{"__proto__":{"path":"../canary.txt"}}')],
      ["path as a list", json(["../canary.txt"])],
      ["path as an object", json({ toString: "../canary.txt" })],
      ["path as a number", json(1)],
      ["JSON that is a string", encoder.encode('"../canary.txt"')],
      ["not JSON", encoder.encode("../canary.txt")],
      ["empty input", new Uint8Array()],
    ];
    for (const [name, input] of rawInputs) {
      await t.attack(name, () => attackPath(s, input, true));
    }

    // WASI path_open under the preopen /data/x: errnos, never the canary, never a write outside.
    const wasi = async (fn: "read" | "write", path: Uint8Array) => {
      const out = await s.host.invoke("files", fn, path);
      return { errno: out[0]!, text: decoder.decode(out.subarray(1)) };
    };
    // The last flag: the write may succeed because the path names a file inside data/x.
    const wasiAttacks: [string, Uint8Array, boolean?][] = [
      ["WASI dot-dot", encoder.encode("../../../canary.txt")],
      ["WASI dot-dot to the sibling", encoder.encode("../xy/secret.txt")],
      ["WASI absolute path", encoder.encode("/../../secret.txt")],
      ["WASI symlink out", encoder.encode("out-file")],
      ["WASI symlink dir out", encoder.encode("out-dir/inner.txt")],
      ["WASI dangling symlink out", encoder.encode("dangling-out")],
      [
        "WASI NUL in the path",
        new Uint8Array([...encoder.encode("a.txt"), 0, ...encoder.encode("/../../../canary.txt")]),
      ],
      ["WASI backslashes", encoder.encode("..\\..\\..\\canary.txt")],
      [
        "WASI overlong UTF-8",
        new Uint8Array([0xc0, 0xae, 0xc0, 0xae, 0x2f, 0xc0, 0xae, 0xc0, 0xae, 0x2f, ...encoder.encode("secret.txt")]),
        true,
      ],
      ["WASI the preopen itself", encoder.encode("..")],
    ];
    for (const [name, path, inside = false] of wasiAttacks) {
      await t.attack(name, async () => {
        const before = await snapshot(s);
        const recorded = s.audit.stats().recorded;
        const read = await wasi("read", path);
        assert.notEqual(read.errno, 0, `read escaped: ${read.text.slice(0, 80)}`);
        for (const secret of SECRETS) assert.ok(!read.text.includes(secret));
        const write = await wasi("write", path);
        if (!inside) assert.notEqual(write.errno, 0, "write escaped");
        assert.ok(s.audit.stats().recorded > recorded, "no audit trace");
        const events = s.audit.query({ plugin: "files", limit: s.audit.stats().recorded - recorded });
        if (!inside) assert.ok(events.some((e) => e.decision === "deny"), "no deny event");
        for (const e of events.filter((e) => e.decision === "allow")) assert.match(e.resource, GRANTED);
        assert.deepEqual(await snapshot(s), before, "something outside data/x changed");
      });
    }

    // The grant still works after all of it, and every allowed decision stayed inside data/x.
    await t.attack("the grant itself still works, and nothing was allowed outside it", async () => {
      const body = new Uint8Array([...json("data/x/a.txt"), 0, ...encoder.encode("in x")]);
      assert.ok((await s.raw("fs_write", body)).ok);
      const reply = await s.raw("fs_read", json("data/x/a.txt"));
      assert.deepEqual(reply, { ok: true, text: "in x" });
      assert.equal(await Deno.readTextFile(join(s.outer, "canary.txt")), SECRETS[0]);
      for (const e of s.audit.query({ decision: "allow", limit: 100_000 })) assert.match(e.resource, GRANTED);
    });
  } finally {
    await s.close();
  }
  t.report();
});
