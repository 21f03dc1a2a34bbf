// quoter: a route handler (answers instead of an upstream), no keycard host
// calls.
//
// handle: HookInput JSON in, HookOutput JSON out: {"status":200, "headers":
// {"set":{"content-type":"application/json"}}, "body": base64 of
// {"quote":"<quote>","path":"<path>"}}. The quote is QUOTES[FNV-1a 64 of the
// path's UTF-8 bytes mod QUOTES.length], so a path always gets the same one.

import {
  base64EncodeString,
  fnv1a64,
  inputString,
  jsonGetStringField,
  jsonString,
  outputString,
  toBytes,
} from "../../../pdk/assemblyscript/assembly/index";

const QUOTES: string[] = [
  "Simplicity is prerequisite for reliability. - Edsger W. Dijkstra",
  "Premature optimization is the root of all evil. - Donald Knuth",
  "Make it work, make it right, make it fast. - Kent Beck",
  "Programs must be written for people to read, and only incidentally for machines to execute. - Harold Abelson",
  "The cheapest, fastest, and most reliable components are those that aren't there. - Gordon Bell",
  "Controlling complexity is the essence of computer programming. - Brian Kernighan",
  "Talk is cheap. Show me the code. - Linus Torvalds",
];

export function handle(): i32 {
  const input = inputString();
  const p = jsonGetStringField(input, "path");
  const path = p === null ? "" : changetype<string>(p);
  const index = <i32>(fnv1a64(toBytes(path)) % <u64>QUOTES.length);
  const body = "{\"quote\":" + jsonString(unchecked(QUOTES[index])) + ",\"path\":" + jsonString(path) + "}";
  outputString(
    "{\"allow\":true,\"status\":200,\"headers\":{\"set\":{\"content-type\":\"application/json\"}},\"body\":" +
      jsonString(base64EncodeString(body)) + "}",
  );
  return 0;
}

/** JSON metadata matching plugin.yaml. */
export function describe(): i32 {
  outputString("{\"name\":\"quoter\",\"version\":\"1.0.0\",\"exports\":[\"handle\",\"describe\"]}");
  return 0;
}
