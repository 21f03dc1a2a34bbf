/**
 * Policy as code: test policies against expected decisions, plan a policy
 * change by replaying recorded decisions, propose a plugin's least grant from
 * what it did, explain a decision. Built on `PolicyEngine`; behind `deno task
 * policy`, `deno task conform --propose` and the gateway's API.
 *
 * @module
 */
export {
  createEngineInForce,
  grantSource,
  type PluginInForce,
  type PoliciesInForce,
  policiesInForce,
  type PoliciesInForceOptions,
  type PolicyDir,
  readPolicyDir,
  type ReadPolicyDirOptions,
} from "./policies_in_force.ts";
export {
  formatPolicyTestReport,
  type FormatPolicyTestReportOptions,
  type LoadedPolicyTests,
  loadPolicyTests,
  parsePolicyTests,
  type PolicyCoverage,
  type PolicyTestCase,
  PolicyTestError,
  type PolicyTestFile,
  type PolicyTestFormat,
  type PolicyTestReport,
  type PolicyTestResult,
  runPolicyTests,
  type RunPolicyTestsOptions,
} from "./policy_tests.ts";
export { type ExplainedDecision, explainRequest, type Explanation, parseRequestFile } from "./explain.ts";
export {
  type GrantProposal,
  type GrantWarning,
  proposeGrants,
  type ProposeGrantsOptions,
  type UngrantableAttempt,
} from "./propose.ts";
export { conformAndPropose, type ConformAndProposeOptions, type ProposalReport } from "./conform_and_propose.ts";
export {
  type PlanAudit,
  type PlanChange,
  type PlanExample,
  type PlanGroup,
  type PlanOptions,
  type PlanOutcome,
  planPolicyChange,
  type PlanReport,
  type PlanSkip,
  type PlanSkipReason,
} from "./plan.ts";
export { type AuditWindow, readAuditEvents, type RecordedAudit } from "./read_audit_events.ts";
