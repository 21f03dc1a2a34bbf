import { Reader, readLimits, readSections, SECTION, skipConstExpr, skipValType } from "./_wasm_binary.ts";

/** A memory a module imports or defines. */
export interface MemoryInfo {
  /** Initial size in 64 KiB pages. */
  min: number;
  /** Declared maximum in pages, absent when the module declares none. */
  max?: number;
  /** Whether it is a shared memory (threads proposal). */
  shared: boolean;
  /** Whether it is indexed with 64-bit addresses (memory64 proposal). */
  memory64: boolean;
  /** Whether the module imports it rather than defining it. */
  imported: boolean;
}

/** What a WebAssembly module asks for and offers, read from its bytes. */
export interface ModuleInfo {
  /** Every import, in section order: `module`, `name` and what kind of thing it is. */
  imports: { module: string; name: string; kind: WebAssembly.ImportExportKind }[];
  /**
   * Every export, in section order: its name and kind, and for a function its
   * signature (value types such as `"i32"`), absent when the type section uses
   * forms keycard does not read (GC proposal types).
   */
  exports: { name: string; kind: WebAssembly.ImportExportKind; signature?: FunctionSignature }[];
  /** Imported memories first, then defined ones, as WebAssembly indexes them. */
  memories: MemoryInfo[];
  /** Whether a start section runs code at instantiation. */
  hasStart: boolean;
}

/** The parameter and result types of a function, e.g. `{ params: [], results: ["i32"] }` for Extism's exports. */
export interface FunctionSignature {
  /** Parameter types: `i32`, `i64`, `f32`, `f64`, `v128`, `funcref`, `externref`, or `ref` for other reference types. */
  params: string[];
  /** Result types, named as `params`. */
  results: string[];
}

const KINDS: WebAssembly.ImportExportKind[] = ["function", "table", "memory", "global"];
const VALUE_TYPES: Record<number, string> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

/**
 * Reads the imports, exports, memories and start section of a module without
 * compiling or running it.
 *
 * @param bytes The module's binary.
 * @returns What the module imports, exports and declares.
 * @throws {SyntaxError} When the bytes are not a well-formed module header or
 * section layout (a `WasmFormatError` with the byte offset).
 *
 * @example Read a module's exports
 * ```ts
 * import { inspectModule } from "./inspect_module.ts";
 * const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
 * inspectModule(empty).exports; // []
 * ```
 */
export function inspectModule(bytes: Uint8Array): ModuleInfo {
  const info: ModuleInfo = { imports: [], exports: [], memories: [], hasStart: false };
  let types: FunctionSignature[] | undefined;
  const functionTypes: number[] = [];
  for (const section of readSections(bytes)) {
    const reader = new Reader(bytes, section.start, section.end);
    switch (section.id) {
      case SECTION.type:
        types = readTypes(reader);
        break;
      case SECTION.function:
        for (let i = reader.u32(); i > 0; i--) functionTypes.push(reader.u32());
        break;
      case SECTION.import: {
        const count = reader.u32();
        for (let i = 0; i < count; i++) {
          const module = reader.name();
          const name = reader.name();
          const kind = reader.u8();
          if (kind === 0) {
            functionTypes.push(reader.u32());
          } else if (kind === 1) {
            skipValType(reader);
            readLimits(reader);
          } else if (kind === 2) {
            info.memories.push({ ...cleanLimits(readLimits(reader)), imported: true });
          } else if (kind === 3) {
            skipValType(reader);
            reader.u8();
          } else if (kind === 4) {
            reader.u8();
            reader.u32();
          } else {
            reader.fail(`Unknown import kind ${kind}`);
          }
          info.imports.push({ module, name, kind: KINDS[kind] ?? ("tag" as WebAssembly.ImportExportKind) });
        }
        break;
      }
      case SECTION.memory: {
        const count = reader.u32();
        for (let i = 0; i < count; i++) {
          info.memories.push({ ...cleanLimits(readLimits(reader)), imported: false });
        }
        break;
      }
      case SECTION.export: {
        const count = reader.u32();
        for (let i = 0; i < count; i++) {
          const name = reader.name();
          const kind = reader.u8();
          const index = reader.u32();
          const signature = kind === 0 ? types?.[functionTypes[index] ?? -1] : undefined;
          info.exports.push({
            name,
            kind: KINDS[kind] ?? ("tag" as WebAssembly.ImportExportKind),
            ...(signature ? { signature } : {}),
          });
        }
        break;
      }
      case SECTION.start:
        info.hasStart = true;
        break;
      case SECTION.global:
        // Read only to prove the section is well formed.
        for (let i = reader.u32(); i > 0; i--) {
          skipValType(reader);
          reader.u8();
          skipConstExpr(reader);
        }
        break;
    }
  }
  return info;
}

/** Function types of a type section; undefined when it holds forms other than plain `func` (GC proposal). */
function readTypes(reader: Reader): FunctionSignature[] | undefined {
  const types: FunctionSignature[] = [];
  const valTypes = (): string[] => {
    const list: string[] = [];
    for (let i = reader.u32(); i > 0; i--) {
      const byte = reader.bytes[reader.pos]!;
      skipValType(reader);
      list.push(VALUE_TYPES[byte] ?? "ref");
    }
    return list;
  };
  for (let i = reader.u32(); i > 0; i--) {
    if (reader.u8() !== 0x60) return undefined;
    const params = valTypes();
    types.push({ params, results: valTypes() });
  }
  return types;
}

function cleanLimits(
  limits: { min: number; max: number | undefined; shared: boolean; memory64: boolean },
): Omit<MemoryInfo, "imported"> {
  const { max, ...rest } = limits;
  return max === undefined ? rest : { ...rest, max };
}
