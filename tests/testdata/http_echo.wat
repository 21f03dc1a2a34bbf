;; A minimal well-behaved Extism plugin for the HTTP tests: "echo" outputs its
;; input unchanged. No host calls and no "describe" export, so any manifest
;; name and version pass conformance.
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32) (local $in i64)
    (local.set $in (call $input_offset))
    (call $output_set (local.get $in) (call $length (local.get $in)))
    (i32.const 0)))
