;; Exercises Extism's host ABI beyond input/output, one export each; the input
;; block doubles as key, value or message.
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "length_unsafe" (func $length_unsafe (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "error_get" (func $error_get (result i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_warn" (func $log_warn (param i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_headers" (func $http_headers (result i64)))
  (memory (export "memory") 1)
  (func $out (param $block i64)
    (call $output_set (local.get $block) (call $length (local.get $block))))
  ;; config_get(input): the value, or a failure when the key is not configured
  ;; (config_get frees its argument, so the input block is gone afterwards).
  (func (export "config") (result i32) (local $r i64)
    (local.set $r (call $config_get (call $input_offset)))
    (if (i64.eqz (local.get $r)) (then (return (i32.const 1))))
    (call $out (local.get $r))
    (i32.const 0))
  ;; var_set(input, input) then var_get(input): the input back, from the instance's vars.
  (func (export "vars") (result i32)
    (call $var_set (call $input_offset) (call $input_offset))
    (call $out (call $var_get (call $input_offset)))
    (i32.const 0))
  ;; var_get(input) alone: what an earlier call stored.
  (func (export "var_read") (result i32) (local $r i64)
    (local.set $r (call $var_get (call $input_offset)))
    (if (i64.eqz (local.get $r)) (then (return (i32.const 0))))
    (call $out (local.get $r))
    (i32.const 0))
  ;; log_warn and log_info of the input, when the host's level lets them through.
  (func (export "log") (result i32)
    (if (i32.le_u (call $get_log_level) (i32.const 3))
      (then (call $log_warn (call $input_offset)) (call $log_info (call $input_offset))))
    (i32.const 0))
  ;; error_set(input), then error_get must return it: the call fails with the input as message.
  (func (export "error") (result i32)
    (call $error_set (call $input_offset))
    (if (i64.eqz (call $error_get)) (then unreachable))
    (i32.const 1))
  ;; output_set(input_offset, length_unsafe(input_offset)): an echo.
  (func (export "echo_unsafe") (result i32)
    (call $output_set (call $input_offset) (call $length_unsafe (call $input_offset)))
    (i32.const 0))
  ;; http_request(input) then http_headers: the response headers as JSON.
  (func (export "headers") (result i32) (local $h i64)
    (drop (call $http_request (call $input_offset) (i64.const 0)))
    (local.set $h (call $http_headers))
    (if (i64.eqz (local.get $h)) (then unreachable))
    (call $out (local.get $h))
    (i32.const 0)))
