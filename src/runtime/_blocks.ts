// Extism's block table, kept bounded within one call.
//
// Extism's JS SDK (2.0.0-rc13) pushes every new block at the end of its table
// and never reuses an index, not even a freed one; an address is
// `index << 48` in an i64, so the 32,768th block of a call no longer fits a
// signed address and the plugin traps ("cannot assign to this block"). A
// plugin making ~16,000 host calls (request + response blocks) hit it. This
// table puts new blocks into freed slots, frees a host-call response once the
// plugin has read its last byte (when blocks run short: PDKs that copy a
// response and forget it), and counts the bytes of live blocks against the
// plugin's memory cap.
import type { CallContext } from "@extism/extism";

/** The largest block index a signed i64 address can carry. */
export const MAX_BLOCK_INDEX = 32_767;
/** Past this many blocks, responses already read are freed before a new index is taken. */
const RECLAIM_AT = 4_096;
const MASK = (1n << 48n) - 1n;

interface ContextState {
  blocks: [ArrayBuffer | null, number][];
  stack: unknown[];
}
type StateHooks = {
  importState: (state: ContextState) => void;
  exportState: () => ContextState;
};

/** Raised when a block cannot be had within the cap; the worker reports the call as a memory overrun. */
export class BlockOverrun extends RangeError {
  override name = "BlockOverrun";
}

/** A response block the host stored: freed once read to its end, if blocks run short. */
interface Response {
  length: number;
  read: boolean;
}

/** One instance's view of its Extism block table; `reset()` before every call. */
export class BlockTable {
  readonly #limitBytes: number;
  #ctx: CallContext | undefined;
  #hooks: StateHooks | undefined;
  #stack: unknown[] | undefined;
  /** Slots freed in this call, reused before a new index is taken. */
  #free: number[] = [];
  /** Bytes of each block this table created, by index. */
  #sizes = new Map<number, number>();
  #views: (DataView | undefined)[] = [];
  #responses = new Map<number, Response>();
  /** Responses read to their end, oldest first: candidates to free. */
  #read: number[] = [];
  #high = 0;
  /** Bytes of live blocks this table created in the current call. */
  bytes = 0;

  /** @param limitBytes The plugin's memory cap, which live blocks count against. */
  constructor(limitBytes: number) {
    this.#limitBytes = limitBytes;
  }

  /** Forgets the previous call's blocks (Extism resets its table at every call). */
  reset(): void {
    this.#free.length = 0;
    this.#sizes.clear();
    this.#views.length = 0;
    this.#responses.clear();
    this.#read.length = 0;
    this.#high = 0;
    this.bytes = 0;
  }

  /** A new block of `size` bytes for the plugin (Extism's `alloc`). */
  alloc(ctx: CallContext, size: number): bigint {
    return this.#place(ctx, size);
  }

  /** Stores a host-call response in a new block; it is freed once read, if blocks run short. */
  store(ctx: CallContext, bytes: Uint8Array): bigint {
    const address = this.#place(ctx, bytes.length, bytes);
    const index = indexOf(address);
    const read = bytes.length === 0;
    this.#responses.set(index, { length: bytes.length, read });
    if (read) this.#read.push(index);
    return address;
  }

  /** Frees a block (Extism's `free`); a freed or unknown address is ignored. */
  free(ctx: CallContext, address: bigint): void {
    const index = indexOf(address);
    if (index <= 0 || ctx.read(address) === null) return;
    this.#release(ctx, index);
  }

  /** Extism's `load_u8`, noting how far a response has been read. */
  loadU8(ctx: CallContext, address: bigint): number {
    const index = indexOf(address);
    const offset = Number(address & MASK);
    const view = this.#view(ctx, index, address);
    if (!view) return 0;
    this.#touched(index, offset + 1);
    return view.getUint8(offset);
  }

  /** Extism's `load_u64`, noting how far a response has been read. */
  loadU64(ctx: CallContext, address: bigint): bigint {
    const index = indexOf(address);
    const offset = Number(address & MASK);
    const view = this.#view(ctx, index, address);
    if (!view) return 0n;
    this.#touched(index, offset + 8);
    return view.getBigUint64(offset, true);
  }

  #view(ctx: CallContext, index: number, address: bigint): DataView | undefined {
    let view = this.#views[index];
    if (view === undefined && index > 0) {
      // A block Extism made itself (input, config_get, var_get): cache its view.
      const block = ctx.read(address & ~MASK);
      if (block) view = this.#views[index] = new DataView(block.arrayBuffer());
    }
    return view;
  }

  #touched(index: number, end: number): void {
    if (this.#responses.size === 0) return;
    const response = this.#responses.get(index);
    if (response && !response.read && end >= response.length) {
      response.read = true;
      this.#read.push(index);
    }
  }

  #place(ctx: CallContext, size: number, bytes?: Uint8Array): bigint {
    if (this.bytes + size > this.#limitBytes) this.#reclaim(ctx);
    if (this.bytes + size > this.#limitBytes) {
      throw new BlockOverrun(
        `Extism blocks of ${this.bytes + size} bytes would exceed the ${this.#limitBytes}-byte cap`,
      );
    }
    if (this.#free.length === 0 && this.#high >= RECLAIM_AT) this.#reclaim(ctx);
    let index = this.#free.pop();
    let address: bigint;
    let buffer: ArrayBuffer;
    if (index !== undefined) {
      address = BigInt(index) << 48n;
      buffer = new ArrayBuffer(size);
      this.#set(ctx, index, buffer);
    } else {
      address = ctx.alloc(size);
      index = indexOf(address);
      if (index > MAX_BLOCK_INDEX || index <= 0) {
        this.#set(ctx, index, null);
        throw new BlockOverrun(
          `The call holds more than ${MAX_BLOCK_INDEX} Extism blocks at once (Extism addresses no more): ` +
            `free blocks once read`,
        );
      }
      // The block's own buffer (read() hands it out, not a copy).
      buffer = ctx.read(address)!.arrayBuffer() as ArrayBuffer;
    }
    if (bytes) new Uint8Array(buffer).set(bytes);
    this.#high = Math.max(this.#high, index);
    this.#sizes.set(index, size);
    this.#views[index] = new DataView(buffer);
    this.bytes += size;
    return address;
  }

  #release(ctx: CallContext, index: number): void {
    this.#set(ctx, index, null);
    this.bytes -= this.#sizes.get(index) ?? 0;
    this.#sizes.delete(index);
    this.#views[index] = undefined;
    this.#responses.delete(index);
    this.#free.push(index);
  }

  /** Frees the responses read to their end that the plugin still holds. */
  #reclaim(ctx: CallContext): void {
    for (const index of this.#read) {
      if (this.#responses.get(index)?.read) this.#release(ctx, index);
    }
    this.#read.length = 0;
  }

  /**
   * Puts a buffer (or null) at an index of Extism's table. Extism offers no
   * call for it; its state import does exactly this, given the call stack it
   * must keep (captured once per context, see #bind).
   */
  #set(ctx: CallContext, index: number, buffer: ArrayBuffer | null): void {
    const hooks = this.#bind(ctx);
    hooks.importState({ blocks: [[buffer, index]], stack: this.#stack! });
  }

  #bind(ctx: CallContext): StateHooks {
    if (this.#ctx === ctx && this.#hooks) return this.#hooks;
    const proto = Object.getPrototypeOf(ctx) as Record<symbol, unknown>;
    const find = (description: string) => {
      const symbol = Object.getOwnPropertySymbols(proto).find((s) => s.description === description);
      const fn = symbol === undefined ? undefined : proto[symbol];
      if (typeof fn !== "function") {
        throw new Error(`Extism's CallContext has no "${description}" hook: the SDK changed`);
      }
      return fn as (...args: unknown[]) => unknown;
    };
    const importState = find("import-state");
    const exportState = find("export-state");
    const hooks: StateHooks = {
      importState: (state) => importState.call(ctx, state),
      exportState: () => exportState.call(ctx) as ContextState,
    };
    // Adopt a copy of the stack as the context's own (same frames), so later
    // imports can hand it back unchanged; Extism only ever mutates it in place.
    const { stack } = hooks.exportState();
    importState.call(ctx, { blocks: [], stack });
    this.#ctx = ctx;
    this.#stack = stack;
    this.#hooks = hooks;
    return hooks;
  }
}

function indexOf(address: bigint): number {
  return Number(BigInt.asUintN(64, address) >> 48n);
}
