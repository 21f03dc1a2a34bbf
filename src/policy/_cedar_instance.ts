// cedar-wasm instances that can be replaced. The package's builds keep their
// instance in module state (`nodejs` and `esm` are singletons; `web`'s
// `initSync` refuses a second call), so a fresh instance is a fresh copy of
// the `web` build's JS glue: a dynamic import of its file URL with a query
// (its own module record, no read permission needed: module loading may read
// the npm cache) given the module compiled once (a source-phase import).
// Measured: compiling 4.3 MB ~50-80 ms once; each fresh instance ~5-8 ms.
// A dead instance's glue stays in the module map (module records are never
// freed): one instance's memory per crash, which the bounds make rare.
import type * as CedarWeb from "@cedar-policy/cedar-wasm/web";

/** One cedar-wasm instance: the `web` build's functions. */
export type Cedar = typeof CedarWeb;

const GLUE = import.meta.resolve("@cedar-policy/cedar-wasm/web");
let compiled: Promise<WebAssembly.Module> | undefined;
let copies = 0;

/** A new, independent cedar-wasm instance. */
export async function freshCedar(): Promise<Cedar> {
  // @ts-ignore: TypeScript does not know source-phase imports (Deno runs them).
  compiled ??= import.source(new URL("cedar_wasm_bg.wasm", GLUE).href) as Promise<WebAssembly.Module>;
  const module = await compiled;
  const glue = await import(`${GLUE}?instance=${++copies}`) as Cedar;
  glue.initSync({ module });
  return glue;
}

/**
 * The process's cedar-wasm: the live instance, a generation that grows with
 * every replacement (preparsed sets belong to one generation), and, when it
 * died, why. Any throw out of cedar-wasm kills it: a stack overflow or a trap
 * leaves its memory inconsistent, and every later call fails or, worse, answers
 * from corrupt state.
 */
export class CedarRuntime {
  #live: Cedar;
  #generation = 1;
  #dead: string | undefined;
  #restarts = 0;
  #recovering: Promise<void> | undefined;
  #lastAttempt = 0;

  private constructor(live: Cedar) {
    this.#live = live;
  }

  static #shared: Promise<CedarRuntime> | undefined;

  /** The runtime every engine of this process shares. */
  static shared(): Promise<CedarRuntime> {
    return CedarRuntime.#shared ??= freshCedar().then((cedar) => new CedarRuntime(cedar));
  }

  /** Bumped on every new instance; preparsed sets of older generations are gone. */
  get generation(): number {
    return this.#generation;
  }

  /** Why the instance is dead, or undefined while it is live. */
  get dead(): string | undefined {
    return this.#dead;
  }

  /** Instances replaced so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * The live instance, raw: calls on it bypass the crash detection. For tests
   * that need to kill it the way hostile input would.
   */
  get unguarded(): Cedar {
    return this.#live;
  }

  /**
   * Runs `fn` on the live instance. A throw marks the instance dead and
   * starts a replacement; the error is rethrown.
   */
  call<T>(fn: (cedar: Cedar) => T): T {
    if (this.#dead !== undefined) throw new Error(`cedar-wasm is unavailable: ${this.#dead}`);
    try {
      return fn(this.#live);
    } catch (error) {
      this.kill(error);
      throw error;
    }
  }

  /** Marks the instance dead (first reason wins) and starts a replacement. */
  kill(reason: unknown): void {
    this.#dead ??= describe(reason);
    this.recover();
  }

  /**
   * Replaces a dead instance; resolves once a live one is in place. At most
   * one replacement runs at a time, and a failed one is retried no sooner than
   * a second later (on the next call that asks).
   */
  recover(): Promise<void> {
    if (this.#dead === undefined) return Promise.resolve();
    if (this.#recovering) return this.#recovering;
    if (performance.now() - this.#lastAttempt < 1000 && this.#lastAttempt > 0) return Promise.resolve();
    this.#lastAttempt = performance.now();
    return this.#recovering = freshCedar().then(
      (cedar) => {
        this.#live = cedar;
        this.#generation++;
        this.#restarts++;
        this.#dead = undefined;
        this.#lastAttempt = 0;
      },
      (error) => {
        this.#dead = `${this.#dead}; a fresh instance failed too: ${describe(error)}`;
      },
    ).finally(() => this.#recovering = undefined);
  }
}

/** `RangeError: Maximum call stack size exceeded`. */
export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
