;; Extism's fail.wasm: run_test sets an error through error_set and returns 1.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Some error message")
  (func (export "run_test") (result i32) (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.const 18)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 18)))
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $error_set (local.get $block))
    (i32.const 1)))
