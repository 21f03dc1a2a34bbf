;; Misuses Extism blocks. "hoard" allocates 1-byte blocks and never frees
;; them, forever; "abuse" frees address 0, an address no block has, a block
;; twice, reads a freed block, then reuses the slot and outputs "ok".
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "hoard") (result i32)
    (loop $more
      (drop (call $alloc (i64.const 1)))
      (br $more))
    (i32.const 0))
  (func (export "abuse") (result i32)
    (local $block i64) (local $out i64)
    (call $free (i64.const 0))
    (call $free (i64.const 0x7fff000000000000))
    (call $free (i64.const -1))
    (local.set $block (call $alloc (i64.const 8)))
    (call $free (local.get $block))
    (call $free (local.get $block))
    (drop (call $load_u64 (local.get $block)))
    (local.set $out (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $out) (i32.const 111))
    (call $store_u8 (i64.add (local.get $out) (i64.const 1)) (i32.const 107))
    (call $output_set (local.get $out) (i64.const 2))
    (i32.const 0)))
