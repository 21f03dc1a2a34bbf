;; Test-only route hook reporting what it was told: sets the header
;; x-probe-truncated to "true" when its HookInput JSON contains
;; "bodyTruncated":true, else to "false". (The runner writes the input with
;; JSON.stringify, so there is no whitespace around the colon.)
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\22bodyTruncated\22:true\00")
  (data (i32.const 64) "{\22headers\22:{\22set\22:{\22x-probe-truncated\22:\22true\22}}}\00")
  (data (i32.const 128) "{\22headers\22:{\22set\22:{\22x-probe-truncated\22:\22false\22}}}\00")
  ;; Length of the NUL-terminated string at $ptr.
  (func $strlen (param $ptr i32) (result i32)
    (local $len i32)
    (block $done (loop $scan
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $len)))))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $scan)))
    (local.get $len))
  ;; Outputs the NUL-terminated string at $ptr.
  (func $emit (param $ptr i32)
    (local $len i32) (local $i i32) (local $out i64)
    (local.set $len (call $strlen (local.get $ptr)))
    (local.set $out (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $copied (loop $copy
      (br_if $copied (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $out) (i64.extend_i32_u (local.get $i)))
        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set (local.get $out) (i64.extend_i32_u (local.get $len))))
  ;; 1 when the input contains the needle at 0, else 0.
  (func $found (result i32)
    (local $in i64) (local $n i64) (local $m i64) (local $at i64) (local $k i64)
    (local.set $in (call $input_offset))
    (local.set $n (call $length (local.get $in)))
    (local.set $m (i64.extend_i32_u (call $strlen (i32.const 0))))
    (block $no (loop $outer
      (br_if $no (i64.gt_u (i64.add (local.get $at) (local.get $m)) (local.get $n)))
      (local.set $k (i64.const 0))
      (block $mismatch (loop $inner
        (if (i64.eq (local.get $k) (local.get $m)) (then (return (i32.const 1))))
        (br_if $mismatch (i32.ne
          (call $load_u8 (i64.add (local.get $in) (i64.add (local.get $at) (local.get $k))))
          (i32.load8_u (i32.wrap_i64 (local.get $k)))))
        (local.set $k (i64.add (local.get $k) (i64.const 1)))
        (br $inner)))
      (local.set $at (i64.add (local.get $at) (i64.const 1)))
      (br $outer)))
    (i32.const 0))
  (func (export "probe") (result i32)
    (if (call $found) (then (call $emit (i32.const 64))) (else (call $emit (i32.const 128))))
    (i32.const 0)))
