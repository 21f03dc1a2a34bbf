/** @jsxImportSource hono/jsx */
// Plugins: the list, one plugin's detail with its compiled Cedar, invoke with the host calls it made, install by upload.
import type { Context, Hono } from "hono";
import { parse as parseYaml } from "yaml";
import type { AuditEvent } from "../audit/mod.ts";
import { ProblemError, toProblem } from "../http/problem.ts";
import type { PluginView } from "../http/services.ts";
import { checkPluginName, checkPluginVersion } from "../registry/mod.ts";
import { allow, can, type ConsoleDeps, type ConsoleEnv, sessionOf } from "./_context.ts";
import { Csrf, Json, page, type Section } from "./_layout.tsx";

/** A conformance report as the console reads it (the gateway's, see src/conformance). */
interface Report {
  passed: boolean;
  plugin?: string;
  version?: string;
  sha256?: string;
  durationMs?: number;
  checks?: { id: string; name: string; passed: boolean; skipped?: boolean; detail: string }[];
  footprint?: { action: string; resource: string; count: number; allowed: number; declared: boolean }[];
  /** With a check-only run: the least grant the plugin needed (see src/lifecycle/propose.ts). */
  proposal?: Proposal;
}

/** A proposed least grant as the console shows it. */
interface Proposal {
  yaml: string;
  cedar: string;
  runs?: number;
  cannotGrant?: unknown[];
  warnings?: unknown[];
}

/** What one invocation from the console did. */
interface InvokeResult {
  exportName: string;
  callId: string;
  ms: number;
  output?: string;
  error?: string;
  /** The call's audit events; absent for a client that may not read the audit. */
  hostCalls?: AuditEvent[];
}

/** Registers the plugin pages on the console app. */
export function pluginsPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;

  app.get("/plugins", async (c) => {
    if (!can(deps, c, "plugin.read")) return notPermitted(c, "plugins", "plugin.read");
    return await listPage(c, await services.plugins.list());
  });

  app.post("/plugins/install", async (c) => {
    const form = await c.req.parseBody();
    const wasmFile = form.wasm;
    const manifestFile = form.manifestFile;
    let manifest = typeof form.manifest === "string" ? form.manifest : "";
    if (manifestFile instanceof File && manifestFile.size > 0) manifest = await manifestFile.text();
    let name = typeof form.name === "string" ? form.name.trim() : "";
    if (name === "" && manifest.trim() !== "") name = manifestName(manifest);
    if (name === "") throw new ProblemError("bad-request", "Give the plugin's name, or a manifest that names it");
    name = checkPluginName(name);
    const checkOnly = form.mode === "check";
    if (checkOnly) allow(deps, c, "conformance.run");
    else allow(deps, c, "plugin.install", services.pluginResource(name));
    if (!(wasmFile instanceof File) || wasmFile.size === 0) {
      throw new ProblemError("bad-request", 'Choose the plugin\'s .wasm file (form field "wasm")');
    }
    const wasm = new Uint8Array(await wasmFile.arrayBuffer());
    if (checkOnly) {
      // Conformance and the least grant the run needed, as POST /v1/conformance?propose=true: nothing is installed.
      const report = await services.conformance(wasm, manifest.trim() === "" ? undefined : manifest, { propose: true });
      const outcome = `Checked only, not installed: conformance ${report.passed ? "passed" : "failed"}`;
      return await installPage(c, 200, report as Report, outcome, name);
    }
    if (manifest.trim() === "") {
      manifest = `name: ${JSON.stringify(name)}\nversion: ${JSON.stringify(checkPluginVersion("0.0.0", name))}\n`;
    }
    try {
      const { plugin, report } = await services.plugins.install(name, wasm, manifest);
      // The report as kept with the version: with the least grant of what the run did.
      const kept = isReport(plugin.report) ? plugin.report : report as Report;
      return await installPage(c, 201, kept, `Installed ${plugin.name} ${plugin.version}`, plugin.name);
    } catch (error) {
      if (error instanceof ProblemError && error.kind === "not-conformant" && isReport(error.extensions.report)) {
        return await installPage(c, 422, error.extensions.report, `Not installed: ${error.message}`, name);
      }
      throw error;
    }
  });

  app.get("/plugins/:name", async (c) => {
    const name = checkPluginName(c.req.param("name"));
    if (!can(deps, c, "plugin.read", services.pluginResource(name))) {
      return notPermitted(c, "plugins", "plugin.read");
    }
    const plugin = await services.plugins.get(name);
    if (!plugin) throw new ProblemError("not-found", `Plugin "${name}" is not installed`);
    return await detailPage(c, plugin, undefined, 200);
  });

  app.post("/plugins/:name/invoke", async (c) => {
    const name = checkPluginName(c.req.param("name"));
    allow(deps, c, "plugin.call", services.pluginResource(name));
    const form = await c.req.parseBody();
    const exportName = typeof form.export === "string" ? form.export : "";
    if (exportName === "") throw new ProblemError("bad-request", 'Choose an export (form field "export")');
    const input = new TextEncoder().encode(typeof form.input === "string" ? form.input : "");
    const callId = crypto.randomUUID();
    // The host calls are audit events: shown to a client that may read the audit, as GET /v1/audit would show them.
    const hostCalls: AuditEvent[] | undefined = can(deps, c, "audit.read") ? [] : undefined;
    // Host calls are recorded synchronously during the call: listening first catches every one of this call id.
    const unsubscribe = hostCalls === undefined ? () => {} : services.audit.subscribe((event) => {
      if (event.callId === callId && hostCalls.length < 1000) hostCalls.push(event);
    });
    const started = performance.now();
    const result: InvokeResult = { exportName, callId, ms: 0, ...(hostCalls ? { hostCalls } : {}) };
    let status = 200;
    try {
      const output = await services.invoke(name, exportName, input, {
        callId,
        hostContext: { caller: sessionOf(c).client.id },
      });
      result.ms = performance.now() - started;
      deps.metrics?.observeCall(name, exportName, "ok", result.ms / 1000);
      result.output = new TextDecoder().decode(output);
    } catch (error) {
      result.ms = performance.now() - started;
      const { body } = toProblem(error);
      if (body.type !== "/problems/not-found") deps.metrics?.observeCall(name, exportName, body.type, result.ms / 1000);
      result.error = body.detail;
      status = body.status;
    } finally {
      // Repeats of one decision past the first few are summed when their window ends: emitted now, with their count.
      services.audit.emitSumsOf(callId);
      unsubscribe();
    }
    // A client that may call but not read the plugin (plugin.call alone, as /v1's callers) gets the result only.
    if (!can(deps, c, "plugin.read", services.pluginResource(name))) return resultPage(c, name, result, status);
    const plugin = await services.plugins.get(name);
    if (!plugin) throw new ProblemError("not-found", `Plugin "${name}" is not installed`);
    return await detailPage(c, plugin, result, status);
  });

  function resultPage(c: Context<ConsoleEnv>, name: string, result: InvokeResult, status: number) {
    return page(
      c,
      { title: name, section: "plugins", status },
      <>
        <h1 id="plugin-name">{name}</h1>
        <InvokeResultView result={result} />
      </>,
    );
  }

  function listPage(c: Context<ConsoleEnv>, plugins: PluginView[]) {
    const session = sessionOf(c);
    return page(
      c,
      { title: "Plugins", section: "plugins" },
      <>
        <h1>Plugins</h1>
        <div class="scroll">
          <table id="plugins">
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>Versions</th>
                <th>State</th>
                <th>Exports</th>
                <th>Isolation</th>
              </tr>
            </thead>
            <tbody>
              {plugins.map((plugin) => (
                <tr data-testid="plugin-row" data-plugin={plugin.name}>
                  <td class="plugin-name">
                    <a href={`/console/plugins/${encodeURIComponent(plugin.name)}`}>{plugin.name}</a>
                  </td>
                  <td class="plugin-version">{plugin.version}</td>
                  <td class="plugin-versions">{plugin.versions.join(", ")}</td>
                  <td class={`plugin-state state-${plugin.state}`}>{plugin.state}</td>
                  <td class="plugin-exports">{plugin.exports.join(", ")}</td>
                  <td>{plugin.isolation === "plugin" ? "own workers" : `group ${plugin.isolation.group}`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {plugins.filter((plugin) => plugin.state === "failed").map((plugin) => (
          <p class="plugin-error error" data-plugin={plugin.name}>{plugin.name}: {plugin.error ?? "failed"}</p>
        ))}
        {can(deps, c, "plugin.install") ? <InstallForm session={session} /> : null}
      </>,
    );
  }

  function installPage(c: Context<ConsoleEnv>, status: number, report: Report, outcome: string, name: string) {
    return page(
      c,
      { title: `Install ${name}`, section: "plugins", status },
      <>
        <h1>Install {name}</h1>
        <ReportView report={report} outcome={outcome} />
        {report.proposal ? <ProposalView proposal={report.proposal} /> : null}
        <p>
          <a href="/console/plugins">Back to plugins</a>
          {status === 201
            ? <a id="installed-link" href={`/console/plugins/${encodeURIComponent(name)}`}>Open {name}</a>
            : null}
        </p>
        <InstallForm session={sessionOf(c)} />
      </>,
    );
  }

  function detailPage(c: Context<ConsoleEnv>, plugin: PluginView, result: InvokeResult | undefined, status: number) {
    const session = sessionOf(c);
    const grantSource = services.policies.sources().find((source) =>
      source.kind === "grant" && source.name === `grants/${plugin.name}`
    );
    const stats = services.pluginStats?.().find((entry) => entry.plugin === plugin.name);
    const report = isReport(plugin.report) ? plugin.report : undefined;
    return page(
      c,
      { title: plugin.name, section: "plugins", status },
      <>
        <h1 id="plugin-name">{plugin.name}</h1>
        <dl class="facts">
          <dt>Version</dt>
          <dd id="plugin-version">
            {plugin.versions.length > 0
              ? `${plugin.version} (installed: ${plugin.versions.join(", ")})`
              : "none: it never reached the registry"}
          </dd>
          <dt>State</dt>
          <dd id="plugin-state" class={`state-${plugin.state}`}>{plugin.state}</dd>
          {plugin.state === "failed" ? <dt>Error</dt> : null}
          {plugin.state === "failed" ? <dd id="plugin-error" class="error">{plugin.error ?? ""}</dd> : null}
          {plugin.sha256 ? <dt>sha256</dt> : null}
          {plugin.sha256 ? <dd class="mono">{plugin.sha256}</dd> : null}
          {plugin.description ? <dt>Description</dt> : null}
          {plugin.description ? <dd>{plugin.description}</dd> : null}
          <dt>Capabilities</dt>
          <dd id="plugin-capabilities">{plugin.capabilities.join(", ") || "none"}</dd>
          {plugin.installedAt ? <dt>Installed</dt> : null}
          {plugin.installedAt ? <dd>{plugin.installedAt}</dd> : null}
          {stats ? <dt>Runtime</dt> : null}
          {stats
            ? (
              <dd id="plugin-runtime">
                {stats.instances} instance(s), {stats.calls} call(s), {stats.replacements} replacement(s),{" "}
                {Math.round(stats.memoryBytes / 1024)} KiB memory
              </dd>
            )
            : null}
        </dl>
        {plugin.state === "loaded" && can(deps, c, "plugin.call", services.pluginResource(plugin.name))
          ? <InvokeForm plugin={plugin} session={session} selected={result?.exportName} />
          : null}
        {result ? <InvokeResultView result={result} /> : null}
        <h2>Grants</h2>
        <Json id="plugin-grants" value={plugin.grants} />
        <section id="plugin-cedar">
          <h2>Compiled Cedar ({grantSource?.name ?? `grants/${plugin.name}`})</h2>
          <pre>{grantSource?.text ?? "(no grants: nothing is permitted)"}</pre>
        </section>
        <h2>Limits</h2>
        <LimitsView limits={plugin.limits} />
        <h2>Conformance report of this version's install</h2>
        {report
          ? (
            <>
              <ReportView report={report} outcome={report.passed ? "Passed" : "Failed"} />
              {report.proposal ? <ProposalView proposal={report.proposal} /> : null}
            </>
          )
          : (
            <p id="no-report" class="hint">
              None kept: {plugin.name} {plugin.version}{" "}
              was not installed through the API or the console (a plugin of keycard.yaml is loaded at start without
              one). Run <code>deno task conform</code> on it, or "Check only" below the plugins list.
            </p>
          )}
      </>,
    );
  }
}

function InstallForm(props: { session: ReturnType<typeof sessionOf> }) {
  return (
    <section class="card">
      <h2>Install a plugin</h2>
      <form id="install-form" method="post" action="/console/plugins/install" enctype="multipart/form-data">
        <Csrf session={props.session} />
        <label>
          Name (empty: the manifest's)
          <input id="install-name" name="name" type="text" autocomplete="off" />
        </label>
        <label>
          Module (.wasm)
          <input id="install-wasm" name="wasm" type="file" accept=".wasm,application/wasm" required />
        </label>
        <label>
          Manifest file (plugin.yaml)
          <input id="install-manifest-file" name="manifestFile" type="file" accept=".yaml,.yml,text/yaml" />
        </label>
        <label>
          or manifest text
          <textarea id="install-manifest" name="manifest" rows={6} spellcheck={false}></textarea>
        </label>
        <button id="install-submit" type="submit">Run conformance and install</button>{" "}
        <button id="check-submit" type="submit" name="mode" value="check" class="secondary">
          Check only (conformance and least grant)
        </button>
      </form>
    </section>
  );
}

/** What each limit means, in the order the plugin page lists them. */
const LIMITS: [keyof PluginView["limits"], string, string][] = [
  ["deadlineMs", "Deadline of one call", "ms"],
  ["memoryPages", "Linear memory", "pages of 64 KiB"],
  ["instances", "Instances (calls at once)", ""],
  ["minInstances", "Instances kept warm", ""],
  ["queue", "Calls that may wait", ""],
  ["inputBytes", "Largest input", "bytes"],
  ["outputBytes", "Largest output", "bytes"],
  ["hostCalls", "Host calls per call", ""],
  ["hostIoBytes", "Largest host-call request or response", "bytes"],
];

function LimitsView(props: { limits: PluginView["limits"] }) {
  return (
    <div class="scroll">
      <table id="plugin-limits">
        <tbody>
          {LIMITS.map(([key, label, unit]) => (
            <tr data-testid="limit" data-limit={key} data-value={String(props.limits[key])}>
              <th scope="row">{label}</th>
              <td>
                {props.limits[key].toLocaleString("en-US")}
                {unit ? ` ${unit}` : ""}
                {key === "memoryPages" ? ` (${(props.limits[key] * 64).toLocaleString("en-US")} KiB)` : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ReportView(props: { report: Report; outcome: string }) {
  const { report } = props;
  return (
    <section id="install-report" class="card" data-passed={String(report.passed)}>
      <p id="install-outcome" class={report.passed ? "ok" : "error"}>{props.outcome}</p>
      <p>
        Conformance {report.passed ? "passed" : "failed"}
        {report.durationMs !== undefined ? ` in ${Math.round(report.durationMs)} ms` : ""}
        {report.sha256 ? `, sha256 ${report.sha256.slice(0, 16)}…` : ""}
      </p>
      <div class="scroll">
        <table id="report-checks">
          <thead>
            <tr>
              <th>Check</th>
              <th>Result</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {(report.checks ?? []).map((check) => {
              const result = check.skipped ? "skipped" : String(check.passed);
              return (
                <tr data-testid="check-row" data-check={check.id} data-passed={result}>
                  <td>
                    {check.name} <span class="mono">({check.id})</span>
                  </td>
                  <td class={check.skipped ? "" : check.passed ? "ok" : "error"}>
                    {check.skipped ? "skipped" : check.passed ? "passed" : "failed"}
                  </td>
                  <td>{check.detail}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <h3>Footprint</h3>
      <div class="scroll">
        <table id="report-footprint">
          <thead>
            <tr>
              <th>Action</th>
              <th>Resource</th>
              <th>Attempts</th>
              <th>Allowed</th>
              <th>Declared</th>
            </tr>
          </thead>
          <tbody>
            {(report.footprint ?? []).map((entry) => (
              <tr data-testid="footprint-row" data-action={entry.action}>
                <td>{entry.action}</td>
                <td class="mono">{entry.resource}</td>
                <td>{entry.count}</td>
                <td>{entry.allowed}</td>
                <td>{entry.declared ? "yes" : "no"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function ProposalView(props: { proposal: Proposal }) {
  const { proposal } = props;
  return (
    <section id="proposal" class="card">
      <h2>Proposed least grant{proposal.runs ? ` (from ${proposal.runs} run(s))` : ""}</h2>
      <pre id="proposal-yaml">{proposal.yaml}</pre>
      <h3>Compiles to</h3>
      <pre id="proposal-cedar">{proposal.cedar || "(nothing to grant)"}</pre>
      {proposal.cannotGrant?.length ? <h3>Cannot be granted</h3> : null}
      {proposal.cannotGrant?.length ? <Json id="proposal-cannot-grant" value={proposal.cannotGrant} /> : null}
      {proposal.warnings?.length ? <h3>Manifest grants wider than used</h3> : null}
      {proposal.warnings?.length ? <Json id="proposal-warnings" value={proposal.warnings} /> : null}
    </section>
  );
}

function InvokeForm(
  props: { plugin: PluginView; session: ReturnType<typeof sessionOf>; selected?: string | undefined },
) {
  return (
    <section class="card">
      <h2>Invoke</h2>
      <form
        id="invoke-form"
        method="post"
        action={`/console/plugins/${encodeURIComponent(props.plugin.name)}/invoke`}
      >
        <Csrf session={props.session} />
        <label>
          Export
          <select id="invoke-export" name="export">
            {props.plugin.exports.map((name) => (
              <option key={name} value={name} selected={name === props.selected}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Input
          <textarea id="invoke-input" name="input" rows={4} spellcheck={false}></textarea>
        </label>
        <button id="invoke-submit" type="submit">Invoke</button>
      </form>
    </section>
  );
}

function InvokeResultView(props: { result: InvokeResult }) {
  const { result } = props;
  return (
    <section id="invoke-result" class="card" data-outcome={result.error === undefined ? "ok" : "error"}>
      <h2>Result of {result.exportName}</h2>
      <p>
        <span id="invoke-timing">{result.ms.toFixed(1)} ms</span> · call id{" "}
        <span id="invoke-call-id" class="mono">{result.callId}</span>
      </p>
      {result.error !== undefined
        ? <p id="invoke-error" class="error">{result.error}</p>
        : <pre id="invoke-output">{result.output}</pre>}
      {result.hostCalls === undefined
        ? <p id="host-calls-hidden" class="hint">Host calls are audit events: reading them needs audit.read.</p>
        : <HostCallsView events={result.hostCalls} />}
    </section>
  );
}

function HostCallsView(props: { events: AuditEvent[] }) {
  return (
    <>
      <h3>Host calls ({props.events.reduce((sum, event) => sum + (event.count ?? 1), 0)})</h3>
      <div class="scroll">
        <table id="host-calls">
          <thead>
            <tr>
              <th>Action</th>
              <th>Resource</th>
              <th>Decision</th>
              <th>Policies / reason</th>
              <th>Times</th>
              <th>µs</th>
            </tr>
          </thead>
          <tbody>
            {props.events.map((event) => (
              <tr data-testid="host-call" data-action={event.action} data-decision={event.decision}>
                <td>{event.action}</td>
                <td class="mono">{event.resource}</td>
                <td class={event.decision === "allow" ? "ok" : "error"}>{event.decision}</td>
                <td>
                  {event.decision === "allow" ? event.policies.join(", ") : event.reason ?? event.policies.join(", ")}
                </td>
                <td class="count">{event.count ?? 1}</td>
                <td>{event.durationUs}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** A page that says what the client may not do, in place of content it may not read. */
export function notPermitted(c: Context<ConsoleEnv>, section: Section, action: string) {
  return page(
    c,
    { title: "Not permitted", section },
    <p id="not-permitted" class="notice">
      Client "{sessionOf(c).client.id}" may not {action}: Cedar's policies grant it nothing here.
    </p>,
  );
}

function manifestName(text: string): string {
  let value: unknown;
  try {
    value = parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new ProblemError("invalid-manifest", `The manifest is not YAML: ${(error as Error).message}`);
  }
  const name = (value as { name?: unknown } | null)?.name;
  if (typeof name !== "string") throw new ProblemError("invalid-manifest", 'The manifest has no "name"');
  return name;
}

function isReport(value: unknown): value is Report {
  return typeof value === "object" && value !== null && typeof (value as Report).passed === "boolean";
}
