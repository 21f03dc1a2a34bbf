/**
 * The zod schema of `plugin.yaml`, validated through config's YAML path so
 * that every problem carries the line and column of its node: unknown keys
 * refused (typos), each leaf with a message that says what it expects.
 */
import { z } from "zod";
import { expect, list, map, MEDIA_TYPE, PLUGIN_LIMITS_SCHEMA, showYamlValue as show, text } from "../config/mod.ts";
import { compileGrants, type Grant, GrantError } from "../policy/mod.ts";

/** The actions a plugin may attempt (principal `Plugin` in `policies/keycard.cedarschema`). */
const PLUGIN_ACTIONS = [
  "fs.read",
  "fs.write",
  "fs.list",
  "fs.delete",
  "http.request",
  "kv.get",
  "kv.set",
  "kv.delete",
  "env.get",
  "log.write",
  "clock.now",
  "random.get",
] as const;

/** The registry's name rule (`checkPluginName`): no leading dot, so no `.`, `..` or hidden names. */
const NAME = /^(?!\.)[A-Za-z0-9_.-]{1,128}$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const SHA256 = /^[0-9A-Fa-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A bare string stands for a map with that string under `key`. */
function short<T extends z.ZodType>(key: string, schema: T) {
  return z.preprocess((value) => typeof value === "string" ? { [key]: value } : value, schema);
}

const sample = short(
  "input",
  map({
    input: z.string(expect("the input as a string")),
    expect: z.enum(["ok", "error"], expect('"ok" or "error"')).optional(),
  }, 'a string, or a map with "input" and optionally "expect"'),
).transform((s) => ({ input: s.input, expect: s.expect ?? "ok" as const }));

const exportEntry = short(
  "name",
  map({
    name: text("an export name", /^\S+$/),
    description: z.string(expect("text")).optional(),
    samples: list(sample).optional(),
    contentType: text('a media type such as "text/plain; charset=utf-8"', MEDIA_TYPE).optional(),
    envelope: z.boolean(expect("true or false")).optional(),
  }, 'an export name, or a map with "name"'),
).transform((e) => ({
  name: e.name,
  ...(e.description === undefined ? {} : { description: e.description }),
  samples: e.samples ?? [],
  ...(e.contentType === undefined ? {} : { contentType: e.contentType }),
  ...(e.envelope === undefined ? {} : { envelope: e.envelope }),
}));

/** The shape of `plugin.yaml`. */
export const MANIFEST_SCHEMA = map({
  name: text("a name of 1-128 letters, digits, '_', '.' or '-', not starting with '.'", NAME),
  version: text("a semantic version such as 1.0.0", SEMVER).optional(),
  description: z.string(expect("text")).optional(),
  exports: list(exportEntry).optional().superRefine((exports, ctx) => {
    const seen = new Map<string, number>();
    for (const [index, entry] of (exports ?? []).entries()) {
      const first = seen.get(entry.name);
      if (first === undefined) seen.set(entry.name, index);
      else {
        ctx.addIssue({
          code: "custom",
          path: [index, "name"],
          message: `repeats ${JSON.stringify(entry.name)} of entry ${first}: each export is declared once`,
        });
      }
    }
  }),
  capabilities: list(z.enum(PLUGIN_ACTIONS, expect(`an action (${PLUGIN_ACTIONS.join(", ")})`))).optional(),
  grants: list(z.record(z.string(), z.unknown(), expect("a grant such as { fs.read: { dir: ./data } }"))).optional(),
  limits: PLUGIN_LIMITS_SCHEMA.nullish(),
  config: z.record(
    z.string(),
    z.union([z.string(), z.number(), z.boolean()], expect("a string, number or true/false"))
      .transform((value) => String(value)),
    expect("a map of names to values"),
  ).nullish(),
  sha256: z.string({
    error: (issue) =>
      `expected 64 hexadecimal digits in quotes, got ${
        typeof issue.input === "number" ? "a number (quote the hash)" : show(issue.input)
      }`,
  }).regex(SHA256, expect("64 hexadecimal digits in quotes")).transform((hex) => hex.toLowerCase()).optional(),
  signature: text("base64 text (an Ed25519 signature of the module)", BASE64).refine((s) => s !== "", {
    message: 'expected base64 text (an Ed25519 signature of the module), got ""',
  }).optional(),
}).superRefine((manifest, ctx) => {
  // Grants are checked the way the gateway compiles them, so a bad one is refused here with its line.
  // zod runs this even when other fields failed: a bad name is reported on its own.
  if (typeof manifest.name !== "string" || !NAME.test(manifest.name)) return;
  try {
    compileGrants(manifest.name, (manifest.grants ?? []) as Grant[]);
  } catch (error) {
    if (!(error instanceof GrantError) || error.index < 0) throw error;
    // The path names the grant already: keep the rule, not "Grant n of plugin ..." before it.
    const message = error.message.replace(/^(?:Grant \d+ of plugin "[^"]*": )+/, "");
    ctx.addIssue({ code: "custom", path: ["grants", error.index], message });
  }
});
