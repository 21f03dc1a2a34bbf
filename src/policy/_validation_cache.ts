// Which policy texts cedar-wasm's strict validation has passed against a
// schema, remembered in a file per schema so that a restart with unchanged
// policies skips validation (3.2 s for 10,000 policies). Cedar validates each
// policy on its own against the schema, so a text that passed once passes
// again under the same schema, whatever else is in the set.
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Hex SHA-256 of a text. */
export function textHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Most texts remembered per schema: past it the oldest go (a restart then validates them again). */
const MAX_ENTRIES = 100_000;

/** The validated texts of one schema, read from and written to `<dir>/<schema hash>.json`. */
export class ValidationCache {
  readonly #file: string | undefined;
  readonly #passed: Set<string>;

  private constructor(file: string | undefined, passed: Set<string>) {
    this.#file = file;
    this.#passed = passed;
  }

  /**
   * Opens the cache of `schema` in `dir`; without a dir, or when the file is
   * missing or unreadable, it starts empty (a cache never refuses a start).
   */
  static async open(dir: string | undefined, schema: string): Promise<ValidationCache> {
    if (dir === undefined) return new ValidationCache(undefined, new Set());
    const file = join(dir, `${textHash(schema)}.json`);
    let passed = new Set<string>();
    try {
      const list = JSON.parse(await Deno.readTextFile(file));
      if (Array.isArray(list)) passed = new Set(list.filter((h): h is string => /^[0-9a-f]{64}$/.test(String(h))));
    } catch {
      // Missing or corrupt: validate everything once more.
    }
    return new ValidationCache(file, passed);
  }

  /** Whether this exact text passed strict validation against the schema. */
  has(hash: string): boolean {
    return this.#passed.has(hash);
  }

  /** Remembers texts that passed and writes the file (atomically); a failed write only costs a later validation. */
  add(hashes: Iterable<string>): void {
    let changed = false;
    for (const hash of hashes) {
      if (this.#passed.has(hash)) continue;
      this.#passed.add(hash);
      changed = true;
    }
    if (!changed || this.#file === undefined) return;
    while (this.#passed.size > MAX_ENTRIES) this.#passed.delete(this.#passed.values().next().value!);
    try {
      Deno.mkdirSync(join(this.#file, ".."), { recursive: true });
      const temp = `${this.#file}.${crypto.randomUUID()}.tmp`;
      Deno.writeTextFileSync(temp, JSON.stringify([...this.#passed]));
      Deno.renameSync(temp, this.#file);
    } catch {
      // Read-only data dir: validation runs again next time.
    }
  }
}
