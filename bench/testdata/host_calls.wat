;; Benchmark fixture: host-call round trips. `clock100` calls keycard_clock_now
;; 100 times (alloc a 0-byte request, call, free the response, free the
;; request) and outputs nothing; `noop` does nothing, for the baseline.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "noop") (result i32)
    (i32.const 0))
  (func (export "clock100") (result i32)
    (local $i i32)
    (local $request i64)
    (loop $more
      (local.set $request (call $alloc (i64.const 0)))
      (call $free (call $now (local.get $request)))
      (call $free (local.get $request))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100))))
    (i32.const 0)))
