;; Its start section never returns: instantiation itself must be bounded.
(module
  (memory (export "memory") 1)
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
