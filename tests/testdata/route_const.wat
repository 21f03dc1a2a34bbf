;; Test-only route hooks: every export outputs a constant HookOutput (a
;; NUL-terminated string in this module's memory, copied to Extism memory).
;; Request or response phase alike; the route picks the export.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  ;; allow: {"allow":true}
  (data (i32.const 16) "{\"allow\":true}\00")
  ;; set_a1: {"headers":{"set":{"x-a":"1","x-one":"yes"}}}
  (data (i32.const 32) "{\"headers\":{\"set\":{\"x-a\":\"1\",\"x-one\":\"yes\"}}}\00")
  ;; set_a2: {"headers":{"set":{"x-a":"2","x-b":"two"}}}
  (data (i32.const 80) "{\"headers\":{\"set\":{\"x-a\":\"2\",\"x-b\":\"two\"}}}\00")
  ;; remove_a: {"headers":{"remove":["x-a"]}}
  (data (i32.const 128) "{\"headers\":{\"remove\":[\"x-a\"]}}\00")
  ;; status_299: {"status":299}
  (data (i32.const 160) "{\"status\":299}\00")
  ;; status_298: {"status":298}
  (data (i32.const 176) "{\"status\":298}\00")
  ;; status_zero: {"status":0}
  (data (i32.const 192) "{\"status\":0}\00")
  ;; set_body: {"body":"cmVwbGFjZWQ="}
  (data (i32.const 208) "{\"body\":\"cmVwbGFjZWQ=\"}\00")
  ;; deny_451: {"allow":false,"status":451,"headers":{"set":{"content-type":"text/plain","x-denied-by":"451"}},"body":"ZGVuaWVkIGJ5IDQ1MQ=="}
  (data (i32.const 240) "{\"allow\":false,\"status\":451,\"headers\":{\"set\":{\"content-type\":\"text/plain\",\"x-denied-by\":\"451\"}},\"body\":\"ZGVuaWVkIGJ5IDQ1MQ==\"}\00")
  ;; deny_452: {"allow":false,"status":452,"body":"ZGVuaWVkIGJ5IDQ1Mg=="}
  (data (i32.const 368) "{\"allow\":false,\"status\":452,\"body\":\"ZGVuaWVkIGJ5IDQ1Mg==\"}\00")
  ;; deny_default: {"allow":false}
  (data (i32.const 432) "{\"allow\":false}\00")
  ;; Outputs the NUL-terminated string at $ptr.
  (func $emit (param $ptr i32)
    (local $len i32) (local $i i32) (local $out i64)
    (block $done (loop $scan
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $len)))))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $scan)))
    (local.set $out (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $copied (loop $copy
      (br_if $copied (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $out) (i64.extend_i32_u (local.get $i)))
        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set (local.get $out) (i64.extend_i32_u (local.get $len))))
  (func (export "allow") (result i32) (call $emit (i32.const 16)) (i32.const 0))
  (func (export "set_a1") (result i32) (call $emit (i32.const 32)) (i32.const 0))
  (func (export "set_a2") (result i32) (call $emit (i32.const 80)) (i32.const 0))
  (func (export "remove_a") (result i32) (call $emit (i32.const 128)) (i32.const 0))
  (func (export "status_299") (result i32) (call $emit (i32.const 160)) (i32.const 0))
  (func (export "status_298") (result i32) (call $emit (i32.const 176)) (i32.const 0))
  (func (export "status_zero") (result i32) (call $emit (i32.const 192)) (i32.const 0))
  (func (export "set_body") (result i32) (call $emit (i32.const 208)) (i32.const 0))
  (func (export "deny_451") (result i32) (call $emit (i32.const 240)) (i32.const 0))
  (func (export "deny_452") (result i32) (call $emit (i32.const 368)) (i32.const 0))
  (func (export "deny_default") (result i32) (call $emit (i32.const 432)) (i32.const 0))
)
