// Reading what a client sends: path names, query values and bodies, each bounded and checked before any domain
// code sees it; a bad value is a ProblemError (or the registry's PluginIdError) that quotes it.
import type { Context } from "hono";
import { checkPluginName, checkPluginVersion } from "../registry/mod.ts";
import { ProblemError } from "./problem.ts";

/** Longest value quoted in a message. */
const MAX_QUOTED = 80;

/** Quotes a client's value for a message, cut short so that a huge value cannot flood a response or a log. */
export function quoteValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text);
}

/** The `:name` path parameter, checked by the registry's one naming rule. */
export function pluginNameParam(c: Context): string {
  return checkPluginName(c.req.param("name") ?? "");
}

/**
 * One query parameter, or undefined when absent. Given twice it is refused:
 * two values that different layers could each read differently are a classic
 * way round a check (HTTP parameter pollution).
 */
export function singleQuery(c: Context, key: string): string | undefined {
  const values = c.req.queries(key);
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) {
    throw new ProblemError(
      "bad-request",
      `Query parameter "${key}" is given ${values.length} times (${values.map(quoteValue).join(", ")}): give it once`,
      { parameter: key },
    );
  }
  return values[0];
}

/** The `?version=` query parameter, checked by the registry's rule when present (an empty value is refused). */
export function versionQuery(c: Context, name: string): string | undefined {
  const version = singleQuery(c, "version");
  return version === undefined ? undefined : checkPluginVersion(version, name);
}

/** Decodes UTF-8 strictly: a body that is not UTF-8 is refused rather than silently "repaired" with U+FFFD. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ProblemError("bad-request", `${what} is not valid UTF-8`);
  }
}

/** The request body as UTF-8 text. */
export async function readText(c: Context, what = "The request body"): Promise<string> {
  return decodeUtf8(new Uint8Array(await c.req.arrayBuffer()), what);
}

/** Options of {@linkcode readJsonObject}. */
export interface ReadJsonOptions {
  /** Largest body, in bytes (the server-wide body limit applies as well). @default {65536} */
  maxBytes?: number;
  /** Deepest nesting of arrays and objects. @default {32} */
  maxDepth?: number;
}

const JSON_TYPES = /^(application\/(?:[\w.+-]+\+)?json|text\/plain)\s*(;|$)/i;

/**
 * Reads a JSON object body: media type, size, UTF-8, nesting depth and
 * syntax are each checked, and depth before `JSON.parse`, so that nothing
 * deeper than `maxDepth` ever reaches the policy engine (cedar-wasm's stack
 * overflows on deep input, see shared/NOTES.md).
 */
export async function readJsonObject(c: Context, options: ReadJsonOptions = {}): Promise<Record<string, unknown>> {
  const { maxBytes = 65_536, maxDepth = 32 } = options;
  const type = c.req.header("content-type");
  // No type, JSON, or text/plain (what fetch() and curl send for a string body) are all read as JSON.
  if (type !== undefined && type !== "" && !JSON_TYPES.test(type)) {
    throw new ProblemError("unsupported-media-type", `Expected application/json, got ${quoteValue(type)}`);
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > maxBytes) {
    throw new ProblemError("payload-too-large", `The JSON body of ${bytes.length} bytes exceeds ${maxBytes} bytes`);
  }
  const text = decodeUtf8(bytes, "The request body");
  if (text.trim() === "") throw new ProblemError("bad-request", "The request body is empty: send a JSON object");
  const depth = nestingDepth(text);
  if (depth > maxDepth) {
    throw new ProblemError("bad-request", `The JSON body nests ${depth} levels deep; the limit is ${maxDepth}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ProblemError("bad-request", `The request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ProblemError(
      "bad-request",
      `The request body must be a JSON object, got ${Array.isArray(body) ? "an array" : quoteValue(body)}`,
    );
  }
  return body as Record<string, unknown>;
}

/** The deepest nesting of `[` and `{` in JSON text, outside strings; a scan that never recurses. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // a backslash escapes the next character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return deepest;
}

/** An upload: a module, and its manifest text when one was sent. */
export interface Upload {
  wasm: Uint8Array;
  manifest?: string;
}

/**
 * Reads `wasm` (+ `manifest`) from multipart/form-data, or a bare
 * `application/wasm` body (no manifest). Each field must be given once;
 * an empty module is refused here, before conformance runs.
 */
export async function readUpload(c: Context): Promise<Upload> {
  const type = c.req.header("content-type") ?? "";
  if (/^application\/wasm\s*(;|$)/i.test(type)) return { wasm: nonEmpty(new Uint8Array(await c.req.arrayBuffer())) };
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    throw new ProblemError(
      "unsupported-media-type",
      `Expected multipart/form-data (fields "wasm" and "manifest") or application/wasm, got ${quoteValue(type)}`,
    );
  }
  let form: Record<string, string | File | (string | File)[]>;
  try {
    form = await c.req.parseBody({ all: true });
  } catch (error) {
    throw new ProblemError("bad-request", `Malformed multipart body: ${(error as Error).message}`);
  }
  for (const [field, value] of Object.entries(form)) {
    if (Array.isArray(value)) {
      throw new ProblemError("bad-request", `Multipart field ${quoteValue(field)} is given ${value.length} times`);
    }
  }
  const wasm = form.wasm;
  if (!(wasm instanceof File)) throw new ProblemError("bad-request", 'Multipart field "wasm" (a file) is missing');
  const manifest = form.manifest;
  const manifestText = manifest instanceof File
    ? decodeUtf8(new Uint8Array(await manifest.arrayBuffer()), 'Multipart field "manifest"')
    : manifest;
  if (manifestText !== undefined && typeof manifestText !== "string") {
    throw new ProblemError("bad-request", 'Multipart field "manifest" must be plugin.yaml text');
  }
  return {
    wasm: nonEmpty(new Uint8Array(await wasm.arrayBuffer())),
    ...(manifestText === undefined ? {} : { manifest: manifestText }),
  };
}

function nonEmpty(wasm: Uint8Array): Uint8Array {
  if (wasm.length === 0) throw new ProblemError("bad-request", "The WebAssembly module is empty (0 bytes)");
  return wasm;
}
