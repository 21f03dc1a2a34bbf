;; Extism's loop-forever.wasm: its only export never returns.
(module
  (memory (export "memory") 1)
  (func (export "loop") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
