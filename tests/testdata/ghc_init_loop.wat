;; A GHC-like module whose hs_init never returns.
(module
  (memory (export "memory") 1)
  (func (export "hs_init") (loop $forever (br $forever)))
  (func (export "run") (result i32) (i32.const 0)))
