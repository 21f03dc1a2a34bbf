import { type AuditEvent, type AuditLog, MAX_AUDIT_REQUEST_BYTES } from "../audit/mod.ts";
import {
  type AuthorizationRequest,
  type Decision,
  type Entity,
  envVarEntity,
  hostEntity,
  hostId,
  isIpLiteral,
  keyEntity,
  pathEntity,
  pluginEntity,
  type PolicyEngine,
  runtimeEntity,
} from "../policy/mod.ts";
import { type HostCallContext, HostCallError, type HostFunction } from "../runtime/mod.ts";
import { authorizedFetch, type AuthorizedFetchOptions, type HttpTarget } from "./authorized_fetch.ts";
import type { FsCapability } from "./fs_capability.ts";
import type { PluginKv } from "./plugin_kv.ts";

/** What the invoker hands a plugin call as its host context. */
export interface CallerContext {
  /** The API client whose request started the call; Cedar sees it as `context.caller`. */
  caller?: string;
}

/** A line a plugin wrote through `log.write`. */
export interface PluginLogEntry {
  /** When the host received the line, as an ISO 8601 timestamp. */
  time: string;
  /** Name of the plugin that wrote it. */
  plugin: string;
  /** The invocation it belongs to, as in the audit log. */
  callId: string;
  /** `trace`, `debug`, `info`, `warn` or `error`; `info` when the plugin gave none. */
  level: string;
  /** The text, at most `logMaxBytes` UTF-8 bytes. */
  message: string;
}

/** Options of {@linkcode createHostFunctions}. */
export interface HostFunctionsOptions {
  /** Decides every call. */
  engine: PolicyEngine;
  /** Records every decision. */
  audit: AuditLog;
  /** The data root that `fs.*` acts in. */
  fs: FsCapability;
  /** The key-value store of `kv.*`: Deno KV on one machine, PostgreSQL for replicas. */
  kv: PluginKv;
  /** A plugin's configuration variables, read by `env.get` (never the process environment). @default {() => ({})} */
  env?: (plugin: string) => Readonly<Record<string, string>>;
  /** Where `log.write` lines go. @default {JSON lines on stderr} */
  logSink?: (entry: PluginLogEntry) => void;
  /**
   * Masks secrets in each `log.write` message before it reaches `logSink` (the size limit applies to the message
   * as written). @default {undefined} (messages kept as written)
   */
  redactLog?: (message: string) => string;
  /** Largest `log.write` message in bytes. @default {4096} */
  logMaxBytes?: number;
  /** `log.write` lines per plugin per second; more are refused with `limit`. @default {100} */
  logPerSecond?: number;
  /** Largest file `fs.read` returns. @default {1048576} */
  fsMaxReadBytes?: number;
  /** Largest `random.get` request. @default {4096} */
  randomMaxBytes?: number;
  /** HTTP bounds and resolver for `http.request`. */
  http?: Pick<AuthorizedFetchOptions, "maxRedirects" | "maxResponseBytes" | "timeoutMs" | "resolve" | "caCerts">;
}

type Context = HostCallContext<CallerContext>;
type Decide = (resource: Entity, extra?: Record<string, unknown>) => Decision;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array();

/** Splits a request block: a JSON object, then optionally a NUL and raw bytes. */
function parseRequest(input: Uint8Array): { json: Record<string, unknown>; body: Uint8Array } {
  const nul = input.indexOf(0);
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(nul < 0 ? input : input.subarray(0, nul)) || "{}");
  } catch (error) {
    throw new HostCallError("invalid", `Request is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new HostCallError("invalid", "Request must be a JSON object");
  }
  return { json: json as Record<string, unknown>, body: nul < 0 ? EMPTY : input.subarray(nul + 1) };
}

function field(json: Record<string, unknown>, name: string): string {
  const value = json[name];
  if (typeof value !== "string" || value === "") {
    throw new HostCallError("invalid", `Request needs "${name}" as a non-empty string`);
  }
  return value;
}

/** The request an audit event keeps, frozen; past the bound, the reason it is left out. */
function recordedRequest(request: AuthorizationRequest): Pick<AuditEvent, "request" | "requestOmitted"> {
  const json = JSON.stringify(request);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: encode only a text that might be past the bound.
  const bytes = json.length * 3 <= MAX_AUDIT_REQUEST_BYTES ? json.length : encoder.encode(json).length;
  if (bytes > MAX_AUDIT_REQUEST_BYTES) {
    return { requestOmitted: `too large: ${bytes} bytes > ${MAX_AUDIT_REQUEST_BYTES}` };
  }
  // The entities keycard builds are frozen already; the context is this call's own.
  Object.freeze(request.context);
  return { request: Object.freeze({ ...request }) };
}

/**
 * Builds keycard's host functions (`keycard_fs_read`, ... `keycard_random_get`)
 * for the plugin runtime. Each is wrapped once: build the Cedar request,
 * authorize, audit (allow or deny), then act through a narrow capability; a
 * denial reaches the plugin as an error value naming the action, the resource
 * and the reason ("denied by default" or the forbidding policy).
 *
 * @param options Engine, audit log, capabilities and bounds.
 * @returns The table to pass as `PluginHost`'s `hostFunctions`.
 *
 * @example Wire the host functions into a plugin host
 * ```ts ignore
 * import { PluginHost } from "../runtime/mod.ts";
 * import { createHostFunctions } from "./create_host_functions.ts";
 * const host = new PluginHost({ hostFunctions: createHostFunctions({ engine, audit, fs, kv }) });
 * ```
 */
export function createHostFunctions(options: HostFunctionsOptions): Record<string, HostFunction<CallerContext>> {
  const { engine, audit, fs, kv } = options;
  const env = options.env ?? ((): Readonly<Record<string, string>> => ({}));
  const logSink = options.logSink ?? ((entry) => console.error(JSON.stringify(entry)));
  const redactLog = options.redactLog;
  const logMaxBytes = options.logMaxBytes ?? 4096;
  const logPerSecond = options.logPerSecond ?? 100;
  const fsMaxReadBytes = options.fsMaxReadBytes ?? 1 << 20;
  const randomMaxBytes = options.randomMaxBytes ?? 4096;
  const logWindows = new Map<string, { second: number; count: number }>();

  /**
   * Records one decision of a host call: by Cedar (with the request it decided and its provenance, for
   * replay), or a refusal before it.
   */
  function record(
    context: Context,
    action: string,
    resource: string,
    outcome: Pick<Decision, "decision" | "policies" | "errors" | "reason"> & Partial<Decision>,
    durationUs: number,
    count = 1,
    request?: AuthorizationRequest,
  ): void {
    audit.record({
      time: new Date().toISOString(),
      callId: context.callId,
      plugin: context.plugin.name,
      version: context.plugin.version,
      action,
      resource,
      decision: outcome.decision,
      policies: outcome.policies,
      errors: outcome.errors,
      caller: context.hostContext?.caller || null,
      durationUs,
      ...(outcome.decision === "deny" ? { reason: outcome.reason } : {}),
      ...(count > 1 ? { count } : {}),
      ...(outcome.policySet === undefined ? {} : { policySet: outcome.policySet, deciding: outcome.deciding ?? [] }),
      ...(request === undefined ? {} : recordedRequest(request)),
    });
  }

  /** Decides, audits, and throws a denial the plugin can read. */
  function authorize(
    context: Context,
    action: string,
    resource: Entity,
    extra: Record<string, unknown> = {},
  ): Decision {
    const started = performance.now();
    const request: AuthorizationRequest = {
      principal: pluginEntity(context.plugin),
      action,
      resource,
      context: { caller: context.hostContext?.caller ?? "", ...extra },
    };
    const decision = engine.authorize(request);
    const resourceText = `${resource.uid.type}::${JSON.stringify(resource.uid.id)}`;
    record(context, action, resourceText, decision, Math.round((performance.now() - started) * 1000), 1, request);
    if (decision.decision === "deny") {
      const why = decision.policies.length > 0
        ? `policy ${decision.policies.map((id) => `"${id}"`).join(", ")} forbids`
        : "no policy permits";
      throw new HostCallError(
        "denied",
        `Cannot ${action} ${resourceText} as ${why} ${action} for plugin "${context.plugin.name}": ${decision.reason}`,
      );
    }
    return decision;
  }

  /** A data-root path as the plugin gave it, canonicalized, as a policy path `/a/b`. */
  async function dataPath(requested: string): Promise<{ real: string; id: string }> {
    const real = await fs.resolve(requested);
    const id = real === fs.root ? "/" : real.slice(fs.root.length);
    return { real, id };
  }

  const kvOf = (context: Context, json: Record<string, unknown>) =>
    kvTarget(context.plugin.name, field(json, "key"), typeof json.namespace === "string" ? json.namespace : undefined);

  /**
   * Wraps a host function so that a request refused before it could become a
   * Cedar request (malformed, or a path escaping the data root) is audited
   * as a denial too, and so are the calls the runtime refuses without calling
   * it (past the `hostCalls` cap, after the deadline), `count` of them in one
   * event: every host call leaves exactly one trace or more.
   */
  function audited(
    action: string,
    fn: (input: Uint8Array, context: Context, decide: Decide) => Uint8Array | Promise<Uint8Array>,
  ): HostFunction<CallerContext> {
    const wrapped: HostFunction<CallerContext> = (input, context) => {
      let decided = false;
      const decide: Decide = (resource, extra) => {
        decided = true;
        return authorize(context, action, resource, extra);
      };
      const refused = (error: unknown): never => {
        if (!decided && error instanceof HostCallError) {
          const reason = `refused before policy evaluation: ${error.message}`;
          record(context, action, "(unresolved)", { decision: "deny", policies: [], errors: [], reason }, 0);
        }
        throw error;
      };
      try {
        const result = fn(input, context, decide);
        return result instanceof Uint8Array ? result : result.catch(refused);
      } catch (error) {
        return refused(error);
      }
    };
    wrapped.refused = (context, refusal) => {
      const reason = `refused by the runtime (${refusal.code}): ${refusal.message}`;
      record(context, action, "(unresolved)", { decision: "deny", policies: [], errors: [], reason }, 0, refusal.count);
    };
    return wrapped;
  }

  return {
    keycard_fs_read: audited("fs.read", async (input, _context, decide) => {
      const path = await dataPath(field(parseRequest(input).json, "path"));
      decide(pathEntity(path.id, "File"));
      return await fs.read(path.real, fsMaxReadBytes);
    }),
    keycard_fs_write: audited("fs.write", async (input, _context, decide) => {
      const { json, body } = parseRequest(input);
      const path = await dataPath(field(json, "path"));
      decide(pathEntity(path.id, "File"));
      const bytes = await fs.write(path.real, body);
      return encoder.encode(JSON.stringify({ bytes }));
    }),
    keycard_fs_list: audited("fs.list", async (input, _context, decide) => {
      const path = await dataPath(field(parseRequest(input).json, "path"));
      decide(pathEntity(path.id, "Dir"));
      const entries = await fs.list(path.real);
      return encoder.encode(JSON.stringify(entries.map(({ name, kind }) => ({ name, kind }))));
    }),
    keycard_fs_delete: audited("fs.delete", async (input, _context, decide) => {
      const path = await dataPath(field(parseRequest(input).json, "path"));
      decide(pathEntity(path.id, "File"));
      await fs.delete(path.real);
      return EMPTY;
    }),
    keycard_http_request: audited("http.request", async (input, context, decide) => {
      const { json, body } = parseRequest(input);
      const headers = json.headers ?? {};
      if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
        throw new HostCallError("invalid", `Request "headers" must be a map of strings`);
      }
      const method = typeof json.method === "string" ? json.method : "GET";
      const response = await authorizedFetch(
        {
          url: field(json, "url"),
          method,
          headers: headers as Record<string, string>,
          ...(body.length ? { body } : {}),
        },
        {
          ...options.http,
          signal: context.signal,
          authorize: (target) => {
            // Only an address written in the URL can be "named", and only by
            // this plugin's own (or unscoped) policies: a host name that
            // resolves to a private address never is.
            decide(httpResource(engine, context.plugin.name, target), {
              method: target.method,
              path: target.path,
              hop: target.hop,
            });
          },
        },
      );
      const head = encoder.encode(JSON.stringify({ status: response.status, headers: response.headers }));
      const out = new Uint8Array(head.length + 1 + response.body.length);
      out.set(head);
      out.set(response.body, head.length + 1);
      return out;
    }),
    keycard_kv_get: audited("kv.get", async (input, context, decide) => {
      const target = kvOf(context, parseRequest(input).json);
      decide(target.entity);
      const value = await kv.get(context.plugin.name, target.namespace, target.key);
      if (value === undefined) {
        throw new HostCallError(
          "not_found",
          `Key ${JSON.stringify(target.key)} is not in namespace "${target.namespace}"`,
        );
      }
      return value;
    }),
    keycard_kv_set: audited("kv.set", async (input, context, decide) => {
      const { json, body } = parseRequest(input);
      const target = kvOf(context, json);
      decide(target.entity);
      await kv.set(context.plugin.name, target.namespace, target.key, body);
      return EMPTY;
    }),
    keycard_kv_delete: audited("kv.delete", async (input, context, decide) => {
      const target = kvOf(context, parseRequest(input).json);
      decide(target.entity);
      await kv.delete(context.plugin.name, target.namespace, target.key);
      return EMPTY;
    }),
    keycard_env_get: audited("env.get", (input, context, decide) => {
      const name = field(parseRequest(input).json, "name");
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
        throw new HostCallError("invalid", `Variable name ${JSON.stringify(name)} is not valid`);
      }
      decide(envVarEntity(context.plugin.name, name));
      const value = env(context.plugin.name)[name];
      if (value === undefined) {
        throw new HostCallError(
          "not_found",
          `Variable "${name}" is not configured for plugin "${context.plugin.name}"`,
        );
      }
      return encoder.encode(value);
    }),
    keycard_log_write: audited("log.write", (input, context, decide) => {
      const json = parseRequest(input).json;
      const level = typeof json.level === "string" ? json.level : "info";
      if (!["trace", "debug", "info", "warn", "error"].includes(level)) {
        throw new HostCallError(
          "invalid",
          `Log level ${JSON.stringify(level)} is not one of trace, debug, info, warn, error`,
        );
      }
      const message = typeof json.message === "string" ? json.message : "";
      const bytes = encoder.encode(message).length;
      decide(runtimeEntity("log"), { level, bytes });
      if (bytes > logMaxBytes) {
        throw new HostCallError("limit", `Log message of ${bytes} bytes exceeds the limit of ${logMaxBytes} bytes`);
      }
      const second = Math.floor(Date.now() / 1000);
      const window = logWindows.get(context.plugin.name);
      if (window && window.second === second) {
        if (++window.count > logPerSecond) {
          throw new HostCallError(
            "limit",
            `Plugin "${context.plugin.name}" wrote more than ${logPerSecond} log lines this second`,
          );
        }
      } else {
        logWindows.set(context.plugin.name, { second, count: 1 });
      }
      logSink({
        time: new Date().toISOString(),
        plugin: context.plugin.name,
        callId: context.callId,
        level,
        message: redactLog === undefined ? message : redactLog(message),
      });
      return EMPTY;
    }),
    keycard_clock_now: audited("clock.now", (_input, _context, decide) => {
      decide(runtimeEntity("clock"));
      return encoder.encode(JSON.stringify({ unixMs: Date.now() }));
    }),
    keycard_random_get: audited("random.get", (input, _context, decide) => {
      const bytes = parseRequest(input).json.bytes;
      if (!Number.isInteger(bytes) || (bytes as number) < 0) {
        throw new HostCallError(
          "invalid",
          `Request needs "bytes" as a non-negative integer, got ${JSON.stringify(bytes)}`,
        );
      }
      decide(runtimeEntity("random"));
      if ((bytes as number) > randomMaxBytes) {
        throw new HostCallError(
          "limit",
          `Random request of ${bytes} bytes exceeds the limit of ${randomMaxBytes} bytes`,
        );
      }
      return crypto.getRandomValues(new Uint8Array(bytes as number));
    }),
  };
}

/**
 * The `Key` a key-value call names: `namespace` when given, else the part of
 * the key before its first `/`, else the plugin's own namespace.
 * @param plugin The calling plugin.
 * @param key The key as the plugin wrote it.
 * @param namespace The namespace, when the plugin gave one.
 * @returns The namespace, the key within it, and the entity Cedar decides on.
 * @throws {HostCallError} `invalid` for a namespace that is not a valid name.
 */
export function kvTarget(
  plugin: string,
  key: string,
  namespace?: string,
): { namespace: string; key: string; entity: Entity } {
  if (namespace === undefined) {
    const slash = key.indexOf("/");
    if (slash > 0) [namespace, key] = [key.slice(0, slash), key.slice(slash + 1)];
    else namespace = plugin;
  }
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(namespace)) {
    throw new HostCallError("invalid", `Namespace ${JSON.stringify(namespace)} is not a valid name`);
  }
  return { namespace, key, entity: keyEntity(plugin, namespace, key) };
}

/**
 * The `Host` an HTTP hop is decided on. Only an address written in the URL
 * can be "named", and only by this plugin's own (or unscoped) policies: a
 * host name that resolves to a private address never is.
 * @param engine The engine whose set in force names hosts.
 * @param plugin The calling plugin.
 * @param target The hop, by name or by address.
 * @returns The entity.
 */
export function httpResource(
  engine: Pick<PolicyEngine, "namedHost">,
  plugin: string,
  target: Pick<HttpTarget, "host" | "port" | "scheme" | "ip">,
): Entity {
  const named = isIpLiteral(target.host) && engine.namedHost(hostId(target.host, target.port), plugin);
  return hostEntity({ host: target.host, port: target.port, scheme: target.scheme, ip: target.ip }, named);
}
