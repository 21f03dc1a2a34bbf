// The standing adversarial suite's bookkeeping: every attack is tried through
// `attack()`, which counts it as held when its check passes, and each area
// prints one line `adversarial <area>: <tried> tried / <held> held`. A test
// fails when any attack of its area did not hold.
import assert from "node:assert/strict";

/** One area's attacks: tried, held, and the names of those that did not hold. */
export interface Tally {
  /** The area, e.g. `"egress"`. */
  readonly area: string;
  /** Attacks tried so far. */
  readonly tried: number;
  /** Attacks that held so far. */
  readonly held: number;
  /**
   * Tries one attack: `check` runs the attack and asserts what must hold; it holds when `check` resolves.
   * A failure is recorded (never thrown here), so the other attacks still run.
   */
  attack(name: string, check: () => unknown | Promise<unknown>): Promise<void>;
  /** Prints the area's line and fails when any attack did not hold, naming each with its error. */
  report(): void;
}

/**
 * Starts the tally of an area.
 *
 * @param area The area's name, printed in the report line.
 * @returns The tally.
 */
export function tally(area: string): Tally {
  let tried = 0;
  const failures: string[] = [];
  return {
    area,
    get tried() {
      return tried;
    },
    get held() {
      return tried - failures.length;
    },
    async attack(name, check) {
      tried++;
      try {
        await check();
      } catch (error) {
        failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
    report() {
      console.log(`adversarial ${area}: ${tried} tried / ${tried - failures.length} held`);
      assert.deepEqual(failures, [], `attacks that did not hold in ${area}:\n${failures.join("\n")}`);
    },
  };
}
