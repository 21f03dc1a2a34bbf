/**
 * Redaction of secrets: {@linkcode Redactor} masks known secret values (a
 * plugin's secret config, the values of secret request headers) and pattern
 * matches in audit events and plugin log lines before they are stored or
 * streamed; {@linkcode checkPattern} refuses patterns that could make that
 * slow.
 *
 * @example Mask what a plugin logged
 * ```ts
 * import { Redactor } from "./mod.ts";
 * const redactor = new Redactor({ headers: ["authorization"] });
 * redactor.observe(new Headers({ authorization: "Bearer tok-123456" }));
 * redactor.mask('{"authorization":"Bearer tok-123456"}'); // '{"authorization":"[REDACTED]"}'
 * ```
 *
 * @module
 */
export { checkPattern, MAX_PATTERN_LENGTH } from "./check_pattern.ts";
export { Redactor, type RedactorOptions, type RedactorStats } from "./redactor.ts";
