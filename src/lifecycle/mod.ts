/**
 * Policy as code: test policies against expected decisions, plan a policy
 * change by replaying recorded decisions, propose a plugin's least grant from
 * what it did, explain a decision. Built on `PolicyEngine`; behind `deno task
 * policy`, `deno task conform --propose` and the gateway's API.
 *
 * @module
 */
