/** The grant kinds a plugin manifest may list, and what each takes. */
export interface GrantKinds {
  /** Read files in `dir` (inside the data root) and below it. */
  "fs.read": { dir: string };
  /** Create and overwrite files in `dir` (inside the data root) and below it. */
  "fs.write": { dir: string };
  /** List directories in `dir` (inside the data root) and below it. */
  "fs.list": { dir: string };
  /** Delete files in `dir` (inside the data root) and below it. */
  "fs.delete": { dir: string };
  /**
   * Send HTTP requests to `host` (`*.example.com` for subdomains). `port`,
   * `scheme` and `methods` narrow it when given; an IP address needs `port`
   * or `scheme`.
   */
  "http.request": { host: string; port?: number; scheme?: "http" | "https"; methods?: string[] };
  /** Use the plugin's key-value `namespace` for `actions` (all three when omitted). */
  kv: { namespace: string; actions?: ("get" | "set" | "delete")[] };
  /** Read keys in the plugin's key-value `namespace`. */
  "kv.get": { namespace: string };
  /** Write keys in the plugin's key-value `namespace`. */
  "kv.set": { namespace: string };
  /** Delete keys in the plugin's key-value `namespace`. */
  "kv.delete": { namespace: string };
  /** Read the plugin's configuration variables listed in `names`. */
  "env.get": { names: string[] };
  /** Write to the plugin log. Takes no options. */
  "log.write": Record<string, never>;
  /** Read the wall clock. Takes no options. */
  "clock.now": Record<string, never>;
  /** Draw random bytes. Takes no options. */
  "random.get": Record<string, never>;
}

/** One grant as it stands in `plugin.yaml`: `{ "fs.read": { dir: "./data/certs" } }`. */
export type Grant = { [K in keyof GrantKinds]: { [P in K]: GrantKinds[K] } }[keyof GrantKinds];

/** A grant under construction; {@linkcode compileGrants} takes it as it is. */
export class GrantBuilder<K extends keyof GrantKinds = keyof GrantKinds> {
  /** The grant kind, such as `fs.write` or `kv`. */
  readonly kind: K;
  /** The options set so far; {@linkcode compileGrants} checks that the required ones are there. */
  readonly options: Partial<GrantKinds[K]>;

  /**
   * Starts a builder; {@linkcode grant} is the usual way in.
   *
   * @param kind The grant kind.
   * @param options Its options so far.
   */
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
