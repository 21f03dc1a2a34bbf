import assert from "node:assert/strict";
import { compileWat } from "../../tests/_wat.ts";
import { WasmFormatError } from "./_wasm_binary.ts";
import { inspectModule } from "./inspect_module.ts";

Deno.test("inspectModule() lists imports, exports, memories and the start section", async () => {
  const info = inspectModule(
    await compileWat(`(module
      (import "extism:host/env" "alloc" (func (param i64) (result i64)))
      (memory 2 8)
      (func $s)
      (start $s)
      (func (export "run")))`),
  );
  assert.deepEqual(info.imports, [{ module: "extism:host/env", name: "alloc", kind: "function" }]);
  assert.deepEqual(info.exports, [{ name: "run", kind: "function", signature: { params: [], results: [] } }]);
  assert.deepEqual(info.memories, [{ min: 2, max: 8, shared: false, memory64: false, imported: false }]);
  assert.equal(info.hasStart, true);
});

Deno.test("inspectModule() names the byte offset of malformed input", () => {
  assert.throws(() => inspectModule(new TextEncoder().encode("not wasm at all")), (error: unknown) => {
    assert.ok(error instanceof WasmFormatError);
    assert.ok(error instanceof SyntaxError);
    assert.match(error.message, /Missing the \\0asm magic number at byte 0/);
    return true;
  });
  const truncated = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x02, 0x10, 0x01]);
  assert.throws(() => inspectModule(truncated), /Section 2 runs past the end of the module at byte 10/);
});
