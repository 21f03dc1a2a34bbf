import assert from "node:assert/strict";
import { Semaphore } from "./_semaphore.ts";

Deno.test("Semaphore refuses at once when its queue is full", async () => {
  const semaphore = new Semaphore(1, 1);
  const first = await semaphore.acquire()!;
  const queued = semaphore.acquire();
  assert.ok(queued);
  assert.equal(semaphore.acquire(), undefined);
  first();
  const second = await queued;
  assert.equal(semaphore.active, 1);
  second();
  second(); // releasing twice is harmless
  assert.equal(semaphore.active, 0);
});

Deno.test("Semaphore drops a waiter whose signal aborts", async () => {
  const semaphore = new Semaphore(1, 4);
  const held = await semaphore.acquire()!;
  const controller = new AbortController();
  const waiting = semaphore.acquire(controller.signal)!;
  controller.abort(new Error("deadline"));
  await assert.rejects(waiting, /deadline/);
  assert.equal(semaphore.queued, 0);
  held();
  assert.equal(semaphore.active, 0);
});
