// The fuzz driver: replays a target's saved regression cases (tests/testdata/fuzz/<target>/), then runs a budget of
// generated cases from a fixed seed, each bounded in time. A case "breaks" the target when its check throws; the
// findings carry the input, so that `deno task fuzz` can save them as regression cases.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { caseSeed, Rng } from "./_mutate.ts";

/** The seed of the gate's runs: fixed, so a failure in CI replays exactly. */
export const GATE_SEED = 20240601;

/** Where regression cases live: `<dir>/<target>/<name>.bin`, the raw input of the case. */
export const REGRESSIONS: string = fileURLToPath(new URL("../testdata/fuzz/", import.meta.url));

/** A target, opened: it generates inputs and checks one at a time. */
export interface Runner {
  /** The input of one generated case. */
  generate(rng: Rng): Uint8Array;
  /** Runs one case; throws when the case broke what must hold. */
  run(input: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Something to fuzz. */
export interface Target {
  /** Names the regression directory and the report lines. */
  name: string;
  /** Cases the gate runs (the fuzz task runs ten times as many by default). */
  cases: number;
  /** Bound of one case, in milliseconds: a case that takes longer has hung. */
  caseMs: number;
  open(): Promise<Runner>;
}

/** A case that broke a target. */
export interface Finding {
  /** `regression <file>` or `case <i> of seed <s>`. */
  label: string;
  input: Uint8Array;
  error: string;
}

/** What one run of a target did. */
export interface FuzzResult {
  target: string;
  regressions: number;
  cases: number;
  ms: number;
  findings: Finding[];
}

/** Options of {@linkcode fuzz}. */
export interface FuzzOptions {
  /** @default {GATE_SEED} */
  seed?: number;
  /** @default {the target's gate budget} */
  cases?: number;
  /** Called for each finding as it happens. */
  onFinding?: (finding: Finding) => void | Promise<void>;
}

/** Reads a target's regression cases, sorted by name. */
export async function regressions(target: string): Promise<{ name: string; input: Uint8Array }[]> {
  const dir = join(REGRESSIONS, target);
  const out: { name: string; input: Uint8Array }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".bin")) {
        out.push({ name: entry.name, input: await Deno.readFile(join(dir, entry.name)) });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function bounded<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the case hung: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a target: its regression cases, then `cases` generated ones. A hung case gets the runner reopened (the
 * hung one is closed in the background, bounded), so that the rest still run.
 */
export async function fuzz(target: Target, options: FuzzOptions = {}): Promise<FuzzResult> {
  const seed = options.seed ?? GATE_SEED;
  const cases = options.cases ?? target.cases;
  const started = performance.now();
  const findings: Finding[] = [];
  let runner = await target.open();
  const one = async (label: string, input: Uint8Array) => {
    try {
      await bounded(target.caseMs, runner.run(input));
    } catch (error) {
      const finding = {
        label,
        input,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      };
      findings.push(finding);
      await options.onFinding?.(finding);
      if (finding.error.includes("the case hung")) {
        const hung = runner;
        void bounded(10_000, hung.close()).catch(() => {});
        runner = await target.open();
      }
    }
  };
  try {
    const saved = await regressions(target.name);
    for (const { name, input } of saved) await one(`regression ${target.name}/${name}`, input);
    for (let i = 0; i < cases; i++) {
      const input = runner.generate(new Rng(caseSeed(seed, i)));
      await one(`case ${i} of seed ${seed}`, input);
    }
    return {
      target: target.name,
      regressions: saved.length,
      cases,
      ms: Math.round(performance.now() - started),
      findings,
    };
  } finally {
    await bounded(30_000, runner.close());
  }
}

/** One line per finding, for a failure message: the label, the error, and the input (cut) as base64. */
export function describeFindings(result: FuzzResult): string {
  return result.findings.map((f) => {
    const shown = f.input.length > 300 ? f.input.subarray(0, 300) : f.input;
    return `${f.label}: ${f.error.slice(0, 500)}\n  input (${f.input.length} bytes, base64): ${
      btoa(String.fromCharCode(...shown))
    }${f.input.length > 300 ? "…" : ""}`;
  }).join("\n");
}

/** The gate's report line: `fuzz <target>: <n> regression cases + <n> cases in <ms> ms, <n> broke`. */
export function summary(result: FuzzResult): string {
  return `fuzz ${result.target}: ${result.regressions} regression cases + ${result.cases} cases in ${result.ms} ms, ${result.findings.length} broke`;
}
