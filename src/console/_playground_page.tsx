/** @jsxImportSource hono/jsx */
// Playground: decide a Cedar request (typed, or taken from an audit event) and show the deciding policies' text.
import type { Context, Hono } from "hono";
import type { AuditEvent } from "../audit/mod.ts";
import type { Explanation } from "../lifecycle/mod.ts";
import { nestingDepth } from "../http/_input.ts";
import { ProblemError } from "../http/problem.ts";
import type { Decision, Entity, EntityUid } from "../policy/mod.ts";
import { allow, can, type ConsoleDeps, type ConsoleEnv, sessionOf } from "./_context.ts";
import { Csrf, page } from "./_layout.tsx";
import { notPermitted } from "./_plugins_pages.tsx";

/** Deepest nesting of a field: shallow for cedar-wasm's stack (as /v1/authorize bounds it). */
const MAX_DEPTH = 32;
const MAX_FIELD_CHARS = 16_384;

interface Fields {
  principal: string;
  action: string;
  resource: string;
  context: string;
}

/** A host call as a plugin makes it, in the form `deno task policy explain` and `POST /v1/policies/explain` take. */
const EXAMPLE_CALL = "plugin: stamp\nhttp.request: https://api.example.com/v1/quotes\nip: 93.184.216.34\n";

const EXAMPLE: Fields = {
  principal: JSON.stringify(
    { type: "Plugin", id: "stamp", attrs: { name: "stamp", version: "1.0.0", sha256: "", tenant: "" } },
    null,
    2,
  ),
  action: "clock.now",
  resource: JSON.stringify({ type: "Clock", id: "system" }, null, 2),
  context: JSON.stringify({ caller: "" }, null, 2),
};

/** Registers the playground on the console app. */
export function playgroundPage(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;

  app.get("/playground", async (c) => {
    if (!can(deps, c, "policy.read")) return notPermitted(c, "playground", "policy.read");
    const events = can(deps, c, "audit.read")
      ? (services.auditQuery ? await services.auditQuery({ limit: 20 }) : services.audit.query({ limit: 20 }))
        .filter((event) => event.request !== undefined)
      : [];
    const pick = Number(c.req.query("event") ?? NaN);
    const picked = Number.isInteger(pick) ? events[pick] : undefined;
    const fields = picked?.request
      ? {
        principal: JSON.stringify(picked.request.principal, null, 2),
        action: picked.request.action,
        resource: JSON.stringify(picked.request.resource, null, 2),
        context: JSON.stringify(picked.request.context, null, 2),
      }
      : EXAMPLE;
    return view(c, 200, fields, events);
  });

  // A host call as a plugin makes it (an HTTP one decided in its two phases, name then address), explained.
  app.post("/playground/explain", async (c) => {
    allow(deps, c, "policy.read");
    const form = await c.req.parseBody();
    const call = text(form.call);
    if (!services.policies.explain) throw new ProblemError("not-found", "This gateway does not explain requests");
    try {
      if (call.trim() === "") throw new ProblemError("bad-request", "Describe a host call, e.g. plugin: stamp");
      return view(c, 200, EXAMPLE, [], undefined, undefined, { call, explanation: services.policies.explain(call) });
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      return view(c, error.status, EXAMPLE, [], undefined, undefined, { call, error: error.message });
    }
  });

  app.post("/playground", async (c) => {
    allow(deps, c, "policy.read");
    const form = await c.req.parseBody();
    const fields: Fields = {
      principal: text(form.principal),
      action: text(form.action).trim(),
      resource: text(form.resource),
      context: text(form.context),
    };
    try {
      if (fields.action === "") throw new ProblemError("bad-request", "Give an action, e.g. fs.read");
      const decision = services.authorize({
        principal: entity(fields.principal, "principal"),
        action: fields.action,
        resource: entity(fields.resource, "resource"),
        context: record(parse(fields.context || "{}", "context"), "context"),
      });
      return view(c, 200, fields, [], decision);
    } catch (error) {
      if (!(error instanceof ProblemError) && !(error instanceof Error)) throw error;
      return view(c, error instanceof ProblemError ? error.status : 400, fields, [], undefined, error.message);
    }
  });

  function view(
    c: Context<ConsoleEnv>,
    status: number,
    fields: Fields,
    events: AuditEvent[],
    decision?: Decision,
    error?: string,
    explained: { call: string; explanation?: Explanation; error?: string } = { call: EXAMPLE_CALL },
  ) {
    const policies = decision ? services.policies.list().filter((p) => decision.policies.includes(p.id)) : [];
    return page(
      c,
      { title: "Playground", section: "playground", status },
      <>
        <h1>Playground</h1>
        <form id="playground-form" method="post" action="/console/playground" class="card">
          <Csrf session={sessionOf(c)} />
          <label>
            Principal (entity JSON)
            <textarea id="pg-principal" name="principal" rows={5} spellcheck={false}>{fields.principal}</textarea>
          </label>
          <label>
            Action <input id="pg-action" name="action" value={fields.action} />
          </label>
          <label>
            Resource (entity JSON)
            <textarea id="pg-resource" name="resource" rows={5} spellcheck={false}>{fields.resource}</textarea>
          </label>
          <label>
            Context (JSON record)
            <textarea id="pg-context" name="context" rows={3} spellcheck={false}>{fields.context}</textarea>
          </label>
          <button id="pg-submit" type="submit">Decide</button>
        </form>
        {error ? <p id="pg-error" class="error">{error}</p> : null}
        {decision
          ? (
            <section id="pg-result" class="card" data-decision={decision.decision}>
              <h2 class={decision.decision === "allow" ? "ok" : "error"}>{decision.decision}</h2>
              <p id="pg-reason">{decision.reason} (policy set version {decision.version})</p>
              {decision.errors.length ? <pre class="error">{decision.errors.join("\n")}</pre> : null}
              {policies.map((policy) => (
                <div data-testid="pg-policy" data-id={policy.id}>
                  <h3>
                    {policy.id} <span class="hint">{policy.source}:{policy.line}</span>
                  </h3>
                  <pre>{policy.text}</pre>
                </div>
              ))}
            </section>
          )
          : null}
        <form id="explain-form" method="post" action="/console/playground/explain" class="card">
          <Csrf session={sessionOf(c)} />
          <h2>Or a host call as a plugin makes it</h2>
          <label>
            Request (YAML, as <code>deno task policy explain</code> takes it)
            <textarea id="pg-call" name="call" rows={4} spellcheck={false}>{explained.call}</textarea>
          </label>
          <p class="hint">
            An HTTP call is decided twice, as the host does: by name before DNS, then by the address it resolved to
            (<code>ip</code>).
          </p>
          <button id="pg-explain" type="submit">Explain</button>
        </form>
        {explained.error ? <p id="pg-call-error" class="error">{explained.error}</p> : null}
        {explained.explanation ? <ExplanationView explanation={explained.explanation} /> : null}
        {events.length
          ? (
            <section class="card">
              <h2>Or take a recent audit event</h2>
              <ul id="pg-events" class="events">
                {events.map((event, index) => (
                  <li data-testid="pg-event">
                    <a href={`/console/playground?event=${index}`}>
                      {event.time} {event.plugin} {event.action} {event.resource} → {event.decision}
                    </a>
                  </li>
                ))}
              </ul>
            </section>
          )
          : null}
      </>,
    );
  }
}

function ExplanationView(props: { explanation: Explanation }) {
  const { decisions, refused, note } = props.explanation;
  const final = refused !== undefined ? "deny" : decisions.at(-1)?.decision.decision ?? "deny";
  return (
    <section id="pg-explanation" class="card" data-decision={final}>
      <h2 class={final === "allow" ? "ok" : "error"}>{final}</h2>
      {refused !== undefined ? <p id="pg-refused" class="error">Refused before any policy: {refused}</p> : null}
      {decisions.map((step) => (
        <div data-testid="pg-phase" data-phase={step.phase ?? ""} data-decision={step.decision.decision}>
          <h3>
            {step.phase ? `${step.phase} phase: ` : ""}
            <span class={step.decision.decision === "allow" ? "ok" : "error"}>{step.decision.decision}</span>
          </h3>
          <p class="mono">
            {step.request.principal.uid.type}::"{step.request.principal.uid.id}" {step.request.action}{" "}
            {step.request.resource.uid.type}::"{step.request.resource.uid.id}" {JSON.stringify(step.request.context)}
          </p>
          <p>{step.decision.reason}</p>
          {step.deciding.map((policy) => (
            <div data-testid="pg-policy" data-id={policy.id}>
              <h4>
                {policy.id} <span class="hint">{policy.source}:{policy.line}</span>
              </h4>
              <pre>{policy.text}</pre>
            </div>
          ))}
        </div>
      ))}
      {note ? <p id="pg-note" class="hint">{note}</p> : null}
    </section>
  );
}

function text(value: unknown): string {
  if (typeof value !== "string") return "";
  if (value.length > MAX_FIELD_CHARS) {
    throw new ProblemError("bad-request", `A field is longer than ${MAX_FIELD_CHARS} characters`);
  }
  return value;
}

function parse(source: string, name: string): unknown {
  // Measured on the text before parsing, as /v1/authorize measures its body.
  if (nestingDepth(source) > MAX_DEPTH) {
    throw new ProblemError("bad-request", `"${name}" nests deeper than ${MAX_DEPTH}`);
  }
  try {
    return JSON.parse(source);
  } catch (error) {
    throw new ProblemError("bad-request", `"${name}" is not JSON: ${(error as Error).message}`);
  }
}

/** An entity as /v1/authorize takes it: `{ type, id, attrs?, parents? }` (a recorded `{ uid, attrs, parents }` too). */
function entity(source: string, name: string): Entity {
  const value = parse(source, name) as Record<string, unknown> | null;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProblemError("bad-request", `"${name}" must be an object with "type" and "id" strings`);
  }
  const { uid: recorded, type, id, attrs, parents, ...rest } = value;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) {
    throw new ProblemError(
      "bad-request",
      `Unknown member "${extra}" of "${name}": an entity has "type", "id", "attrs" and "parents"`,
    );
  }
  if (parents !== undefined && !Array.isArray(parents)) {
    throw new ProblemError("bad-request", `"${name}.parents" must be a list`);
  }
  return {
    uid: uidOf(recorded ?? { type, id }, name),
    attrs: record(attrs, `${name}.attrs`),
    parents: ((parents ?? []) as unknown[]).map((parent, i) => uidOf(parent, `${name}.parents[${i}]`)),
  };
}

function uidOf(value: unknown, name: string): EntityUid {
  const v = value as { type?: unknown; id?: unknown } | null;
  if (typeof v !== "object" || v === null || typeof v.type !== "string" || v.type === "" || typeof v.id !== "string") {
    throw new ProblemError("bad-request", `"${name}" must have a non-empty "type" and an "id" string`);
  }
  return { type: v.type, id: v.id };
}

function record(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProblemError("bad-request", `"${name}" must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
