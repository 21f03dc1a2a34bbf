/** @jsxImportSource hono/jsx */
// Audit: recent decisions with filters, the same live over server-sent events, and allow vs deny over time per plugin.
import type { Context, Hono } from "hono";
import { streamAudit } from "../http/audit_stream.ts";
import type { AuditEvent } from "../audit/mod.ts";
import { ProblemError } from "../http/problem.ts";
import { allow, can, type ConsoleDeps, type ConsoleEnv, sessionOf } from "./_context.ts";
import { page } from "./_layout.tsx";
import { notPermitted } from "./_plugins_pages.tsx";

/** The filters of the audit page and its stream. */
interface Filters {
  plugin?: string;
  action?: string;
  decision?: "allow" | "deny";
  caller?: string;
  since?: string;
  until?: string;
}

/** Buckets of the chart, and how wide each is. */
const BUCKETS = 30;
const BUCKET_MS = 60_000;
/** Events read to draw the chart and list the page. */
const CHART_EVENTS = 2000;
const LIST_EVENTS = 100;
/** Live streams open at once, per session and in all: each holds a subscription and a connection. */
export const MAX_STREAMS_PER_SESSION = 4;
export const MAX_STREAMS = 64;

/** Registers the audit page and its stream on the console app. */
export function auditPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;

  app.get("/audit", async (c) => {
    if (!can(deps, c, "audit.read")) return notPermitted(c, "audit", "audit.read");
    const filters = readFilters(c);
    const { plugin, action, decision, since } = filters;
    const query = {
      limit: CHART_EVENTS,
      ...(plugin ? { plugin } : {}),
      ...(action ? { action } : {}),
      ...(decision ? { decision } : {}),
      ...(since ? { since } : {}),
    };
    const all = services.auditQuery ? await services.auditQuery(query) : services.audit.query(query);
    const events = all.filter((event) => matches(event, filters));
    const streamUrl = `/console/audit/stream${queryString({ plugin, action, decision, caller: filters.caller })}`;
    return page(
      c,
      { title: "Audit", section: "audit" },
      <>
        <h1>Audit</h1>
        <form id="audit-filters" method="get" action="/console/audit" class="filters">
          <label>
            Plugin <input id="filter-plugin" name="plugin" value={plugin ?? ""} />
          </label>
          <label>
            Action <input id="filter-action" name="action" value={action ?? ""} />
          </label>
          <label>
            Decision
            <select id="filter-decision" name="decision">
              <option value="" selected={!decision}>any</option>
              <option value="allow" selected={decision === "allow"}>allow</option>
              <option value="deny" selected={decision === "deny"}>deny</option>
            </select>
          </label>
          <label>
            Caller <input id="filter-caller" name="caller" value={filters.caller ?? ""} />
          </label>
          <button id="filter-apply" type="submit">Filter</button>
          <a href="/console/audit">Clear</a>
        </form>
        <h2>Allow vs deny per plugin and action, last {BUCKETS} minutes</h2>
        <Chart events={events} now={Date.now()} filters={filters} />
        <h2>
          Events <span id="audit-status" class="status">connecting…</span>
        </h2>
        <ul id="audit-live" class="events" data-stream={streamUrl}>
          {events.slice(0, LIST_EVENTS).map((event) => (
            <EventItem key={`${event.callId}-${event.time}`} event={event} />
          ))}
        </ul>
      </>,
    );
  });

  const open = new Map<string, number>();
  let total = 0;

  app.get("/audit/stream", (c) => {
    allow(deps, c, "audit.read");
    const filters = readFilters(c);
    const id = sessionOf(c).id;
    const mine = open.get(id) ?? 0;
    if (mine >= MAX_STREAMS_PER_SESSION || total >= MAX_STREAMS) {
      throw new ProblemError(
        "saturated",
        `Too many live audit streams open (at most ${MAX_STREAMS_PER_SESSION} per session, ${MAX_STREAMS} in all)`,
      );
    }
    open.set(id, mine + 1);
    total++;
    const release = () => {
      total--;
      const left = (open.get(id) ?? 1) - 1;
      if (left > 0) open.set(id, left);
      else open.delete(id);
    };
    return streamAudit(c, services.audit, { matches: (event) => matches(event, filters), onEnd: release });
  });
}

function EventItem(props: { event: AuditEvent }) {
  const { event } = props;
  return (
    <li
      data-testid="audit-event"
      data-plugin={event.plugin}
      data-action={event.action}
      data-decision={event.decision}
      data-call-id={event.callId}
      class={`event ${event.decision}`}
    >
      <span class="time">{event.time}</span> <span class="decision">{event.decision}</span>{" "}
      <span class="plugin">{event.plugin}</span> <span class="action">{event.action}</span>{" "}
      <span class="resource mono">{event.resource}</span>
      {event.caller ? <span class="caller">by {event.caller}</span> : null}
      {(event.count ?? 1) > 1 ? <span class="count">×{event.count}</span> : null}
      <span class="reason">{event.decision === "deny" ? event.reason ?? "" : event.policies.join(", ")}</span>
    </li>
  );
}

/** Allow (up) and deny (down) counts per plugin and minute, each bar a link to its events. */
function Chart(props: { events: AuditEvent[]; now: number; filters: Filters }) {
  const end = Math.ceil(props.now / BUCKET_MS) * BUCKET_MS;
  const start = end - BUCKETS * BUCKET_MS;
  const rows = new Map<string, { allow: number[]; deny: number[] }>();
  for (const event of props.events) {
    const at = Date.parse(event.time);
    if (!(at >= start && at < end)) continue;
    const bucket = Math.floor((at - start) / BUCKET_MS);
    const key = JSON.stringify([event.plugin, event.action]);
    let row = rows.get(key);
    if (!row) rows.set(key, row = { allow: Array(BUCKETS).fill(0), deny: Array(BUCKETS).fill(0) });
    row[event.decision][bucket]! += event.count ?? 1;
  }
  if (rows.size === 0) return <p id="audit-chart-empty" class="hint">No decisions in the last {BUCKETS} minutes.</p>;
  const rowHeight = 60;
  const width = 600;
  const left = 110;
  const barWidth = (width - left) / BUCKETS;
  const keys = [...rows.keys()].sort().slice(0, 20);
  const height = keys.length * rowHeight;
  return (
    <svg
      id="audit-chart"
      class="chart"
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label="Allow and deny per plugin and action"
    >
      {keys.map((key, index) => {
        const row = rows.get(key)!;
        const [plugin, action] = JSON.parse(key) as [string, string];
        const top = index * rowHeight;
        const mid = top + rowHeight / 2;
        const most = Math.max(1, ...row.allow, ...row.deny);
        const scale = (rowHeight / 2 - 4) / most;
        return (
          <g data-testid="chart-row" data-plugin={plugin} data-action={action}>
            <text x="0" y={mid - 4} class="label">{plugin.slice(0, 16)}</text>
            <text x="0" y={mid + 12} class="label action">{action.slice(0, 16)}</text>
            <line x1={left} x2={width} y1={mid} y2={mid} class="axis" />
            {(["allow", "deny"] as const).flatMap((decision) =>
              row[decision].map((count, bucket) => {
                if (count === 0) return null;
                const h = Math.max(1, count * scale);
                const since = new Date(start + bucket * BUCKET_MS).toISOString();
                const until = new Date(start + (bucket + 1) * BUCKET_MS).toISOString();
                const href = `/console/audit${
                  queryString({ ...props.filters, plugin, action, decision, since, until })
                }`;
                return (
                  <a href={href} data-testid="chart-bar" data-decision={decision} data-count={String(count)}>
                    <rect
                      x={left + bucket * barWidth + 1}
                      y={decision === "allow" ? mid - h : mid}
                      width={barWidth - 2}
                      height={h}
                      class={decision}
                    >
                      <title>{`${plugin} ${action} ${decision} ×${count} from ${since}`}</title>
                    </rect>
                  </a>
                );
              })
            )}
          </g>
        );
      })}
    </svg>
  );
}

function matches(event: AuditEvent, filters: Filters): boolean {
  if (filters.plugin && event.plugin !== filters.plugin) return false;
  if (filters.action && event.action !== filters.action) return false;
  if (filters.decision && event.decision !== filters.decision) return false;
  if (filters.caller && event.caller !== filters.caller) return false;
  if (filters.until && !(Date.parse(event.time) < Date.parse(filters.until))) return false;
  return true;
}

function readFilters(c: Context<ConsoleEnv>): Filters {
  const filters: Filters = {};
  for (const key of ["plugin", "action", "caller", "since", "until"] as const) {
    const value = c.req.query(key)?.trim();
    if (!value) continue;
    if (value.length > 256) throw new ProblemError("bad-request", `Filter "${key}" is longer than 256 characters`);
    if ((key === "since" || key === "until") && Number.isNaN(Date.parse(value))) {
      throw new ProblemError("bad-request", `Filter "${key}" must be an ISO 8601 time, got ${JSON.stringify(value)}`);
    }
    filters[key] = value;
  }
  const decision = c.req.query("decision");
  if (decision) {
    if (decision !== "allow" && decision !== "deny") {
      throw new ProblemError(
        "bad-request",
        `Filter "decision" must be "allow" or "deny", got ${JSON.stringify(decision)}`,
      );
    }
    filters.decision = decision;
  }
  return filters;
}

function queryString(values: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : "";
}
