import assert from "node:assert/strict";
import { compileWat } from "../../tests/_wat.ts";
import { inspectModule } from "./inspect_module.ts";
import {
  COMMAND_EXPORT,
  INIT_PREFIX,
  instrumentModule,
  INTERRUPT,
  INTERRUPT_EXPORT,
  START_EXPORT,
  TRAP_REASON,
} from "./instrument_module.ts";

const SAMPLE = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table 1 funcref)
  (elem (i32.const 0) $add)
  (start $init)
  (func $init (global.set $g (i32.const 7)))
  (func $add (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "sum") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (call_indirect (param i32 i32) (result i32) (local.get $acc) (local.get $n) (i32.const 0)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc))
  (func (export "g") (result i32) (global.get $g))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "spin") (loop $l (br $l))))`;

function instantiate(bytes: Uint8Array<ArrayBuffer>) {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    "extism:host/env": { alloc: () => 0n },
  });
  return instance.exports as Record<string, CallableFunction> & Record<string, WebAssembly.Memory>;
}

Deno.test("instrumentModule() keeps behaviour, indices and the element table intact", async () => {
  const { bytes, initExports, checks } = instrumentModule(await compileWat(SAMPLE), { maxPages: 4 });
  assert.ok(WebAssembly.validate(bytes));
  assert.deepEqual(initExports, [START_EXPORT]);
  assert.ok(checks >= 7, `only ${checks} checks`);
  const exports = instantiate(bytes);
  assert.equal(exports.add!(2, 3), 5);
  assert.equal(exports.sum!(10), 55);
  // The start section no longer runs at instantiation; keycard runs it.
  assert.equal(exports.g!(), 0);
  exports[START_EXPORT]!();
  assert.equal(exports.g!(), 7);
});

Deno.test("instrumentModule() sets the memory maximum to the cap and traps growth past it", async () => {
  const { bytes } = instrumentModule(await compileWat(SAMPLE), { maxPages: 4 });
  const memory = inspectModule(bytes).memories[0]!;
  assert.deepEqual([memory.min, memory.max], [1, 4]);
  const exports = instantiate(bytes);
  assert.equal(exports.grow!(3), 1);
  assert.throws(() => exports.grow!(1), WebAssembly.RuntimeError);
  const flags = new Int32Array(exports[INTERRUPT_EXPORT]!.buffer);
  assert.equal(flags[INTERRUPT.reason / 4], TRAP_REASON.memory);
});

Deno.test("instrumentModule() makes a spinning loop trap once the interrupt flag is raised", async () => {
  const { bytes } = instrumentModule(await compileWat(SAMPLE), { maxPages: 4 });
  const exports = instantiate(bytes);
  const flags = new Int32Array(exports[INTERRUPT_EXPORT]!.buffer);
  assert.ok(flags.buffer instanceof SharedArrayBuffer);
  Atomics.store(flags, INTERRUPT.flag / 4, 1);
  assert.throws(() => exports.spin!(), WebAssembly.RuntimeError);
});

Deno.test("instrumentModule() refuses a memory larger than the cap", async () => {
  const declared = await compileWat(`(module (memory 2 64))`);
  assert.throws(() => instrumentModule(declared, { maxPages: 16 }), /maximum of 64 pages is larger than the cap of 16/);
  const initial = await compileWat(`(module (memory 32))`);
  assert.throws(() => instrumentModule(initial, { maxPages: 16 }), /needs 32 pages at start but the cap is 16/);
});

Deno.test("instrumentModule() refuses reserved export names and imported memories", async () => {
  const reserved = await compileWat(`(module (func (export "__keycard_interrupt")))`);
  assert.throws(() => instrumentModule(reserved, { maxPages: 16 }), /reserved "__keycard" prefix/);
  const imported = await compileWat(`(module (import "env" "memory" (memory 1)))`);
  assert.throws(() => instrumentModule(imported, { maxPages: 16 }), /imports its memory/);
});

Deno.test("instrumentModule() adds a memory section to a module without one", async () => {
  const { bytes } = instrumentModule(await compileWat(`(module (func (export "f") (result i32) (i32.const 1)))`), {
    maxPages: 16,
  });
  assert.equal(instantiate(bytes).f!(), 1);
});

Deno.test("instrumentModule() hides start code in run order and a command's _start under its own name", async () => {
  const reactor = await compileWat(`(module
    (func $s) (start $s)
    (func (export "hs_init")) (func (export "_initialize")) (func (export "_start")) (func (export "run")))`);
  const library = instrumentModule(reactor, { maxPages: 4 });
  assert.deepEqual(library.initExports, [
    START_EXPORT,
    `${INIT_PREFIX}_initialize`,
    `${INIT_PREFIX}_start`,
    `${INIT_PREFIX}hs_init`,
  ]);
  assert.equal(library.command, false);
  const names = (bytes: Uint8Array) => inspectModule(bytes).exports.map((e) => e.name);
  assert.deepEqual(names(library.bytes).filter((n) => !n.startsWith("__keycard")), ["run"]);
  // Only _start (and an allocator): a WASI command, whose _start no SDK may run on its own.
  const command = instrumentModule(await compileWat(`(module (func (export "_start")) (func (export "malloc")))`), {
    maxPages: 4,
  });
  assert.deepEqual([command.initExports, command.command], [[], true]);
  assert.deepEqual(names(command.bytes), [COMMAND_EXPORT, "malloc", INTERRUPT_EXPORT]);
  // The caller may say which it is.
  assert.equal(instrumentModule(reactor, { maxPages: 4, command: true }).initExports.length, 3);
});
