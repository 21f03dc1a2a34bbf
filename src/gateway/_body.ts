/** Reads up to `limit` bytes of a stream; returns them and a stream of the whole body (prefix + rest). */
export async function peek(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ head: Uint8Array; truncated: boolean; whole: ReadableStream<Uint8Array> | null }> {
  if (!body) return { head: new Uint8Array(), truncated: false, whole: null };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  while (size <= limit) {
    const next = await reader.read();
    if (next.done) {
      done = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.length;
  }
  const all = concat(chunks, size);
  const whole = new ReadableStream<Uint8Array>({
    start(controller) {
      if (all.length) controller.enqueue(all);
      if (done) controller.close();
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { head: all.subarray(0, Math.min(limit, all.length)), truncated: !done || size > limit, whole };
}

/**
 * Reads a whole body of at most `limit` bytes.
 * @returns The bytes, or undefined when the body is longer (the rest is not read).
 */
export async function readBody(
  body: ReadableStream<Uint8Array> | Uint8Array | null,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  if (body === null) return new Uint8Array();
  if (body instanceof Uint8Array) return body.length > limit ? undefined : concat([body], body.length);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    size += next.value.length;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(next.value);
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Base64 of bytes, for bodies inside keycard's JSON envelope. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** The bytes of base64 text; throws a DOMException on text that is not base64. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Whether a response of this status carries no body (RFC 9110 15.3.5, 15.3.6, 15.4.5). */
export function bodiless(status: number): boolean {
  return status === 204 || status === 205 || status === 304;
}
