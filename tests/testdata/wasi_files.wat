;; File access through WASI preopens: the input is a path relative to the
;; first preopened directory (fd 3); each export outputs the errno (one byte)
;; and what it read.
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "written by wasi")
  ;; The input copied to memory at 2048; returns its length.
  (func $input (result i32) (local $n i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (call $input_length)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 2048) (local.get $i)) (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func $emit (param $errno i32) (param $ptr i32) (param $len i32) (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (i32.add (local.get $len) (i32.const 1)))))
    (call $store_u8 (local.get $block) (local.get $errno))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $block) (i64.extend_i32_u (i32.add (local.get $i) (i32.const 1))))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $block) (i64.extend_i32_u (i32.add (local.get $len) (i32.const 1)))))
  ;; The first preopen's name.
  (func (export "preopen") (result i32) (local $errno i32)
    (local.set $errno (call $fd_prestat_get (i32.const 3) (i32.const 0)))
    (if (i32.eqz (local.get $errno))
      (then (local.set $errno (call $fd_prestat_dir_name (i32.const 3) (i32.const 64) (i32.load (i32.const 4))))))
    (call $emit (local.get $errno) (i32.const 64) (i32.load (i32.const 4)))
    (i32.const 0))
  ;; Reads up to 256 bytes of the file named by the input.
  (func (export "read") (result i32) (local $errno i32)
    (local.set $errno
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 2048) (call $input) (i32.const 0)
        (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
    (if (local.get $errno) (then (call $emit (local.get $errno) (i32.const 0) (i32.const 0)) (return (i32.const 0))))
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 256))
    (local.set $errno (call $fd_read (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24)))
    (drop (call $fd_close (i32.load (i32.const 8))))
    (call $emit (local.get $errno) (i32.const 4096) (i32.load (i32.const 24)))
    (i32.const 0))
  ;; Creates (or truncates) the file named by the input with "written by wasi"; outputs close's errno.
  (func (export "write") (result i32) (local $errno i32)
    (local.set $errno
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 2048) (call $input) (i32.const 9)
        (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8)))
    (if (local.get $errno) (then (call $emit (local.get $errno) (i32.const 0) (i32.const 0)) (return (i32.const 0))))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (i32.const 15))
    (drop (call $fd_write (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $emit (call $fd_close (i32.load (i32.const 8))) (i32.const 0) (i32.const 0))
    (i32.const 0)))
