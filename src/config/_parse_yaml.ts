/**
 * YAML text validated by a zod schema, every problem mapped to the line and
 * column of its node. Shared by the config file and the routes document.
 */
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { show } from "./schema_fields.ts";
import { ConfigError, type ConfigErrorOptions } from "./config_error.ts";

/** Options of {@linkcode parseYaml}. */
export interface ParseYamlOptions {
  /**
   * Builds the error thrown for a problem, so that each kind of document keeps
   * its own error class (`plugin.yaml` throws `ManifestError`).
   *
   * @default {(detail, where) => new ConfigError(detail, where)}
   */
  error?: (detail: string, where: ConfigErrorOptions) => Error;
}

/** Most aliases a document may expand; more is refused as a "billion laughs" bomb before it grows. */
const MAX_ALIASES = 100;

/**
 * Parses `text` and validates it with `schema`; an empty document counts as
 * an empty map. The one YAML path of `keycard.yaml`, routes documents and
 * `plugin.yaml`: every problem is mapped to the line and column of its node.
 *
 * @param text The YAML text.
 * @param file The file name used in errors.
 * @param schema The zod schema of the document.
 * @param root The message when the document is not a map: `the file must be a map of settings`.
 * @param options How a problem becomes an error.
 * @returns The validated document.
 * @throws {ConfigError} The first problem in document order, counting the others (or what
 * `options.error` builds).
 *
 * @example Validate a small document
 * ```ts
 * import { z } from "zod";
 * import { parseYaml } from "./_parse_yaml.ts";
 * parseYaml("port: 8080\n", "x.yaml", z.object({ port: z.int() }), "expected a map").port; // 8080
 * ```
 */
export function parseYaml<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  root: string,
  options: ParseYamlOptions = {},
): z.output<S> {
  const fail = options.error ?? ((detail: string, where: ConfigErrorOptions) => new ConfigError(detail, where));
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const syntax = document.errors[0];
  if (syntax) {
    const detail = `not valid YAML: ${syntax.message.split("\n")[0]}`;
    throw fail(detail, { file, ...at(syntax.pos[0]), cause: syntax });
  }
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIASES }) ?? {};
  } catch (error) {
    // Alias bombs and the like: yaml refuses them while building values.
    throw fail(`not usable YAML: ${(error as Error).message}`, { file, cause: error });
  }
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({
        path: [...issue.path, key],
        offset: _keyOffset(document, issue.path, key),
        detail: `is not a known key ${issue.message}`,
      }))
      : [{
        path: issue.path,
        offset: _nodeOffset(document, issue.path),
        detail: issue.path.length === 0 ? `${root}, got ${show(data)}` : issue.message,
      }]
  );
  problems.sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity));
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
  const path = _dotted(first.path);
  throw fail(`${first.detail}${more}`, { file, ...at(first.offset), ...(path ? { path } : {}) });
}

/** Offset of the node at `path`, or of its nearest ancestor that exists (for a missing key). */
function _nodeOffset(document: Document, path: readonly PropertyKey[]): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node = document.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}

/** Offset of `key` itself in the map at `path`. */
function _keyOffset(document: Document, path: readonly PropertyKey[], key: string): number | undefined {
  const parent = document.getIn(path, true);
  if (isMap(parent)) {
    const pair = parent.items.find((item) => String(isScalar(item.key) ? item.key.value : item.key) === key);
    if (isNode(pair?.key) && pair.key.range) return pair.key.range[0];
  }
  return _nodeOffset(document, path);
}

/** `["tokens", 0, "sha256"]` as `tokens[0].sha256`. */
function _dotted(path: readonly PropertyKey[]): string {
  return path.map((part, index) => typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`)
    .join("");
}
