// The world a conformance run happens in: a PluginHost of its own whose host
// functions are decided by a PolicyEngine holding only policies/base.cedar, so
// that the plugin under test has an empty grant and every host call is denied,
// recorded and counted. Files and keys live in a fresh temp dir, removed after.
import { type AuditEvent, AuditLog } from "../audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../host/mod.ts";
import { PolicyEngine } from "../policy/mod.ts";
import { PluginHost, type PluginLimits } from "../runtime/mod.ts";

const POLICIES = new URL("../../policies/", import.meta.url);

/** An address reserved for documentation (RFC 5737): never contacted, since nothing is permitted. */
const UNROUTABLE = "192.0.2.1";

/** A plugin host under an empty grant, with every audit event it recorded. */
export interface _Sandbox extends AsyncDisposable {
  /** Runs the plugin under test; its host functions are keycard's. */
  host: PluginHost<CallerContext>;
  /** The import names of keycard's host functions (`keycard_fs_read`, ...). */
  hostFunctionNames: readonly string[];
  /** Every decision the host functions made, in order. */
  events: readonly AuditEvent[];
}

/**
 * Opens a sandbox: base policies only, in-memory audit, a temp data root and
 * key-value store.
 *
 * @param limits The limits every plugin in the host gets.
 * @param config The plugin's configuration variables, for `env.get`.
 * @returns The sandbox; dispose of it to stop its workers and remove its files.
 */
export async function _openSandbox(
  limits: PluginLimits,
  config: Readonly<Record<string, string>>,
): Promise<_Sandbox> {
  const [schema, base] = await Promise.all([
    Deno.readTextFile(new URL("keycard.cedarschema", POLICIES)),
    Deno.readTextFile(new URL("base.cedar", POLICIES)),
  ]);
  const engine = await PolicyEngine.create({ schema, sources: [{ name: "base.cedar", text: base }] });
  const dir = await Deno.makeTempDir({ prefix: "keycard-conform-" });
  const cleanups: (() => unknown)[] = [() => Deno.remove(dir, { recursive: true })];
  const dispose = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Cleanup goes on: a temp dir left behind must not hide the report.
      }
    }
  };
  try {
    await Deno.mkdir(`${dir}/files`);
    const fs = await FsCapability.open(`${dir}/files`);
    const kv = await KvStore.open(`${dir}/kv.sqlite`);
    cleanups.push(() => kv.close());
    const audit = new AuditLog({ ringSize: 1 });
    cleanups.push(() => audit.close());
    const events: AuditEvent[] = [];
    audit.subscribe((event) => events.push(event));
    const hostFunctions = createHostFunctions({
      engine,
      audit,
      fs,
      kv,
      env: () => config,
      logSink: () => {},
      http: { resolve: () => Promise.resolve([UNROUTABLE]), timeoutMs: limits.deadlineMs },
    });
    const host = new PluginHost<CallerContext>({ hostFunctions, limits, spareWorkers: 0 });
    cleanups.push(async () => {
      await host.close();
    });
    return { host, hostFunctionNames: Object.keys(hostFunctions), events, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
