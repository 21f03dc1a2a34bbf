;; Traps at once with unreachable, or with an out-of-bounds load.
(module
  (memory (export "memory") 1)
  (func (export "unreachable") (result i32) (unreachable))
  (func (export "out_of_bounds") (result i32) (i32.load (i32.const 1000000))))
