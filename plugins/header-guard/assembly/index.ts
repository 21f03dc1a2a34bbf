// header-guard: a route hook (request phase) with no keycard host calls.
//
// on_request: HookInput JSON in, HookOutput JSON out.
// - Denies ({"allow":false,"status":401,...}) a request without the header
//   named by config `required_header` (default "x-api-key"; an empty value
//   counts as missing).
// - Otherwise allows it and, unless the request already carries one, sets the
//   request id header (config `request_id_header`, default "x-request-id") to
//   16 hex digits: FNV-1a 64 of method, path, query and the headers (sorted by
//   name), so the same request always gets the same id.

import {
  base64EncodeString,
  configGet,
  fnv1a64,
  hex64,
  inputString,
  jsonGetRaw,
  jsonGetStringField,
  jsonObjectKeys,
  jsonString,
  outputString,
  toBytes,
} from "../../../pdk/assemblyscript/assembly/index";

/** A config value, trimmed and lower-cased (header names are lower-cased in HookInput); `fallback` when absent or empty. */
function headerNameConfig(key: string, fallback: string): string {
  const v = configGet(key);
  if (v === null) return fallback;
  const s = changetype<string>(v).trim().toLowerCase();
  return s.length == 0 ? fallback : s;
}

/** A string field of the HookInput, "" when absent or not a string. */
function field(input: string, key: string): string {
  const v = jsonGetStringField(input, key);
  return v === null ? "" : changetype<string>(v);
}

/** The header's value (string) in the HookInput's headers object, or null. */
function header(headers: string, name: string): string | null {
  return jsonGetStringField(headers, name);
}

export function on_request(): i32 {
  const input = inputString();
  const required = headerNameConfig("required_header", "x-api-key");
  const idHeader = headerNameConfig("request_id_header", "x-request-id");

  const rawHeaders = jsonGetRaw(input, "headers");
  const headers = rawHeaders === null ? "{}" : changetype<string>(rawHeaders);

  const key = header(headers, required);
  if (key === null || changetype<string>(key).trim().length == 0) {
    const message = "{\"error\":" + jsonString("missing header " + required) + "}";
    outputString(
      "{\"allow\":false,\"status\":401,\"headers\":{\"set\":{\"content-type\":\"application/json\"}}," +
        "\"body\":" + jsonString(base64EncodeString(message)) + "}",
    );
    return 0;
  }

  const existing = header(headers, idHeader);
  if (existing !== null && changetype<string>(existing).length > 0) {
    outputString("{\"allow\":true}");
    return 0;
  }

  // Canonical text: method, path, query, then "name:value" per header sorted by name.
  const names = jsonObjectKeys(headers);
  names.sort((a: string, b: string): i32 => (a < b ? -1 : a > b ? 1 : 0));
  let canon = field(input, "method") + "\n" + field(input, "path") + "\n" + field(input, "query") + "\n";
  for (let i = 0; i < names.length; i++) {
    const name = unchecked(names[i]);
    const v = header(headers, name);
    canon += name + ":" + (v === null ? "" : changetype<string>(v)) + "\n";
  }
  const id = hex64(fnv1a64(toBytes(canon)));
  outputString(
    "{\"allow\":true,\"headers\":{\"set\":{" + jsonString(idHeader) + ":" + jsonString(id) + "}}}",
  );
  return 0;
}

/** JSON metadata matching plugin.yaml. */
export function describe(): i32 {
  outputString("{\"name\":\"header-guard\",\"version\":\"1.0.0\",\"exports\":[\"on_request\",\"describe\"]}");
  return 0;
}
