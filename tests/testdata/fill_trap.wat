;; Grows its memory to 256 pages (16 MiB, the default cap), writes every byte,
;; then traps: each call leaves a full memory behind and forces a replacement.
(module
  (memory (export "memory") 1)
  (func (export "fill") (result i32)
    (drop (memory.grow (i32.const 255)))
    (memory.fill (i32.const 0) (i32.const 171) (i32.const 16777216))
    unreachable))
