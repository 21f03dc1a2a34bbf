;; Calls keycard_clock_now exactly N times in one invocation (N: the input's
;; first 8 bytes, little endian), freeing each response: a plugin flooding the
;; audit trail with one identical decision. "flood_log" does the same with
;; Extism's own log_info (audited as log.write).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "flood") (result i32)
    (local $n i64) (local $i i64) (local $request i64)
    (local.set $n (call $input_load_u64 (i64.const 0)))
    (local.set $request (call $alloc (i64.const 0)))
    (block $done
      (loop $more
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $free (call $now (local.get $request)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $more)))
    (i32.const 0))
  (func (export "flood_log") (result i32)
    (local $n i64) (local $i i64)
    (local.set $n (call $input_load_u64 (i64.const 0)))
    (block $done
      (loop $more
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $log_info (call $alloc (i64.const 0)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $more)))
    (i32.const 0)))
