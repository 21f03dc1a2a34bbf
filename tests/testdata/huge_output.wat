;; Outputs a 4 MiB block: more than the default 1 MiB output limit, less
;; than the 16 MiB memory cap.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "flood") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 4194304)))
    (call $output_set (local.get $block) (i64.const 4194304))
    (i32.const 0)))
