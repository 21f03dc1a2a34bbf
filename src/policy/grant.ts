/** The grant kinds a plugin manifest may list, and what each takes. */
export interface GrantKinds {
  "fs.read": { dir: string };
  "fs.write": { dir: string };
  "fs.list": { dir: string };
  "fs.delete": { dir: string };
  "http.request": { host: string; port?: number; scheme?: "http" | "https"; methods?: string[] };
  kv: { namespace: string; actions?: ("get" | "set" | "delete")[] };
  "kv.get": { namespace: string };
  "kv.set": { namespace: string };
  "kv.delete": { namespace: string };
  "env.get": { names: string[] };
  "log.write": Record<string, never>;
  "clock.now": Record<string, never>;
  "random.get": Record<string, never>;
}

/** One grant as it stands in `plugin.yaml`: `{ "fs.read": { dir: "./data/certs" } }`. */
export type Grant = { [K in keyof GrantKinds]: { [P in K]: GrantKinds[K] } }[keyof GrantKinds];

/** A grant under construction; {@linkcode compileGrants} takes it as it is. */
export class GrantBuilder<K extends keyof GrantKinds = keyof GrantKinds> {
  readonly kind: K;
  readonly options: Partial<GrantKinds[K]>;

  /** @param kind The grant kind. @param options Its options so far. */
  constructor(kind: K, options: Partial<GrantKinds[K]> = {}) {
    this.kind = kind;
    this.options = options;
  }

  #with(extra: Record<string, unknown>): GrantBuilder<K> {
    return new GrantBuilder(this.kind, { ...this.options, ...extra } as Partial<GrantKinds[K]>);
  }

  /** The directory (inside the data root) an `fs.*` grant covers, and everything below it. */
  under(dir: string): GrantBuilder<K> {
    return this.#with({ dir });
  }

  /** The host an `http.request` grant allows (`*.example.com` for subdomains). */
  host(host: string, port?: number): GrantBuilder<K> {
    return this.#with(port === undefined ? { host } : { host, port });
  }

  /** The HTTP methods an `http.request` grant allows. */
  methods(...methods: string[]): GrantBuilder<K> {
    return this.#with({ methods });
  }

  /** The namespace a `kv` grant covers. */
  namespace(namespace: string): GrantBuilder<K> {
    return this.#with({ namespace });
  }

  /** The configuration variables an `env.get` grant exposes. */
  names(...names: string[]): GrantBuilder<K> {
    return this.#with({ names });
  }

  /** The grant as a manifest entry. */
  toGrant(): Grant {
    return { [this.kind]: { ...this.options } } as unknown as Grant;
  }
}

/**
 * Starts a grant in code, the same as a manifest entry.
 *
 * @param kind The grant kind: an action such as `fs.write`, or `kv`.
 * @returns A builder; pass it (or `.toGrant()`) to `compileGrants`.
 *
 * @example Grant a plugin one directory
 * ```ts
 * import { grant } from "./grant.ts";
 * grant("fs.write").under("./data/deploy").toGrant(); // { "fs.write": { dir: "./data/deploy" } }
 * ```
 */
export function grant<K extends keyof GrantKinds>(kind: K): GrantBuilder<K> {
  return new GrantBuilder(kind);
}
