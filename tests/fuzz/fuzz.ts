// `deno task fuzz [--cases N] [--seed S] [--target NAME]...`: the gate's fuzz targets run far longer (by default ten
// times the gate's budget, from a seed of the clock), printing each case that broke a target and saving it as
// tests/testdata/fuzz/<target>/<sha256 prefix>.bin, where the gate replays it from then on. Exit code 1 when a case
// broke something, 0 otherwise.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { describeFindings, type Finding, fuzz, REGRESSIONS, summary } from "./_fuzz.ts";
import { TARGETS } from "./_targets.ts";

function usage(message: string): never {
  console.error(
    `${message}\nusage: deno task fuzz [--cases N] [--seed S] [--target ${TARGETS.map((t) => t.name).join("|")}]...`,
  );
  Deno.exit(2);
}

const args = [...Deno.args];
let cases: number | undefined;
let seed = Date.now() >>> 0;
const only: string[] = [];
while (args.length > 0) {
  const flag = args.shift()!;
  const value = args.shift();
  if (value === undefined) usage(`${flag} needs a value`);
  if (flag === "--cases") cases = Number(value);
  else if (flag === "--seed") seed = Number(value) >>> 0;
  else if (flag === "--target") only.push(value);
  else usage(`Unknown argument ${JSON.stringify(flag)}`);
  if (flag === "--cases" && !(Number.isInteger(cases) && cases! >= 0)) usage(`--cases ${value} is not a count`);
}
const unknown = only.find((name) => !TARGETS.some((t) => t.name === name));
if (unknown) usage(`Unknown target ${JSON.stringify(unknown)}`);

async function save(target: string, finding: Finding): Promise<void> {
  if (finding.label.startsWith("regression ")) return; // already saved
  const dir = join(REGRESSIONS, target);
  await Deno.mkdir(dir, { recursive: true });
  const name = createHash("sha256").update(finding.input).digest("hex").slice(0, 16);
  await Deno.writeFile(join(dir, `${name}.bin`), finding.input);
  console.log(`  saved ${join("tests/testdata/fuzz", target, `${name}.bin`)}`);
}

console.log(`fuzz: seed ${seed}`);
let broke = 0;
for (const target of TARGETS) {
  if (only.length > 0 && !only.includes(target.name)) continue;
  const result = await fuzz(target, {
    seed,
    cases: cases ?? target.cases * 10,
    onFinding: async (finding) => {
      console.log(`${target.name}: ${finding.label}: ${finding.error.slice(0, 300)}`);
      await save(target.name, finding);
    },
  });
  console.log(summary(result));
  if (result.findings.length > 0) console.log(describeFindings(result));
  broke += result.findings.length;
}
Deno.exit(broke > 0 ? 1 : 0);
