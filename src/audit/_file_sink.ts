// The audit file sink: an unbounded queue of JSON lines drained by a single
// async writer, one write per batch (split only where a rotation falls).
// Nothing is dropped: a failed batch stays pending and is resumed at the exact
// byte where it stopped, so a retry neither loses nor duplicates a line.

import { dirname } from "node:path";

const NEWLINE = 0x0a;
/** After a failure, record() leaves the writer idle this long; flush() retries at once. */
const RETRY_MS = 1000;
const encoder = new TextEncoder();

interface Waiter {
  /** Resolve once this many lines are on disk. */
  target: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Lines taken off the queue; `offset` bytes of them are on disk already. */
interface Batch {
  bytes: Uint8Array;
  lines: number;
  offset: number;
}

export interface FileSinkStats {
  written: number;
  queued: number;
  rotations: number;
  lastError: string | undefined;
}

export class FileSink {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  #queue: string[] = [];
  #batch: Batch | undefined;
  #batchLinesDone = 0;
  #enqueued = 0;
  #written = 0;
  #rotations = 0;
  #lastError: string | undefined;
  #retryAt = 0;
  #waiters: Waiter[] = [];
  #writer: Promise<void> | undefined;
  #file: Deno.FsFile | undefined;
  #size = 0;
  /** Rotated files `path.1`..`path.n` known to exist; -1 until probed. */
  #rotated = -1;
  #closing = false;

  constructor(path: string, maxBytes: number, maxFiles: number) {
    this.path = path;
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
  }

  stats(): FileSinkStats {
    const pending = this.#batch ? this.#batch.lines - this.#batchLinesDone : 0;
    return {
      written: this.#written,
      queued: this.#queue.length + pending,
      rotations: this.#rotations,
      lastError: this.#lastError,
    };
  }

  /** Queues one line (ending in a newline). O(1); the writer starts on a microtask. */
  enqueue(line: string): void {
    this.#queue.push(line);
    this.#enqueued++;
    if (this.#writer === undefined && Date.now() >= this.#retryAt) this.#start();
  }

  /** Resolves once every line queued before the call is on disk; rejects if a write fails. */
  flush(): Promise<void> {
    if (this.#written >= this.#enqueued) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ target: this.#enqueued, resolve, reject });
    if (this.#writer === undefined) this.#start();
    return promise;
  }

  /** Flushes, then closes the file. Safe to call again (it retries what a failure left queued). */
  async close(): Promise<void> {
    this.#closing = true;
    try {
      await this.flush();
    } finally {
      await this.#writer;
      this.#closeFile();
    }
  }

  #start(): void {
    this.#writer = Promise.resolve().then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      while (true) {
        if (this.#batch === undefined) {
          if (this.#queue.length === 0) break;
          const lines = this.#queue;
          this.#queue = [];
          // JSON.stringify escapes newlines, so 0x0a bytes mark exactly the line ends.
          this.#batch = { bytes: encoder.encode(lines.join("")), lines: lines.length, offset: 0 };
          this.#batchLinesDone = 0;
        }
        await this.#writeBatch(this.#batch);
        this.#batch = undefined;
      }
      if (this.#closing) this.#closeFile();
    } catch (error) {
      this.#lastError = `Cannot write audit log "${this.path}": ${error instanceof Error ? error.message : error}`;
      this.#retryAt = Date.now() + RETRY_MS;
      this.#closeFile();
      this.#rotated = -1;
      const failure = new Error(this.#lastError, { cause: error });
      for (const waiter of this.#waiters.splice(0)) waiter.reject(failure);
    } finally {
      this.#writer = undefined;
    }
  }

  async #writeBatch(batch: Batch): Promise<void> {
    const { bytes } = batch;
    while (batch.offset < bytes.length) {
      const file = this.#file ?? await this.#open();
      let end = bytes.length;
      if (this.#size + (end - batch.offset) > this.maxBytes) {
        const room = this.maxBytes - this.#size;
        const lastFit = room > 0 ? bytes.lastIndexOf(NEWLINE, batch.offset + room - 1) : -1;
        const atLineStart = batch.offset === 0 || bytes[batch.offset - 1] === NEWLINE;
        if (lastFit >= batch.offset) {
          end = lastFit + 1;
        } else if (this.#size === 0 || !atLineStart) {
          // A line longer than maxBytes gets a file of its own; a half-written line is finished where it began.
          end = bytes.indexOf(NEWLINE, batch.offset) + 1;
        } else {
          await this.#rotate();
          continue;
        }
      }
      const count = await file.write(bytes.subarray(batch.offset, end));
      const done = _countLines(bytes, batch.offset, batch.offset + count);
      this.#size += count;
      batch.offset += count;
      this.#batchLinesDone += done;
      this.#written += done;
      this.#settle();
    }
  }

  #settle(): void {
    while (this.#waiters[0] !== undefined && this.#waiters[0].target <= this.#written) this.#waiters.shift()!.resolve();
  }

  async #open(): Promise<Deno.FsFile> {
    await Deno.mkdir(dirname(this.path), { recursive: true });
    if (this.#rotated < 0) this.#rotated = await this.#probe();
    const file = await Deno.open(this.path, { append: true, create: true, mode: 0o600 });
    try {
      this.#size = (await file.stat()).size;
    } catch (error) {
      file.close();
      throw error;
    }
    this.#file = file;
    return file;
  }

  async #probe(): Promise<number> {
    let count = 0;
    while (count < this.maxFiles && await _exists(`${this.path}.${count + 1}`)) count++;
    return count;
  }

  /** `path` -> `path.1` -> `path.2` ...; the file that would become `path.{maxFiles + 1}` is deleted. */
  async #rotate(): Promise<void> {
    this.#closeFile();
    if (this.maxFiles === 0) {
      await _ignoreNotFound(Deno.remove(this.path));
    } else {
      for (let index = this.#rotated; index >= 1; index--) {
        const from = `${this.path}.${index}`;
        await _ignoreNotFound(
          index >= this.maxFiles ? Deno.remove(from) : Deno.rename(from, `${this.path}.${index + 1}`),
        );
      }
      await _ignoreNotFound(Deno.rename(this.path, `${this.path}.1`));
      this.#rotated = Math.min(this.#rotated + 1, this.maxFiles);
    }
    this.#rotations++;
  }

  #closeFile(): void {
    const file = this.#file;
    this.#file = undefined;
    try {
      file?.close();
    } catch {
      // Already closed: nothing left to release.
    }
  }
}

function _countLines(bytes: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let index = start; index < end; index++) if (bytes[index] === NEWLINE) count++;
  return count;
}

/**
 * The files of an audit log, oldest first: `path.N` ... `path.1` (the
 * rotations that exist, counting up from 1 until one is missing), then `path`.
 * @param path The audit file the sink writes.
 * @returns The paths that exist.
 */
export async function auditFiles(path: string): Promise<string[]> {
  const files: string[] = [];
  for (let index = 1;; index++) {
    if (!await _exists(`${path}.${index}`)) break;
    files.unshift(`${path}.${index}`);
  }
  if (await _exists(path)) files.push(path);
  return files;
}

async function _exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function _ignoreNotFound(operation: Promise<void>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
