;; A stateful neighbour: "next" returns how many times this instance has
;; been called (8 bytes, little-endian), so a test can tell whether its
;; instance survived what happened next to it.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $count (mut i64) (i64.const 0))
  (func (export "next") (result i32)
    (local $block i64)
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (local.set $block (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $block) (global.get $count))
    (call $output_set (local.get $block) (i64.const 8))
    (i32.const 0)))
