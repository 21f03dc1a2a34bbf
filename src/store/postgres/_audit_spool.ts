// The local spool of PostgresAuditWriter: audit records the database could not take, as JSON lines on disk, until a
// drain inserts them. Appends go to `<path>`; a drain first renames it to `<path>.draining` (atomic), so appends made
// while it inserts land in a fresh `<path>` and removing `.draining` afterwards cannot take them along.
import { dirname } from "node:path";

/** One audit event as spooled and as inserted: its unique id, the replica that recorded it, its time, the event. */
export interface SpoolRecord {
  uid: string;
  replica: string;
  at: string;
  event: Record<string, unknown>;
}

const encoder = new TextEncoder();

/** Appends, hands out for draining, and counts the records of one spool file. Not safe across processes. */
export class AuditSpool {
  readonly path: string;
  readonly #draining: string;
  /** Lines in `path` (records appended since the last take). */
  #pending = 0;
  /** Lines in `path.draining`. */
  #taken = 0;
  /** The last append may have ended mid-line (a crash, a failed write): the next one starts on a new line. */
  #torn = false;
  /** Serializes appends and takes. */
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(path: string) {
    this.path = path;
    this.#draining = `${path}.draining`;
  }

  /** Opens the spool at `path`, counting what an earlier run left there. */
  static async open(path: string): Promise<AuditSpool> {
    const spool = new AuditSpool(path);
    const pending = await scan(path);
    spool.#pending = pending.lines;
    spool.#torn = pending.torn;
    spool.#taken = (await scan(spool.#draining)).lines;
    return spool;
  }

  /** Records in the spool now (both files), torn lines included until a drain skips them. */
  get count(): number {
    return this.#pending + this.#taken;
  }

  /** Appends `lines` (JSON records without newlines), fsync'd before it resolves. */
  append(lines: readonly string[]): Promise<void> {
    return this.#locked(async () => {
      let created = false;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(this.path, { append: true, mode: 0o600 });
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        await Deno.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
        file = await Deno.open(this.path, { append: true, create: true, mode: 0o600 });
        created = true;
      }
      try {
        const text = (this.#torn ? "\n" : "") + lines.join("\n") + "\n";
        this.#torn = true;
        await writeAll(file, encoder.encode(text));
        await file.sync();
        this.#torn = false;
        this.#pending += lines.length;
      } finally {
        file.close();
      }
      // The file's name must survive a power loss as well as its bytes.
      if (created) await syncDir(dirname(this.path));
    });
  }

  /**
   * Makes the records to drain ready in `path.draining` (renaming `path` when no earlier drain left one).
   * @returns Whether there is anything to drain.
   */
  take(): Promise<boolean> {
    return this.#locked(async () => {
      if (await exists(this.#draining)) return true;
      if (this.#pending === 0 && !(await exists(this.path))) return false;
      try {
        await Deno.rename(this.path, this.#draining);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw error;
      }
      this.#taken = this.#pending;
      this.#pending = 0;
      // A torn tail went with the renamed file: the fresh file starts clean.
      this.#torn = false;
      return true;
    });
  }

  /** The lines of `path.draining`, read as a stream (a spool can outgrow memory); empty lines left out. */
  async *lines(): AsyncGenerator<string> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#draining, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    let rest = "";
    const reader = file.readable.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        const parts = rest.split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) if (line !== "") yield line;
      }
      if (rest !== "") yield rest;
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  /** Removes `path.draining` once every record in it is in the database. */
  async finish(): Promise<void> {
    await Deno.remove(this.#draining).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    this.#taken = 0;
  }

  #locked<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#lock.then(task);
    this.#lock = result.catch(() => {});
    return result;
  }
}

/**
 * Parses one spooled line.
 * @returns The record, or undefined for a torn or foreign line.
 */
export function parseSpoolLine(line: string): SpoolRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { uid, replica, at, event } = value as Partial<SpoolRecord>;
  if (typeof uid !== "string" || uid === "" || typeof replica !== "string" || typeof at !== "string") return undefined;
  if (typeof event !== "object" || event === null || Array.isArray(event)) return undefined;
  return { uid, replica, at, event };
}

/** Non-empty lines of a file and whether it ends mid-line; zero for a missing file. */
async function scan(path: string): Promise<{ lines: number; torn: boolean }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { lines: 0, torn: false };
    throw error;
  }
  let lines = 0;
  let last = 0x0a;
  let previous = 0x0a;
  // Reading `readable` to its end (or to an error) closes the file.
  for await (const chunk of file.readable) {
    for (const byte of chunk) {
      if (byte === 0x0a && previous !== 0x0a) lines++;
      previous = byte;
    }
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  const torn = last !== 0x0a;
  return { lines: lines + (torn ? 1 : 0), torn };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Best effort: not every platform lets a directory be opened and synced. */
async function syncDir(path: string): Promise<void> {
  try {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // The file's bytes are synced; only its name may be lost on a power cut, as on platforms without this.
  }
}
