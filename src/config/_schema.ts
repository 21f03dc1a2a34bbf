/**
 * The zod schema of `keycard.yaml`: every key optional (defaults fill in),
 * unknown keys refused, each leaf with a message that says what it expects.
 */
import { normalize } from "node:path";
import { z } from "zod";
import type { HandlerConfig, HookConfig, RouteConfig, RouteMatchConfig } from "./config.ts";
import { expect, integer, list, map, MEDIA_TYPE, show, text } from "./schema_fields.ts";
import { checkPattern } from "../redact/mod.ts";

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
  minInstances: integer(0, 1024).optional(),
});

const token = map({
  id: text("an id of 1-128 letters, digits, '_', '.' or '-'", NAME),
  sha256: sha256(),
  roles: z.array(text("a role name (a letter, then letters, digits, '_', '.' or '-')", ROLE), expect("a list"))
    .min(1, expect("at least one role")),
});

const ROUTE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** A plugin name as the registry takes it: it becomes a directory name, so no leading ".". */
const PLUGIN_NAME = /^(?!\.)[A-Za-z0-9_.-]{1,128}$/;
const METHODS: readonly string[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/** The gateway's own paths, each with everything below it. */
const RESERVED = ["/v1", "/console", "/healthz", "/readyz", "/metrics", "/openapi.json"];
const RESERVED_SHOWN = '"/v1/", "/console/", "/healthz", "/readyz", "/metrics" and "/openapi.json"';

/** An issue for a value that fails a check after its type was accepted. */
function invalid(ctx: z.RefinementCtx, input: unknown, message: string): void {
  ctx.addIssue({ code: "custom", input, message });
}

/** A route's path pattern: exact, or a prefix ending in `/*`. */
function routePath() {
  const expected = 'a path starting with "/", optionally ending in "/*"';
  return z.string(expect(expected)).superRefine((path, ctx) => {
    const got = `got ${show(path)}`;
    if (!path.startsWith("/")) return invalid(ctx, path, `expected ${expected}, ${got}`);
    if (/[\s?#]/.test(path)) return invalid(ctx, path, `expected a path without spaces, "?" or "#", ${got}`);
    const prefix = path.endsWith("/*");
    const dir = prefix ? path.slice(0, -2) : path;
    if (dir.includes("*")) return invalid(ctx, path, `expected "*" only in a trailing "/*", ${got}`);
    if (/\/\/|\/\.\.?(?:\/|$)/.test(dir + (prefix ? "/" : ""))) {
      return invalid(ctx, path, `expected a path without empty, "." or ".." segments, ${got}`);
    }
    const taken = RESERVED.find((own) =>
      dir === own || dir.startsWith(`${own}/`) || (prefix && own.startsWith(`${dir}/`))
    );
    if (taken !== undefined) {
      const how = dir === taken || dir.startsWith(`${taken}/`) ? "under" : "it takes";
      invalid(ctx, path, `expected a path outside the gateway's own ${RESERVED_SHOWN}, ${got} (${how} "${taken}")`);
    }
  });
}

/** HTTP methods, any case; upper-cased, repeats dropped. */
function methods() {
  const expected = `a method (${METHODS.join(", ")})`;
  const method = z.string(expect(expected)).transform((name, ctx) => {
    const upper = name.toUpperCase();
    if (METHODS.includes(upper)) return upper;
    invalid(ctx, name, `expected ${expected}, got ${show(name)}`);
    return z.NEVER;
  });
  return z.array(method, expect("a list of methods"))
    .min(1, expect("at least one method (leave out methods for any)"))
    .transform((list) => [...new Set(list)]);
}

/** An `http:` or `https:` URL to append request paths to; kept without a trailing "/". */
function upstream() {
  const expected = "an http or https URL without query or fragment";
  return z.string(expect(expected)).transform((value, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      // Reported below.
    }
    const got = `got ${show(value)}`;
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || /\s/.test(value)) {
      invalid(ctx, value, `expected ${expected}, ${got}`);
    } else if (value.includes("?") || value.includes("#")) {
      invalid(ctx, value, `expected ${expected} (the request's own query is passed on), ${got}`);
    } else if (url.username !== "" || url.password !== "") {
      // A password here would sit in plain text in the config and the logs.
      invalid(ctx, value, `expected ${expected} and without user or password, got a URL with credentials`);
    } else return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
    return z.NEVER;
  });
}

function pluginName() {
  return text("a plugin name (1-128 letters, digits, '_', '.' or '-', not starting with '.')", PLUGIN_NAME);
}

function exportName() {
  return text("an export name", /^\S+$/);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expect(values.map((value) => JSON.stringify(value)).join(" or ")));
}

const hook = map({
  plugin: pluginName(),
  on: oneOf(["request", "response"]),
  priority: z.int(expect("an integer")).optional(),
  failure: oneOf(["closed", "open"]).optional(),
  export: exportName().optional(),
  config: z.record(
    z.string(),
    z.string({
      error: (issue) => `expected a string (quote numbers and true/false), got ${show(issue.input)}`,
    }),
    expect("a map of names to strings"),
  ).nullish(),
}).transform((hook): HookConfig => ({
  plugin: hook.plugin,
  on: hook.on,
  priority: hook.priority ?? 0,
  failure: hook.failure ?? "closed",
  export: hook.export ?? (hook.on === "request" ? "on_request" : "on_response"),
  config: { ...hook.config },
}));

const handler = map({
  plugin: pluginName(),
  export: exportName().optional(),
  contentType: text('a media type such as "text/plain; charset=utf-8"', MEDIA_TYPE).optional(),
  envelope: z.boolean(expect("true or false")).optional(),
}).transform((handler): HandlerConfig => ({
  plugin: handler.plugin,
  export: handler.export ?? "handle",
  ...(handler.contentType === undefined ? {} : { contentType: handler.contentType }),
  ...(handler.envelope === undefined ? {} : { envelope: handler.envelope }),
}));

const route = map({
  name: text("a name of 1-64 letters, digits, '_', '.' or '-'", ROUTE_NAME),
  match: map({ path: routePath(), methods: methods().optional() }),
  upstream: upstream().optional(),
  handler: handler.optional(),
  auth: oneOf(["token", "public"]).optional(),
  timeouts: map({
    connectMs: integer(1, 600_000).optional(),
    responseMs: integer(1, 3_600_000).optional(),
  }).nullish(),
  hooks: list(hook).optional(),
}).transform((route, ctx): RouteConfig => {
  if ((route.upstream === undefined) === (route.handler === undefined)) {
    const problem = route.upstream === undefined ? 'neither "upstream" nor "handler"' : 'both "upstream" and "handler"';
    invalid(ctx, route, `sets ${problem}: a route either proxies to an upstream or calls a plugin handler`);
    return z.NEVER;
  }
  const match: RouteMatchConfig = { path: route.match.path };
  if (route.match.methods !== undefined) match.methods = route.match.methods;
  return {
    name: route.name,
    match,
    ...(route.upstream === undefined ? {} : { upstream: route.upstream }),
    ...(route.handler === undefined ? {} : { handler: route.handler }),
    auth: route.auth ?? "token",
    timeouts: { connectMs: route.timeouts?.connectMs ?? 2000, responseMs: route.timeouts?.responseMs ?? 10_000 },
    hooks: route.hooks ?? [],
  };
});

/** Flags a route that takes requests an earlier route already takes: same path pattern, a shared method. */
function distinctMatches(routes: RouteConfig[], ctx: z.RefinementCtx): void {
  for (const [index, later] of routes.entries()) {
    for (const [first, earlier] of routes.slice(0, index).entries()) {
      if (earlier.match.path !== later.match.path) continue;
      const shared = earlier.match.methods === undefined
        ? later.match.methods
        : earlier.match.methods.filter((m) => later.match.methods?.includes(m) ?? true);
      if (shared?.length === 0) continue;
      ctx.addIssue({
        code: "custom",
        path: [index, "match"],
        message: `route "${later.name}" takes the same requests as route "${earlier.name}" of entry ${first}: ` +
          `path ${JSON.stringify(later.match.path)}, ${shared ? `methods ${shared.join(", ")}` : "any method"}`,
      });
      break;
    }
  }
}

/** A list of routes: names unique, no two taking the same requests. */
function routes() {
  return list(route).superRefine((list, ctx) => {
    unique(list, (r) => r.name, "name", ctx, "route names are unique");
    distinctMatches(list, ctx);
  });
}

/** A redaction pattern: compiled and refused when it could backtrack without bound ({@linkcode checkPattern}). */
function redactPattern() {
  return z.string(expect("a regular expression")).superRefine((source, ctx) => {
    try {
      checkPattern(source);
    } catch (error) {
      invalid(ctx, source, (error as Error).message);
    }
  });
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const redact = map({
  mask: text("a mask of 1-64 characters without control characters", /^[^\p{Cc}]{1,64}$/u).optional(),
  configKeys: list(text("a config key name", /^\S{1,128}$/)).optional(),
  headers: list(text("an HTTP header name", HEADER_NAME).transform((name) => name.toLowerCase())).optional(),
  patterns: list(redactPattern()).optional(),
  minLength: integer(3, 1024).optional(),
});

const GROUP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** A plugin name pattern: a plugin name's characters and `*`, never a leading "." (no plugin name has one). */
const PLUGIN_PATTERN = /^(?!\.)[A-Za-z0-9_.*-]{1,128}$/;

const isolationGroup = map({
  name: text("a group name of 1-64 letters, digits, '_', '.' or '-'", GROUP_NAME),
  workers: integer(1, 1024).optional(),
  plugins: z.array(
    text(
      "a plugin name pattern (1-128 letters, digits, '_', '.', '-' or '*', not starting with '.')",
      PLUGIN_PATTERN,
    ),
    expect("a list of plugin name patterns"),
  ).min(1, expect("at least one plugin name pattern")),
});

/**
 * Isolation groups: names unique, each name pattern in one group only (a pattern listed twice is a mistake either
 * way: in two groups it is ambiguous, in one it is a repeat).
 */
function isolationGroups() {
  return list(isolationGroup).superRefine((groups, ctx) => {
    unique(groups, (g) => g.name, "name", ctx, "group names are unique");
    const owner = new Map<string, string>();
    for (const [index, group] of groups.entries()) {
      for (const [at, pattern] of group.plugins.entries()) {
        const first = owner.get(pattern);
        if (first === undefined) owner.set(pattern, group.name);
        else {
          ctx.addIssue({
            code: "custom",
            path: [index, "plugins", at],
            message: `repeats ${JSON.stringify(pattern)} of group ${JSON.stringify(first)}: ` +
              "a plugin name pattern is listed in one group, once",
          });
        }
      }
    }
  });
}

const REPLICA = /^[A-Za-z0-9_.-]{1,64}$/;

/** A PostgreSQL URL; the message never quotes a password. */
export function storeUrl() {
  const expected = "a postgres:// or postgresql:// URL";
  return z.string(expect(expected)).superRefine((value, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      // reported below
    }
    if (url?.protocol !== "postgres:" && url?.protocol !== "postgresql:") {
      const shown = url ? `${url.protocol}//${url.host}${url.pathname}` : `${value.length} characters`;
      ctx.addIssue({ code: "custom", message: `expected ${expected}, got ${shown}` });
    } else if (url.hostname === "" || url.pathname.length < 2) {
      ctx.addIssue({ code: "custom", message: `expected ${expected} with a host and a database name` });
    }
  });
}

const store = map({
  kind: oneOf(["files", "postgres"]).optional(),
  url: storeUrl().optional(),
  replica: text("a replica name of 1-64 letters, digits, '_', '.' or '-'", REPLICA).optional(),
  auditRetentionDays: integer(1, 36_500).optional(),
  timeoutMs: integer(100, 600_000).optional(),
}).superRefine((section, ctx) => {
  if (section.kind === "postgres" && section.url === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["url"],
      message: "is required with kind: postgres (or set KEYCARD_STORE_URL)",
    });
  }
  if ((section.kind ?? "files") === "files") {
    for (const key of ["url", "replica", "auditRetentionDays", "timeoutMs"] as const) {
      if (section[key] !== undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: "applies only with kind: postgres" });
      }
    }
  }
});

/** The shape of a routes document, e.g. the body of a routes reload. */
export const ROUTES_FILE_SCHEMA = map({ routes: routes() });

/** The shape of `keycard.yaml`. */
export const CONFIG_FILE_SCHEMA = map({
  server: map({
    host: host().optional(),
    port: integer(0, 65535).optional(),
    maxBodyBytes: integer(1, 2 ** 31).optional(),
    metrics: oneOf(["token", "open"]).optional(),
    encodedSlashes: oneOf(["refuse", "keep"]).optional(),
    authThrottle: map({
      failures: integer(1, 1_000_000).optional(),
      windowSeconds: integer(1, 86_400).optional(),
      addresses: integer(1, 10_000_000).optional(),
    }).nullish(),
  }).nullish(),
  dataDir: filePath().optional(),
  policies: filePath().optional(),
  strictStart: z.boolean(expect("true or false")).optional(),
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
  ceilings: limits.nullish(),
  concurrency: map({
    maxCalls: integer(1, 65536).optional(),
    queue: integer(0).optional(),
    idleMs: integer(1).optional(),
    maxWorkers: integer(1, 65536).optional(),
  }).nullish(),
  audit: map({
    file: filePath().optional(),
    maxBytes: integer(1024).optional(),
    maxFiles: integer(1, 1000).optional(),
    ringSize: integer(1, 10_000_000).optional(),
  }).nullish(),
  policyEngine: map({
    evaluator: oneOf(["typescript", "cedar-wasm"]).optional(),
    shadowSample: z.number(expect("a number from 0 to 1")).min(0, expect("a number from 0 to 1"))
      .max(1, expect("a number from 0 to 1")).optional(),
  }).nullish(),
  routes: routes().optional(),
  redact: redact.nullish(),
  isolation: map({ groups: isolationGroups().optional() }).nullish(),
  store: store.nullish(),
});

/** `keycard.yaml` as validated: every key optional. */
export type ConfigFile = z.output<typeof CONFIG_FILE_SCHEMA>;
