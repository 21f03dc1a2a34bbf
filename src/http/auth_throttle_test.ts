import assert from "node:assert/strict";
import { AuthThrottle } from "./auth_throttle.ts";

Deno.test("AuthThrottle.fail() answers 0 up to the limit, then the seconds left in the window", () => {
  let now = 1_000_000;
  const throttle = new AuthThrottle({ failures: 2, windowMs: 10_000, now: () => now });
  assert.deepEqual([throttle.fail("192.0.2.1"), throttle.fail("192.0.2.1")], [0, 0]);
  assert.equal(throttle.fail("192.0.2.1"), 10);
  now += 7_500;
  assert.equal(throttle.fail("192.0.2.1"), 3); // rounded up, never 0 while throttled
  assert.equal(throttle.fail("192.0.2.2"), 0); // another address has its own window
  now += 2_500;
  assert.equal(throttle.fail("192.0.2.1"), 0); // a new window
});

Deno.test("AuthThrottle counts an IPv6 address by its /64 and IPv4-mapped IPv6 as IPv4", () => {
  const throttle = new AuthThrottle({ failures: 3 });
  throttle.fail("2001:db8:0:1::1");
  throttle.fail("2001:0db8:0000:0001:ffff::2");
  throttle.fail("[2001:db8:0:1:1:2:3:4]");
  assert.ok(throttle.fail("2001:db8:0:1::9%eth0") > 0);
  assert.equal(throttle.fail("2001:db8:0:2::1"), 0);
  throttle.fail("::ffff:192.0.2.9");
  throttle.fail("192.0.2.9");
  throttle.fail("::ffff:192.0.2.9");
  assert.ok(throttle.fail("192.0.2.9") > 0);
});

Deno.test("AuthThrottle keeps at most maxAddresses windows, dropping the oldest", () => {
  const throttle = new AuthThrottle({ failures: 1, maxAddresses: 3 });
  for (const address of ["a", "b", "c", "d"]) throttle.fail(address);
  assert.equal(throttle.size, 3);
  assert.equal(throttle.fail("a"), 0); // "a" was dropped: a fresh window
  assert.ok(throttle.fail("d") > 0); // "d" was kept
});
