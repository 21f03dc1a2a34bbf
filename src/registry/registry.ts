import {
  canonicalJson,
  checkName,
  checkVersion,
  copyRecord,
  decodeBase64,
  KeyedLock,
  quote,
  sha256Hex,
} from "./_checks.ts";
import { RegistryError } from "./errors.ts";
import type { Manifest } from "./parse_manifest.ts";
import type { PluginStore, PluginSummary, StoredPlugin } from "./plugin_store.ts";

/** Options of {@linkcode Registry}. */
export interface RegistryOptions {
  /** Refuse plugins without a signature that one of `trustedKeys` verifies. @default {false} */
  requireSignature?: boolean;
  /**
   * Ed25519 public keys whose signatures are accepted: base64 of the raw
   * 32-byte keys. When any are given, every signature offered is checked,
   * required or not. @default {[]}
   */
  trustedKeys?: string[];
}

/** Options of {@linkcode Registry.install}. */
export interface InstallOptions {
  /**
   * The module's expected SHA-256, 64 hex digits, e.g. published beside it.
   * The manifest's own `sha256` field, when present, must match as well.
   */
  sha256?: string;
  /**
   * A base64 Ed25519 signature of the module's raw bytes; when absent, the
   * manifest's `signature` field is used.
   */
  signature?: string;
  /** Replace an installed version whose bytes or manifest differ. @default {false} */
  overwrite?: boolean;
  /**
   * The conformance report the module passed, stored with it (see {@linkcode StoredPlugin.report}). An identical
   * re-install keeps the record, and the report, already stored.
   */
  report?: Record<string, unknown>;
}

const SHA256 = /^[0-9A-Fa-f]{64}$/;
const ED25519_KEY_BYTES = 32;

/**
 * The installed plugins: the install rules (integrity, signatures, immutable
 * versions) over a {@linkcode PluginStore} that keeps the bytes.
 *
 * An install computes the module's SHA-256 and refuses it when an expected
 * hash differs; with `requireSignature`, refuses it unless one of
 * `trustedKeys` verifies its Ed25519 signature; and refuses a version that is
 * already installed with other bytes or another manifest unless `overwrite`
 * is set. Re-installing identical content changes nothing. Installs and
 * removals of one plugin are serialized within this object.
 *
 * @example Install and read a plugin
 * ```ts
 * import { MemoryStore, Registry } from "./mod.ts";
 * const registry = new Registry(new MemoryStore());
 * const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]); // an empty module
 * const manifest = { name: "hello", version: "1.0.0", exports: [], capabilities: [], grants: [], limits: {}, config: {} };
 * const installed = await registry.install(wasm, manifest);
 * installed.sha256; // "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476"
 * (await registry.list())[0]?.latest; // "1.0.0"
 * ```
 */
export class Registry {
  readonly #store: PluginStore;
  readonly #requireSignature: boolean;
  readonly #trustedKeys: Uint8Array<ArrayBuffer>[];
  #keys: Promise<CryptoKey[]> | undefined;
  readonly #lock = new KeyedLock();

  /**
   * Builds a registry over a store.
   *
   * @param store Where plugins are kept.
   * @param options Whether signatures are required, and the keys trusted to make them.
   * @throws {TypeError} When `trustedKeys` is not a list of strings.
   * @throws {RangeError} When a trusted key is not base64 of 32 bytes, or `requireSignature` is on with no trusted key.
   *
   * @example Require signed plugins
   * ```ts
   * import { MemoryStore, Registry } from "./mod.ts";
   * const key = btoa(String.fromCharCode(...new Uint8Array(32))); // a real public key in practice
   * new Registry(new MemoryStore(), { requireSignature: true, trustedKeys: [key] });
   * ```
   */
  constructor(store: PluginStore, options: RegistryOptions = {}) {
    const { requireSignature = false, trustedKeys = [] } = options;
    if (!Array.isArray(trustedKeys)) throw new TypeError("Trusted keys must be a list of base64 strings");
    this.#trustedKeys = trustedKeys.map((key, index) => {
      if (typeof key !== "string") throw new TypeError(`Trusted key ${index} ${quote(key)} is not a string`);
      const bytes = decodeBase64(key);
      if (bytes?.length !== ED25519_KEY_BYTES) {
        throw new RangeError(
          `Trusted key ${index} ${quote(key)} is invalid: a trusted key is base64 of a raw 32-byte Ed25519 public key`,
        );
      }
      return bytes;
    });
    if (requireSignature && this.#trustedKeys.length === 0) {
      throw new RangeError("Cannot require signatures with no trusted key: requireSignature needs trustedKeys");
    }
    this.#store = store;
    this.#requireSignature = requireSignature;
  }

  /**
   * Installs one version of a plugin, after checking its hash and signature.
   *
   * The expected hashes are `options.sha256` and the manifest's `sha256`
   * (each, when given). The signature is `options.signature`, else the
   * manifest's `signature`; when trusted keys are configured, an offered
   * signature must verify even if signatures are not required. Without
   * trusted keys, an offered signature is stored unverified.
   *
   * @param wasm The `.wasm` module's bytes.
   * @param manifest The plugin's manifest; its `name` and `version` say which plugin this is.
   * @param options The expected hash, the signature, and whether to replace a different install of the version.
   * @returns The stored record: the new one, or the one already installed when the content is identical.
   * @throws {RegistryError} `sha256_mismatch`, `signature_required`, `signature_invalid` or `version_exists`.
   * @throws {TypeError} When an argument has the wrong type or an expected hash is not 64 hex digits.
   * @throws {RangeError} When the name or version breaks the store's naming rule.
   *
   * @example Refuse tampered bytes
   * ```ts
   * import { MemoryStore, Registry, RegistryError } from "./mod.ts";
   * const registry = new Registry(new MemoryStore());
   * const manifest = { name: "a", version: "1.0.0", exports: [], capabilities: [], grants: [], limits: {}, config: {} };
   * try {
   *   await registry.install(new Uint8Array([1, 2, 3]), manifest, { sha256: "0".repeat(64) });
   * } catch (error) {
   *   if (error instanceof RegistryError) error.code; // "sha256_mismatch"
   * }
   * ```
   */
  async install(wasm: Uint8Array, manifest: Manifest, options: InstallOptions = {}): Promise<StoredPlugin> {
    if (typeof manifest !== "object" || manifest === null) throw new TypeError("The manifest must be an object");
    const name = checkName(manifest.name);
    const version = checkVersion(manifest.version, name);
    const id = quote(`${name}@${version}`);
    if (!(wasm instanceof Uint8Array)) throw new TypeError(`The wasm of plugin ${id} is not a Uint8Array`);
    const fail = (code: RegistryError["code"], message: string): never => {
      throw new RegistryError(message, { code, plugin: name, version });
    };

    const sha256 = await sha256Hex(wasm);
    for (const [source, expected] of [["given", options.sha256], ["manifest's", manifest.sha256]] as const) {
      if (expected === undefined) continue;
      if (typeof expected !== "string" || !SHA256.test(expected)) {
        throw new TypeError(`The ${source} sha256 ${quote(expected)} of plugin ${id} is not 64 hex digits`);
      }
      if (expected.toLowerCase() !== sha256) {
        fail(
          "sha256_mismatch",
          `Cannot install plugin ${id}: its wasm hashes to ${quote(sha256)}, not the ${source} sha256 ${
            quote(expected)
          }`,
        );
      }
    }

    const signature = options.signature ?? manifest.signature;
    if (signature !== undefined && typeof signature !== "string") {
      throw new TypeError(`The signature of plugin ${id} is not a string`);
    }
    if (signature === undefined && this.#requireSignature) {
      fail("signature_required", `Cannot install plugin ${id} without a signature: requireSignature is on`);
    }
    if (signature !== undefined && this.#trustedKeys.length > 0 && !(await this.#verify(wasm, signature))) {
      fail(
        "signature_invalid",
        `Cannot install plugin ${id}: its signature ${quote(signature)} is not an Ed25519 signature of its wasm by ${
          this.#trustedKeys.length === 1 ? "the trusted key" : `any of the ${this.#trustedKeys.length} trusted keys`
        }`,
      );
    }

    return await this.#lock.run(name, async () => {
      const existing = await this.#store.get(name, version);
      if (existing && !options.overwrite) {
        if (existing.sha256 === sha256 && canonicalJson(existing.manifest) === canonicalJson(manifest)) return existing;
        const what = existing.sha256 === sha256 ? "another manifest" : `other bytes (sha256 ${quote(existing.sha256)})`;
        fail(
          "version_exists",
          `Cannot install plugin ${id}: it is installed with ${what}; set overwrite to replace it`,
        );
      }
      const record: StoredPlugin = {
        manifest: structuredClone(manifest),
        wasm: wasm.slice(),
        sha256,
        installedAt: new Date().toISOString(),
        ...(signature === undefined ? {} : { signature }),
        ...(options.report === undefined ? {} : { report: structuredClone(options.report) }),
      };
      // Another replica may have stored this version since the check above: a shared store refuses then.
      await this.#store.put(record, { overwrite: options.overwrite ?? false });
      return copyRecord(record);
    });
  }

  /**
   * Reads one installed version, or the latest by semantic-version precedence.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, the highest installed one (prereleases rank below releases).
   * @returns The record, or undefined when there is none.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the store's naming rule.
   *
   * @example Read a missing plugin
   * ```ts
   * import { MemoryStore, Registry } from "./mod.ts";
   * await new Registry(new MemoryStore()).get("nothing"); // undefined
   * ```
   */
  get(name: string, version?: string): Promise<StoredPlugin | undefined> {
    return this.#store.get(name, version);
  }

  /**
   * Lists the installed plugins.
   *
   * @returns One summary per name, sorted by name, each with its versions sorted lowest first and its latest.
   * @throws {Error} Whatever the store throws when it cannot be read.
   *
   * @example List an empty registry
   * ```ts
   * import { MemoryStore, Registry } from "./mod.ts";
   * await new Registry(new MemoryStore()).list(); // []
   * ```
   */
  list(): Promise<PluginSummary[]> {
    return this.#store.list();
  }

  /**
   * Uninstalls one version, or every version of a plugin.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, every version.
   * @returns The versions removed, lowest first; empty when there was nothing to remove.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the store's naming rule.
   *
   * @example Remove a plugin that is not installed
   * ```ts
   * import { MemoryStore, Registry } from "./mod.ts";
   * await new Registry(new MemoryStore()).remove("nothing"); // []
   * ```
   */
  async remove(name: string, version?: string): Promise<string[]> {
    checkName(name);
    if (version !== undefined) checkVersion(version, name);
    return await this.#lock.run(name, () => this.#store.remove(name, version));
  }

  /** Whether any trusted key verifies the signature of the bytes. */
  async #verify(wasm: Uint8Array, signature: string): Promise<boolean> {
    const bytes = decodeBase64(signature);
    if (bytes === undefined) return false;
    this.#keys ??= Promise.all(
      this.#trustedKeys.map((key) => crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"])),
    ).catch((error) => {
      this.#keys = undefined;
      throw error;
    });
    const data = wasm as Uint8Array<ArrayBuffer>;
    for (const key of await this.#keys) {
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, bytes, data)) return true;
    }
    return false;
  }
}
