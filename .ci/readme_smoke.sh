#!/usr/bin/env bash
# The README's set-up as a new user runs it: its start command in this checkout,
# then its curl block against that server, then a graceful stop. Bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
export DENO_NO_PACKAGE_JSON=1

start_cmd=$(sed -nE 's/^(npx -y deno@[0-9.]+ task start)\s+#.*/\1/p' README.md | head -1)
[ -n "$start_cmd" ] || { echo "readme smoke: no start command in README.md" >&2; exit 1; }
block=$(awk '/readme_smoke.sh runs this block/{found=1; next} found && /^```sh/{inblock=1; next} inblock && /^```/{exit} inblock{print}' README.md)
[ -n "$block" ] || { echo "readme smoke: no curl block in README.md" >&2; exit 1; }

log=$(mktemp)
echo "readme smoke: $start_cmd"
setsid bash -c "$start_cmd" >"$log" 2>&1 &
pid=$!
stop() { kill -TERM -- -"$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 240); do
  grep -q "keycard serving on" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "readme smoke: the server exited" >&2; exit 1; }
  sleep 0.5
done
grep -q "keycard serving on" "$log" || { cat "$log"; echo "readme smoke: no banner in 120 s" >&2; exit 1; }
sed -n '/keycard serving on/p;/server permissions/,/allow-env/p' "$log"

out=$(bash -c "$block" 2>&1)
echo "$out"
echo "$out" | grep -q "Hello, keycard!" || { echo "readme smoke: greet did not answer" >&2; exit 1; }
echo "$out" | grep -q '"events"\|"decision"\|\[\]' || { echo "readme smoke: the audit query did not answer JSON" >&2; exit 1; }
quote=$(curl -s -m 10 http://127.0.0.1:8080/quote)
echo "quote: $quote"
[ -n "$quote" ] && ! echo "$quote" | grep -q problem || { echo "readme smoke: /quote failed" >&2; exit 1; }

kill -TERM -- -"$pid"
trap - EXIT
# Wait for the whole process group, not only its leader: npx exits at the signal while the server still drains.
for _ in $(seq 1 60); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 -- -"$pid" 2>/dev/null; then kill -KILL -- -"$pid"; echo "readme smoke: no graceful stop in 30 s" >&2; exit 1; fi
grep -q "keycard stopped" "$log" || { cat "$log"; echo "readme smoke: no graceful stop" >&2; exit 1; }
echo "readme smoke: ok"
