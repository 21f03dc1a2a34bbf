;; A GHC-like reactor: _initialize, then hs_init, which makes WASI calls that
;; read and write linear memory (as the GHC RTS does when it starts). `ready`
;; outputs "ok" when _initialize then hs_init ran, in that order, once each;
;; otherwise "b" and the state digit ("b0": nothing ran, "b1": no hs_init, "b9": out of order).
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hs_init\n")
  ;; 0 nothing ran, 1 _initialize ran, 2 then hs_init ran, 9 out of order or twice.
  (global $state (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $state (select (i32.const 1) (i32.const 9) (i32.eqz (global.get $state)))))
  (func (export "hs_init") (local $errno i32)
    (local.set $errno (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (local.set $errno (i32.or (local.get $errno) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 8))))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 8))
    (local.set $errno (i32.or (local.get $errno)
      (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24))))
    (global.set $state
      (select (i32.const 2) (i32.const 9)
        (i32.and (i32.eq (global.get $state) (i32.const 1)) (i32.eqz (local.get $errno))))))
  (func $out (param $a i32) (param $b i32) (param $len i32) (local $block i64)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (call $store_u8 (local.get $block) (local.get $a))
    (call $store_u8 (i64.add (local.get $block) (i64.const 1)) (local.get $b))
    (call $output_set (local.get $block) (i64.extend_i32_u (local.get $len))))
  (func (export "ready") (result i32)
    (if (i32.eq (global.get $state) (i32.const 2))
      (then (call $out (i32.const 111) (i32.const 107) (i32.const 2)) (return (i32.const 0))))
    (call $out (i32.const 98) (i32.add (i32.const 48) (global.get $state)) (i32.const 2))
    (i32.const 0)))
