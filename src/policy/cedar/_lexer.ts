// Cedar's tokens, as the LALRPOP lexer of cedar-policy-core (4.x) cuts them:
// the longest match wins, and a fixed token beats an identifier of the same
// length (so keywords are identifiers the parser compares by text). Whitespace
// is Unicode White_Space (Rust's `\s`: U+0085 is, U+FEFF is not), comments run
// from `//` to the end of the line, and a string is `"(\\.|[^"\\])*"` where `.`
// is anything but a line feed: a backslash before a line feed is an error.
import { CedarSyntaxError } from "./syntax_error.ts";

/** End of input. */
export const EOF: number = 0;
/** `[_a-zA-Z][_a-zA-Z0-9]*`, keywords included; `value` is the text. */
export const IDENT: number = 1;
/** `[0-9]+`; `value` is the digits. */
export const NUMBER: number = 2;
/** A string literal; `value` is the text between the quotes, escapes not yet undone. */
export const STRING: number = 3;
/** `?name`; `value` is the text with the `?`. */
export const SLOT: number = 4;
export const AT: number = 5;
export const DOT: number = 6;
export const COMMA: number = 7;
export const SEMI: number = 8;
export const COLON: number = 9;
export const COLONCOLON: number = 10;
export const LPAREN: number = 11;
export const RPAREN: number = 12;
export const LBRACE: number = 13;
export const RBRACE: number = 14;
export const LBRACKET: number = 15;
export const RBRACKET: number = 16;
export const EQEQ: number = 17;
export const NE: number = 18;
export const LT: number = 19;
export const LE: number = 20;
export const GE: number = 21;
export const GT: number = 22;
export const OROR: number = 23;
export const ANDAND: number = 24;
export const PLUS: number = 25;
export const MINUS: number = 26;
export const STAR: number = 27;
export const SLASH: number = 28;
export const PERCENT: number = 29;
export const BANG: number = 30;
export const EQ: number = 31;

const KIND_NAMES = [
  "end of input",
  "identifier",
  "number",
  "string",
  "slot",
  "@",
  ".",
  ",",
  ";",
  ":",
  "::",
  "(",
  ")",
  "{",
  "}",
  "[",
  "]",
  "==",
  "!=",
  "<",
  "<=",
  ">=",
  ">",
  "||",
  "&&",
  "+",
  "-",
  "*",
  "/",
  "%",
  "!",
  "=",
];

/**
 * How a token kind reads in a message: `";"`, `"=="`, or `end of input`.
 * @param kind A token kind.
 * @returns Its description.
 */
export function describeKind(kind: number): string {
  return kind <= SLOT ? KIND_NAMES[kind]! : `"${KIND_NAMES[kind]}"`;
}

/**
 * 1-based line and column (UTF-16 units) of an offset. A line ends at `\n`.
 * @param text The source.
 * @param offset A UTF-16 offset into it.
 * @returns Line and column.
 */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * A {@linkcode CedarSyntaxError} at an offset of a text.
 * @param text The source.
 * @param offset Where the problem is.
 * @param detail What is wrong.
 * @returns The error, to throw.
 */
export function syntaxError(text: string, offset: number, detail: string): CedarSyntaxError {
  return new CedarSyntaxError(detail, { offset, ...lineAndColumn(text, offset) });
}

/** Quotes source text for a message, cut short when long. */
export function quote(text: string): string {
  const cut = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return JSON.stringify(cut);
}

function isWhitespace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13);
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 ||
    c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

function isIdentPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
}

// The keywords and the most common names, as constants: no string per token.
const WORDS: readonly (readonly string[])[] = [
  [],
  [],
  ["in", "is", "if"],
  ["has"],
  ["like", "then", "else", "true", "when"],
  ["false"],
  ["permit", "forbid", "action", "unless", "Action"],
  ["context"],
  ["resource"],
  ["principal"],
];

function keyword(text: string, start: number, length: number): string | undefined {
  if (length >= WORDS.length) return undefined;
  for (const word of WORDS[length]!) {
    if (text.startsWith(word, start)) return word;
  }
  return undefined;
}

/**
 * Cuts Cedar text into tokens on demand, one current token and at most one
 * token of lookahead.
 */
export class Lexer {
  /** The source. */
  readonly text: string;
  /** Kind of the current token. */
  kind = EOF;
  /** Offset of the current token. */
  start = 0;
  /** Offset just past the current token. */
  end = 0;
  /** Text of an identifier, number or slot; a string's raw contents. */
  value = "";
  /** The current string literal holds a backslash, a carriage return or a surrogate: it is not its own value. */
  escaped = false;

  #pos = 0;
  #peeked = false;
  #peekKind = EOF;
  #peekStart = 0;
  #peekEnd = 0;
  #peekValue = "";
  #peekEscaped = false;

  /**
   * Starts at the beginning of `text`; call {@linkcode Lexer.next} for the first token.
   * @param text The source.
   */
  constructor(text: string) {
    this.text = text;
  }

  /** Moves to the next token. */
  next(): void {
    if (this.#peeked) {
      this.#peeked = false;
      this.kind = this.#peekKind;
      this.start = this.#peekStart;
      this.end = this.#peekEnd;
      this.value = this.#peekValue;
      this.escaped = this.#peekEscaped;
      return;
    }
    this.#scan();
  }

  /**
   * The kind of the token after the current one, without moving.
   * @returns The next token's kind.
   */
  peek(): number {
    if (!this.#peeked) {
      const { kind, start, end, value, escaped } = this;
      this.#scan();
      this.#peekKind = this.kind;
      this.#peekStart = this.start;
      this.#peekEnd = this.end;
      this.#peekValue = this.value;
      this.#peekEscaped = this.escaped;
      this.kind = kind;
      this.start = start;
      this.end = end;
      this.value = value;
      this.escaped = escaped;
      this.#peeked = true;
    }
    return this.#peekKind;
  }

  #scan(): void {
    const text = this.text;
    const length = text.length;
    let pos = this.#pos;
    for (;;) {
      if (pos >= length) {
        this.kind = EOF;
        this.start = this.end = this.#pos = length;
        return;
      }
      const c = text.charCodeAt(pos);
      if (isWhitespace(c)) {
        pos++;
      } else if (c === 47 && text.charCodeAt(pos + 1) === 47) {
        pos += 2;
        while (pos < length) {
          const d = text.charCodeAt(pos);
          if (d === 10 || d === 13) break;
          pos++;
        }
      } else {
        break;
      }
    }
    const start = pos;
    this.start = start;
    this.escaped = false;
    const c = text.charCodeAt(pos);
    let kind: number;
    if (isIdentStart(c)) {
      pos++;
      while (pos < length && isIdentPart(text.charCodeAt(pos))) pos++;
      kind = IDENT;
      this.value = keyword(text, start, pos - start) ?? text.slice(start, pos);
    } else if (c >= 48 && c <= 57) {
      pos++;
      while (pos < length) {
        const d = text.charCodeAt(pos);
        if (d < 48 || d > 57) break;
        pos++;
      }
      kind = NUMBER;
      this.value = text.slice(start, pos);
    } else if (c === 34) {
      pos = this.#string(pos + 1);
      kind = STRING;
      this.value = text.slice(start + 1, pos - 1);
    } else {
      const d = text.charCodeAt(pos + 1);
      pos++;
      switch (c) {
        case 64:
          kind = AT;
          break;
        case 46:
          kind = DOT;
          break;
        case 44:
          kind = COMMA;
          break;
        case 59:
          kind = SEMI;
          break;
        case 58:
          if (d === 58) {
            pos++;
            kind = COLONCOLON;
          } else kind = COLON;
          break;
        case 40:
          kind = LPAREN;
          break;
        case 41:
          kind = RPAREN;
          break;
        case 123:
          kind = LBRACE;
          break;
        case 125:
          kind = RBRACE;
          break;
        case 91:
          kind = LBRACKET;
          break;
        case 93:
          kind = RBRACKET;
          break;
        case 61:
          if (d === 61) {
            pos++;
            kind = EQEQ;
          } else kind = EQ;
          break;
        case 33:
          if (d === 61) {
            pos++;
            kind = NE;
          } else kind = BANG;
          break;
        case 60:
          if (d === 61) {
            pos++;
            kind = LE;
          } else kind = LT;
          break;
        case 62:
          if (d === 61) {
            pos++;
            kind = GE;
          } else kind = GT;
          break;
        case 124:
          if (d !== 124) throw this.#invalid(start, `"||"`);
          pos++;
          kind = OROR;
          break;
        case 38:
          if (d !== 38) throw this.#invalid(start, `"&&"`);
          pos++;
          kind = ANDAND;
          break;
        case 43:
          kind = PLUS;
          break;
        case 45:
          kind = MINUS;
          break;
        case 42:
          kind = STAR;
          break;
        case 47:
          kind = SLASH;
          break;
        case 37:
          kind = PERCENT;
          break;
        case 63: {
          if (!isIdentStart(d)) throw this.#invalid(start, "a slot such as ?principal");
          pos++;
          while (pos < length && isIdentPart(text.charCodeAt(pos))) pos++;
          kind = SLOT;
          this.value = text.slice(start, pos);
          break;
        }
        default:
          throw this.#invalid(start, "a Cedar token");
      }
    }
    this.kind = kind;
    this.end = this.#pos = pos;
  }

  /** Scans a string literal's body from just past its opening quote; returns the offset past the closing quote. */
  #string(pos: number): number {
    const text = this.text;
    const length = text.length;
    for (;;) {
      if (pos >= length) {
        throw syntaxError(text, this.start, `unterminated string literal starting ${quote(text.slice(this.start))}`);
      }
      const c = text.charCodeAt(pos);
      if (c === 34) return pos + 1;
      if (c === 92) {
        if (pos + 1 >= length) {
          throw syntaxError(text, this.start, `unterminated string literal starting ${quote(text.slice(this.start))}`);
        }
        if (text.charCodeAt(pos + 1) === 10) {
          throw syntaxError(text, pos, "a backslash at the end of a line is not an escape in a Cedar string");
        }
        this.escaped = true;
        pos += 2;
      } else {
        if (c === 13 || (c >= 0xd800 && c <= 0xdfff)) this.escaped = true;
        pos++;
      }
    }
  }

  #invalid(offset: number, expected: string): CedarSyntaxError {
    const found = String.fromCodePoint(this.text.codePointAt(offset)!);
    return syntaxError(this.text, offset, `unexpected character ${quote(found)}, expected ${expected}`);
  }
}
