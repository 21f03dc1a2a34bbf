import { fromBase64 } from "./_body.ts";
import { applyHeaders } from "./_headers.ts";
import type { HookOutput } from "./route_runner.ts";

/** A {@linkcode HookOutput} checked, with its body decoded. */
export interface Envelope extends Omit<HookOutput, "body"> {
  body?: Uint8Array<ArrayBuffer>;
}

/** A plugin's output that is not a well-formed keycard envelope. */
export class EnvelopeError extends Error {
  /** @param message What is wrong with the output. */
  constructor(message: string) {
    super(message);
    this.name = "EnvelopeError";
  }
}

const decoder = new TextDecoder();

/**
 * Parses keycard's JSON envelope (what hooks and enveloped handlers answer); empty output is `{}`.
 * @throws {EnvelopeError} When the output is not a JSON object of that shape.
 */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  let output: unknown;
  try {
    output = bytes.length === 0 ? {} : JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new EnvelopeError(`output is not JSON: ${(error as Error).message}`);
  }
  if (typeof output !== "object" || output === null || Array.isArray(output)) {
    throw new EnvelopeError("output must be a JSON object");
  }
  const o = output as HookOutput;
  if (o.status === 0) delete o.status; // 0 means "no override"
  if (o.status !== undefined && (!Number.isInteger(o.status) || o.status < 200 || o.status > 599)) {
    throw new EnvelopeError(`output status ${JSON.stringify(o.status)} is not a final HTTP status (200-599)`);
  }
  if (o.body !== undefined && typeof o.body !== "string") throw new EnvelopeError("output body must be base64");
  const headers = o.headers as unknown;
  if (headers !== undefined) {
    const isMap = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
    const { set, remove } = (isMap(headers) ? headers : {}) as { set?: unknown; remove?: unknown };
    if (!isMap(headers) || (set !== undefined && !isMap(set)) || (remove !== undefined && !Array.isArray(remove))) {
      throw new EnvelopeError('output headers must be a map of "set" (a map) and "remove" (a list)');
    }
    try {
      applyHeaders(new Headers(), o.headers); // the names and values a Response would refuse
    } catch (error) {
      throw new EnvelopeError(`output headers are not valid: ${(error as Error).message}`);
    }
  }
  const { body, ...rest } = o;
  if (body === undefined) return rest;
  try {
    return { ...rest, body: fromBase64(body) };
  } catch {
    throw new EnvelopeError(`output body is not base64: ${JSON.stringify(body.slice(0, 40))}`);
  }
}
