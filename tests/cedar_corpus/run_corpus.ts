// `deno run --allow-read tests/cedar_corpus/run_corpus.ts DIR [--verbose] [--strict]`: runs Cedar's own integration test
// corpus (the layout of cedar-policy/cedar's `cedar-integration-tests/`; DIR is that folder, which holds
// `corpus_tests/`, `tests/` and `sample-data/`) through keycard's evaluator, and every request through cedar-wasm
// 4.13.0 too. Three comparisons of decision, deciding ids and erroring ids:
//   keycard vs corpus      what the corpus expects (made by some Cedar version, with its schema);
//   keycard vs cedar-wasm  keycard's target: the same policies and entities, no schema;
//   cedar-wasm vs corpus   where 4.13 without a schema differs from the corpus (version or schema effects).
// keycard does not validate: the corpus's `shouldValidate` (policies validate against the schema) and request
// validation are not checked, and the schema is not used to read entities (cedar-wasm gets none either).
// Where the schema file is in DIR, cedar-wasm is asked once more with it (reading entities by the schema and
// validating the request as the corpus did): "cedar-wasm + schema vs corpus" tells version effects from schema ones.
// Requests with an unspecified (null) principal, action or resource are skipped: Cedar 4 has no such thing.
// Prints one line per request where keycard disagrees with the corpus or with cedar-wasm, then a summary.
// Exit code 0 when keycard agrees with cedar-wasm everywhere and with the corpus wherever cedar-wasm does;
// 1 otherwise (with --strict, also on any difference from the corpus); 2 on bad arguments. --verbose also prints
// where cedar-wasm differs from the corpus.
import { relative } from "node:path";
import { compilePolicies } from "../../src/policy/cedar/mod.ts";
import { freshCedar } from "../../src/policy/_cedar_instance.ts";
import { type CorpusRequest, type Descriptor, readDescriptor, type Uid } from "./_descriptor.ts";

/** An answer of either implementation, or its refusal of the policies or the request. */
type Answer =
  | { kind: "decision"; decision: "allow" | "deny"; reason: string[]; errors: string[]; messages: string[] }
  | { kind: "refused"; message: string };

const args = Deno.args.filter((a) => !a.startsWith("--"));
const verbose = Deno.args.includes("--verbose");
const strict = Deno.args.includes("--strict");
if (args.length !== 1) {
  console.error("usage: deno run --allow-read tests/cedar_corpus/run_corpus.ts DIR [--verbose] [--strict]");
  Deno.exit(2);
}
const root = args[0]!;
const cedar = await freshCedar();

const counts = {
  descriptors: 0,
  brokenDescriptors: 0,
  requests: 0,
  run: 0,
  skippedUnspecified: 0,
  shouldValidate: 0,
  validateRequest: 0,
  keycardCorpus: { agreed: 0, disagreed: 0 },
  keycardWasm: { agreed: 0, disagreed: 0 },
  wasmCorpus: { agreed: 0, disagreed: 0 },
  wasmSchemaCorpus: { agreed: 0, disagreed: 0 },
  // keycard differs from the corpus exactly where cedar-wasm 4.13 does, with cedar-wasm's answer.
  explainedByWasm: 0,
};
let failed = false;

for await (const path of jsonFiles(root)) {
  const read = await readDescriptor(root, path);
  if (read.kind === "other") continue;
  counts.descriptors++;
  if (read.kind === "broken") {
    counts.brokenDescriptors++;
    failed = true;
    console.log(`BROKEN ${relative(root, path)}: ${read.message}`);
    continue;
  }
  runDescriptor(read.descriptor);
}

function runDescriptor(d: Descriptor): void {
  if (d.shouldValidate) counts.shouldValidate++;
  let compiled: ReturnType<typeof compilePolicies> | undefined;
  let refusal = "";
  try {
    compiled = compilePolicies(d.policies);
  } catch (error) {
    refusal = `policies: ${(error as Error).message}`;
  }
  for (const q of d.requests) {
    counts.requests++;
    if (q.principal === null || q.action === null || q.resource === null) {
      counts.skippedUnspecified++;
      continue;
    }
    counts.run++;
    if (q.validateRequest) counts.validateRequest++;
    const request = { principal: q.principal, action: q.action, resource: q.resource, context: q.context };
    const ours = compiled
      ? decideKeycard(compiled, request, d.entities)
      : { kind: "refused" as const, message: refusal };
    const theirs = decideWasm(d.policies, request, d.entities);
    const vsCorpus = same(ours, expected(q));
    const vsWasm = same(ours, theirs);
    const wasmVsCorpus = same(theirs, expected(q));
    if (d.schemaContent !== undefined) {
      const withSchema = decideWasm(d.policies, request, d.entities, {
        schema: d.schemaContent,
        validate: q.validateRequest,
      });
      const agrees = same(withSchema, expected(q));
      tally(counts.wasmSchemaCorpus, agrees);
      if (verbose && !agrees) {
        console.log(
          `WASM+SCHEMA≠CORPUS ${relative(root, d.path)} "${q.desc}": ${show(withSchema)}; corpus ${show(expected(q))}`,
        );
      }
    }
    tally(counts.keycardCorpus, vsCorpus);
    tally(counts.keycardWasm, vsWasm);
    tally(counts.wasmCorpus, wasmVsCorpus);
    if (!vsCorpus && vsWasm) counts.explainedByWasm++;
    if (!vsWasm || (!vsCorpus && (strict || wasmVsCorpus))) failed = true;
    const where = `${relative(root, d.path)} "${q.desc}"`;
    if (!vsWasm) {
      console.log(
        `KEYCARD≠WASM ${where}: keycard ${show(ours)}; cedar-wasm ${show(theirs)}; corpus ${show(expected(q))}`,
      );
    } else if (!vsCorpus) {
      console.log(`KEYCARD≠CORPUS ${where}: keycard = cedar-wasm ${show(ours)}; corpus ${show(expected(q))}`);
    } else if (verbose && !wasmVsCorpus) {
      console.log(`WASM≠CORPUS ${where}: cedar-wasm ${show(theirs)}; corpus ${show(expected(q))}`);
    }
  }
}

interface Request {
  principal: Uid;
  action: Uid;
  resource: Uid;
  context: Record<string, unknown>;
}

function decideKeycard(compiled: ReturnType<typeof compilePolicies>, r: Request, entities: unknown[]): Answer {
  try {
    const a = compiled.isAuthorized({ ...r, context: r.context as never, entities: entities as never });
    return { kind: "decision", decision: a.decision, reason: a.reason, errors: a.errors, messages: a.errorMessages };
  } catch (error) {
    return { kind: "refused", message: `request: ${(error as Error).message}` };
  }
}

function decideWasm(
  policies: string,
  r: Request,
  entities: unknown[],
  withSchema?: { schema: unknown; validate: boolean },
): Answer {
  try {
    const a = cedar.isAuthorized({
      ...r,
      context: r.context as never,
      policies: { staticPolicies: policies },
      entities: entities as never,
      ...(withSchema ? { schema: withSchema.schema as never, validateRequest: withSchema.validate } : {}),
    });
    if (a.type !== "success") return { kind: "refused", message: a.errors.map((e) => e.message).join("; ") };
    const diagnostics = a.response.diagnostics;
    return {
      kind: "decision",
      decision: a.response.decision,
      reason: [...diagnostics.reason].sort(),
      errors: diagnostics.errors.map((e) => e.policyId).sort(),
      messages: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    };
  } catch (error) {
    return { kind: "refused", message: `threw: ${(error as Error).message}` };
  }
}

function expected(q: CorpusRequest): Answer {
  return { kind: "decision", decision: q.decision, reason: q.reason, errors: q.errors, messages: [] };
}

// Refusals agree with each other whatever their wording; decisions by decision and both id sets.
function same(a: Answer, b: Answer): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "refused" || b.kind === "refused") return true;
  return a.decision === b.decision && equal(a.reason, b.reason) && equal(a.errors, b.errors);
}

function equal(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function tally(c: { agreed: number; disagreed: number }, agreed: boolean): void {
  if (agreed) c.agreed++;
  else c.disagreed++;
}

function show(a: Answer): string {
  if (a.kind === "refused") return `refused (${a.message.slice(0, 160)})`;
  const messages = a.messages.length ? ` [${a.messages.join(" | ").slice(0, 200)}]` : "";
  return `${a.decision} reason=[${a.reason}] errors=[${a.errors}]${messages}`;
}

async function* jsonFiles(dir: string): AsyncGenerator<string> {
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* jsonFiles(path);
    else if (entry.isFile && entry.name.endsWith(".json") && !entry.name.endsWith(".entities.json")) yield path;
  }
}

const pct = (n: number) => counts.run ? ` (${(100 * n / counts.run).toFixed(1)}%)` : "";
console.log(`
descriptors: ${counts.descriptors} (${counts.brokenDescriptors} unreadable)
requests: ${counts.requests}, run ${counts.run}, skipped ${counts.skippedUnspecified} (unspecified principal/action/resource: Cedar 3 only)
not checked: shouldValidate in ${counts.shouldValidate} descriptors, request validation for ${counts.validateRequest} requests (keycard has no validator)
keycard vs corpus:     agreed ${counts.keycardCorpus.agreed}${
  pct(counts.keycardCorpus.agreed)
}, disagreed ${counts.keycardCorpus.disagreed} (${counts.explainedByWasm} the same as cedar-wasm 4.13)
keycard vs cedar-wasm: agreed ${counts.keycardWasm.agreed}${
  pct(counts.keycardWasm.agreed)
}, disagreed ${counts.keycardWasm.disagreed}
cedar-wasm vs corpus:  agreed ${counts.wasmCorpus.agreed}${
  pct(counts.wasmCorpus.agreed)
}, disagreed ${counts.wasmCorpus.disagreed}
cedar-wasm + schema vs corpus (where the schema file is present): agreed ${counts.wasmSchemaCorpus.agreed}, disagreed ${counts.wasmSchemaCorpus.disagreed}
${counts.keycardWasm.agreed} passed, ${counts.keycardWasm.disagreed} failed, ${counts.skippedUnspecified} skipped`);
Deno.exit(failed ? 1 : 0);
