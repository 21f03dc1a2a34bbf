// Which policy texts passed the text bounds and cedar-wasm's strict validation
// against a schema, remembered in a file per schema and bounds so that a
// restart with unchanged policies skips both (validation took 3.2 s for 10,000
// policies, the bounds scan 75 ms). Cedar validates each policy on its own
// against the schema, so a text that passed once passes again under the same
// schema, whatever else is in the set. Each text's policy count is kept too:
// the bounds of a whole set need it before the text is parsed.
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Hex SHA-256 of a text. */
export function textHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Most texts remembered per schema: past it the oldest go (a restart then validates them again). */
const MAX_ENTRIES = 100_000;

/** The texts of one schema and bounds, read from and written to `<dir>/<hash of both>.json`. */
export class ValidationCache {
  readonly #file: string | undefined;
  /** Text hash to its policy count. */
  readonly #passed: Map<string, number>;

  private constructor(file: string | undefined, passed: Map<string, number>) {
    this.#file = file;
    this.#passed = passed;
  }

  /**
   * Opens the cache of `schema` under `limits` in `dir`; without a dir, or
   * when the file is missing, unreadable or of another format, it starts
   * empty (a cache never refuses a start).
   */
  static async open(dir: string | undefined, schema: string, limits: object): Promise<ValidationCache> {
    if (dir === undefined) return new ValidationCache(undefined, new Map());
    const file = join(dir, `${textHash(`${schema}\u0000${JSON.stringify(limits)}`)}.json`);
    const passed = new Map<string, number>();
    try {
      const saved = JSON.parse(await Deno.readTextFile(file));
      if (saved?.format === FORMAT && typeof saved.texts === "object" && saved.texts !== null) {
        for (const [hash, count] of Object.entries(saved.texts)) {
          if (/^[0-9a-f]{64}$/.test(hash) && Number.isSafeInteger(count) && (count as number) >= 0) {
            passed.set(hash, count as number);
          }
        }
      }
    } catch {
      // Missing or corrupt: scan and validate everything once more.
    }
    return new ValidationCache(file, passed);
  }

  /** Whether this exact text passed the bounds and strict validation against the schema. */
  has(hash: string): boolean {
    return this.#passed.has(hash);
  }

  /** The policy count of a text that passed, else undefined. */
  policies(hash: string): number | undefined {
    return this.#passed.get(hash);
  }

  /** Remembers texts that passed, with their policy counts, and writes the file (atomically); a failed write only costs a later validation. */
  add(texts: Iterable<readonly [hash: string, policies: number]>): void {
    let changed = false;
    for (const [hash, count] of texts) {
      if (this.#passed.get(hash) === count) continue;
      this.#passed.delete(hash);
      this.#passed.set(hash, count);
      changed = true;
    }
    if (!changed || this.#file === undefined) return;
    for (const hash of this.#passed.keys()) {
      if (this.#passed.size <= MAX_ENTRIES) break;
      this.#passed.delete(hash);
    }
    try {
      Deno.mkdirSync(join(this.#file, ".."), { recursive: true });
      const temp = `${this.#file}.${crypto.randomUUID()}.tmp`;
      Deno.writeTextFileSync(temp, JSON.stringify({ format: FORMAT, texts: Object.fromEntries(this.#passed) }));
      Deno.renameSync(temp, this.#file);
    } catch {
      // Read-only data dir: validation runs again next time.
    }
  }
}

/** The file's format: 2 keeps policy counts (1 was a list of hashes, and is read as empty). */
const FORMAT = 2;
