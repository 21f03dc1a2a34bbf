/**
 * The zod schema of `keycard.yaml`: every key optional (defaults fill in),
 * unknown keys refused, each leaf with a message that says what it expects.
 */
import { normalize } from "node:path";
import { z } from "zod";

/** Renders a value for an error message: strings quoted, collections named. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

/** A zod error param that says what was expected and what came. */
function expect(expected: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) =>
      issue.input === undefined
        ? `is required: expected ${expected}`
        : `expected ${expected}, got ${show(issue.input)}`,
  };
}

/** An integer within a range; without `max`, up to the largest safe integer. */
export function integer(min: number, max?: number) {
  const message = expect(max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`);
  return z.int(message).min(min, message).max(max ?? Number.MAX_SAFE_INTEGER, message);
}

/** A non-empty string matching a pattern. */
function text(expected: string, pattern = /^\S(?:.*\S)?$/s) {
  const message = expect(expected);
  return z.string(message).regex(pattern, message);
}

/**
 * The SHA-256 of a token. A wrong value may be the token itself pasted by
 * mistake, so the message gives only its length.
 */
function sha256() {
  const expected = "64 hex digits (the SHA-256 of the token, never the token)";
  const message = {
    error: (issue: { input?: unknown }) =>
      issue.input === undefined
        ? `is required: expected ${expected}`
        : `expected ${expected}, got ${
          typeof issue.input === "string"
            ? `${issue.input.length} characters`
            : typeof issue.input === "number"
            ? "a number (quote the hash)"
            : show(issue.input)
        }`,
  };
  return z.string(message).regex(SHA256, message).transform((hex) => hex.toLowerCase());
}

/** A host name or IP address to bind. */
export function host() {
  return text("a host name or IP address", /^[^\s/]+$/);
}

function filePath() {
  return text("a path");
}

/** A map with exactly these optional keys; others are refused to catch typos. */
function map<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape).map((key) => `"${key}"`).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `(expected one of ${keys})` : `expected a map, got ${show(issue.input)}`,
  });
}

/** A list of items; an empty YAML value (`tokens:`) counts as an empty list. */
function list<T extends z.ZodType>(item: T) {
  const message = expect("a list");
  return z.array(item, message).nullable().transform((list) => list ?? []);
}

/** Flags a second occurrence of the same value of `key` in a list. */
function unique<T>(items: T[], key: (item: T) => string, field: string, ctx: z.RefinementCtx, rule: string): void {
  const seen = new Map<string, number>();
  for (const [index, item] of items.entries()) {
    const value = key(item);
    const first = seen.get(value);
    if (first === undefined) seen.set(value, index);
    else {
      ctx.addIssue({
        code: "custom",
        path: [index, field],
        message: `repeats ${JSON.stringify(value)} of entry ${first}: ${rule}`,
      });
    }
  }
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const ROLE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

/** Integer bounds of the plugin limits; memory is capped at wasm32's 65536 pages. */
const limits = map({
  deadlineMs: integer(1).optional(),
  memoryPages: integer(1, 65536).optional(),
  inputBytes: integer(0).optional(),
  outputBytes: integer(0).optional(),
  hostCalls: integer(0).optional(),
  hostIoBytes: integer(1).optional(),
  instances: integer(1, 1024).optional(),
  queue: integer(0).optional(),
});

const token = map({
  id: text("an id of 1-128 letters, digits, '_', '.' or '-'", NAME),
  sha256: sha256(),
  roles: z.array(text("a role name (a letter, then letters, digits, '_', '.' or '-')", ROLE), expect("a list"))
    .min(1, expect("at least one role")),
});

/** The shape of `keycard.yaml`. */
export const CONFIG_FILE_SCHEMA = map({
  server: map({
    host: host().optional(),
    port: integer(1, 65535).optional(),
    maxBodyBytes: integer(1, 2 ** 31).optional(),
  }).nullish(),
  dataDir: filePath().optional(),
  policies: filePath().optional(),
  plugins: list(map({ path: filePath() })).optional().superRefine((list, ctx) =>
    unique(list ?? [], (plugin) => normalize(plugin.path), "path", ctx, "each plugin is loaded once")
  ),
  tokens: list(token).optional().superRefine((list, ctx) => {
    unique(list ?? [], (t) => t.id, "id", ctx, "client ids are unique");
    unique(list ?? [], (t) => t.sha256, "sha256", ctx, "each token belongs to one client");
  }),
  registry: map({
    requireSignature: z.boolean(expect("true or false")).optional(),
    trustedKeys: list(text("a public key")).optional(),
  }).nullish(),
  limits: limits.nullish(),
  concurrency: map({
    maxCalls: integer(1, 65536).optional(),
    queue: integer(0).optional(),
  }).nullish(),
  audit: map({
    file: filePath().optional(),
    maxBytes: integer(1024).optional(),
    maxFiles: integer(1, 1000).optional(),
    ringSize: integer(1, 10_000_000).optional(),
  }).nullish(),
});

/** `keycard.yaml` as validated: every key optional. */
export type ConfigFile = z.output<typeof CONFIG_FILE_SCHEMA>;
