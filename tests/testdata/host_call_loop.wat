;; Calls a keycard host function in a tight loop, forever.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "hammer") (result i32)
    (local $request i64)
    (loop $more
      (local.set $request (call $alloc (i64.const 0)))
      (call $free (call $now (local.get $request)))
      (call $free (local.get $request))
      (br $more))
    (i32.const 0)))
