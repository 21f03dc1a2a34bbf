;; Uses Extism's built-in http_request: the input is Extism's request JSON
;; {"url","method","headers"}; the output is the response body.
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
  (memory (export "memory") 1)
  (func (export "fetch") (result i32) (local $r i64)
    (local.set $r (call $http_request (call $input_offset) (i64.const 0)))
    (call $output_set (local.get $r) (call $length (local.get $r)))
    ;; Fail (return 1) unless the status is 200.
    (i32.ne (call $http_status_code) (i32.const 200))))
