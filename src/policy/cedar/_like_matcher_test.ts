import assert from "node:assert/strict";
import type { PatternElem } from "@cedar-policy/cedar-wasm/web";
import { compileLike } from "./_like_matcher.ts";

/** A pattern from glob text: `*` a wildcard, `\*` a literal star. */
function pattern(glob: string): PatternElem[] {
  const out: PatternElem[] = [];
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === "\\") out.push({ Literal: glob[++i]! });
    else if (glob[i] === "*") out.push("Wildcard");
    else out.push({ Literal: glob[i]! });
  }
  return out;
}

const CASES: [string, string, boolean][] = [
  ["", "", true],
  ["", "a", false],
  ["*", "", true],
  ["*", "anything", true],
  ["**", "", true],
  ["a", "a", true],
  ["a", "ab", false],
  ["a*", "abc", true],
  ["*c", "abc", true],
  ["*c", "abd", false],
  ["a*c", "ac", true],
  ["a*c", "abbbc", true],
  ["a*c", "acb", false],
  ["*b*", "abc", true],
  ["*b*", "ac", false],
  ["a*a*a", "aaa", true],
  ["a*a*a", "aa", false],
  ["a*b*c", "aXbYc", true],
  ["a*b*c", "aXcYb", false],
  ["*ab*ab*", "abab", true],
  ["*ab*ab*", "aba", false],
  ["ab*ba", "aba", false],
  ["a\\*b", "a*b", true],
  ["a\\*b", "axb", false],
  ["*😀", "x😀", true],
  ["x*y", "x😀y", true],
  ["*.example.org", "api.example.org", true],
  ["*.example.org", "example.org", false],
];

for (const [glob, text, expected] of CASES) {
  Deno.test(`compileLike() ${expected ? "matches" : "does not match"} ${JSON.stringify(text)} with ${JSON.stringify(glob)}`, () => {
    assert.equal(compileLike(pattern(glob))(text), expected);
  });
}

Deno.test("compileLike() refuses an unknown pattern element", () => {
  assert.throws(() => compileLike(["Star" as never]), TypeError);
});
