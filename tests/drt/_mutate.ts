// The DRT's mutators: entity JSON and requests bent in the ways Cedar's entity format can be (some refused, some
// accepted: both implementations must agree which), and policy texts mutated for parse agreement.
import { type EntityJson, EXT_LITERALS, type JsonValue, type RequestJson } from "./_generate.ts";
import type { Random } from "./_random.ts";

/**
 * A copy of `entities` (or of the request) broken or bent in one of the ways entity JSON can be: a cycle, a `null`, a
 * float, a bad extension literal, a missing field, a malformed escape, an unknown field, a duplicate, a non-string
 * id, a bare uid where an escape goes, an action under a non-action. Some are refused by Cedar, some accepted; both
 * sides must agree.
 * @param rng The randomness.
 * @param entities The store.
 * @param request The request (its uids and context can be bent too).
 * @returns The bent store and request, and what was done.
 */
export function bendEntities(
  rng: Random,
  entities: readonly EntityJson[],
  request: RequestJson,
): { entities: EntityJson[]; request: RequestJson; bend: string } {
  const copy = structuredClone(entities) as EntityJson[];
  const req = structuredClone(request);
  let ctx = req.context;
  const target = copy.length > 0 ? rng.pick(copy) : undefined;
  const setAttr = (value: JsonValue) => {
    if (target !== undefined) target.attrs[rng.pick(["x", "name", "a b"])] = value;
  };
  const kinds = [
    "cycle",
    "selfParent",
    "null",
    "float",
    "badExtn",
    "unknownExtn",
    "missingAttrs",
    "missingParents",
    "entityNoId",
    "extraField",
    "duplicate",
    "conflictingDuplicate",
    "reorderedDuplicate",
    "numericId",
    "bareUid",
    "contextNotRecord",
    "contextNull",
    "contextBadExtn",
    "extnArgs",
    "nestedEscape",
    "badTypeName",
    "tagsNull",
    "tagsNotRecord",
    "tagsBadExtn",
    "emptyType",
    "bigNumber",
    "extnExtraKey",
    "entityExtraKey",
    "actionParentNonAction",
    "nonActionParentAction",
    "actionWithAttrs",
    "requestBadUid",
    "parentsNotArray",
    "attrsNotRecord",
    "uidString",
    "parentString",
  ] as const;
  const bend = rng.pick(kinds);
  const uidOf = (e: EntityJson) => "__entity" in e.uid ? e.uid.__entity : e.uid;
  switch (bend) {
    case "cycle": {
      if (copy.length >= 2) {
        const [a, b] = rng.sample(copy, 2) as [EntityJson, EntityJson];
        a.parents.push({ ...uidOf(b) });
        b.parents.push({ ...uidOf(a) });
      }
      break;
    }
    case "selfParent":
      if (target) target.parents.push({ ...uidOf(target) });
      break;
    case "null":
      setAttr(rng.chance(0.5) ? null : [1, null]);
      break;
    case "float":
      setAttr(rng.pick([1.5, -0.25, 1e300]));
      break;
    case "badExtn": {
      const fn = rng.pick(["decimal", "ip", "datetime", "duration"] as const);
      setAttr({ __extn: { fn, arg: rng.pick(EXT_LITERALS[fn].bad) } });
      break;
    }
    case "unknownExtn":
      // Not "unknown": partial evaluation's residuals, which keycard never builds (cedar-wasm carries them
      // through a concrete decision; the evaluator refuses them, and the shadow check reports it).
      setAttr({ __extn: { fn: rng.pick(["ipaddr", "lessThan", ""]), arg: "1.2.3.4" } });
      break;
    case "missingAttrs":
      if (target) delete (target as Partial<EntityJson>).attrs;
      break;
    case "missingParents":
      if (target) delete (target as Partial<EntityJson>).parents;
      break;
    case "entityNoId":
      setAttr({ __entity: rng.chance(0.5) ? { type: "User" } : { type: "User", id: "a", extra: 1 } });
      break;
    case "extraField":
      if (target) (target as unknown as Record<string, JsonValue>)[rng.pick(["extra", "uid2", "Attrs"])] = 1;
      break;
    case "duplicate":
      if (target) copy.push(structuredClone(target));
      break;
    case "conflictingDuplicate":
      if (target) copy.push({ ...structuredClone(target), attrs: { ...target.attrs, x: 1 }, parents: [] });
      break;
    case "reorderedDuplicate":
      if (target) {
        copy.push({
          ...structuredClone(target),
          attrs: Object.fromEntries(Object.entries(target.attrs).reverse()),
          parents: [...target.parents].reverse(),
        });
      }
      break;
    case "contextBadExtn": {
      const fn = rng.pick(["decimal", "ip", "datetime", "duration"] as const);
      ctx = { x: { __extn: { fn, arg: rng.pick(EXT_LITERALS[fn].bad) } } };
      break;
    }
    case "tagsBadExtn":
      if (target) target.tags = { t: { __extn: { fn: "ip", arg: rng.pick(EXT_LITERALS.ip.bad) } } };
      break;
    case "entityExtraKey":
      setAttr({ __entity: { type: "User", id: "alice" }, other: 1 });
      break;
    case "actionParentNonAction":
    case "nonActionParentAction":
    case "actionWithAttrs": {
      const actions = copy.filter((e) => /(^|::)Action$/.test(uidOf(e).type));
      const others = copy.filter((e) => !/(^|::)Action$/.test(uidOf(e).type));
      if (actions.length === 0 || others.length === 0) break;
      const action = rng.pick(actions);
      const other = rng.pick(others);
      if (bend === "actionParentNonAction") action.parents.push({ ...uidOf(other) });
      else if (bend === "nonActionParentAction") other.parents.push({ ...uidOf(action) });
      else action.attrs = { a: 1, b: "x" };
      break;
    }
    case "requestBadUid": {
      const bad = rng.pick<unknown>([
        { type: "A::", id: "a" },
        { type: "A", id: 1 },
        { __entity: { ...req.principal } },
        { ...req.principal, extra: 1 },
        { type: "" },
        'A::"a"',
      ]);
      if (rng.chance(0.5)) req.principal = bad as RequestJson["principal"];
      else req.resource = bad as RequestJson["resource"];
      break;
    }
    case "parentsNotArray":
      if (target) (target as unknown as { parents: JsonValue }).parents = {};
      break;
    case "attrsNotRecord":
      if (target) (target as unknown as { attrs: JsonValue }).attrs = rng.pick<JsonValue>([[], "x", null]);
      break;
    case "uidString":
      if (target) (target as unknown as { uid: JsonValue }).uid = `${uidOf(target).type}::"${uidOf(target).id}"`;
      break;
    case "parentString":
      if (target) (target as unknown as { parents: JsonValue }).parents = ['User::"alice"'];
      break;
    case "numericId":
      if (target) target.uid = { type: uidOf(target).type, id: 7 as unknown as string };
      break;
    case "bareUid":
      setAttr({ type: "User", id: "alice" });
      break;
    case "contextNotRecord":
      ctx = rng.pick<JsonValue>([[1], "x", 1, true]);
      break;
    case "contextNull":
      ctx = { ...(typeof ctx === "object" && ctx !== null && !Array.isArray(ctx) ? ctx : {}), bad: null };
      break;
    case "extnArgs":
      setAttr({ __extn: { fn: "ip", args: rng.chance(0.5) ? ["1.2.3.4"] : ["1.2.3.4", "x"] } });
      break;
    case "nestedEscape":
      setAttr({ __extn: { fn: "decimal", arg: { __extn: { fn: "decimal", arg: "1.0" } } } });
      break;
    case "badTypeName":
      if (target) target.uid = { type: rng.pick(["A::", "::A", "A B", "__cedar::A", "1A", ""]), id: "x" };
      break;
    case "tagsNull":
      if (target) target.tags = { a: null };
      break;
    case "tagsNotRecord":
      if (target) (target as unknown as { tags: JsonValue }).tags = [1];
      break;
    case "emptyType":
      if (target) target.parents.push({ type: "", id: "x" });
      break;
    case "bigNumber":
      // Only numbers whose shortest decimal form is exact: cedar-wasm reads a JS number through that form.
      setAttr(rng.pick([2 ** 53, -(2 ** 53), 2 ** 63, 1e21]));
      break;
    case "extnExtraKey":
      setAttr({ __extn: { fn: "ip", arg: "1.2.3.4" }, other: 1 });
      break;
  }
  req.context = ctx;
  return { entities: copy, request: req, bend };
}

const TOKENS = [
  "(",
  ")",
  "{",
  "}",
  "[",
  "]",
  ";",
  ",",
  '"',
  "\\",
  "::",
  ".",
  "==",
  "!=",
  "!",
  "-",
  "--",
  "<=",
  ">",
  "&&",
  "||",
  "+",
  "*",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775808",
  "-9223372036854775809",
  "00",
  "0x10",
  "1.5",
  "if",
  "then",
  "else",
  "like",
  "has",
  "is",
  "in",
  "true",
  "false",
  "principal",
  "action",
  "resource",
  "context",
  "permit",
  "forbid",
  "when",
  "unless",
  '@id("x")',
  "@a",
  "@",
  "?principal",
  "?resource",
  "?x",
  "/*",
  "//",
  "\n",
  " ",
  "\t",
  "\r",
  "\u00a0",
  "é",
  "🔑",
  '"\\u{110000}"',
  '"\\u{1F511}"',
  '"\\*"',
  '"\\x41"',
  '"\\q"',
  "__cedar",
  "__cedar::X",
  "Action",
  "'",
  "%",
  "$",
  "#",
  "`",
  ".contains(1)",
  ".isEmpty()",
  '.getTag("a")',
  '["a"]',
  "has a.b",
  'like "*\\**"',
  "is User",
  'is User in User::"a"',
  'ip("1.2.3.4")',
  'decimal("1.0")',
  "foo(1)",
  "Foo::bar(1)",
  "{a: 1, a: 2}",
  "[]",
  "{}",
  "()",
  "!!!!!",
  "-----1",
];

/**
 * A policy text mutated 1-3 times: a token inserted, a span deleted, duplicated or swapped, a number replaced by an
 * edge, the text truncated. Most results are refused; both parsers must refuse the same ones and agree on the rest.
 * @param rng The randomness.
 * @param text A policy set's text.
 * @returns The mutated text.
 */
export function mutateText(rng: Random, text: string): string {
  let out = text;
  for (let n = rng.range(1, 3); n > 0; n--) {
    const at = rng.int(out.length + 1);
    const len = rng.range(1, 12);
    switch (rng.int(8)) {
      case 0:
      case 1:
        out = out.slice(0, at) + rng.pick(TOKENS) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + len);
        break;
      case 3:
        out = out.slice(0, at) + out.slice(at, at + len) + out.slice(at);
        break;
      case 4: {
        const other = rng.int(out.length + 1);
        const [a, b] = at < other ? [at, other] : [other, at];
        out = out.slice(0, a) + out.slice(b, b + len) + out.slice(a + len, b) + out.slice(a, a + len) +
          out.slice(b + len);
        break;
      }
      case 5:
        out = out.replace(/-?\d+/, () => rng.pick(TOKENS.slice(23, 30)));
        break;
      case 6:
        out = out.slice(0, at);
        break;
      default: {
        // An identifier replaced by a reserved word or another identifier.
        const words = [...out.matchAll(/[A-Za-z_][A-Za-z_0-9]*/g)];
        if (words.length > 0) {
          const w = rng.pick(words);
          const i = w.index ?? 0;
          out = out.slice(0, i) + rng.pick(["if", "in", "is", "has", "like", "then", "true", "principal", "x", "_"]) +
            out.slice(i + w[0].length);
        }
      }
    }
  }
  return out;
}
