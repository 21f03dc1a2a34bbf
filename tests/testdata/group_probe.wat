;; A neighbour that remembers: "write" puts the input's first 8 bytes into its
;; linear memory and a global, "read" returns both (16 bytes), so two instances
;; of one module can tell whether either saw the other's state. Its start code
;; (_initialize) makes one host call, and "ping" makes one: the host sees every
;; instance start and every call, attributed to the plugin it came from.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
  (memory (export "memory") 1)
  (global $value (mut i64) (i64.const 0))
  (func $host_call
    (local $request i64)
    (local.set $request (call $alloc (i64.const 0)))
    (call $free (call $now (local.get $request)))
    (call $free (local.get $request)))
  (func (export "_initialize") (call $host_call))
  (func (export "write") (result i32)
    (local $v i64)
    (local.set $v (call $input_load_u64 (i64.const 0)))
    (i64.store (i32.const 1024) (local.get $v))
    (global.set $value (local.get $v))
    (i32.const 0))
  (func (export "read") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $block) (i64.load (i32.const 1024)))
    (call $store_u64 (i64.add (local.get $block) (i64.const 8)) (global.get $value))
    (call $output_set (local.get $block) (i64.const 16))
    (i32.const 0))
  (func (export "ping") (result i32)
    (call $host_call)
    (i32.const 0)))
