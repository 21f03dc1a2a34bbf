import { checkPolicyName } from "../store/mod.ts";
import { quoteValue } from "./_input.ts";
import { ProblemError } from "./problem.ts";

/**
 * A policy file name as the API and the console take it: `<name>` or `<name>.cedar`, where `<name>` is 1-128
 * letters, digits, `_`, `-` or `.` not starting with `.` (so no path and nothing hidden). The rule is the store's
 * (`checkPolicyName`): one rule for every way a policy file is named.
 *
 * @param raw The name as given.
 * @returns The file name, ending in `.cedar`.
 * @throws {ProblemError} `bad-request` when the name breaks the rule.
 *
 * @example
 * ```ts
 * import { policyFileName } from "./policy_file_name.ts";
 * policyFileName("ops"); // "ops.cedar"
 * ```
 */
export function policyFileName(raw: string): string {
  const name = raw.endsWith(".cedar") ? raw : `${raw}.cedar`;
  try {
    return checkPolicyName(name);
  } catch {
    throw new ProblemError(
      "bad-request",
      `Policy name ${quoteValue(raw)} is invalid: a name is 1-128 letters, digits, "_", "-" or "." and does not ` +
        `start with "."`,
      { name: raw },
    );
  }
}
