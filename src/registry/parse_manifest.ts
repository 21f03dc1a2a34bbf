import { isMap, parseDocument } from "yaml";
import type { Grant } from "../policy/mod.ts";
import type { PluginLimits } from "../runtime/mod.ts";

/** One export a manifest declares. */
export interface ManifestExport {
  /** The function name the `.wasm` module exports, as passed to `invoke`. */
  name: string;
  /** What the function does, for people. */
  description?: string;
  /** Sample inputs the conformance suite runs. */
  samples: string[];
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
  /** The Cedar actions the plugin says it may attempt. */
  capabilities: string[];
  /** The grants to compile to Cedar, as written; {@linkcode compileGrants} checks them. */
  grants: Grant[];
  /** Per-plugin overrides of the host's {@linkcode PluginLimits}, unchecked; empty when absent. */
  limits: Partial<PluginLimits>;
  /** Configuration variables (`env.get`, Extism `config_get`). */
  config: Record<string, string>;
  /** The expected SHA-256 of the `.wasm` module: 64 hex digits, lower-cased; {@linkcode Registry.install} checks it. */
  sha256?: string;
  /** A base64 Ed25519 signature of the `.wasm` module's bytes; {@linkcode Registry.install} verifies it. */
  signature?: string;
}

/**
 * A manifest that cannot be used: YAML syntax, or a field of the wrong shape.
 * `line`/`column` point at the offending value when known.
 *
 * @example
 * ```ts
 * import { ManifestError } from "./parse_manifest.ts";
 * new ManifestError("bad", { source: "plugin.yaml", line: 2, column: 3 }).line; // 2
 * ```
 */
export class ManifestError extends SyntaxError {
  /** The manifest's file name, as given to {@linkcode parseManifest}. */
  readonly source: string;
  /** 1-based line of the offending value, when known. */
  readonly line: number | undefined;
  /** 1-based column of the offending value, when known. */
  readonly column: number | undefined;
  /**
   * Builds the error; the message names the source and position.
   *
   * @param message What is wrong.
   * @param options Where: the source, and line and column when known.
   */
  constructor(message: string, options: { source: string; line?: number; column?: number }) {
    const where = options.line === undefined ? "" : ` at line ${options.line}, column ${options.column ?? 1}`;
    super(`Invalid manifest "${options.source}"${where}: ${message}`);
    this.name = "ManifestError";
    this.source = options.source;
    this.line = options.line;
    this.column = options.column;
  }
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const SHA256 = /^[0-9A-Fa-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses and checks a `plugin.yaml`.
 *
 * @param text The YAML text.
 * @param source The file name used in errors.
 * @returns The manifest, with defaults for the optional lists.
 * @throws {ManifestError} On YAML syntax errors or a field of the wrong type, with line and column.
 *
 * @example Parse a manifest
 * ```ts
 * import { parseManifest } from "./parse_manifest.ts";
 * const manifest = parseManifest("name: hello\nversion: 1.0.0\nexports: [{ name: greet }]\n", "plugin.yaml");
 * manifest.exports[0]?.name; // "greet"
 * ```
 */
export function parseManifest(text: string, source: string): Manifest {
  const document = parseDocument(text, { prettyErrors: false });
  const error = document.errors[0];
  if (error) {
    const [line, column] = lineColumn(text, error.pos[0]);
    throw new ManifestError(error.message.split("\n")[0]!, { source, line, column });
  }
  const root = document.contents;
  if (!isMap(root)) throw new ManifestError("expected a map at the top level", { source, line: 1, column: 1 });
  const at = (key: string) => {
    const node = root.get(key, true) as { range?: [number, number, number] } | undefined;
    const [line, column] = node?.range ? lineColumn(text, node.range[0]) : [undefined, undefined];
    return { source, ...(line === undefined ? {} : { line, column }) };
  };
  const data = document.toJS() as Record<string, unknown>;
  const fail = (key: string, message: string): never => {
    throw new ManifestError(`"${key}" ${message}`, at(key));
  };
  const name = data.name;
  if (typeof name !== "string" || !NAME.test(name)) fail("name", "must be 1-128 letters, digits, '_', '.' or '-'");
  const version = data.version === undefined ? "0.0.0" : String(data.version);
  if (!SEMVER.test(version)) fail("version", `must be a semantic version, got ${JSON.stringify(version)}`);
  if (data.description !== undefined && typeof data.description !== "string") fail("description", "must be text");
  const exports = data.exports ?? [];
  if (!Array.isArray(exports)) return fail("exports", "must be a list");
  const parsedExports = exports.map((entry: unknown): ManifestExport => {
    const item = typeof entry === "string" ? { name: entry } : entry as Record<string, unknown>;
    if (typeof item !== "object" || item === null || typeof item.name !== "string" || item.name === "") {
      return fail("exports", `entries need a "name", got ${JSON.stringify(entry)}`);
    }
    const samples = item.samples ?? [];
    if (!Array.isArray(samples) || !samples.every((s) => typeof s === "string")) {
      return fail("exports", `samples of "${item.name}" must be a list of strings`);
    }
    return {
      name: item.name,
      ...(typeof item.description === "string" ? { description: item.description } : {}),
      samples,
    };
  });
  const list = (key: string): unknown[] => {
    const value = data[key] ?? [];
    return Array.isArray(value) ? value : fail(key, "must be a list");
  };
  const capabilities = list("capabilities");
  if (!capabilities.every((c) => typeof c === "string")) fail("capabilities", "must be a list of action names");
  const map = (key: string): Record<string, unknown> => {
    const value = data[key] ?? {};
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : fail(key, "must be a map");
  };
  const config = Object.fromEntries(Object.entries(map("config")).map(([k, v]) => [k, String(v)]));
  // A hash of digits only (or digits and one "e") reads as a YAML number, hence the hint to quote it.
  if (data.sha256 !== undefined && (typeof data.sha256 !== "string" || !SHA256.test(data.sha256))) {
    fail("sha256", `must be 64 hexadecimal digits in quotes, got ${JSON.stringify(data.sha256)}`);
  }
  if (
    data.signature !== undefined &&
    (typeof data.signature !== "string" || data.signature === "" || !BASE64.test(data.signature))
  ) {
    fail("signature", `must be base64 text, got ${JSON.stringify(data.signature)}`);
  }
  return {
    name: name as string,
    version,
    ...(typeof data.description === "string" ? { description: data.description } : {}),
    exports: parsedExports,
    capabilities: capabilities as string[],
    grants: list("grants") as Grant[],
    limits: map("limits") as Partial<PluginLimits>,
    config,
    ...(typeof data.sha256 === "string" ? { sha256: data.sha256.toLowerCase() } : {}),
    ...(typeof data.signature === "string" ? { signature: data.signature } : {}),
  };
}

function lineColumn(text: string, offset: number): [number, number] {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return [line, offset - before.lastIndexOf("\n")];
}
