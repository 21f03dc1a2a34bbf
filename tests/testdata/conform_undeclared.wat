;; Reads a configuration variable through keycard_env_get (its input is the
;; request, e.g. {"name":"REGION"}) and outputs the raw response. Its manifest,
;; conform_undeclared.yaml, does not declare env.get.
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "keycard_env_get" (func $env_get (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "region") (result i32) (local $r i64)
    (local.set $r (call $env_get (call $input_offset)))
    (call $output_set (local.get $r) (call $length (local.get $r)))
    (i32.const 0)))
