;; A describe export whose JSON does not match its manifest
;; (conform_describe_mismatch.yaml): wrong name and version, and an export
;; the manifest does not declare.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"name\":\"other\",\"version\":\"9.9.9\",\"exports\":[\"run\",\"describe\",\"extra\"]}")
  (global $len i32 (i32.const 71))
  (func (export "run") (result i32) (i32.const 0))
  (func (export "describe") (result i32) (local $out i64) (local $i i32)
    (local.set $out (call $alloc (i64.extend_i32_u (global.get $len))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (global.get $len)))
        (call $store_u8 (i64.add (local.get $out) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (call $output_set (local.get $out) (i64.extend_i32_u (global.get $len)))
    (i32.const 0)))
