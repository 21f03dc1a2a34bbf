// hello: a pure-compute keycard plugin (no grants, no keycard host calls).
// Every export follows the Extism convention: returns 0 on success, 1 on error
// (with the message set through setError).

import {
  inputBytes,
  inputString,
  outputBytes,
  outputString,
  setError,
} from "../../../pdk/assemblyscript/assembly/index";

/** "Hello, <name>!" ("Hello, world!" for an empty input). */
export function greet(): i32 {
  const name = inputString();
  outputString("Hello, " + (name.length == 0 ? "world" : name) + "!");
  return 0;
}

/** Output = input, byte for byte. */
export function echo(): i32 {
  const input = inputBytes();
  if (input.length > 0) outputBytes(input);
  return 0;
}

/** Does nothing, outputs nothing. */
export function noop(): i32 {
  return 0;
}

/** {"count": n}: the number of ASCII vowels (aeiouAEIOU) in the input. */
export function count_vowels(): i32 {
  const input = inputBytes();
  let count = 0;
  for (let i = 0; i < input.length; i++) {
    const c = <i32>unchecked(input[i]) | 0x20; // ASCII lower-case
    if (c == 0x61 || c == 0x65 || c == 0x69 || c == 0x6f || c == 0x75) count++;
  }
  outputString("{\"count\":" + count.toString() + "}");
  return 0;
}

/**
 * fib(n) modulo 2^64, n given as decimal text. Deliberately compute-heavy
 * (O(n^2)): for every i <= n it also recomputes fib(i) from scratch in a nested
 * loop and checks it against the running value, so the work cannot be
 * optimised away. Used to benchmark instrumentation overhead.
 */
export function fib(): i32 {
  const s = inputString().trim();
  if (s.length == 0) {
    setError("fib: input must be a decimal integer");
    return 1;
  }
  let n: u64 = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) {
      setError("fib: input must be a decimal integer");
      return 1;
    }
    if (n > (U64.MAX_VALUE - <u64>d) / 10) {
      setError("fib: input too large");
      return 1;
    }
    n = n * 10 + <u64>d;
  }
  let a: u64 = 0; // fib(i)
  let b: u64 = 1; // fib(i + 1)
  for (let i: u64 = 0; i < n; i++) {
    const t = a + b;
    a = b;
    b = t;
    // nested loop: recompute fib(i + 1) from scratch
    let x: u64 = 0;
    let y: u64 = 1;
    for (let j: u64 = 0; j <= i; j++) {
      const u = x + y;
      x = y;
      y = u;
    }
    if (x != a) {
      setError("fib: internal mismatch");
      return 1;
    }
  }
  outputString(a.toString());
  return 0;
}

/** JSON metadata matching plugin.yaml. */
export function describe(): i32 {
  outputString(
    "{\"name\":\"hello\",\"version\":\"1.0.0\",\"exports\":" +
      "[\"greet\",\"echo\",\"noop\",\"count_vowels\",\"fib\",\"describe\"]}",
  );
  return 0;
}
