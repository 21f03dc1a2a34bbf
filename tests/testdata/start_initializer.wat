;; AssemblyScript's --exportStart shape (as @assemblyscript/wasi-shim builds):
;; `_start` is the module's initializer, beside ordinary exports; `get` traps
;; unless `_start` ran first.
(module
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (func (export "_start") (global.set $ready (i32.const 1)))
  (func (export "get") (result i32)
    (if (i32.eqz (global.get $ready)) (then unreachable))
    (i32.const 0)))
