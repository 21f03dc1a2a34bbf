;; Baseline of bench/policy_*.ts: the same shape as tests/testdata/relay.wat
;; without the host call. `echo` reads the input and sets it as the output
;; (what relay does with the host function's answer); `noop` does nothing.
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "noop") (result i32)
    (i32.const 0))
  (func (export "echo") (result i32) (local $r i64)
    (local.set $r (call $input_offset))
    (call $output_set (local.get $r) (call $length (local.get $r)))
    (i32.const 0))
)
