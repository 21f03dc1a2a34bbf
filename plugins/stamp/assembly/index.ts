// stamp: an example keycard plugin that calls keycard host functions.
// Host errors (denied, not_found, ...) arrive as values, never traps: `stamp`
// reports them in its output, the other exports turn them into Extism errors.

import {
  clockNow,
  fsRead,
  HostResult,
  inputBytes,
  jsonString,
  fromBytes,
  kvGet,
  kvSet,
  logWrite,
  outputBytes,
  outputString,
  randomGet,
  setError,
  toBytes,
  toHex,
} from "../../../pdk/assemblyscript/assembly/index";

function errorEntry(part: string, r: HostResult): string {
  return "{\"part\":" + jsonString(part) + ",\"code\":" + jsonString(r.errorCode) +
    ",\"message\":" + jsonString(r.errorMessage) + "}";
}

/**
 * {"input": "...", "now": <clock.now JSON> | null, "nonce": "<16 hex>" | null,
 *  "errors": [{"part","code","message"}]}. Always returns 0.
 */
export function stamp(): i32 {
  const input = inputBytes();
  const errors = new Array<string>();

  const log = logWrite("info", "stamping " + input.length.toString() + " bytes");
  if (!log.ok) errors.push(errorEntry("log", log));

  const clock = clockNow();
  let now = "null";
  if (clock.ok) {
    const t = clock.text().trim();
    if (t.length > 0) now = t;
  } else {
    errors.push(errorEntry("now", clock));
  }

  const rnd = randomGet(8);
  let nonce = "null";
  if (rnd.ok) {
    nonce = "\"" + toHex(rnd.bytes) + "\"";
  } else {
    errors.push(errorEntry("nonce", rnd));
  }

  outputString(
    "{\"input\":" + jsonString(fromBytes(input)) + ",\"now\":" + now +
      ",\"nonce\":" + nonce + ",\"errors\":[" + errors.join(",") + "]}",
  );
  return 0;
}

/** Increments kv "counter" (absent = 0) and outputs the new value as text. */
export function kv_counter(): i32 {
  let count: u64 = 0;
  const cur = kvGet("counter");
  if (cur.ok) {
    const s = cur.text().trim();
    for (let i = 0; i < s.length; i++) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) {
        setError("kv_counter: stored counter is not a number: " + s);
        return 1;
      }
      count = count * 10 + <u64>d;
    }
  } else if (cur.errorCode != "not_found") {
    setError(cur.errorCode + ": " + cur.errorMessage);
    return 1;
  }
  count++;
  const text = count.toString();
  const set = kvSet("counter", toBytes(text));
  if (!set.ok) {
    setError(set.errorCode + ": " + set.errorMessage);
    return 1;
  }
  outputString(text);
  return 0;
}

/** Input: a path. Outputs the file's bytes (fs.read). */
export function read_file(): i32 {
  const path = fromBytes(inputBytes());
  const r = fsRead(path);
  if (!r.ok) {
    setError(r.errorCode + ": " + r.errorMessage);
    return 1;
  }
  if (r.bytes.length > 0) outputBytes(r.bytes);
  return 0;
}

/** JSON metadata matching plugin.yaml. */
export function describe(): i32 {
  outputString(
    "{\"name\":\"stamp\",\"version\":\"1.0.0\",\"exports\":" +
      "[\"stamp\",\"kv_counter\",\"read_file\",\"describe\"]}",
  );
  return 0;
}
