;; Test-only route hook that traps at once (unreachable), in either phase.
(module
  (memory (export "memory") 1)
  (func (export "unreachable") (result i32) (unreachable)))
