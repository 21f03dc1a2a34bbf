;; Asks Extism for 1 MiB blocks forever and writes to each one.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (memory (export "memory") 1)
  (func (export "bomb") (result i32)
    (local $block i64)
    (loop $more
      (local.set $block (call $alloc (i64.const 1048576)))
      (call $store_u8 (local.get $block) (i32.const 1))
      (br $more))
    (i32.const 0)))
