import type { RedactConfig, RouteConfig } from "../config/mod.ts";
import type { AuditEvent } from "../audit/mod.ts";
import { Redactor } from "../redact/mod.ts";

/** What the gateway masks, wired into the audit log, the host functions and the routes. */
export interface GatewayRedaction {
  /** The audit log's `redact` option; empty when nothing can ever be masked, so that recording skips it. */
  readonly audit: { redact?: (event: AuditEvent) => AuditEvent };
  /** The host functions' `redactLog` option; empty when nothing can ever be masked. */
  readonly host: { redactLog?: (message: string) => string };
  /** Masks a line of the gateway's own log that may quote a plugin's resource. */
  line(text: string): string;
  /** Learns the secret header values of a routed request before any hook or handler sees it. */
  observe(request: Request): void;
  /**
   * Takes the secret config values of the plugins and route hooks in force (`redact.configKeys`), after each
   * install, removal and route change; logs once each value too short to mask.
   */
  track(
    configs: Iterable<{ name: string; config: Readonly<Record<string, string>> }>,
    routes: readonly RouteConfig[],
  ): void;
}

/**
 * Builds the gateway's redaction from `redact:` in keycard.yaml.
 *
 * @param config The `redact` section, validated.
 * @param log Where a note about a config value too short to mask goes (it names the plugin and key, never the value).
 * @returns The options to pass on and the hooks to call.
 */
export function createRedaction(config: RedactConfig, log: (line: string) => void): GatewayRedaction {
  const { mask, configKeys, headers, patterns, minLength } = config;
  if (configKeys.length === 0 && headers.length === 0 && patterns.length === 0) {
    return { audit: {}, host: {}, line: (text) => text, observe: () => {}, track: () => {} };
  }
  const redactor = new Redactor({ mask, patterns, headers, minLength });
  const keys = new Set(configKeys);
  const noted = new Set<string>();
  return {
    audit: { redact: (event) => redactor.maskValue(event) },
    host: { redactLog: (message) => redactor.mask(message) },
    line: (text) => redactor.mask(text),
    observe: (request) => {
      if (redactor.observing) redactor.observe(request.headers);
    },
    track(configs, routes) {
      if (keys.size === 0) return;
      const found: { owner: string; key: string; value: string }[] = [];
      for (const { name, config } of configs) {
        for (const [key, value] of Object.entries(config)) {
          if (keys.has(key)) found.push({ owner: `plugin "${name}"`, key, value });
        }
      }
      for (const route of routes) {
        for (const hook of route.hooks) {
          for (const [key, value] of Object.entries(hook.config)) {
            if (keys.has(key)) found.push({ owner: `hook "${hook.plugin}" of route "${route.name}"`, key, value });
          }
        }
      }
      redactor.setSecrets("config", found.map((f) => f.value));
      for (const { owner, key, value } of found) {
        const note = `${owner} config "${key}"`;
        if (value.length >= minLength || value === "" || noted.has(note)) continue;
        noted.add(note);
        log(`keycard: redact: ${note} has fewer than ${minLength} characters (redact.minLength): it is not masked`);
      }
    },
  };
}
