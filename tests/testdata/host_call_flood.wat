;; Makes N host calls in one invocation (N: the input's first 8 bytes, little
;; endian), reading every byte of every response. "flood_keep" never frees a
;; response block (as PDKs that copy and forget do), "flood_free" frees each,
;; "flood_ignore" neither reads nor frees any (a hoard of unread responses).
;; Output: 16 bytes, the count of ok responses then of error responses.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
  (memory (export "memory") 1)
  (func $flood (param $free i32) (param $read i32) (result i32)
    (local $n i64) (local $i i64) (local $request i64) (local $response i64)
    (local $len i64) (local $j i64) (local $status i32) (local $sum i32)
    (local $ok i64) (local $errors i64) (local $out i64)
    (local.set $n (call $input_load_u64 (i64.const 0)))
    (local.set $request (call $alloc (i64.const 2)))
    (block $done
      (loop $more
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $response (call $now (local.get $request)))
        (local.set $len (select (call $length (local.get $response)) (i64.const 0) (local.get $read)))
        (local.set $status (call $load_u8 (local.get $response)))
        (local.set $j (i64.const 0))
        (block $read
          (loop $byte
            (br_if $read (i64.ge_u (local.get $j) (local.get $len)))
            (local.set $sum (i32.add (local.get $sum)
              (call $load_u8 (i64.add (local.get $response) (local.get $j)))))
            (local.set $j (i64.add (local.get $j) (i64.const 1)))
            (br $byte)))
        (if (i32.eqz (local.get $status))
          (then (local.set $ok (i64.add (local.get $ok) (i64.const 1))))
          (else (local.set $errors (i64.add (local.get $errors) (i64.const 1)))))
        (if (local.get $free) (then (call $free (local.get $response))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $more)))
    (local.set $out (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $out) (local.get $ok))
    (call $store_u64 (i64.add (local.get $out) (i64.const 8)) (local.get $errors))
    (call $output_set (local.get $out) (i64.const 16))
    (i32.const 0))
  (func (export "flood_keep") (result i32) (call $flood (i32.const 0) (i32.const 1)))
  (func (export "flood_free") (result i32) (call $flood (i32.const 1) (i32.const 1)))
  (func (export "flood_ignore") (result i32) (call $flood (i32.const 0) (i32.const 0))))
