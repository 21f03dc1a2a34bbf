/**
 * How long conformance takes to load and run a small plugin (`plugins/hello`
 * with its manifest, 10 samples): the first run in a fresh process (what
 * `deno task conform` pays) and the runs after it (the gateway's install
 * path, which has policies and workers warm), p50 and max.
 *
 * Run: deno run --allow-read=. --allow-write=plugins,/tmp --allow-env=CI,LOG_TOKENS,LOG_STREAM
 *        --v8-flags=--wasm-max-mem-pages=16384,--expose-gc bench/conform_hello.ts [runs]
 *
 * @module
 */
import { runConformance } from "../src/conformance/mod.ts";
import { parseManifest } from "../src/registry/mod.ts";
import { buildPlugins } from "../plugins/build.ts";

const runs = Number(Deno.args[0] ?? 20);
const [path] = await buildPlugins({ only: ["hello"] });
const wasm = await Deno.readFile(path!);
const manifest = parseManifest(await Deno.readTextFile("plugins/hello/plugin.yaml"), "plugins/hello/plugin.yaml");

const times: number[] = [];
for (let i = 0; i <= runs; i++) {
  const started = performance.now();
  const report = await runConformance(wasm, { manifest });
  times.push(performance.now() - started);
  if (!report.passed) throw new Error(`hello is not conformant: ${JSON.stringify(report.checks)}`);
}
const [first, ...rest] = times;
rest.sort((a, b) => a - b);
const ms = (n: number) => `${n.toFixed(0)} ms`;
console.log(`first run in this process: ${ms(first!)}`);
console.log(`next ${rest.length} runs: p50 ${ms(rest[Math.floor(rest.length / 2)]!)}, max ${ms(rest.at(-1)!)}`);
