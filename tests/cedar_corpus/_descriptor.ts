// Reads the test descriptors of Cedar's integration tests (cedar-policy/cedar,
// `cedar-integration-tests/`) into one shape. The format changed over the
// years and both are in use:
//   old: `queries`, `desc`, `should_validate`, `enable_request_validation`,
//        `decision: "Allow"`, `reasons`, `errors` as ids or as messages that
//        quote the id (`error occurred while evaluating policy \`policy0\`: ...`),
//        uids as `User::"alice"`, `{ type, id }`, `{ __entity }` or null
//        (Cedar 3's unspecified entity);
//   new: `requests`, `description`, `shouldValidate`, `validateRequest`,
//        `decision: "allow"`, `reason`, `errors` as ids or `{ policyId }`.
// Referenced files are relative to the tests' root; older descriptors write
// `./corpus_tests/...`, newer ones `corpus-tests/...`.
import { dirname, join } from "node:path";

/** An entity uid in Cedar's JSON. */
export interface Uid {
  type: string;
  id: string;
}

/** One request of a descriptor, with what Cedar answered when the corpus was made. */
export interface CorpusRequest {
  desc: string;
  /** Null when the request names an unspecified entity (Cedar 3 only). */
  principal: Uid | null;
  action: Uid | null;
  resource: Uid | null;
  context: Record<string, unknown>;
  /** Whether Cedar checked the request against the schema before deciding. */
  validateRequest: boolean;
  decision: "allow" | "deny";
  reason: string[];
  errors: string[];
}

/** One descriptor: its files read, its requests normalized. */
export interface Descriptor {
  path: string;
  policies: string;
  /** The entities JSON as written; an array of entities. */
  entities: unknown[];
  /** The schema's path, when there is one. */
  schema: string | undefined;
  /** The schema when its file is in the mirror: parsed JSON for `.json`, else Cedar schema text. */
  schemaContent: unknown;
  /** Whether the corpus asserts the policies validate against the schema. */
  shouldValidate: boolean;
  requests: CorpusRequest[];
}

/** Why a JSON file is not a descriptor, or the descriptor. */
export type ReadResult = { kind: "descriptor"; descriptor: Descriptor } | { kind: "other" } | {
  kind: "broken";
  message: string;
};

/** Reads `path` (under `root`) as a descriptor; entity and schema JSON files answer `other`. */
export async function readDescriptor(root: string, path: string): Promise<ReadResult> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    return { kind: "broken", message: `not JSON: ${(error as Error).message}` };
  }
  if (!isObject(raw)) return { kind: "other" };
  const list = raw.requests ?? raw.queries;
  if (!Array.isArray(list) || typeof raw.policies !== "string") return { kind: "other" };
  try {
    const policies = await Deno.readTextFile(await resolve(root, path, raw.policies));
    const entities = typeof raw.entities === "string"
      ? JSON.parse(await Deno.readTextFile(await resolve(root, path, raw.entities)))
      : raw.entities ?? [];
    if (!Array.isArray(entities)) throw new TypeError(`entities of ${path} are not a JSON array`);
    const schemaPath = typeof raw.schema === "string"
      ? await resolve(root, path, raw.schema).catch(() => undefined)
      : undefined;
    const schemaText = schemaPath === undefined ? undefined : await Deno.readTextFile(schemaPath);
    return {
      kind: "descriptor",
      descriptor: {
        path,
        policies,
        entities,
        schema: typeof raw.schema === "string" ? raw.schema : undefined,
        schemaContent: schemaText !== undefined && schemaPath!.endsWith(".json") ? JSON.parse(schemaText) : schemaText,
        shouldValidate: (raw.shouldValidate ?? raw.should_validate) === true,
        requests: list.map((q, i) => request(q, i)),
      },
    };
  } catch (error) {
    return { kind: "broken", message: (error as Error).message };
  }
}

// The first of: relative to the root, to the descriptor's folder, or the bare
// name in the descriptor's folder (a mirror may hold only some versions' names).
async function resolve(root: string, descriptor: string, ref: string): Promise<string> {
  const name = ref.split("/").at(-1) ?? ref;
  const candidates = [join(root, ref), join(dirname(descriptor), ref), join(dirname(descriptor), name)];
  for (const candidate of candidates) {
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error(`missing file "${ref}" (looked at ${candidates.join(", ")})`);
}

function request(q: unknown, index: number): CorpusRequest {
  if (!isObject(q)) throw new TypeError(`request ${index} is not an object`);
  const decision = String(q.decision).toLowerCase();
  if (decision !== "allow" && decision !== "deny") throw new TypeError(`request ${index}: decision "${q.decision}"`);
  return {
    desc: String(q.description ?? q.desc ?? `request ${index}`),
    principal: uid(q.principal),
    action: uid(q.action),
    resource: uid(q.resource),
    context: isObject(q.context) ? q.context : {},
    validateRequest: (q.validateRequest ?? q.enable_request_validation ?? true) !== false,
    decision,
    reason: strings(q.reason ?? q.reasons).map(String).sort(),
    errors: strings(q.errors).map(errorPolicyId).sort(),
  };
}

function uid(value: unknown): Uid | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return parseUid(value);
  if (isObject(value)) {
    if (isObject(value.__entity)) return uid(value.__entity);
    if (typeof value.__expr === "string") return parseUid(value.__expr);
    if (typeof value.type === "string" && typeof value.id === "string") return { type: value.type, id: value.id };
  }
  throw new TypeError(`not an entity uid: ${JSON.stringify(value)}`);
}

// `Namespace::Type::"id"`, the id a Cedar string literal.
function parseUid(text: string): Uid {
  const at = text.indexOf('::"');
  if (at < 0 || !text.endsWith('"')) throw new TypeError(`not an entity uid: ${JSON.stringify(text)}`);
  return { type: text.slice(0, at).replaceAll(/\s+/g, ""), id: unescapeCedar(text.slice(at + 3, -1)) };
}

// Cedar's string escapes, written here rather than taken from keycard's parser
// so that the runner does not lean on the code it tests.
const SIMPLE: Record<string, string> = { n: "\n", r: "\r", t: "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'" };
function unescapeCedar(raw: string): string {
  return raw.replaceAll(
    /\\(u\{([0-9a-fA-F_]{1,8})\}|x([0-7][0-9a-fA-F])|.)/g,
    (all, esc: string, u?: string, x?: string) => {
      if (u !== undefined) return String.fromCodePoint(parseInt(u.replaceAll("_", ""), 16));
      if (x !== undefined) return String.fromCharCode(parseInt(x, 16));
      const simple = SIMPLE[esc];
      if (simple === undefined) throw new TypeError(`bad escape ${all} in an entity id`);
      return simple;
    },
  );
}

function strings(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// An id, `{ policyId }`, or a message that quotes the id in backquotes.
function errorPolicyId(error: unknown): string {
  if (isObject(error) && typeof error.policyId === "string") return error.policyId;
  const text = String(error);
  const quoted = /policy `([^`]+)`/.exec(text);
  return quoted?.[1] ?? text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
