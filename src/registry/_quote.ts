// Quoting of values in this folder's messages; not re-exported.
const MAX_QUOTED = 80;

/** Quotes a value for a message, cut short so that a huge value cannot flood a log. */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  return JSON.stringify(text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text);
}
