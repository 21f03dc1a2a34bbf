import assert from "node:assert/strict";
import { normalizePath } from "./normalize_path.ts";

Deno.test("normalizePath() decodes unreserved characters, merges slashes and resolves dot segments", () => {
  const cases: [string, string][] = [
    ["/", "/"],
    ["//", "/"],
    ["/pub/x", "/pub/x"],
    ["/pub/", "/pub/"],
    ["/pub//a///b", "/pub/a/b"],
    ["//priv/x", "/priv/x"],
    ["/pub/a/./b/../c", "/pub/a/c"],
    ["/pub/x/..", "/pub/"],
    ["/pub/x/.", "/pub/x/"],
    ["/../../etc/passwd", "/etc/passwd"],
    ["/%70ub/%78%7e%2D%5f", "/pub/x~-_"],
    ["/pub/%252e%252e/x", "/pub/%252e%252e/x"],
    ["/pub/a%3fb%23c", "/pub/a%3Fb%23c"],
    ["/pub/é", "/pub/%C3%A9"],
    ["/pub/a b", "/pub/a%20b"],
    ["/pub/..;/x", "/pub/..;/x"],
    ["/pub/a:b@c!$&'()*+,;=", "/pub/a:b@c!$&'()*+,;="],
  ];
  for (const [raw, expected] of cases) assert.equal(normalizePath(raw), expected, raw);
});

Deno.test("normalizePath() refuses encoded slashes, backslashes, NUL, encoded dot segments and bad encodings", () => {
  const cases: [string, RegExp][] = [
    ["/pub/..%2fpriv/x", /encoded slash/],
    ["/pub/..%2Fpriv/x", /encoded slash/],
    ["/pub/..%5cpriv/x", /encoded backslash/],
    ["/pub/..\\priv/x", /backslash/],
    ["/pub/x%00", /NUL/],
    ["/pub/x%0a", /control character/],
    ["/pub/x\ty", /control character/],
    ["/pub/%2e%2e/priv", /encoded dot/],
    ["/pub/%2E%2E/priv", /encoded dot/],
    ["/pub/.%2e/priv", /encoded dot/],
    ["/pub/%2e./priv", /encoded dot/],
    ["/pub/%2e/x", /encoded dot/],
    ["/pub/x%2", /malformed/],
    ["/pub/x%zz", /malformed/],
    ["pub/x", /start with/],
  ];
  for (const [raw, why] of cases) {
    assert.throws(() => normalizePath(raw), (error: unknown) => {
      assert.ok(error instanceof URIError, raw);
      assert.match(error.message, why, raw);
      assert.ok(error.message.includes(JSON.stringify(raw)), error.message);
      return true;
    });
  }
});

Deno.test("normalizePath() keeps an encoded slash encoded when asked, never as a separator", () => {
  assert.equal(normalizePath("/pub/a%2fb/../c", { encodedSlashes: "keep" }), "/pub/c");
  assert.equal(normalizePath("/pub/a%2fb", { encodedSlashes: "keep" }), "/pub/a%2Fb");
  assert.equal(normalizePath("/pub/..%2f..", { encodedSlashes: "keep" }), "/pub/..%2F..");
});
