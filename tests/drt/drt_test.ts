// Differential random testing in the gate, as cedar-spec proves Cedar's implementations: keycard's TypeScript Cedar
// against cedar-wasm 4.13.0 on every saved regression case, then on 20,000 seeded random requests (400 policy sets ×
// 50) and 2,400 parse cases (each set's text, and 2,000 generated texts, most of them mutated). A failure prints each
// disagreement; `deno task drt --seed=<the seed printed>` shrinks and saves them to tests/drt/regressions/.
import assert from "node:assert/strict";
import { canonical, disagreement, loadCases, parseDisagreement, replay } from "./_compare.ts";
import { CONSTRUCTS, OUTCOMES } from "./_coverage.ts";
import { describeFindings, runDrt, summaryLine } from "./_run.ts";
import type { Answer, ParseAnswer } from "./_subject.ts";

/** The gate's seed: fixed, so that a failure in CI replays exactly. */
const GATE_SEED = 20240601;

Deno.test("drt: every saved regression case agrees with cedar-wasm", async () => {
  const cases = await loadCases();
  const failing: string[] = [];
  for (const { name, case: c } of cases) {
    const r = replay(c);
    if (r.class !== undefined) {
      failing.push(
        `${name} [${r.class}] (${c.found})\npolicies:\n${c.policies}\ntypescript: ${
          JSON.stringify(r.typescript).slice(0, 1500)
        }\ncedar-wasm: ${JSON.stringify(r.cedarWasm).slice(0, 1500)}`,
      );
    }
  }
  console.log(`drt: ${cases.length} regression cases replayed, ${failing.length} still disagree`);
  assert.equal(failing.length, 0, `regression cases that still disagree:\n\n${failing.join("\n\n")}`);
});

Deno.test("drt: 20,000 random requests agree with cedar-wasm", async () => {
  const stats = await runDrt({
    seed: GATE_SEED,
    requests: 20_000,
    requestsPerSet: 50,
    parseCases: 2_000,
    shrinkLimit: 2, // shrinking is for `deno task drt`; the gate only shows a couple, shrunk
  });
  console.log(summaryLine(stats));
  assert.equal(
    stats.disagreements,
    0,
    `${stats.disagreements} disagreements (${
      [...stats.signatures].map(([s, n]) => `${n}× ${s}`).join("; ")
    }); run \`deno task drt --seed=${GATE_SEED} --requests=20000\` to shrink and save them:\n\n${
      describeFindings(stats.findings)
    }`,
  );
  // The mix must mean something: decisions both ways, errors, every construct and outcome reached.
  const decided = stats.allow + stats.deny;
  assert.ok(stats.allow / decided >= 0.2, `Only ${stats.allow} of ${decided} requests were allowed`);
  assert.ok(stats.withErrors / decided >= 0.1, `Only ${stats.withErrors} of ${decided} requests had errors`);
  assert.deepEqual(stats.coverage.missing(CONSTRUCTS), [], "Constructs no generated policy used");
  assert.deepEqual(stats.coverage.missing(OUTCOMES), [], "Outcomes no request reached");
  assert.ok(stats.parseCases >= 2_000);
});

Deno.test("drt: the comparer tells answers apart and ignores what Cedar leaves open", () => {
  const decision = (decision: "allow" | "deny", reason: string[], errors: string[] = [], messages: string[] = []) =>
    ({ kind: "decision", decision, reason, errors, messages }) satisfies Answer;
  const refused = (stage: "policies" | "request", message: string) =>
    ({ kind: "refused", stage, message }) satisfies Answer;
  const allow = decision("allow", ["policy0", "policy1"]);
  assert.equal(disagreement(allow, decision("allow", ["policy1", "policy0"])), undefined, "reason order");
  assert.equal(disagreement(allow, decision("allow", allow.reason, [], ["policy2: worded otherwise"])), undefined);
  assert.equal(disagreement(allow, decision("deny", allow.reason)), "decision");
  assert.equal(disagreement(allow, decision("allow", ["policy0"])), "reason");
  assert.equal(disagreement(allow, decision("allow", allow.reason, ["policy2"])), "errors");
  assert.equal(disagreement(refused("request", "x"), refused("request", "y")), undefined, "refusal wording");
  assert.equal(disagreement(refused("request", "x"), allow), "refusal:typescript-request");
  assert.equal(disagreement(allow, refused("policies", "x")), "refusal:cedar-wasm-policies");
  // ESTs: a bigint Long equals cedar-wasm's number for it; key order is irrelevant.
  assert.equal(canonical({ Value: 5n, b: [1n] }), canonical({ b: [1], Value: 5 }));
  const est = (v: unknown): ParseAnswer => ({
    kind: "parsed",
    ests: [{ conditions: [{ kind: "when", body: { Value: v } }] }],
  });
  assert.equal(parseDisagreement(est(9223372036854775807n), est(9223372036854775807)), undefined);
  assert.equal(parseDisagreement(est(1n), est(2)), "parse:est");
  assert.equal(parseDisagreement({ kind: "refused", message: "" }, est(1)), "parse:typescript-refuses");
  // Past keycard's documented nesting bound is out of the comparison (cedar-wasm overflows its stack there).
  const deep = "Invalid Cedar at line 1, column 99: expression nested deeper than the limit of 64 levels";
  assert.equal(parseDisagreement({ kind: "refused", message: deep }, est(1)), undefined);
});
