/** Longest redaction pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 256;

const QUANTIFIER = /^(?:[*+?]|\{(\d+)(,(\d*))?\})/;

/**
 * Compiles a redaction pattern (a JavaScript regular expression, without
 * flags) after refusing what could make masking slow or endless, since
 * patterns run on every audit event and log line: more than
 * {@linkcode MAX_PATTERN_LENGTH} characters; a back-reference; a group
 * repeated by `*`, `+` or `{n,m}` that holds a quantifier or a `|` (a nested
 * quantifier, as in `(a+)+` or `(a|ab)*`, backtracks exponentially); a pattern
 * that matches the empty string; and, in a pattern V8's linear-time engine
 * cannot run (a lookahead or lookbehind, or a count over 16 as in `{24}`),
 * more than one quantifier that varies (`[0-9]+[0-9]+(?=x)` backtracks
 * polynomially with no fallback; `sk_live_[A-Za-z0-9]{24}` is fine).
 *
 * @param source The pattern, e.g. `sk_live_[A-Za-z0-9]{24}`.
 * @returns The compiled pattern, with the `g` flag.
 * @throws {SyntaxError} When the pattern is not a valid regular expression or breaks a rule above; the message
 * quotes it and names the rule.
 *
 * @example Accept one pattern, refuse another
 * ```ts
 * import { checkPattern } from "./check_pattern.ts";
 * checkPattern("sk_live_[A-Za-z0-9]{24}").flags; // "g"
 * try {
 *   checkPattern("(a+)+$");
 * } catch (error) {
 *   (error as SyntaxError).message; // 'Cannot use redaction pattern "(a+)+$": ... (a nested quantifier) ...'
 * }
 * ```
 */
export function checkPattern(source: string): RegExp {
  const refuse = (why: string): never => {
    const shown = source.length > 80 ? `${source.slice(0, 77)}...` : source;
    throw new SyntaxError(`Cannot use redaction pattern ${JSON.stringify(shown)}: ${why}`);
  };
  if (typeof source !== "string" || source === "") refuse("it must be a non-empty string");
  if (source.length > MAX_PATTERN_LENGTH) {
    refuse(`it has ${source.length} characters, more than the limit of ${MAX_PATTERN_LENGTH}`);
  }
  let pattern: RegExp;
  try {
    pattern = new RegExp(source, "g");
  } catch (error) {
    return refuse(`it is not a valid regular expression (${(error as Error).message})`);
  }
  const problem = _backtrackingProblem(source);
  if (problem !== undefined) refuse(problem);
  if (new RegExp(`^(?:${source})$`).test("")) refuse("it matches the empty string, which would mask nothing forever");
  return pattern;
}

/** Largest count V8's linear-time engine runs (its `kMaxReplicationFactor`); past it there is no fallback. */
const LINEAR_MAX_COUNT = 16;

/** Why `source` (a valid pattern) may backtrack catastrophically, or undefined. */
function _backtrackingProblem(source: string): string | undefined {
  // One frame per open group: whether it holds a quantifier or an alternation, and how many varying quantifiers.
  const frames = [{ risky: false, varying: 0 }];
  let i = 0;
  // Whether V8 can go on in its linear-time engine when a match backtracks too long.
  let linear = true;
  const quantifierAt = (at: number) => {
    const match = QUANTIFIER.exec(source.slice(at));
    if (match === null) return undefined;
    // `?` and `{n}` repeat at most once or a fixed number of times: no choice of how to split the text.
    const repeats = match[0] !== "?" && !(match[1] !== undefined && match[2] === undefined);
    const lazy = source[at + match[0].length] === "?" ? 1 : 0;
    const min = match[1] === undefined ? 0 : Number(match[1]);
    const max = match[3] === undefined || match[3] === "" ? undefined : Number(match[3]);
    if (min > LINEAR_MAX_COUNT || (max ?? 0) > LINEAR_MAX_COUNT) linear = false;
    // `{n}` (and `{n,n}`) is the only quantifier without a choice of how much to take.
    const fixed = match[1] !== undefined && (match[2] === undefined || max === min) ? min : undefined;
    return { length: match[0].length + lazy, repeats, fixed };
  };
  while (i < source.length) {
    const char = source[i]!;
    const frame = frames[frames.length - 1]!;
    if (char === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "it uses a back-reference, which can backtrack without bound";
      i += 2;
    } else if (char === "[") {
      i++;
      while (i < source.length && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      i++;
    } else if (char === "(") {
      frames.push({ risky: false, varying: 0 });
      // Skip a group's prefix (`?:`, `?=`, `?!`, `?<=`, `?<!`, `?<name>`) so that its `?` is not read as a quantifier.
      const prefix = /^\((?:\?(?:[:=!]|<[=!]|<[A-Za-z_$][\w$]*>))?/.exec(source.slice(i))!;
      if (/^\(\?<?[=!]/.test(prefix[0])) linear = false;
      i += prefix[0].length;
      continue;
    } else if (char === ")") {
      const inner = frames.length > 1 ? frames.pop()! : frame;
      const parent = frames[frames.length - 1]!;
      const quantifier = quantifierAt(i + 1);
      if (quantifier?.repeats && inner.risky) {
        return 'a repeated group holds a quantifier or a "|" (a nested quantifier), which can backtrack ' +
          'exponentially; repeat a character class instead, e.g. "[A-Za-z0-9_-]+"';
      }
      parent.risky ||= inner.risky || quantifier !== undefined;
      parent.varying += quantifier === undefined
        ? inner.varying
        : quantifier.fixed !== undefined
        ? inner.varying * quantifier.fixed
        : inner.varying + 1;
      i += 1 + (quantifier?.length ?? 0);
      continue;
    } else if (char === "|") {
      frame.risky = true;
      i++;
    } else {
      i++;
    }
    // An atom just ended: a quantifier after it makes the enclosing group risky.
    const quantifier = quantifierAt(i);
    if (quantifier !== undefined) {
      frame.risky = true;
      if (quantifier.fixed === undefined) frame.varying++;
      i += quantifier.length;
    }
  }
  if (!linear && frames[0]!.varying > 1) {
    return "it has a lookahead, a lookbehind or a count over 16, which V8's linear-time engine cannot run, and more " +
      "than one quantifier that varies, so a match could backtrack polynomially with no fallback; keep one varying " +
      'quantifier, e.g. "sk_live_[A-Za-z0-9]{24}"';
  }
  return undefined;
}
