import { type AuditEvent, auditFiles } from "../audit/mod.ts";

/** Which recorded events to read: the most recent `last`, those at or after `since`, or both. */
export interface AuditWindow {
  /** Only the last this many events (after `since`). @default {every event} */
  last?: number;
  /** Only events whose time (for a sum, its last decision's) is at or after this instant. @default {no bound} */
  since?: string | Date;
}

/** What {@linkcode readAuditEvents} found. */
export interface RecordedAudit {
  /** The events in the window, oldest file first, in write order. */
  events: AuditEvent[];
  /** The files read, oldest first (`audit.jsonl.2`, `audit.jsonl.1`, `audit.jsonl`); empty when none exists. */
  files: string[];
  /** Lines that are not an audit event (a torn last line, a line edited by hand), with where the first is. */
  unreadable: { count: number; first?: string };
}

/**
 * Reads the audit trail an `AuditLog` wrote: the JSON-lines file and its
 * rotated predecessors (`<path>.1` newest ... `<path>.n` oldest), oldest
 * first. The gateway need not be running; when it is, a rotation during the
 * read may repeat or skip the lines it moves.
 *
 * @param path The audit file, as `audit.file` in keycard.yaml (`<dataDir>/audit.jsonl` by default).
 * @param window The last N events, the events since a time, or both.
 * @returns The events in the window, the files read and the lines that were not events.
 * @throws {RangeError} When `last` is not a positive integer or `since` is not a date.
 * @throws {Deno.errors.PermissionDenied} When a file cannot be read.
 *
 * @example The last 1,000 decisions of a data dir
 * ```ts ignore
 * import { readAuditEvents } from "./read_audit_events.ts";
 * const { events, files } = await readAuditEvents("/var/lib/keycard/audit.jsonl", { last: 1000 });
 * ```
 */
export async function readAuditEvents(path: string, window: AuditWindow = {}): Promise<RecordedAudit> {
  const { last } = window;
  if (last !== undefined && !(Number.isSafeInteger(last) && last >= 1)) {
    throw new RangeError(`Cannot read the last ${JSON.stringify(last)} audit events: it must be a positive integer`);
  }
  let since: number | undefined;
  if (window.since !== undefined) {
    since = window.since instanceof Date ? window.since.getTime() : Date.parse(window.since);
    if (Number.isNaN(since)) {
      throw new RangeError(
        `Cannot read audit events since ${JSON.stringify(String(window.since))}: not an ISO 8601 time`,
      );
    }
  }
  const files = await auditFiles(path);
  const events: AuditEvent[] = [];
  const unreadable: RecordedAudit["unreadable"] = { count: 0 };
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    lines.forEach((line, index) => {
      const event = _parse(line);
      if (typeof event === "string") {
        unreadable.count++;
        unreadable.first ??= `${file}:${index + 1}: ${printable(event)}`;
        return;
      }
      if (since !== undefined && !(Date.parse(event.lastTime ?? event.time) >= since)) return;
      events.push(event);
    });
  }
  return { events: last === undefined ? events : events.slice(-last), files, unreadable };
}

/**
 * Text safe for a terminal: control characters (a hand-edited file's NUL or
 * escape sequences, quoted back by JSON.parse's message) written as `\uXXXX`,
 * and at most 300 characters.
 */
function printable(text: string): string {
  const shown = text.length > 300 ? `${text.slice(0, 300)}...` : text;
  // deno-lint-ignore no-control-regex
  return shown.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** An event, or why the line is not one. */
function _parse(line: string): AuditEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  const event = value as Partial<AuditEvent> | null;
  if (typeof event !== "object" || event === null || Array.isArray(event)) return "not a JSON object";
  for (const field of ["time", "plugin", "action", "resource"] as const) {
    if (typeof event[field] !== "string") return `"${field}" is not a string`;
  }
  if (event.decision !== "allow" && event.decision !== "deny") return `"decision" is not "allow" or "deny"`;
  if (event.count !== undefined && !(Number.isSafeInteger(event.count) && event.count >= 1)) {
    return `"count" is not a positive integer`;
  }
  return event as AuditEvent;
}
