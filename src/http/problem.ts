import { ConfigError } from "../config/mod.ts";
import { GrantError, PolicyEngineUnavailableError, PolicyValidationError } from "../policy/mod.ts";
import { ManifestError, PluginIdError, RegistryError } from "../registry/mod.ts";
import {
  PluginDeadlineError,
  PluginLimitError,
  PluginLoadError,
  PluginMemoryError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  SaturatedError,
} from "../runtime/mod.ts";
import { StoreUnavailableError } from "../store/mod.ts";

/**
 * The stable problem types of the API (RFC 9457 `type`, relative to the
 * server), with their status and title.
 */
export const PROBLEMS = {
  "bad-request": { status: 400, title: "Bad request" },
  "invalid-policy": { status: 400, title: "Invalid policy" },
  "invalid-manifest": { status: 400, title: "Invalid manifest" },
  "invalid-module": { status: 400, title: "Invalid WebAssembly module" },
  "invalid-config": { status: 400, title: "Invalid configuration" },
  unauthenticated: { status: 401, title: "Authentication required" },
  forbidden: { status: 403, title: "Forbidden by policy" },
  "not-found": { status: 404, title: "Not found" },
  conflict: { status: 409, title: "Conflict" },
  "payload-too-large": { status: 413, title: "Payload too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported media type" },
  "not-conformant": { status: 422, title: "Plugin is not conformant" },
  "limit-exceeds-ceiling": { status: 422, title: "Plugin asks for limits past the operator's ceilings" },
  "plugin-error": { status: 422, title: "Plugin reported an error" },
  saturated: { status: 429, title: "Too many requests" },
  throttled: { status: 429, title: "Too many failed authentications" },
  "internal-error": { status: 500, title: "Internal error" },
  "plugin-failed": { status: 502, title: "Plugin failed" },
  "upstream-failed": { status: 502, title: "Upstream failed" },
  "hook-failed": { status: 503, title: "Route hook failed" },
  "not-ready": { status: 503, title: "Not ready" },
  "store-unavailable": { status: 503, title: "The shared store is unavailable" },
  "deadline-exceeded": { status: 504, title: "Deadline exceeded" },
} as const;

/** One of {@linkcode PROBLEMS}' keys. */
export type ProblemType = keyof typeof PROBLEMS;

/** An `application/problem+json` body. */
export interface Problem {
  /** `/problems/<kind>`: stable, one per kind of failure. */
  type: string;
  /** Short summary of the kind. */
  title: string;
  /** HTTP status code. */
  status: number;
  /** What happened in this case. */
  detail: string;
  /** Extension members: plugin, export, line, column, retryAfterSeconds, report, ... */
  [extension: string]: unknown;
}

/**
 * An error to answer as a problem; thrown by handlers, translated in the one
 * error handler.
 *
 * @example
 * ```ts
 * import { ProblemError } from "./problem.ts";
 * new ProblemError("not-found", 'Plugin "x" is not installed').status; // 404
 * ```
 */
export class ProblemError extends Error {
  /** The problem kind. */
  readonly kind: ProblemType;
  /** Extension members added to the body. */
  readonly extensions: Record<string, unknown>;

  /**
   * Creates a problem error.
   * @param kind The problem kind.
   * @param detail The detail message.
   * @param extensions Extra members of the body.
   */
  constructor(kind: ProblemType, detail: string, extensions: Record<string, unknown> = {}) {
    super(detail);
    this.name = "ProblemError";
    this.kind = kind;
    this.extensions = extensions;
  }

  /** The HTTP status of this kind. */
  get status(): number {
    return PROBLEMS[this.kind].status;
  }
}

/**
 * Builds a problem body.
 * @param kind The problem kind.
 * @param detail The detail message.
 * @param extensions Extra members.
 * @returns The body.
 */
export function problem(kind: ProblemType, detail: string, extensions: Record<string, unknown> = {}): Problem {
  const { status, title } = PROBLEMS[kind];
  return { type: `/problems/${kind}`, title, status, detail, ...extensions };
}

/**
 * Translates any error to a problem: domain errors by class, anything else
 * as a 500 that does not leak the message (the error itself goes to the log).
 *
 * @param error What a handler threw.
 * @returns The problem and the headers it needs (Retry-After).
 */
export function toProblem(error: unknown): { body: Problem; headers: Record<string, string> } {
  const translated = translate(error);
  if (translated.body.status === 500) console.error(error);
  return translated;
}

/**
 * The problem kind an error translates to, for counting outcomes: nothing is
 * logged (the error handler that answers the request logs it once).
 *
 * @param error What a call threw.
 * @returns The kind, e.g. `deadline-exceeded`.
 */
export function problemKind(error: unknown): string {
  return translate(error).body.type.slice("/problems/".length);
}

function translate(error: unknown): { body: Problem; headers: Record<string, string> } {
  const answer = (kind: ProblemType, detail: string, extensions: Record<string, unknown> = {}) => ({
    body: problem(kind, detail, extensions),
    headers: {},
  });
  if (error instanceof ProblemError) return answer(error.kind, error.message, error.extensions);
  if (error instanceof PluginIdError) return answer("bad-request", error.message, { [error.field]: error.value });
  if (error instanceof ManifestError) {
    return answer("invalid-manifest", error.message, { source: error.source, line: error.line, column: error.column });
  }
  if (error instanceof RegistryError) {
    const where = { code: error.code, plugin: error.plugin, version: error.version };
    return answer(error.code === "version_exists" ? "conflict" : "not-conformant", error.message, where);
  }
  if (error instanceof PolicyEngineUnavailableError) return answer("not-ready", error.message);
  // The database is down or did not answer in time: nothing was written; the client may retry. Reads and plugin
  // calls served from memory go on.
  if (error instanceof StoreUnavailableError) {
    return { body: problem("store-unavailable", error.message), headers: { "retry-after": "5" } };
  }
  if (error instanceof PolicyValidationError) {
    return answer("invalid-policy", error.message, {
      source: error.source,
      line: error.line,
      column: error.column,
      problems: error.problems,
    });
  }
  if (error instanceof GrantError) {
    return answer("invalid-manifest", error.message, { plugin: error.plugin, grant: error.index + 1 });
  }
  if (error instanceof ConfigError) {
    return answer("invalid-config", error.message, {
      file: error.file,
      line: error.line,
      column: error.column,
      ...(error.path === undefined ? {} : { path: error.path }),
    });
  }
  if (error instanceof PluginRuntimeError) return translateRuntime(error);
  return answer("internal-error", "The server failed; see its log");
}

function translateRuntime(error: PluginRuntimeError): { body: Problem; headers: Record<string, string> } {
  const where = { plugin: error.plugin, export: error.export };
  const answer = (kind: ProblemType, extensions: Record<string, unknown> = {}) => ({
    body: problem(kind, error.message, { ...where, ...extensions }),
    headers: {},
  });
  if (error instanceof SaturatedError) {
    const seconds = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    return {
      body: problem("saturated", error.message, { ...where, retryAfterSeconds: seconds }),
      headers: { "retry-after": String(seconds) },
    };
  }
  if (error instanceof PluginNotFoundError) return answer("not-found");
  if (error instanceof PluginLimitError) {
    return answer(error.limit === "inputBytes" ? "payload-too-large" : "plugin-failed", { limit: error.limit });
  }
  if (error instanceof PluginDeadlineError) return answer("deadline-exceeded", { deadlineMs: error.deadlineMs });
  if (error instanceof PluginTrapError || error instanceof PluginMemoryError) {
    return answer("plugin-failed", { cause: error.name });
  }
  if (error instanceof PluginReportedError) return answer("plugin-error", { pluginDetail: error.detail });
  if (error instanceof PluginLoadError) return answer("invalid-module");
  return answer("not-ready");
}
