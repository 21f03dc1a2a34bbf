// The fuzz targets and what each must hold:
// - wasm-load: PluginHost.load (and a call of up to two exports) on a mutated module: a PluginRuntimeError subclass
//   or success, never another error, a hang, or a stuck worker.
// - conformance: runConformance on a mutated module: a report, never a throw or a hang.
// - manifest: parseManifest on mutated plugin.yaml text: a Manifest or a ManifestError, never another error type.
// - policy: PolicyEngine.load of a mutated operator policy: success or PolicyValidationError, and decisions still
//   right afterwards.
// - http: mutated bodies on POST /v1/authorize, PUT /v1/policies/{name} and PUT /v1/plugins/{name}: a 2xx or a 4xx,
//   never a 5xx, and afterwards decisions still right and nothing left behind.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../../src/audit/mod.ts";
import { runConformance } from "../../src/conformance/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../../src/host/mod.ts";
import { compileGrants, PolicyEngine, type PolicySource, PolicyValidationError } from "../../src/policy/mod.ts";
import { ManifestError, parseManifest } from "../../src/registry/mod.ts";
import { PluginHost, PluginRuntimeError } from "../../src/runtime/mod.ts";
import { bearer, echoManifest, startGateway } from "../_gateway_fixture.ts";
import { decoder, encoder, examplePlugin, watFixture } from "../_test_utils.ts";
import type { Runner, Target } from "./_fuzz.ts";
import { concat, mutateBytes, mutateJson, mutateText, type Rng } from "./_mutate.ts";

const repo = new URL("../../", import.meta.url);
const schema = await Deno.readTextFile(new URL("policies/keycard.cedarschema", repo));
const base = await Deno.readTextFile(new URL("policies/base.cedar", repo));
const api = await Deno.readTextFile(new URL("policies/api.cedar", repo));

function kind(error: unknown): string {
  return error instanceof Error
    ? `${error.constructor.name}: ${error.message.slice(0, 300)}`
    : `non-Error ${String(error)}`;
}

async function wasmCorpus(names: string[], examples: string[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const name of examples) out.push(await examplePlugin(name));
  for (const name of names) out.push(await watFixture(name));
  return out;
}

function mutatedModule(rng: Rng, corpus: Uint8Array[]): Uint8Array {
  let bytes = rng.pick(corpus);
  for (let i = 1 + rng.int(2); i > 0; i--) bytes = mutateBytes(rng, bytes, corpus);
  return bytes;
}

/** PluginHost.load and a call or two of whatever loads. */
export const wasmLoad: Target = {
  name: "wasm-load",
  cases: 30,
  caseMs: 10_000,
  async open(): Promise<Runner> {
    const corpus = await wasmCorpus(
      ["relay", "http_echo", "trap", "extism_abi", "wasi_basic", "wasi_files", "start_initializer", "infinite_loop"],
      ["hello", "stamp"],
    );
    const dir = await Deno.makeTempDir({ prefix: "keycard-fuzz-wasm-" });
    await Deno.mkdir(join(dir, "root"));
    const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
    const audit = new AuditLog({ ringSize: 1000 });
    const kv = await KvStore.open(join(dir, "kv.sqlite"));
    const host = new PluginHost<CallerContext>({
      limits: { deadlineMs: 100, memoryPages: 64 },
      spareWorkers: 0,
      hostFunctions: createHostFunctions({ engine, audit, fs: await FsCapability.open(join(dir, "root")), kv }),
    });
    let n = 0;
    return {
      generate: (rng) => mutatedModule(rng, corpus),
      async run(input) {
        const name = `fz${++n}`;
        let exports: readonly string[];
        try {
          exports = (await host.load(input, { name })).exports;
        } catch (error) {
          if (error instanceof PluginRuntimeError) return;
          throw new Error(`load threw ${kind(error)}`);
        }
        try {
          for (const exportName of exports.slice(0, 2)) {
            try {
              await host.invoke(name, exportName, encoder.encode('{"path":"a.txt"}'));
            } catch (error) {
              if (!(error instanceof PluginRuntimeError)) throw new Error(`invoke threw ${kind(error)}`);
            }
          }
        } finally {
          await host.unload(name);
        }
        const { stuckWorkers } = host.stats();
        assert.equal(stuckWorkers, 0, "a worker is stuck");
      },
      async close() {
        await host.close();
        await audit.close();
        kv.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

/** runConformance: a report for anything. */
export const conformance: Target = {
  name: "conformance",
  cases: 20,
  caseMs: 20_000,
  async open(): Promise<Runner> {
    const corpus = await wasmCorpus(["http_echo", "trap", "extism_abi"], ["hello"]);
    const dir = await Deno.makeTempDir({ prefix: "keycard-fuzz-conform-" });
    const policies = [{ name: "base.cedar", text: base }];
    return {
      generate: (rng) => mutatedModule(rng, corpus),
      async run(input) {
        let report;
        try {
          report = await runConformance(input, { tempDir: dir, schema, policies });
        } catch (error) {
          throw new Error(`runConformance threw ${kind(error)}`);
        }
        assert.equal(typeof report.passed, "boolean");
        assert.ok(report.checks.length > 0);
      },
      async close() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

async function manifestCorpus(): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(new URL("plugins/", repo))) {
    if (!entry.isDirectory) continue;
    try {
      out.push(await Deno.readTextFile(new URL(`plugins/${entry.name}/plugin.yaml`, repo)));
    } catch {
      // A directory without a manifest.
    }
  }
  for await (const entry of Deno.readDir(new URL("tests/testdata/", repo))) {
    if (entry.name.endsWith(".yaml")) out.push(await Deno.readTextFile(new URL(`tests/testdata/${entry.name}`, repo)));
  }
  out.push(echoManifest("echo"));
  return out.sort();
}

/** parseManifest: a Manifest or a ManifestError. */
export const manifest: Target = {
  name: "manifest",
  cases: 150,
  caseMs: 5_000,
  async open(): Promise<Runner> {
    const corpus = await manifestCorpus();
    return {
      generate(rng) {
        let text = rng.pick(corpus);
        for (let i = 1 + rng.int(3); i > 0; i--) text = mutateText(rng, text, corpus);
        return encoder.encode(text);
      },
      run(input) {
        try {
          parseManifest(decoder.decode(input), "fuzz.yaml");
        } catch (error) {
          if (!(error instanceof ManifestError)) throw new Error(`parseManifest threw ${kind(error)}`);
        }
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  },
};

const POLICY_CORPUS = [
  base,
  api,
  compileGrants("stamp", [
    { "clock.now": {} },
    { kv: { namespace: "stamp" } },
    { "fs.read": { dir: "./data/stamp" } },
    { "http.request": { host: "api.example.com", methods: ["GET"] } },
    { "env.get": { names: ["REGION"] } },
  ]),
  '@id("ops.no-clock")\nforbid (principal == Plugin::"stamp", action == Action::"clock.now", resource);\n',
  '@id("ops.ten")\npermit (principal, action == Action::"http.request", resource)\n' +
  'when { resource.ip.isInRange(ip("10.0.0.0/8")) && context.caller like "app-*" };\n',
  '@id("ops.files")\npermit (principal is Plugin, action in [Action::"fs.read", Action::"fs.list"], resource in Dir::"/data")\n' +
  'unless { principal.name == "evil" || (resource has name && resource.name like "*.key") };\n',
];

const CHECKS = [
  {
    request: {
      principal: { uid: { type: "Client", id: "admin" }, attrs: { roles: ["admin"], tenant: "" }, parents: [] },
      action: "policy.write",
      resource: { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] },
      context: {},
    },
    decision: "allow",
  },
  {
    request: {
      principal: { uid: { type: "Client", id: "app" }, attrs: { roles: ["caller"], tenant: "" }, parents: [] },
      action: "policy.write",
      resource: { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] },
      context: {},
    },
    decision: "deny",
  },
] as const;

/** PolicyEngine.load: success or PolicyValidationError, and decisions right afterwards. */
export const policy: Target = {
  name: "policy",
  cases: 60,
  caseMs: 10_000,
  async open(): Promise<Runner> {
    const sources: PolicySource[] = [{ name: "base.cedar", text: base }, { name: "api.cedar", text: api }];
    const engine = await PolicyEngine.create({ schema, sources });
    return {
      generate(rng) {
        let text = rng.pick(POLICY_CORPUS);
        for (let i = 1 + rng.int(3); i > 0; i--) text = mutateText(rng, text, POLICY_CORPUS);
        return encoder.encode(text);
      },
      run(input) {
        try {
          engine.load([...sources, { name: "fuzz.cedar", text: decoder.decode(input) }]);
        } catch (error) {
          if (!(error instanceof PolicyValidationError)) throw new Error(`load threw ${kind(error)}`);
        }
        try {
          engine.load(sources);
        } catch (error) {
          throw new Error(`the original set no longer loads: ${kind(error)}`);
        }
        for (const { request, decision } of CHECKS) {
          const got = engine.authorize(request as never);
          assert.equal(got.decision, decision, `decision after the case: ${JSON.stringify(got).slice(0, 300)}`);
        }
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  },
};

const DRY_RUNS: unknown[] = [
  {
    principal: { type: "Plugin", id: "stamp" },
    action: "clock.now",
    resource: { type: "Runtime", id: "clock" },
  },
  {
    principal: { type: "Client", id: "app", attrs: { roles: ["caller"], tenant: "" } },
    action: "plugin.call",
    resource: { type: "PluginRef", id: "hello", attrs: {}, parents: [] },
    context: {},
  },
  {
    principal: { type: "Plugin", id: "relay", attrs: { name: "relay", version: "1.0.0", sha256: "", tenant: "" } },
    action: "http.request",
    resource: { type: "Host", id: "127.0.0.1:80", attrs: { name: "127.0.0.1", port: 80, named: false } },
    context: { caller: "x", method: "GET" },
  },
  {
    principal: { type: "Plugin", id: "stamp" },
    action: "fs.read",
    resource: {
      type: "File",
      id: "/data/x/a.txt",
      parents: [{ type: "Dir", id: "/data/x" }, { type: "Dir", id: "/" }],
    },
  },
];

/** The http target's routes: the first byte of a case picks one. */
const ROUTES = ["authorize", "policy", "install-bare", "install-manifest"] as const;

/** Bodies on /v1/authorize, PUT /v1/policies/{name} and PUT /v1/plugins/{name}: never a 5xx. */
export const http: Target = {
  name: "http",
  cases: 60,
  caseMs: 20_000,
  async open(): Promise<Runner> {
    const fx = await startGateway();
    const admin = bearer(fx.adminToken);
    const modules = [await watFixture("http_echo"), await examplePlugin("hello")];
    const echo = modules[0]!;
    const manifests = [echoManifest("fz"), ...(await manifestCorpus())];
    const reference = JSON.stringify(DRY_RUNS[0]);
    const expected = await (await fx.request("/v1/authorize", { method: "POST", headers: admin, body: reference }))
      .json();
    const plugins = async () => JSON.stringify(await (await fx.request("/v1/plugins", { headers: admin })).json());
    const before = await plugins();
    return {
      generate(rng) {
        const route = rng.pick([0, 0, 0, 0, 0, 1, 1, 1, 2, 3]);
        if (route === 0) return concat(Uint8Array.of(0), encoder.encode(mutateJson(rng, rng.pick(DRY_RUNS), DRY_RUNS)));
        if (route === 1) {
          let text = rng.pick(POLICY_CORPUS.slice(3));
          for (let i = 1 + rng.int(3); i > 0; i--) text = mutateText(rng, text, POLICY_CORPUS);
          return concat(Uint8Array.of(1), encoder.encode(text));
        }
        if (route === 2) return concat(Uint8Array.of(2), mutatedModule(rng, modules));
        let text = manifests[0]!;
        for (let i = 1 + rng.int(3); i > 0; i--) text = mutateText(rng, text, manifests);
        return concat(Uint8Array.of(3), encoder.encode(text));
      },
      async run(input) {
        const route = ROUTES[(input[0] ?? 0) % ROUTES.length]!;
        const body = input.subarray(1) as Uint8Array<ArrayBuffer>;
        let response: Response;
        if (route === "authorize") {
          response = await fx.request("/v1/authorize", { method: "POST", headers: admin, body });
        } else if (route === "policy") {
          response = await fx.request("/v1/policies/fz", { method: "PUT", headers: admin, body });
        } else if (route === "install-bare") {
          response = await fx.request("/v1/plugins/fz", {
            method: "PUT",
            headers: { ...admin, "content-type": "application/wasm" },
            body,
          });
        } else {
          const form = new FormData();
          form.append("wasm", new Blob([echo as Uint8Array<ArrayBuffer>], { type: "application/wasm" }), "plugin.wasm");
          form.append("manifest", decoder.decode(body));
          response = await fx.request("/v1/plugins/fz", { method: "PUT", headers: admin, body: form });
        }
        const text = await response.text();
        assert.ok(response.status < 500, `${route}: ${response.status} ${text.slice(0, 400)}`);
        // Leave nothing behind: a policy or plugin the case put is removed again.
        if (response.ok && route === "policy") {
          const removed = await fx.request("/v1/policies/fz", { method: "DELETE", headers: admin });
          assert.equal(removed.status, 204);
        }
        if (response.ok && route.startsWith("install")) {
          const name = (JSON.parse(text) as { name: string }).name;
          const removed = await fx.request(`/v1/plugins/${name}`, { method: "DELETE", headers: admin });
          assert.equal(removed.status, 204, await removed.text());
        }
        if (route !== "authorize") assert.equal(await plugins(), before, "the installed plugins changed");
        const check = await fx.request("/v1/authorize", { method: "POST", headers: admin, body: reference });
        assert.equal(check.status, 200, `decisions broke after the case: ${await check.clone().text()}`);
        const got = await check.json();
        assert.equal(got.decision, expected.decision, `decision after the case: ${JSON.stringify(got)}`);
      },
      close: () => fx.close(),
    };
  },
};

/** Every target, in the order the fuzz task runs them. */
export const TARGETS: readonly Target[] = [manifest, policy, wasmLoad, conformance, http];
