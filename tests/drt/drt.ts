// `deno task drt [--requests=N] [--seed=S] [--per-set=N] [--parse-cases=N] [--shrink=N]`: differential random
// testing of keycard's TypeScript Cedar against cedar-wasm 4.13.0, far longer than the gate (1,000,000 requests by
// default, from a seed of the clock). Prints progress and rate, each disagreement (shrunk and saved as
// tests/drt/regressions/<hash>.json, which the gate replays from then on) and the construct coverage.
// Exit code 1 when the implementations disagreed, 2 on bad arguments, 0 otherwise.
import { loadCases } from "./_compare.ts";
import { describeFindings, runDrt, summaryLine } from "./_run.ts";

function usage(message: string): never {
  console.error(
    `${message}\nusage: deno task drt [--requests=N] [--seed=S] [--per-set=N] [--parse-cases=N] [--shrink=N]`,
  );
  Deno.exit(2);
}

function count(flag: string, value: string): number {
  const n = Number(value.replaceAll("_", "").replaceAll(",", ""));
  if (!Number.isSafeInteger(n) || n < 0) usage(`${flag}=${value} is not a count`);
  return n;
}

let requests = 1_000_000;
let seed = Date.now() >>> 0;
let perSet = 50;
let parseCases: number | undefined;
let shrink = 25;
for (const arg of Deno.args) {
  const [flag, value] = arg.split("=", 2) as [string, string | undefined];
  if (value === undefined) usage(`${flag} needs a value (${flag}=...)`);
  if (flag === "--requests") requests = count(flag, value);
  else if (flag === "--seed") seed = count(flag, value) >>> 0;
  else if (flag === "--per-set") perSet = Math.max(1, count(flag, value));
  else if (flag === "--parse-cases") parseCases = count(flag, value);
  else if (flag === "--shrink") shrink = count(flag, value);
  else usage(`Unknown argument ${JSON.stringify(arg)}`);
}

console.log(`drt: seed ${seed}, ${requests} requests, ${perSet} per policy set`);
// A kind of disagreement already saved is reported again but not saved twice.
const knownSignatures = new Set((await loadCases()).map((c) => c.case.signature).filter((s) => s !== undefined));
const stats = await runDrt({
  seed,
  requests,
  requestsPerSet: perSet,
  parseCases,
  save: true,
  shrinkLimit: shrink,
  validateEvery: 10,
  knownSignatures,
  onProgress: (s) => {
    const rate = s.requests / (s.ms / 1000);
    const left = (requests - s.requests) / rate;
    console.log(
      `  ${s.requests} requests (${(100 * s.requests / requests).toFixed(1)}%), ${rate.toFixed(0)}/s, ` +
        `${s.disagreements} disagreements, ~${left.toFixed(0)} s left`,
    );
  },
  onFinding: (f) => {
    console.log(`  disagreement [${f.class}] at ${f.label}: ${f.path ? `saved ${f.path}` : "a kind already saved"}`);
  },
});
console.log(summaryLine(stats));
console.log(`coverage: ${stats.coverage.table()}`);
if (stats.disagreements > 0) {
  console.log(describeFindings(stats.findings));
  console.log("disagreements by kind:");
  for (const [signature, n] of [...stats.signatures].sort((a, b) => b[1] - a[1])) console.log(`  ${n}  ${signature}`);
  Deno.exit(1);
}
