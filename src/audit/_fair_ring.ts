// The audit log's in-memory window: a bounded store of recent events that is
// fair between plugins. When it is full, the oldest event of the plugin that
// holds the most events goes (max-min fairness): a plugin's events are evicted
// only while it holds at least as many as every other plugin, so with P
// plugins each keeps at least its newest floor(capacity / P), whatever the
// others do. One plugin flooding only ever pushes out its own events.

import type { AuditEvent } from "./audit_event.ts";

interface Stored {
  seq: number;
  event: AuditEvent;
}

/** One plugin's events, oldest first: an array with a moving head, compacted when half is dead. */
class Queue {
  items: Stored[] = [];
  head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: Stored): void {
    this.items.push(item);
  }

  shift(): void {
    this.items[this.head++] = undefined as unknown as Stored;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** The `age`-th newest (0 = newest), or undefined. */
  at(age: number): Stored | undefined {
    const index = this.items.length - 1 - age;
    return index >= this.head ? this.items[index] : undefined;
  }
}

export class FairRing {
  readonly capacity: number;
  #size = 0;
  #seq = 0;
  #evicted = 0;
  readonly #plugins = new Map<string, Queue>();
  /** Plugins by how many events they hold, for O(1) "who holds the most". */
  readonly #bySize = new Map<number, Set<string>>();
  #max = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Events pushed out of memory so far (they stay in the file). */
  get evicted(): number {
    return this.#evicted;
  }

  push(event: AuditEvent): void {
    if (this.#size === this.capacity) this.#evict(event.plugin);
    let queue = this.#plugins.get(event.plugin);
    if (!queue) this.#plugins.set(event.plugin, queue = new Queue());
    this.#resize(event.plugin, queue.size, queue.size + 1);
    queue.push({ seq: this.#seq++, event });
    this.#size++;
  }

  /** Events newest first (in the order they were pushed), over all plugins or one plugin's. */
  *newest(plugin?: string): Generator<AuditEvent> {
    if (plugin !== undefined) {
      const queue = this.#plugins.get(plugin);
      for (let age = 0; queue && age < queue.size; age++) yield queue.at(age)!.event;
      return;
    }
    // Merge the plugins' queues by sequence, newest first.
    const heads = [...this.#plugins.values()].map((queue) => ({ queue, age: 0 }));
    for (;;) {
      let best: { queue: Queue; age: number } | undefined;
      let bestSeq = -1;
      for (const head of heads) {
        const item = head.queue.at(head.age);
        if (item && item.seq > bestSeq) [best, bestSeq] = [head, item.seq];
      }
      if (!best) return;
      yield best.queue.at(best.age++)!.event;
    }
  }

  /** Evicts the oldest event of a plugin holding the most; `incoming`'s own first on a tie. */
  #evict(incoming: string): void {
    const largest = this.#bySize.get(this.#max)!;
    const victim = largest.has(incoming) ? incoming : largest.values().next().value!;
    const queue = this.#plugins.get(victim)!;
    this.#resize(victim, queue.size, queue.size - 1);
    queue.shift();
    this.#size--;
    this.#evicted++;
    if (queue.size === 0) this.#plugins.delete(victim);
  }

  #resize(plugin: string, from: number, to: number): void {
    if (from > 0) {
      const set = this.#bySize.get(from)!;
      set.delete(plugin);
      if (set.size === 0) this.#bySize.delete(from);
    }
    if (to > 0) {
      let set = this.#bySize.get(to);
      if (!set) this.#bySize.set(to, set = new Set());
      set.add(plugin);
    }
    // Sizes move by one, so the largest is either the new size or one below the old largest.
    if (to > this.#max) this.#max = to;
    else if (from === this.#max && !this.#bySize.has(from)) this.#max = from - 1;
  }
}
