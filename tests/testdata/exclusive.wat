;; Detects two calls sharing one instance: "enter" marks the instance busy,
;; waits in a host call, and traps if another call marked it meanwhile.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/user" "keycard_test_sleep" (func $sleep (param i64) (result i64)))
  (memory (export "memory") 1)
  (global $busy (mut i32) (i32.const 0))
  (func (export "enter") (result i32)
    (if (global.get $busy) (then unreachable))
    (global.set $busy (i32.const 1))
    (drop (call $sleep (call $alloc (i64.const 0))))
    (if (i32.eqz (global.get $busy)) (then unreachable))
    (global.set $busy (i32.const 0))
    (i32.const 0)))
