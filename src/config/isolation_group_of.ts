import type { IsolationConfig } from "./config.ts";

/**
 * The isolation group a plugin joins: the first group, in the order written, with a pattern matching its name, where
 * `*` matches any run of characters (none included) and every other character only itself. A plugin no group
 * matches has workers of its own (`isolation: plugin`).
 *
 * @param config The configuration's `isolation` section.
 * @param pluginName The plugin's name, as its manifest gives it.
 * @returns The group's name, or `undefined` for a plugin with workers of its own.
 *
 * @example Find a plugin's group
 * ```ts
 * import { isolationGroupOf } from "./isolation_group_of.ts";
 * const config = {
 *   isolation: {
 *     groups: [
 *       { name: "tenant-a", workers: 2, plugins: ["tenant-a-*"] },
 *       { name: "tenants", workers: 4, plugins: ["tenant-*", "hello"] },
 *     ],
 *   },
 * };
 * isolationGroupOf(config, "tenant-a-billing"); // "tenant-a" (the first group that matches)
 * isolationGroupOf(config, "tenant-b-billing"); // "tenants"
 * isolationGroupOf(config, "stamp"); // undefined
 * ```
 */
export function isolationGroupOf(config: { isolation: IsolationConfig }, pluginName: string): string | undefined {
  return config.isolation.groups.find((group) => group.plugins.some((pattern) => _matches(pattern, pluginName)))
    ?.name;
}

/**
 * Whether `name` matches `pattern`, `*` matching any run of characters. Greedy with one backtrack point (the last
 * `*`), so linear in practice and never exponential, unlike a regular expression built from the pattern.
 */
function _matches(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = n;
    } else if (star !== -1) {
      p = star + 1;
      n = ++resume;
    } else return false;
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}
