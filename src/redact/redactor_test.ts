import assert from "node:assert/strict";
import { Redactor } from "./redactor.ts";

const SECRET = "s3cr3t-VALUE-42";

Deno.test("mask() masks a known value inside a longer string, every occurrence", () => {
  const redactor = new Redactor();
  redactor.setSecrets("config", [SECRET]);
  assert.equal(redactor.mask(`key=${SECRET}&again=${SECRET}!`), "key=[REDACTED]&again=[REDACTED]!");
  assert.equal(redactor.mask(SECRET), "[REDACTED]");
  assert.equal(redactor.mask("nothing here"), "nothing here");
  assert.equal(redactor.mask("s3cr3t-VALUE-4"), "s3cr3t-VALUE-4", "a prefix of the secret is not the secret");
});

Deno.test("mask() masks overlapping and adjacent secrets as one run, leaving no part of either", () => {
  const redactor = new Redactor({ mask: "***" });
  redactor.setSecrets("config", ["abcdef", "defghi", "xyz12"]);
  assert.equal(redactor.mask("0abcdefghi1"), "0***1");
  assert.equal(redactor.mask("abcdefxyz12"), "***");
  assert.equal(redactor.mask("abcdef defghi"), "*** ***");
});

Deno.test("mask() prefers the longest secret at a position and finds one nested in another", () => {
  const redactor = new Redactor();
  redactor.setSecrets("a", ["token", "token-long-form"]);
  redactor.setSecrets("b", ["long"]);
  assert.equal(redactor.mask("x token-long-form y"), "x [REDACTED] y");
  assert.equal(redactor.mask("a long token"), "a [REDACTED] [REDACTED]");
});

Deno.test("mask() finds JSON-escaped and URL-encoded forms of a secret", () => {
  const secret = 'p@ss "word"/\\ é+1';
  const redactor = new Redactor();
  redactor.setSecrets("config", [secret]);
  const json = JSON.stringify(secret).slice(1, -1);
  assert.equal(redactor.mask(`Key::"ns/${json}"`), 'Key::"ns/[REDACTED]"');
  assert.equal(redactor.mask(`/v1/${encodeURIComponent(secret)}?x`), "/v1/[REDACTED]?x");
  const lower = encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase());
  assert.equal(redactor.mask(`/v1/${lower}`), "/v1/[REDACTED]");
  assert.equal(redactor.mask(`q=${encodeURIComponent(secret).replaceAll("%20", "+")}`), "q=[REDACTED]");
  // As the URL parser writes a path (a "\\" would become "/" there: a different string, not covered).
  const plain = 'p@ss "word" é+1';
  redactor.setSecrets("path", [plain]);
  assert.equal(redactor.mask(new URL(`http://h/${plain}`).pathname), "/[REDACTED]");
  // Escaped twice (JSON inside a JSON string) is not a form it covers.
  const twice = JSON.stringify(json).slice(1, -1);
  assert.ok(redactor.mask(twice).includes("word"));
});

Deno.test("setSecrets() replaces a source's values; another source's stay", () => {
  const redactor = new Redactor();
  redactor.setSecrets("a", ["first-secret", "shared-secret"]);
  redactor.setSecrets("b", ["shared-secret"]);
  redactor.setSecrets("a", ["second-secret"]);
  assert.equal(redactor.mask("first-secret second-secret shared-secret"), "first-secret [REDACTED] [REDACTED]");
  redactor.setSecrets("b", []);
  redactor.setSecrets("a", []);
  assert.equal(redactor.active, false);
  assert.equal(redactor.mask("second-secret"), "second-secret");
});

Deno.test("setSecrets() leaves values shorter than minLength unmasked and returns them", () => {
  const redactor = new Redactor({ minLength: 4 });
  assert.deepEqual(redactor.setSecrets("config", ["abc", "abcd", ""]), ["abc", ""]);
  assert.equal(redactor.mask("abc abcd"), "abc [REDACTED]");
  assert.equal(redactor.stats().short, 2);
});

Deno.test("observe() learns secret headers by name in any case, with the credentials of a scheme and cookies", () => {
  const redactor = new Redactor({ headers: ["Authorization", "COOKIE", "x-api-key"] });
  const basic = btoa("alice:open-sesame");
  redactor.observe(new Headers({ authorization: "Bearer tok-abcdef123", "x-api-key": "k-998877", accept: "text/x" }));
  redactor.observe(new Headers({ Authorization: `Basic ${basic}`, Cookie: "theme=lt; session=sess-0011" }));
  assert.equal(redactor.mask("auth Bearer tok-abcdef123 then tok-abcdef123"), "auth [REDACTED] then [REDACTED]");
  assert.equal(redactor.mask("key k-998877"), "key [REDACTED]");
  assert.equal(redactor.mask(`${basic} alice:open-sesame pw=open-sesame`), "[REDACTED] [REDACTED] pw=[REDACTED]");
  assert.equal(redactor.mask("session=sess-0011"), "session=[REDACTED]");
  assert.equal(redactor.mask("theme=lt"), "theme=lt", "a cookie value shorter than minLength stays");
  assert.equal(redactor.mask("text/x"), "text/x", "headers not named are not secrets");
});

Deno.test("observe() remembers at most `remember` values, forgetting the least recently seen", () => {
  const redactor = new Redactor({ headers: ["x-api-key"], remember: 2 });
  const see = (value: string) => redactor.observe(new Headers({ "x-api-key": value }));
  see("key-one-1");
  see("key-two-2");
  see("key-one-1"); // now the most recent
  see("key-three-3");
  assert.equal(redactor.mask("key-one-1 key-two-2 key-three-3"), "[REDACTED] key-two-2 [REDACTED]");
  assert.equal(redactor.stats().remembered, 2);
});

Deno.test("mask() masks every match of the patterns, alone and overlapping known values", () => {
  const redactor = new Redactor({ patterns: ["sk_live_[A-Za-z0-9]{8}", "AKIA[A-Z0-9]{16}"] });
  assert.equal(
    redactor.mask("a sk_live_abcd1234 b AKIAABCDEFGHIJKLMNOP c sk_live_short"),
    "a [REDACTED] b [REDACTED] c sk_live_short",
  );
  redactor.setSecrets("config", ["1234-tail"]);
  assert.equal(redactor.mask("sk_live_abcd1234-tail!"), "[REDACTED]!");
  assert.equal(redactor.mask("sk_live_abcd1234".repeat(2)), "[REDACTED]");
});

Deno.test("mask() skips zero-length matches of a lookahead pattern", () => {
  const redactor = new Redactor({ patterns: ["(?=x)|tok_[0-9]+"] });
  assert.equal(redactor.mask("x tok_12 x"), "x [REDACTED] x");
});

Deno.test("maskValue() masks every string of an event, keys too, and copies only what changed", () => {
  const redactor = new Redactor();
  redactor.setSecrets("config", [SECRET]);
  const untouched = { context: { method: "GET" }, list: ["a"] };
  const event = {
    resource: `Key::"stamp/${SECRET}"`,
    errors: [`Cannot kv.get Key::"stamp/${SECRET}"`, "other"],
    count: 3,
    caller: null,
    request: { context: { path: `/x/${SECRET}`, [SECRET]: true }, deep: [[{ v: SECRET }]] },
    untouched,
  };
  const masked = redactor.maskValue(event);
  assert.deepEqual(masked, {
    resource: 'Key::"stamp/[REDACTED]"',
    errors: ['Cannot kv.get Key::"stamp/[REDACTED]"', "other"],
    count: 3,
    caller: null,
    request: { context: { path: "/x/[REDACTED]", "[REDACTED]": true }, deep: [[{ v: "[REDACTED]" }]] },
    untouched,
  });
  assert.equal(masked.untouched, untouched, "an unchanged part is the same object");
  assert.ok(event.resource.includes(SECRET), "the input is not mutated");
  assert.ok(!JSON.stringify(masked).includes(SECRET));
  const clean = { a: "b", n: [1] };
  assert.equal(redactor.maskValue(clean), clean);
});

Deno.test("maskValue() walks objects of any class and toJSON results as JSON.stringify writes them", () => {
  const redactor = new Redactor();
  redactor.setSecrets("config", [SECRET]);
  class Entity {
    constructor(readonly uid: { type: string; id: string }) {
      Object.freeze(this);
    }
  }
  const entity = new Entity({ type: "Key", id: `p/ns/${SECRET}` });
  const when = { toJSON: () => `at ${SECRET}` };
  const masked = redactor.maskValue({ resource: entity, when, clean: new Entity({ type: "Key", id: "k" }) });
  assert.equal(
    JSON.stringify(masked),
    '{"resource":{"uid":{"type":"Key","id":"p/ns/[REDACTED]"}},"when":"at [REDACTED]","clean":{"uid":{"type":"Key","id":"k"}}}',
  );
  assert.ok(masked.clean instanceof Entity, "an object without a secret is kept as is");
});

Deno.test("maskValue() replaces a value nested past 64 levels by the mask", () => {
  const redactor = new Redactor();
  redactor.setSecrets("config", [SECRET]);
  let deep: unknown = SECRET;
  for (let i = 0; i < 70; i++) deep = { d: deep };
  const text = JSON.stringify(redactor.maskValue(deep));
  assert.ok(!text.includes(SECRET));
  assert.ok(text.includes("[REDACTED]"));
});

Deno.test("mask() never answers from a stale cache: a secret learned later is masked in a string seen before", () => {
  const redactor = new Redactor({ headers: ["x-api-key"], patterns: ["zzz[0-9]+"] });
  const text = "call with key-778899 and config-value-1";
  assert.equal(redactor.mask(text), text);
  redactor.observe(new Headers({ "x-api-key": "key-778899" }));
  assert.equal(redactor.mask(text), "call with [REDACTED] and config-value-1");
  redactor.setSecrets("config", ["config-value-1"]);
  assert.equal(redactor.mask(text), "call with [REDACTED] and [REDACTED]");
  redactor.setSecrets("config", []);
  assert.equal(redactor.mask(text), "call with [REDACTED] and config-value-1");
});

Deno.test("an inactive redactor returns values as they are", () => {
  const redactor = new Redactor({ headers: ["authorization"] });
  const event = { resource: "x" };
  assert.equal(redactor.active, false);
  assert.equal(redactor.maskValue(event), event);
  redactor.observe(new Headers({ authorization: "Bearer abcdefgh" }));
  assert.equal(redactor.active, true);
});

Deno.test("Redactor refuses an empty mask, a bad minLength and a refused pattern", () => {
  assert.throws(() => new Redactor({ mask: "" }), RangeError);
  assert.throws(() => new Redactor({ minLength: 0 }), RangeError);
  assert.throws(() => new Redactor({ patterns: ["(a+)+"] }), SyntaxError);
});

Deno.test("mask() finds secrets among many known values at any position (randomized against indexOf)", () => {
  const redactor = new Redactor({ mask: "#" });
  const alphabet = "ab-";
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const word = (length: number) => Array.from({ length }, () => alphabet[random(alphabet.length)]).join("");
  const secrets = Array.from({ length: 40 }, () => word(4 + random(6)));
  redactor.setSecrets("config", secrets);
  for (let round = 0; round < 300; round++) {
    const text = word(random(60));
    const covered = new Array<boolean>(text.length).fill(false);
    for (const secret of secrets) {
      for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + 1)) {
        covered.fill(true, at, at + secret.length);
      }
    }
    let expected = "";
    for (let i = 0; i < text.length; i++) {
      if (!covered[i]) expected += text[i];
      else if (i === 0 || !covered[i - 1]) expected += "#";
    }
    assert.equal(redactor.mask(text), expected, `text ${JSON.stringify(text)}`);
  }
});
