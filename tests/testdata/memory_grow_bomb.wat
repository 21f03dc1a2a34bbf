;; Grows linear memory one page at a time, forever, ignoring failures.
(module
  (memory (export "memory") 1)
  (func (export "grow") (result i32)
    (loop $more
      (drop (memory.grow (i32.const 16)))
      (br $more))
    (i32.const 0)))
