;; Recurses without a base case until the stack runs out.
(module
  (memory (export "memory") 1)
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func (export "recurse") (result i32)
    (drop (call $down (i64.const 0)))
    (i32.const 0)))
