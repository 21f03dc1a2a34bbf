// Low-level reading and writing of the WebAssembly binary format: just what
// module inspection and instrumentation need, no more.

/** A parse failure of a WebAssembly binary, with the byte offset. */
export class WasmFormatError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = "WasmFormatError";
    this.offset = offset;
  }
}

export const SECTION = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
  tag: 13,
} as const;

/** Canonical position of each non-custom section id in a module. */
export const SECTION_ORDER: readonly number[] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

export interface RawSection {
  id: number;
  /** Offset of the section content in the module. */
  start: number;
  end: number;
}

export class Reader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;
  static #decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string): never {
    throw new WasmFormatError(message, this.pos);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail("Unexpected end of section");
    return this.bytes[this.pos++]!;
  }

  skip(n: number): void {
    if (this.pos + n > this.end) this.fail("Unexpected end of section");
    this.pos += n;
  }

  /** Unsigned LEB128 up to 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (result > 0xffffffff) this.fail("Integer too large");
        return result;
      }
      shift += 7;
    }
    this.fail("Integer representation too long");
  }

  /** Unsigned LEB128 up to 64 bits, as a number (precise to 2^53). */
  u64(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
    this.fail("Integer representation too long");
  }

  /** Any signed LEB128 (s32, s33, s64): skipped, since no caller needs the value. */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) {
      if ((this.u8() & 0x80) === 0) return;
    }
    this.fail("Integer representation too long");
  }

  name(): string {
    const length = this.u32();
    const start = this.pos;
    this.skip(length);
    try {
      return Reader.#decoder.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new WasmFormatError("Malformed UTF-8 name", start);
    }
  }
}

export function encodeU32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

export function encodeName(name: string): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...encodeU32(bytes.length), ...bytes];
}

/** Splits a module into its sections, checking the header and section sizes. */
export function readSections(bytes: Uint8Array): RawSection[] {
  if (bytes.length < 8) throw new WasmFormatError("Module is shorter than its header", 0);
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== header[i]) {
      throw new WasmFormatError(
        i < 4 ? "Missing the \\0asm magic number" : "Unsupported binary version (expected 1)",
        i,
      );
    }
  }
  const reader = new Reader(bytes, 8);
  const sections: RawSection[] = [];
  while (!reader.done) {
    const id = reader.u8();
    const size = reader.u32();
    const start = reader.pos;
    if (start + size > bytes.length) {
      throw new WasmFormatError(`Section ${id} runs past the end of the module`, start);
    }
    sections.push({ id, start, end: start + size });
    reader.pos = start + size;
  }
  return sections;
}

/** Reads memory/table limits: the flags byte, min and optional max. */
export function readLimits(
  reader: Reader,
): { min: number; max: number | undefined; shared: boolean; memory64: boolean } {
  const flags = reader.u8();
  if (flags > 0x07) reader.fail(`Unknown limits flags 0x${flags.toString(16)}`);
  const memory64 = (flags & 0x04) !== 0;
  const min = memory64 ? reader.u64() : reader.u32();
  const max = (flags & 0x01) ? (memory64 ? reader.u64() : reader.u32()) : undefined;
  return { min, max, shared: (flags & 0x02) !== 0, memory64 };
}

/** Skips a value type, including the multi-byte reference types. */
export function skipValType(reader: Reader): void {
  const byte = reader.u8();
  if (byte === 0x63 || byte === 0x64) reader.skipLeb(); // (ref null? heaptype)
}

/** Skips a block type: empty, a value type, or a type index (s33). */
export function skipBlockType(reader: Reader): void {
  const byte = reader.bytes[reader.pos];
  if (byte === undefined) reader.fail("Unexpected end of section");
  if (byte === 0x40 || (byte >= 0x69 && byte <= 0x7f)) {
    reader.pos++;
  } else if (byte === 0x63 || byte === 0x64) {
    reader.pos++;
    reader.skipLeb();
  } else {
    reader.skipLeb();
  }
}

/** Skips a constant expression up to and including its `end`. */
export function skipConstExpr(reader: Reader): void {
  forEachInstruction(reader, () => {}, true);
}

/** Reads a memarg and returns its memory index. */
function readMemarg(reader: Reader): number {
  const align = reader.u32();
  const memory = (align & 0x40) ? reader.u32() : 0;
  reader.u64(); // offset
  return memory;
}

/**
 * Walks the instructions of a body (or a constant expression when
 * `untilEnd`), calling `visit` with each opcode and its start offset after its
 * immediates are read. Returns when the final `end` is consumed.
 */
export function forEachInstruction(
  reader: Reader,
  visit: (opcode: number, start: number) => void,
  untilEnd = false,
): void {
  let depth = 1;
  while (depth > 0) {
    const start = reader.pos;
    const op = reader.u8();
    switch (op) {
      case 0x02: // block
      case 0x03: // loop
      case 0x04: // if
      case 0x06: // try (legacy exceptions)
        skipBlockType(reader);
        depth++;
        break;
      case 0x1f: { // try_table
        skipBlockType(reader);
        const n = reader.u32();
        for (let i = 0; i < n; i++) {
          const kind = reader.u8();
          if (kind === 0 || kind === 1) reader.u32();
          reader.u32();
        }
        depth++;
        break;
      }
      case 0x0b: // end
        depth--;
        break;
      case 0x00:
      case 0x01:
      case 0x05:
      case 0x0a:
      case 0x0f:
      case 0x19:
      case 0x1a:
      case 0x1b:
      case 0xd1:
      case 0xd3:
      case 0xd4:
        break;
      case 0x07:
      case 0x08:
      case 0x09:
      case 0x0c:
      case 0x0d:
      case 0x10:
      case 0x12:
      case 0x14:
      case 0x15:
      case 0x18:
      case 0xd2:
      case 0xd5:
      case 0xd6:
      case 0x20:
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x25:
      case 0x26:
        reader.u32();
        break;
      case 0x0e: { // br_table
        const n = reader.u32();
        for (let i = 0; i <= n; i++) reader.u32();
        break;
      }
      case 0x11:
      case 0x13: // call_indirect, return_call_indirect
        reader.u32();
        reader.u32();
        break;
      case 0x1c: { // select t*
        const n = reader.u32();
        for (let i = 0; i < n; i++) skipValType(reader);
        break;
      }
      case 0x3f:
      case 0x40: // memory.size, memory.grow
        reader.u32();
        break;
      case 0x41:
      case 0x42:
        reader.skipLeb();
        break;
      case 0x43:
        reader.skip(4);
        break;
      case 0x44:
        reader.skip(8);
        break;
      case 0xd0: { // ref.null heaptype
        const byte = reader.bytes[reader.pos];
        if (byte !== undefined && byte >= 0x69 && byte <= 0x74) reader.pos++;
        else reader.skipLeb();
        break;
      }
      case 0xfc:
        skipPrefixFC(reader, reader.u32());
        break;
      case 0xfd:
        skipPrefixFD(reader, reader.u32());
        break;
      case 0xfe:
        skipPrefixFE(reader, reader.u32());
        break;
      case 0xfb:
        reader.pos = start;
        reader.fail("Garbage-collection instructions (0xfb) are not supported");
        break;
      default:
        if (op >= 0x28 && op <= 0x3e) {
          readMemarg(reader);
        } else if (op >= 0x45 && op <= 0xc4) {
          // numeric instructions have no immediates
        } else {
          reader.pos = start;
          reader.fail(`Unknown opcode 0x${op.toString(16)}`);
        }
    }
    if (untilEnd && depth === 0) return;
    visit(op, start);
  }
}

function skipPrefixFC(reader: Reader, sub: number): void {
  if (sub <= 7) return; // saturating truncation
  switch (sub) {
    case 8: // memory.init data mem
    case 10: // memory.copy mem mem
    case 12: // table.init elem table
    case 14: // table.copy table table
      reader.u32();
      reader.u32();
      return;
    case 9:
    case 11:
    case 13:
    case 15:
    case 16:
    case 17:
      reader.u32();
      return;
    default:
      reader.fail(`Unknown 0xfc instruction ${sub}`);
  }
}

function skipPrefixFD(reader: Reader, sub: number): void {
  if (sub <= 11 || sub === 92 || sub === 93) {
    readMemarg(reader);
  } else if (sub === 12 || sub === 13) {
    reader.skip(16);
  } else if (sub >= 21 && sub <= 34) {
    reader.skip(1);
  } else if (sub >= 84 && sub <= 91) {
    readMemarg(reader);
    reader.skip(1);
  } else if (sub > 0x113) {
    reader.fail(`Unknown SIMD instruction ${sub}`);
  }
}

function skipPrefixFE(reader: Reader, sub: number): void {
  if (sub === 3) {
    reader.skip(1); // atomic.fence
  } else if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) {
    readMemarg(reader);
  } else {
    reader.fail(`Unknown atomic instruction ${sub}`);
  }
}

/** An append-only byte buffer that grows by doubling (no spread of large arrays). */
export class ByteWriter {
  #buffer: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  length = 0;

  #reserve(extra: number): void {
    if (this.length + extra <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.length));
    this.#buffer = next;
  }

  byte(value: number): void {
    this.#reserve(1);
    this.#buffer[this.length++] = value;
  }

  bytes(values: ArrayLike<number>): void {
    this.#reserve(values.length);
    if (values instanceof Uint8Array) {
      this.#buffer.set(values, this.length);
    } else {
      for (let i = 0; i < values.length; i++) this.#buffer[this.length + i] = values[i]!;
    }
    this.length += values.length;
  }

  u32(value: number): void {
    this.bytes(encodeU32(value));
  }

  /** Appends a length-prefixed copy of another writer's bytes. */
  sized(other: ByteWriter): void {
    this.u32(other.length);
    this.bytes(other.toBytes());
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    return this.#buffer.subarray(0, this.length);
  }
}
