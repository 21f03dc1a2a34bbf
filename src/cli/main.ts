/**
 * keycard's command line: `start` derives the server's permissions from the
 * configuration and runs `serve` under them; `serve` is the server itself;
 * `demo` runs the example plugins in-process and prints the audit trail.
 *
 * @module
 */
import { buildPlugins, listPlugins } from "../../plugins/build.ts";
import { AuditLog } from "../audit/mod.ts";
import { createHostFunctions, FsCapability, KvStore } from "../host/mod.ts";
import { compileGrants, PolicyEngine, type PolicySource } from "../policy/mod.ts";
import { type Manifest, parseManifest } from "../registry/mod.ts";
import { PluginDeadlineError, PluginHost, PluginRuntimeError } from "../runtime/mod.ts";
import { watDemoLoop } from "./_demo_loop.ts";
import { StartError } from "../gateway/mod.ts";
import { serve } from "./serve.ts";
import { start } from "./start.ts";
import { userError } from "./user_error.ts";

const decoder = new TextDecoder();
const repo = new URL("../../", import.meta.url);

/** Reads `policies/*.cedar` and the schema. */
async function readPolicies(): Promise<{ schema: string; sources: PolicySource[] }> {
  const dir = new URL("policies/", repo);
  const schema = await Deno.readTextFile(new URL("keycard.cedarschema", dir));
  const sources: PolicySource[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".cedar")) {
      sources.push({ name: entry.name, text: await Deno.readTextFile(new URL(entry.name, dir)) });
    }
  }
  return { schema, sources: sources.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Runs the demonstration and prints what happens. */
export async function demo(): Promise<void> {
  const state = new URL(".keycard/demo/", repo);
  const root = new URL("files/", state);
  await Deno.mkdir(new URL("data/stamp/", root), { recursive: true });
  await Deno.writeTextFile(new URL("data/stamp/hello.txt", root), "a file the stamp plugin may read\n");

  const names = await listPlugins();
  const paths = await buildPlugins({ only: names });
  const manifests = new Map<string, Manifest>();
  for (const name of names) {
    const file = new URL(`plugins/${name}/plugin.yaml`, repo);
    manifests.set(name, parseManifest(await Deno.readTextFile(file), `plugins/${name}/plugin.yaml`));
  }
  const { schema, sources } = await readPolicies();
  for (const manifest of manifests.values()) {
    sources.push({ name: `grants/${manifest.name}`, text: compileGrants(manifest.name, manifest.grants) });
  }
  const engine = await PolicyEngine.create({ schema, sources });
  console.log(`policies: ${engine.policies().length} (version ${engine.version}) from ${sources.length} sources`);

  await using audit = new AuditLog({ file: { path: new URL("audit.jsonl", state).pathname } });
  using kv = await KvStore.open(new URL("kv.sqlite", state).pathname);
  await using host = new PluginHost({
    limits: { deadlineMs: 500 },
    hostFunctions: createHostFunctions({
      engine,
      audit,
      kv,
      fs: await FsCapability.open(root.pathname),
      env: (plugin) => manifests.get(plugin)?.config ?? {},
      logSink: (entry) => console.log(`  [${entry.plugin} log ${entry.level}] ${entry.message}`),
    }),
  });
  for (const [index, name] of names.entries()) {
    const manifest = manifests.get(name)!;
    const plugin = await host.load(await Deno.readFile(paths[index]!), {
      name,
      version: manifest.version,
      limits: manifest.limits,
      config: manifest.config,
    });
    console.log(`loaded ${name} ${plugin.version} (sha256 ${plugin.sha256.slice(0, 12)}…)`);
  }

  const run = async (plugin: string, exportName: string, input = "") => {
    try {
      const out = await host.invoke(plugin, exportName, input, { hostContext: { caller: "demo" } });
      console.log(`${plugin}.${exportName}(${JSON.stringify(input)}) -> ${decoder.decode(out)}`);
    } catch (error) {
      if (!(error instanceof PluginRuntimeError)) throw error;
      console.log(`${plugin}.${exportName}(${JSON.stringify(input)}) -> ${error.name}: ${error.message}`);
    }
  };
  await run("hello", "greet", "keycard");
  await run("stamp", "stamp", "demo");
  await run("stamp", "kv_counter"); // durable: grows by one on every start
  await run("stamp", "read_file", "data/stamp/hello.txt");
  await run("stamp", "read_file", "../../../etc/passwd");
  await run("stamp", "read_file", "data/other/secret.txt");

  await host.load(await watDemoLoop(), { name: "runaway" });
  const started = performance.now();
  try {
    await host.invoke("runaway", "spin");
  } catch (error) {
    if (!(error instanceof PluginDeadlineError)) throw error;
    console.log(`runaway.spin -> stopped after ${(performance.now() - started).toFixed(0)} ms: ${error.message}`);
  }
  await run("hello", "greet", "still answering");

  console.log("\naudit (newest first):");
  for (const event of audit.query({ limit: 12 })) {
    const why = event.decision === "allow" ? event.policies.join(", ") : event.reason;
    console.log(`  ${event.decision.padEnd(5)} ${event.plugin} ${event.action} ${event.resource} (${why})`);
  }
  console.log(`\nstate in ${state.pathname}: audit.jsonl, kv.sqlite, files/`);
}

const USAGE = "Usage: deno task start [config.yaml] [--dry-run] | serve [config.yaml] | demo";

/**
 * Runs a command and returns its exit code; a user error (bad config, missing
 * file) is one line on stderr and exit code 2, never a stack trace.
 *
 * @param args `Deno.args`: the command and its arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [command = "start", ...rest] = args;
  try {
    switch (command) {
      case "start":
        return await start(rest);
      case "serve":
        if (rest.length > 1 || rest[0]?.startsWith("-")) {
          console.error(`Unknown argument ${JSON.stringify(rest.at(-1))}: ${USAGE}`);
          return 2;
        }
        await serve(rest[0] ? { configPath: rest[0] } : {});
        return 0;
      case "demo":
        await demo();
        return 0;
      default:
        console.error(`Unknown command ${JSON.stringify(command)}: ${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof StartError) {
      console.error(error.message);
      return 1;
    }
    const message = userError(error);
    if (message === undefined) throw error;
    console.error(message);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
