// Bounds on Cedar text and on requests, checked by scans that never recurse,
// before cedar-wasm sees anything. cedar-wasm recurses on nesting: past a depth
// it overflows its stack and the instance is dead (shared/NOTES.md). Measured
// on cedar-wasm 4.13.0 (a bisection, one fresh instance per try, for the smallest
// depth that broke policySetTextToParts, policyToJson, strict validate or
// preparse + decide, or left the instance answering a known set wrongly):
//   brackets ( [ {: 120-132 | && and ||: 2,592 | + - * and comparisons: 364 |
//   if/then/else: 368 | member chains (.a, .f(), [..]): 292 | ! and -: >131,072 |
//   records or sets in a request's context or attributes: 124-126.
// Each bound counts its construct along the whole nesting path (not per
// bracket), and the bounds add up to about half of those depths: every policy
// within all of them at once still leaves cedar-wasm half its stack.

/** The bounds of policy text and of requests. */
export interface PolicyLimits {
  /** Largest source, in UTF-8 bytes. */
  maxSourceBytes: number;
  /** Largest policy set (every source), in UTF-8 bytes. */
  maxSetBytes: number;
  /** Most policies in a set. */
  maxPolicies: number;
  /** Deepest nesting of `(`, `[` and `{`. */
  maxNesting: number;
  /** Most `&&` and `||` along one nesting path. */
  maxLogicalChain: number;
  /** Most arithmetic and comparison operators (`+ - * == != < <= > >= in has like is`) along one nesting path. */
  maxOperatorChain: number;
  /** Most `!` and unary `-` along one nesting path. */
  maxUnaryChain: number;
  /** Deepest nesting of `if`/`then`/`else`. */
  maxIfNesting: number;
  /** Most member accesses (`.attr`, `.method()`, `["attr"]`) along one nesting path. */
  maxMemberChain: number;
  /** Longest string literal (a `like` pattern included), in characters. */
  maxStringLength: number;
  /** Deepest nesting of records and sets in a request's entities and context. */
  maxRequestDepth: number;
  /** Most values (records, sets, strings, numbers, parents) in one request. */
  maxRequestValues: number;
}

/** The bounds in force: far past any real policy or request, about half of what cedar-wasm survives. */
export const POLICY_LIMITS: Readonly<PolicyLimits> = Object.freeze({
  maxSourceBytes: 512 * 1024,
  maxSetBytes: 16 * 1024 * 1024,
  maxPolicies: 10_000,
  maxNesting: 32,
  maxLogicalChain: 256,
  maxOperatorChain: 16,
  maxUnaryChain: 8,
  maxIfNesting: 16,
  maxMemberChain: 16,
  maxStringLength: 16 * 1024,
  maxRequestDepth: 32,
  maxRequestValues: 10_000,
});

/** Where a bound was passed: 1-based line and column, and what was passed. */
export interface BoundViolation {
  line: number;
  column: number;
  /** The bound's name, e.g. `maxNesting`. */
  bound: keyof PolicyLimits;
  message: string;
}

/** What a scan of one source found. */
export interface TextScan {
  /** UTF-8 bytes of the text. */
  bytes: number;
  /** Policies in the text (top-level `;`). */
  policies: number;
  /** Offset of the `;` ending each policy, for positions of set-wide bounds. */
  ends: number[];
  /** The first bound passed, if any. */
  violation?: BoundViolation;
}

// Precedence levels of Cedar's binary operators, loosest first.
const OR = 0, AND = 1, REL = 2, ADD = 3, MUL = 4;
const RELATIONS = new Set(["in", "has", "like", "is"]);
// Words after which a `-` is binary (they end an operand).
const NOT_OPERANDS = new Set(["if", "then", "else", "in", "has", "like", "is", "when", "unless"]);

/** Counts of one bracket level since its last separator; the path totals are their sums. */
interface Frame {
  binary: [number, number, number, number, number];
  unary: number;
  member: number;
  ifs: number;
}

function frame(): Frame {
  return { binary: [0, 0, 0, 0, 0], unary: 0, member: 0, ifs: 0 };
}

/**
 * Scans Cedar text once, without recursion: size, policy count, string
 * literals, and the nesting of every construct along each path, stopping at
 * the first bound passed. Schema text is scanned the same way (its brackets).
 *
 * @param text Cedar policy (or schema) text.
 * @param limits The bounds.
 * @returns Size, policy count and the first bound passed.
 */
export function scanCedarText(text: string, limits: Readonly<PolicyLimits> = POLICY_LIMITS): TextScan {
  const bytes = utf8Length(text);
  const ends: number[] = [];
  let line = 1;
  let lineStart = 0;
  const at = (offset: number) => ({ line, column: offset - lineStart + 1 });
  const scan = (violation?: BoundViolation): TextScan => ({
    bytes,
    policies: ends.length,
    ends,
    ...(violation ? { violation } : {}),
  });
  if (bytes > limits.maxSourceBytes) {
    const cut = offsetOfByte(text, limits.maxSourceBytes);
    for (let i = 0; i < cut; i++) {
      if (text.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    return scan({
      ...at(cut),
      bound: "maxSourceBytes",
      message: `The source is ${bytes} bytes; the limit is ${limits.maxSourceBytes} bytes (maxSourceBytes)`,
    });
  }
  const stack: Frame[] = [frame()];
  const total = { logical: 0, operator: 0, unary: 0, member: 0, ifs: 0 };
  let top = stack[0]!;
  let operand = false;

  const resetRuns = (f: Frame) => {
    total.unary -= f.unary;
    total.member -= f.member;
    f.unary = f.member = 0;
  };
  const resetBinary = (f: Frame, from: number) => {
    for (let level = from; level <= MUL; level++) {
      const count = f.binary[level]!;
      if (level <= AND) total.logical -= count;
      else total.operator -= count;
      f.binary[level] = 0;
    }
  };
  const resetAll = (f: Frame) => {
    resetRuns(f);
    resetBinary(f, OR);
    total.ifs -= f.ifs;
    f.ifs = 0;
  };
  const over = (offset: number): BoundViolation | undefined => {
    const checks: [keyof PolicyLimits, number, string][] = [
      ["maxLogicalChain", total.logical, "&& and || operators"],
      ["maxOperatorChain", total.operator, "arithmetic and comparison operators"],
      ["maxUnaryChain", total.unary, "unary ! and - operators"],
      ["maxIfNesting", total.ifs, "nested if/then/else"],
      ["maxMemberChain", total.member, "member accesses"],
    ];
    for (const [bound, count, what] of checks) {
      if (count > limits[bound]) {
        return {
          ...at(offset),
          bound,
          message: `The policy chains ${count} ${what} in one expression; the limit is ${limits[bound]} (${bound})`,
        };
      }
    }
    return undefined;
  };
  const binary = (level: number, offset: number) => {
    resetBinary(top, level + 1);
    resetRuns(top);
    top.binary[level]!++;
    if (level <= AND) total.logical++;
    else total.operator++;
    operand = false;
    return over(offset);
  };

  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    let violation: BoundViolation | undefined;
    if (ch === "\n") {
      line++;
      lineStart = i + 1;
      continue;
    }
    if (ch === " " || ch === "\t" || ch === "\r") continue;
    if (ch === "/" && text[i + 1] === "/") {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
      continue;
    }
    if (ch === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\") i++;
        else if (text[i] === "\n") {
          line++;
          lineStart = i + 1;
        }
      }
      if (i - start - 1 > limits.maxStringLength) {
        return scan({
          ...at(start),
          bound: "maxStringLength",
          message: `A string literal is ${i - start - 1} characters long; the limit is ${limits.maxStringLength} ` +
            `(maxStringLength)`,
        });
      }
      operand = true;
      continue;
    }
    if (isWordStart(ch)) {
      let end = i + 1;
      while (end < text.length && isWordPart(text[end]!)) end++;
      const word = text.slice(i, end);
      if (RELATIONS.has(word)) violation = binary(REL, i);
      else if (word === "if") {
        resetRuns(top);
        resetBinary(top, OR);
        top.ifs++;
        total.ifs++;
        operand = false;
        violation = over(i);
      } else if (word === "then" || word === "else" || word === "when" || word === "unless") {
        resetRuns(top);
        resetBinary(top, OR);
        operand = false;
      } else operand = !NOT_OPERANDS.has(word);
      i = end - 1;
    } else if (ch >= "0" && ch <= "9") {
      while (i + 1 < text.length && text[i + 1]! >= "0" && text[i + 1]! <= "9") i++;
      operand = true;
    } else if (ch === "(" || ch === "[" || ch === "{") {
      if (ch === "[" && operand) {
        top.member++;
        total.member++;
        violation = over(i);
      }
      if (!violation && stack.length > limits.maxNesting) {
        const deepest = stack.length - 1 + deepestBrackets(text, i);
        return scan({
          ...at(i),
          bound: "maxNesting",
          message: `The policy nests ${deepest} levels of brackets; the limit is ${limits.maxNesting} (maxNesting)`,
        });
      }
      stack.push(top = frame());
      operand = false;
    } else if (ch === ")" || ch === "]" || ch === "}") {
      // Unbalanced text is left to Cedar's parser to report.
      if (stack.length > 1) {
        resetAll(top);
        stack.pop();
        top = stack[stack.length - 1]!;
      }
      operand = true;
    } else if (ch === "," || ch === ";" || (ch === ":" && text[i + 1] !== ":")) {
      resetAll(top);
      if (ch === ";" && stack.length === 1) ends.push(i);
      operand = false;
    } else if (ch === ":") {
      i++; // `::` of a path
      operand = false;
    } else if (ch === ".") {
      top.member++;
      total.member++;
      violation = over(i);
      operand = false;
    } else if (ch === "|" && text[i + 1] === "|") violation = binary(OR, i++);
    else if (ch === "&" && text[i + 1] === "&") violation = binary(AND, i++);
    else if ((ch === "=" || ch === "!") && text[i + 1] === "=") violation = binary(REL, i++);
    else if (ch === "<" || ch === ">") {
      if (text[i + 1] === "=") i++;
      violation = binary(REL, i);
    } else if (ch === "+" || ch === "*" || (ch === "-" && operand)) violation = binary(ch === "*" ? MUL : ADD, i);
    else if (ch === "!" || ch === "-") {
      top.unary++;
      total.unary++;
      violation = over(i);
    } else operand = false;
    if (violation) return scan(violation);
  }
  return scan();
}

/**
 * Checks a request's entities and context, without recursion: nesting depth
 * and number of values. cedar-wasm recurses on records and sets too.
 *
 * @param roots The principal and resource entities and the context.
 * @param limits The bounds.
 * @returns What is wrong, or undefined.
 */
export function checkRequestValues(
  roots: readonly unknown[],
  limits: Readonly<PolicyLimits> = POLICY_LIMITS,
): string | undefined {
  // Two parallel stacks and no per-value allocation: this runs on every uncached decision.
  const stack: unknown[] = [...roots];
  const depths: number[] = roots.map(() => 0);
  let values = 0;
  while (stack.length > 0) {
    const value = stack.pop();
    const depth = depths.pop()!;
    if (++values > limits.maxRequestValues) {
      return `The request holds more than ${limits.maxRequestValues} values (maxRequestValues)`;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth >= limits.maxRequestDepth) {
      return `The request nests records and sets more than ${limits.maxRequestDepth} deep (maxRequestDepth)`;
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        stack.push(value[i]);
        depths.push(depth + 1);
      }
    } else {
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        stack.push((value as Record<string, unknown>)[key]);
        depths.push(depth + 1);
      }
    }
  }
  return undefined;
}

/** The UTF-8 length of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes++;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The offset of the character holding UTF-8 byte `byte`. */
function offsetOfByte(text: string, byte: number): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    bytes += utf8Length(text[i]!);
    if (bytes > byte) return i;
  }
  return text.length;
}

/** How much deeper than at `from` brackets nest from there on, outside strings and comments. */
function deepestBrackets(text: string, from: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = from; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (ch === "/" && text[i + 1] === "/") {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    } else if (ch === "(" || ch === "[" || ch === "{") deepest = Math.max(deepest, ++depth);
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
  }
  return deepest;
}

/** Line and column (1-based) of an offset. */
export function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function isWordStart(ch: string): boolean {
  return (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z") || ch === "_";
}

function isWordPart(ch: string): boolean {
  return isWordStart(ch) || (ch >= "0" && ch <= "9");
}
