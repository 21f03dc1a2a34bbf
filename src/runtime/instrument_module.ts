import {
  ByteWriter,
  encodeName,
  encodeU32,
  forEachInstruction,
  type RawSection,
  Reader,
  readLimits,
  readSections,
  SECTION,
  SECTION_ORDER,
  skipValType,
  WasmFormatError,
} from "./_wasm_binary.ts";
import { inspectModule } from "./inspect_module.ts";
import { planStartCode, type StartPlan } from "./_start_code.ts";

/** Export name of the one-page shared memory that carries the interrupt flag. */
export const INTERRUPT_EXPORT = "__keycard_interrupt";
/** Export name given to the start-section function, run by keycard after instantiation. */
export const START_EXPORT = "__keycard_start";
/**
 * Prefix under which start functions (`_initialize`, `hs_init`, and `_start`
 * when it is an initializer) are re-exported, so that keycard runs them under
 * a deadline and no SDK runs them on its own.
 */
export const INIT_PREFIX = "__keycard_init";
/**
 * Export name given to a WASI command's `_start`: Extism's JS SDK would run an
 * export named `_start` at instantiation, outside any deadline; keycard runs
 * it only when `_start` is invoked.
 */
export const COMMAND_EXPORT = "__keycard_command_start";

/** Byte offsets in the interrupt memory. */
export const INTERRUPT = {
  /** i32 the host raises to 1 at the call deadline; every check traps while it is set. */
  flag: 0,
  /** i32 the plugin sets before it traps itself: 1 = memory.grow past the cap. */
  reason: 4,
} as const;

/**
 * Extism's HTTP imports are moved to this module so that Extism's SDK does not
 * substitute its own unchecked fetch: keycard provides them (see _worker.ts).
 */
export const HTTP_IMPORT_MODULE = "keycard:http";
const HTTP_IMPORTS = new Set(["http_request", "http_status_code", "http_headers"]);
/**
 * WASI preview 1 imports are moved to this module: Extism's SDK refuses (or
 * would serve unchecked) `wasi_snapshot_preview1`; keycard provides it (_wasi.ts).
 */
export const WASI_IMPORT_MODULE = "keycard:wasi";

/** Reason codes the instrumented plugin writes at `INTERRUPT.reason`. */
export const TRAP_REASON = { memory: 1 } as const;

/** Options of {@linkcode instrumentModule}. */
export interface InstrumentOptions {
  /** The memory cap in 64 KiB pages: the declared maximum is set to it when absent and refused when larger. */
  maxPages: number;
  /**
   * Whether an exported `_start` is a WASI command's program (re-exported as
   * {@linkcode COMMAND_EXPORT}, run only when invoked) rather than start code.
   * @default {true when `_start` is the only exported function, allocators, `_initialize` and `hs_init` aside}
   */
  command?: boolean;
}

/** The rewritten module and what was changed. */
export interface InstrumentedModule {
  /** The rewritten module's binary, ready for `WebAssembly.compile`. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Export names that keycard must call after instantiation, in order: start section, `_initialize`, `_start` (an initializer), `hs_init`. */
  initExports: string[];
  /** Whether `_start` is a command's program, exported as {@linkcode COMMAND_EXPORT}. */
  command: boolean;
  /** Loop headers and function entries that received an interrupt check. */
  checks: number;
}

/**
 * Rewrites a module so that it stops itself: an interrupt check (an atomic
 * load of a flag in a shared one-page memory the module exports) at every
 * function entry and loop header, a trap with a recorded reason when
 * `memory.grow` fails, the linear memory's maximum set to the cap, and the
 * start section and start functions (`_initialize`, `hs_init`, an
 * initializer `_start`) moved to hidden exports so they run only once the
 * host holds the interrupt flag and the plugin's memory. A command's `_start`
 * is hidden too (an SDK would run it at instantiation) but stays invocable.
 *
 * Function, memory and global indices of the original module are unchanged:
 * the new memory is appended after the module's own.
 *
 * @param bytes A valid module with at most one memory, not imported.
 * @param options The memory cap.
 * @returns The instrumented module.
 * @throws {RangeError} When the module's memory is larger than the cap, or its
 * shape is one keycard does not run (several memories, memory64, shared memory).
 * @throws {SyntaxError} When the bytes are malformed.
 *
 * @example Instrument a module
 * ```ts
 * import { instrumentModule } from "./instrument_module.ts";
 * const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
 * const { bytes } = instrumentModule(empty, { maxPages: 16 });
 * WebAssembly.validate(bytes); // true
 * ```
 */
export function instrumentModule(bytes: Uint8Array, options: InstrumentOptions): InstrumentedModule {
  const sections = readSections(bytes);
  const find = (id: number) => sections.find((s) => s.id === id);

  const paramCounts = readParamCounts(bytes, find(SECTION.type));
  const { imports, exports } = inspectModule(bytes);
  const functionExports = exports.filter((e) => e.kind === "function").map((e) => e.name);
  const plan = planStartCode(functionExports, options.command);
  const importedFunctions = imports.filter((i) => i.kind === "function").length;
  if (imports.some((i) => i.kind === "memory")) {
    throw new RangeError("Cannot run a module that imports its memory: keycard gives each plugin its own memory");
  }
  const memorySection = find(SECTION.memory);
  const memoryCount = memorySection ? new Reader(bytes, memorySection.start).u32() : 0;
  if (memoryCount > 1) {
    throw new RangeError(`Cannot run a module with ${memoryCount} memories: keycard supports one linear memory`);
  }
  const interruptMemory = memoryCount; // appended after the module's own

  const functionTypes = readFunctionTypes(bytes, find(SECTION.function));
  let startFunction: number | undefined;
  const start = find(SECTION.start);
  if (start) startFunction = new Reader(bytes, start.start, start.end).u32();

  const replaced = new Map<number, ArrayLike<number>>();
  const importSection = find(SECTION.import);
  if (importSection) replaced.set(SECTION.import, buildImportSection(bytes, importSection));
  replaced.set(SECTION.memory, buildMemorySection(bytes, memorySection, options.maxPages));
  const initExports: string[] = [];
  replaced.set(
    SECTION.export,
    buildExportSection(bytes, find(SECTION.export), interruptMemory, startFunction, plan, initExports),
  );
  let checks = 0;
  const code = find(SECTION.code);
  if (code) {
    const result = rewriteCode(bytes, code, {
      interruptMemory,
      paramCount: (i) => {
        const type = functionTypes[i];
        const count = type === undefined ? undefined : paramCounts[type];
        if (count === undefined) throw new WasmFormatError(`Function ${i + importedFunctions} has no type`, code.start);
        return count;
      },
    });
    replaced.set(SECTION.code, result.section);
    checks = result.checks;
  }

  const out = new ByteWriter();
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const pending = new Set(replaced.keys());
  const emit = (id: number, content: ArrayLike<number>) => {
    out.byte(id);
    out.u32(content.length);
    out.bytes(content);
  };
  const emitPendingBefore = (id: number) => {
    const rank = SECTION_ORDER.indexOf(id);
    for (const pendingId of [...pending].sort((a, b) => SECTION_ORDER.indexOf(a) - SECTION_ORDER.indexOf(b))) {
      if (SECTION_ORDER.indexOf(pendingId) < rank) {
        emit(pendingId, replaced.get(pendingId)!);
        pending.delete(pendingId);
      }
    }
  };
  for (const section of sections) {
    if (section.id === SECTION.start) continue; // moved to an export
    if (section.id !== SECTION.custom) emitPendingBefore(section.id);
    if (pending.has(section.id)) {
      emit(section.id, replaced.get(section.id)!);
      pending.delete(section.id);
    } else {
      emit(section.id, bytes.subarray(section.start, section.end));
    }
  }
  emitPendingBefore(Number.MAX_SAFE_INTEGER);
  for (const id of pending) emit(id, replaced.get(id)!);
  return { bytes: out.toBytes(), initExports, command: plan.command, checks };
}

function readParamCounts(bytes: Uint8Array, section: RawSection | undefined): number[] {
  if (!section) return [];
  const reader = new Reader(bytes, section.start, section.end);
  const counts: number[] = [];
  for (let i = reader.u32(); i > 0; i--) {
    const form = reader.u8();
    if (form !== 0x60) {
      reader.fail("Garbage-collection type definitions are not supported");
    }
    const params = reader.u32();
    for (let p = 0; p < params; p++) skipValType(reader);
    for (let r = reader.u32(); r > 0; r--) skipValType(reader);
    counts.push(params);
  }
  return counts;
}

function buildImportSection(bytes: Uint8Array, section: RawSection): Uint8Array {
  const reader = new Reader(bytes, section.start, section.end);
  const out = new ByteWriter();
  const count = reader.u32();
  out.u32(count);
  for (let i = 0; i < count; i++) {
    const module = reader.name();
    const name = reader.name();
    const descStart = reader.pos;
    const kind = reader.u8();
    if (kind === 0) reader.u32();
    else if (kind === 1) {
      skipValType(reader);
      readLimits(reader);
    } else if (kind === 2) readLimits(reader);
    else if (kind === 3) {
      skipValType(reader);
      reader.u8();
    } else if (kind === 4) {
      reader.u8();
      reader.u32();
    } else reader.fail(`Unknown import kind ${kind}`);
    const http = kind === 0 && module === "extism:host/env" && HTTP_IMPORTS.has(name);
    const wasi = kind === 0 && module === "wasi_snapshot_preview1";
    out.bytes(encodeName(http ? HTTP_IMPORT_MODULE : wasi ? WASI_IMPORT_MODULE : module));
    out.bytes(encodeName(name));
    out.bytes(bytes.subarray(descStart, reader.pos));
  }
  return out.toBytes();
}

function readFunctionTypes(bytes: Uint8Array, section: RawSection | undefined): number[] {
  if (!section) return [];
  const reader = new Reader(bytes, section.start, section.end);
  const types: number[] = [];
  for (let i = reader.u32(); i > 0; i--) types.push(reader.u32());
  return types;
}

function buildMemorySection(bytes: Uint8Array, section: RawSection | undefined, maxPages: number): number[] {
  const out: number[] = [];
  let count = 0;
  if (section) {
    const reader = new Reader(bytes, section.start, section.end);
    count = reader.u32();
    for (let i = 0; i < count; i++) {
      const limits = readLimits(reader);
      if (limits.memory64) throw new RangeError("Cannot run a module with a 64-bit memory");
      if (limits.shared) throw new RangeError("Cannot run a module with a shared memory");
      if (limits.min > maxPages) {
        throw new RangeError(
          `Memory needs ${limits.min} pages at start but the cap is ${maxPages} pages (${maxPages * 64} KiB)`,
        );
      }
      if (limits.max !== undefined && limits.max > maxPages) {
        throw new RangeError(
          `Memory maximum of ${limits.max} pages is larger than the cap of ${maxPages} pages (${maxPages * 64} KiB)`,
        );
      }
      out.push(0x01, ...encodeU32(limits.min), ...encodeU32(limits.max ?? maxPages));
    }
  }
  out.push(0x03, 0x01, 0x01); // the interrupt memory: shared, one page, fixed
  return [...encodeU32(count + 1), ...out];
}

function buildExportSection(
  bytes: Uint8Array,
  section: RawSection | undefined,
  interruptMemory: number,
  startFunction: number | undefined,
  plan: StartPlan,
  initExports: string[],
): number[] {
  const entries: number[][] = [];
  const inits = new Map<string, number>();
  if (section) {
    const reader = new Reader(bytes, section.start, section.end);
    for (let i = reader.u32(); i > 0; i--) {
      const name = reader.name();
      const kind = reader.u8();
      const index = reader.u32();
      if (name.startsWith("__keycard")) {
        throw new RangeError(`Export "${name}" uses the reserved "__keycard" prefix`);
      }
      if (kind === 0 && plan.init.includes(name)) {
        inits.set(name, index);
        continue;
      }
      if (kind === 0 && name === "_start" && plan.command) {
        entries.push([...encodeName(COMMAND_EXPORT), kind, ...encodeU32(index)]);
        continue;
      }
      entries.push([...encodeName(name), kind, ...encodeU32(index)]);
    }
  }
  // Run order: the start section, then the plan's order (Extism's: _initialize, _start, hs_init).
  const order = [...(startFunction === undefined ? [] : [{ name: START_EXPORT, index: startFunction }])];
  for (const name of plan.init) order.push({ name: `${INIT_PREFIX}${name}`, index: inits.get(name)! });
  for (const init of order) {
    initExports.push(init.name);
    entries.push([...encodeName(init.name), 0x00, ...encodeU32(init.index)]);
  }
  entries.push([...encodeName(INTERRUPT_EXPORT), 0x02, ...encodeU32(interruptMemory)]);
  return [...encodeU32(entries.length), ...entries.flat()];
}

function rewriteCode(
  bytes: Uint8Array,
  section: RawSection,
  context: { interruptMemory: number; paramCount: (index: number) => number },
): { section: Uint8Array; checks: number } {
  const mem = encodeU32(context.interruptMemory);
  // i32.const 0; i32.atomic.load align=2 mem=N offset=0; if; unreachable; end
  const check = [0x41, 0x00, 0xfe, 0x10, 0x42, ...mem, 0x00, 0x04, 0x40, 0x00, 0x0b];
  const reader = new Reader(bytes, section.start, section.end);
  const count = reader.u32();
  const out = new ByteWriter();
  out.u32(count);
  let checks = 0;
  for (let f = 0; f < count; f++) {
    const size = reader.u32();
    const bodyEnd = reader.pos + size;
    const body = new Reader(bytes, reader.pos, bodyEnd);
    const localGroups = body.u32();
    let localCount = 0;
    const localsStart = body.pos;
    for (let g = 0; g < localGroups; g++) {
      localCount += body.u32();
      skipValType(body);
    }
    const localsEnd = body.pos;
    const scratch = encodeU32(context.paramCount(f) + localCount);
    // After memory.grow: local.tee t; i32.const -1; i32.eq; if; i32.const 4;
    // i32.const 1; i32.atomic.store mem=N; unreachable; end; local.get t
    // deno-fmt-ignore
    const growGuard = [
      0x22, ...scratch, 0x41, 0x7f, 0x46, 0x04, 0x40,
      0x41, 0x04, 0x41, 0x01, 0xfe, 0x17, 0x42, ...mem, 0x00, 0x00, 0x0b,
      0x20, ...scratch,
    ];
    const code = new ByteWriter();
    code.bytes(check);
    checks++;
    let copied = body.pos;
    let usesGrow = false;
    forEachInstruction(body, (op) => {
      if (op !== 0x03 && op !== 0x40) return;
      code.bytes(bytes.subarray(copied, body.pos));
      copied = body.pos;
      if (op === 0x03) {
        code.bytes(check);
        checks++;
      } else {
        code.bytes(growGuard);
        usesGrow = true;
      }
    });
    if (body.pos !== bodyEnd) body.fail("Function body has bytes after its end");
    code.bytes(bytes.subarray(copied, bodyEnd));
    const newBody = new ByteWriter();
    newBody.u32(usesGrow ? localGroups + 1 : localGroups);
    newBody.bytes(bytes.subarray(localsStart, localsEnd));
    if (usesGrow) newBody.bytes([0x01, 0x7f]);
    newBody.bytes(code.toBytes());
    out.sized(newBody);
    reader.pos = bodyEnd;
  }
  return { section: out.toBytes(), checks };
}
