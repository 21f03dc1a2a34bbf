import assert from "node:assert/strict";
import { checkPattern, MAX_PATTERN_LENGTH } from "./check_pattern.ts";

Deno.test("checkPattern() accepts ordinary secret patterns", () => {
  for (
    const source of [
      "sk_live_[A-Za-z0-9]{24}",
      "AKIA[A-Z0-9]{16}",
      "(?:ghp|gho)_[A-Za-z0-9]{36}",
      "-----BEGIN [A-Z ]+PRIVATE KEY-----",
      "(?:[0-9]{4}-){3}[0-9]{4}",
      "password=[^&\\s]+",
      "(?<scheme>Bearer) [\\w.-]+",
      "x(?:ab)+y",
      "[(+*]+a",
      "(a+)?b",
    ]
  ) {
    assert.equal(checkPattern(source).flags, "g", source);
  }
});

Deno.test("checkPattern() refuses nested quantifiers and repeated alternations", () => {
  for (const source of ["(a+)+$", "(a*)*", "(?:a|ab)*c", "((x+))+", "(\\d+){2,}", "(?:a{1,3}){1,9}", "(a|b)+"]) {
    assert.throws(() => checkPattern(source), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, /^Cannot use redaction pattern ".+": a repeated group .* nested quantifier/);
      return true;
    }, source);
  }
});

Deno.test("checkPattern() refuses back-references, empty matches, overlong and invalid patterns", () => {
  const cases: [string, RegExp][] = [
    ["(a)\\1", /back-reference/],
    ["(?<x>a)\\k<x>", /back-reference/],
    ["a*", /matches the empty string/],
    ["(?:x)?", /matches the empty string/],
    ["a".repeat(MAX_PATTERN_LENGTH + 1), /more than the limit of 256/],
    ["(unclosed", /is not a valid regular expression/],
    ["", /non-empty string/],
  ];
  for (const [source, message] of cases) {
    assert.throws(() => checkPattern(source), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, message);
      return true;
    }, source);
  }
});

Deno.test("checkPattern() reads groups, classes and escapes, not their characters", () => {
  // "\\(" and "[(]" are characters, not groups: the quantifier repeats one atom.
  assert.ok(checkPattern("\\(a+\\)+"));
  assert.ok(checkPattern("[()|]+x"));
  // A lazy quantifier is a quantifier all the same.
  assert.throws(() => checkPattern("(a+?)+?"), SyntaxError);
});
