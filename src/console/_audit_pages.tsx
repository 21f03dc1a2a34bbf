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

/** The chart's time ranges: how far back it reaches, in ms; each is drawn as {@linkcode BUCKETS} bars per row. */
const RANGES: Record<string, number> = { "15m": 15 * 60_000, "1h": 3_600_000, "6h": 6 * 3_600_000, "24h": 86_400_000 };
const DEFAULT_RANGE = "1h";
const BUCKETS = 30;
/** Events read to draw the chart and list the page (the newest; the chart says when it was cut short). */
const CHART_EVENTS = 10_000;
const LIST_EVENTS = 100;

/** Registers the audit page and its stream on the console app. */
export function auditPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const { services } = deps;

  app.get("/audit", async (c) => {
    if (!can(deps, c, "audit.read")) return notPermitted(c, "audit", "audit.read");
    const filters = readFilters(c);
    const { plugin, action, decision } = filters;
    const range = c.req.query("range") ?? DEFAULT_RANGE;
    // Own keys only: "toString" and the other Object.prototype names are no range.
    const rangeMs = Object.hasOwn(RANGES, range) ? RANGES[range] : undefined;
    if (rangeMs === undefined) {
      throw new ProblemError(
        "bad-request",
        `Chart range must be one of ${Object.keys(RANGES).join(", ")}, got ${JSON.stringify(range.slice(0, 64))}`,
      );
    }
    const now = Date.now();
    // The chart's range bounds what is read, unless the filters ask for earlier events.
    const since = filters.since ?? new Date(now - rangeMs).toISOString();
    const query = {
      limit: CHART_EVENTS,
      ...(plugin ? { plugin } : {}),
      ...(action ? { action } : {}),
      ...(decision ? { decision } : {}),
      since,
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
          <label>
            Chart
            <select id="filter-range" name="range">
              {Object.keys(RANGES).map((key) => (
                <option key={key} value={key} selected={key === range}>last {key}</option>
              ))}
            </select>
          </label>
          {filters.since ? <input type="hidden" name="since" value={filters.since} /> : null}
          {filters.until ? <input type="hidden" name="until" value={filters.until} /> : null}
          <button id="filter-apply" type="submit">Filter</button>
          <a href="/console/audit">Clear</a>
        </form>
        {filters.since || filters.until
          ? (
            <p id="audit-window" class="notice">
              Events {filters.since ? `from ${filters.since}` : ""} {filters.until ? `before ${filters.until}` : ""}
            </p>
          )
          : null}
        <h2>Allow vs deny over time, per plugin and action (last {range})</h2>
        <Chart
          events={events}
          now={now}
          rangeMs={rangeMs}
          range={range}
          filters={filters}
          truncated={all.length >= CHART_EVENTS}
        />
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

  app.get("/audit/stream", (c) => {
    allow(deps, c, "audit.read");
    const filters = readFilters(c);
    const id = sessionOf(c).id;
    const { signal, release } = deps.streams.open(id);
    return streamAudit(c, services.audit, {
      matches: (event) => matches(event, filters),
      onEnd: release,
      // Signing out here ends it at once; a session ended elsewhere (another replica, its expiry) within 15 s.
      signal,
      stillAllowed: async () => (await deps.sessions.get(id)) !== undefined,
    });
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
      <span class="resource mono">{event.resource}</span>{" "}
      {event.caller ? <span class="caller">by {event.caller}</span> : null}{" "}
      {(event.count ?? 1) > 1 ? <span class="count">×{event.count}</span> : null}{" "}
      <span class="reason">{event.decision === "deny" ? event.reason ?? "" : event.policies.join(", ")}</span>
    </li>
  );
}

/**
 * Allow (up, green) and deny (down, red) counts over time: one row per plugin and action, {@linkcode BUCKETS} bars
 * across the range, a time axis under them, each bar a link to exactly its events.
 */
function Chart(
  props: { events: AuditEvent[]; now: number; rangeMs: number; range: string; filters: Filters; truncated: boolean },
) {
  const bucketMs = props.rangeMs / BUCKETS;
  const end = Math.ceil(props.now / bucketMs) * bucketMs;
  const start = end - BUCKETS * bucketMs;
  const rows = new Map<string, { allow: number[]; deny: number[]; total: { allow: number; deny: number } }>();
  for (const event of props.events) {
    const at = Date.parse(event.time);
    if (!(at >= start && at < end)) continue;
    const bucket = Math.floor((at - start) / bucketMs);
    const key = JSON.stringify([event.plugin, event.action]);
    let row = rows.get(key);
    if (!row) {
      row = { allow: Array(BUCKETS).fill(0), deny: Array(BUCKETS).fill(0), total: { allow: 0, deny: 0 } };
      rows.set(key, row);
    }
    row[event.decision][bucket]! += event.count ?? 1;
    row.total[event.decision] += event.count ?? 1;
  }
  if (rows.size === 0) return <p id="audit-chart-empty" class="hint">No decisions in the last {props.range}.</p>;
  const rowHeight = 60;
  const width = 640;
  const left = 120;
  const right = 70;
  const axis = 22;
  const barWidth = (width - left - right) / BUCKETS;
  const keys = [...rows.keys()].sort().slice(0, MAX_CHART_ROWS);
  const height = keys.length * rowHeight + axis;
  const ticks = [0, BUCKETS / 3, (2 * BUCKETS) / 3, BUCKETS];
  const label = (ms: number) => new Date(ms).toISOString().slice(props.rangeMs > 6 * 3_600_000 ? 5 : 11, 16);
  return (
    <figure class="chart">
      <svg
        id="audit-chart"
        class="chart"
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Allow and deny per plugin and action, last ${props.range}`}
        data-range={props.range}
        data-bucket-ms={String(bucketMs)}
      >
        {keys.map((key, index) => {
          const row = rows.get(key)!;
          const [plugin, action] = JSON.parse(key) as [string, string];
          const top = index * rowHeight;
          const mid = top + rowHeight / 2;
          const most = Math.max(1, ...row.allow, ...row.deny);
          const scale = (rowHeight / 2 - 4) / most;
          return (
            <g
              data-testid="chart-row"
              data-plugin={plugin}
              data-action={action}
              data-allow={String(row.total.allow)}
              data-deny={String(row.total.deny)}
            >
              <text x="0" y={mid - 4} class="label">{plugin.slice(0, 18)}</text>
              <text x="0" y={mid + 12} class="label action">{action.slice(0, 18)}</text>
              <line x1={left} x2={width - right} y1={mid} y2={mid} class="axis" />
              <text x={width - right + 6} y={mid - 4} class="label total allow">✓ {row.total.allow}</text>
              <text x={width - right + 6} y={mid + 12} class="label total deny">✗ {row.total.deny}</text>
              {(["allow", "deny"] as const).flatMap((decision) =>
                row[decision].map((count, bucket) => {
                  if (count === 0) return null;
                  const h = Math.max(1, count * scale);
                  const since = new Date(start + bucket * bucketMs).toISOString();
                  const until = new Date(start + (bucket + 1) * bucketMs).toISOString();
                  const href = `/console/audit${
                    queryString({ ...props.filters, plugin, action, decision, since, until, range: props.range })
                  }`;
                  return (
                    <a
                      href={href}
                      data-testid="chart-bar"
                      data-decision={decision}
                      data-count={String(count)}
                      data-since={since}
                    >
                      <rect
                        x={left + bucket * barWidth + 1}
                        y={decision === "allow" ? mid - h : mid}
                        width={barWidth - 2}
                        height={h}
                        class={decision}
                      >
                        <title>{`${plugin} ${action}: ${decision} ×${count}, ${since} to ${until}`}</title>
                      </rect>
                    </a>
                  );
                })
              )}
            </g>
          );
        })}
        {ticks.map((tick) => (
          <text
            x={left + tick * barWidth}
            y={height - 6}
            class="label tick"
            text-anchor={tick === 0 ? "start" : tick === BUCKETS ? "end" : "middle"}
          >
            {label(start + tick * bucketMs)}
          </text>
        ))}
      </svg>
      <figcaption class="hint">
        <span class="legend allow">■ allow</span> <span class="legend deny">■ deny</span> per{" "}
        {formatSpan(bucketMs)}, times in UTC; a bar opens its events.
        {rows.size > MAX_CHART_ROWS ? ` The first ${MAX_CHART_ROWS} of ${rows.size} rows are drawn.` : ""}
        {props.truncated ? ` Drawn from the newest ${CHART_EVENTS.toLocaleString("en-US")} events only.` : ""}
      </figcaption>
    </figure>
  );
}

/** Most rows (plugin and action pairs) the chart draws. */
const MAX_CHART_ROWS = 20;

function formatSpan(ms: number): string {
  return ms < 60_000 ? `${ms / 1000} s` : ms < 3_600_000 ? `${ms / 60_000} min` : `${ms / 3_600_000} h`;
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
