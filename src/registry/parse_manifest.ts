import { type ConfigErrorOptions, parseYaml } from "../config/mod.ts";
import type { Grant } from "../policy/mod.ts";
import type { PluginLimits } from "../runtime/mod.ts";
import { MANIFEST_SCHEMA } from "./_manifest_schema.ts";

/** One input the conformance suite runs an export on, and how the run must end. */
export interface ManifestSample {
  /** The input, as text. */
  input: string;
  /**
   * `ok`: the export must return; `error`: it must fail with an error of its
   * own (a reported error or a trap), for inputs it should refuse. A
   * deadline or memory overrun fails either way.
   */
  expect: "ok" | "error";
}

/** One export a manifest declares. */
export interface ManifestExport {
  /** The function name the `.wasm` module exports, as passed to `invoke`. */
  name: string;
  /** What the function does, for people. */
  description?: string;
  /**
   * Inputs the conformance suite runs (a bare string in the YAML is an input
   * expected to succeed); an export without samples runs once on empty input.
   */
  samples: ManifestSample[];
  /** The media type of the export's output when a route handler serves it, e.g. `text/plain; charset=utf-8`. */
  contentType?: string;
  /**
   * Whether the export speaks keycard's JSON envelope as a route handler (a
   * `HookInput` in, `{status, headers, body}` out) rather than body in, body
   * out. @default {false}
   */
  envelope?: boolean;
}

/** A plugin's `plugin.yaml`. */
export interface Manifest {
  /** The plugin's name: 1-128 letters, digits, `_`, `.` or `-`; its Cedar principal id. */
  name: string;
  /** A semantic version; `0.0.0` when the file has none. */
  version: string;
  /** What the plugin is for, for people. */
  description?: string;
  /** The functions callers may invoke (a bare string in the YAML is a name); empty when absent. */
  exports: ManifestExport[];
  /** The Cedar actions the plugin says it may attempt (each one of the plugin actions of the schema). */
  capabilities: string[];
  /** The grants to compile to Cedar, as written; {@linkcode compileGrants} checks them. */
  grants: Grant[];
  /** The limits the plugin asks for, each within its range; empty when absent. A host may cap them. */
  limits: Partial<PluginLimits>;
  /** Configuration variables (`env.get`, Extism `config_get`). */
  config: Record<string, string>;
  /** The expected SHA-256 of the `.wasm` module: 64 hex digits, lower-cased; {@linkcode Registry.install} checks it. */
  sha256?: string;
  /** A base64 Ed25519 signature of the `.wasm` module's bytes; {@linkcode Registry.install} verifies it. */
  signature?: string;
}

/** Where a {@linkcode ManifestError} points. */
export interface ManifestErrorOptions extends ErrorOptions {
  /** The manifest's file name, as given to {@linkcode parseManifest}. */
  source: string;
  /** 1-based line of the offending value, when known. */
  line?: number;
  /** 1-based column of the offending value, when known. */
  column?: number;
  /** Dotted path of the offending field, e.g. `limits.deadlineMs` or `exports[0].samples[1]`. */
  path?: string;
}

/**
 * A manifest that cannot be used: YAML syntax, an alias bomb, an unknown key,
 * or a field of the wrong shape or range. `line`/`column` point at the
 * offending value when known and `path` names the field.
 *
 * @example Build one
 * ```ts
 * import { ManifestError } from "./parse_manifest.ts";
 * const error = new ManifestError('expected an integer of at least 1, got "fast"', {
 *   source: "plugin.yaml",
 *   line: 2,
 *   column: 15,
 *   path: "limits.deadlineMs",
 * });
 * error.message; // 'Invalid manifest "plugin.yaml" at line 2, column 15: "limits.deadlineMs" expected ...'
 * ```
 */
export class ManifestError extends SyntaxError {
  /** The manifest's file name, as given to {@linkcode parseManifest}. */
  readonly source: string;
  /** 1-based line of the offending value, when known. */
  readonly line: number | undefined;
  /** 1-based column of the offending value, when known. */
  readonly column: number | undefined;
  /** Dotted path of the offending field, when the problem is one field's. */
  readonly path: string | undefined;
  /**
   * Builds the error; the message names the source, position and field.
   *
   * @param message What is wrong, quoting the value.
   * @param options Where: the source, and line, column and path when known.
   */
  constructor(message: string, options: ManifestErrorOptions) {
    const where = options.line === undefined ? "" : ` at line ${options.line}, column ${options.column ?? 1}`;
    const field = options.path ? `"${options.path}" ` : "";
    super(
      `Invalid manifest "${options.source}"${where}: ${field}${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ManifestError";
    this.source = options.source;
    this.line = options.line;
    this.column = options.column;
    this.path = options.path;
  }
}

/**
 * Parses and checks a `plugin.yaml` through the same YAML + zod path as
 * `keycard.yaml`: every field is validated (grants as the gateway compiles
 * them, `limits` within their ranges), unknown keys are refused, and YAML
 * alias bombs are refused before they expand.
 *
 * @param text The YAML text.
 * @param source The file name used in errors.
 * @returns The manifest, with defaults for the optional lists.
 * @throws {ManifestError} On YAML syntax errors, alias bombs, unknown keys, or a field of the wrong type or
 * range, with line, column and the field's path.
 *
 * @example Parse a manifest
 * ```ts
 * import { parseManifest } from "./parse_manifest.ts";
 * const manifest = parseManifest(
 *   "name: hello\nversion: 1.0.0\nexports:\n  - { name: greet, samples: [keycard, { input: '', expect: ok }] }\n",
 *   "plugin.yaml",
 * );
 * manifest.exports[0]?.samples; // [{ input: "keycard", expect: "ok" }, { input: "", expect: "ok" }]
 * ```
 */
export function parseManifest(text: string, source: string): Manifest {
  const data = parseYaml(text, source, MANIFEST_SCHEMA, 'expected a map with at least a "name"', {
    error: (detail: string, where: ConfigErrorOptions) => {
      const { file, path, line, column, cause } = where;
      return new ManifestError(detail, {
        source: file,
        ...(line === undefined ? {} : { line, column: column ?? 1 }),
        ...(path === undefined ? {} : { path }),
        ...(cause === undefined ? {} : { cause }),
      });
    },
  });
  return {
    name: data.name,
    version: data.version ?? "0.0.0",
    ...(data.description === undefined ? {} : { description: data.description }),
    exports: data.exports ?? [],
    capabilities: data.capabilities ?? [],
    grants: (data.grants ?? []) as Grant[],
    limits: data.limits ?? {},
    config: data.config ?? {},
    ...(data.sha256 === undefined ? {} : { sha256: data.sha256 }),
    ...(data.signature === undefined ? {} : { signature: data.signature }),
  };
}
