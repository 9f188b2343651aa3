#!/usr/bin/env bash
# Shell-script clients: curl used the way scripts use it (-sS, -N, --fail-with-body) and jq reading the
# answers and the OpenAI-shaped errors, against the real llmux and the project's mock upstream.
set -uo pipefail
LLMUX_BIN=${LLMUX_BIN:-build/llmux}
MOCK_BIN=${MOCK_UPSTREAM_BIN:-build/tests/mock-upstream}
work=$(mktemp -d)
pass=0
fail=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; [ $# -gt 1 ] && echo "#   $2"; }
check() { # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}
wait_for() { # wait_for FILE REGEX: a hang guard for start-up lines
  for _ in $(seq 300); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for /$2/ in $1"; cat "$1"; exit 1
}

"$MOCK_BIN" --port 0 >"$work/mock.out" 2>&1 &
pids+=($!)
wait_for "$work/mock.out" 'PORT=[0-9]+'
mport=$(sed -n 's/^PORT=\([0-9]*\)$/\1/p' "$work/mock.out")
cat >"$work/llmux.json" <<JSON
{ "state_dir": "$work/state",
  "providers": { "up": { "type": "openai", "base_url": "http://127.0.0.1:$mport/v1" },
                 "mock": { "type": "mock" } },
  "aliases": { "fast": "mock/echo" } }
JSON
"$LLMUX_BIN" --config "$work/llmux.json" --listen 127.0.0.1:0 >"$work/llmux.log" 2>&1 &
lpid=$!
pids+=($lpid)
wait_for "$work/llmux.log" 'listening on http://127.0.0.1:[0-9]+'
base=$(grep -oE 'http://127.0.0.1:[0-9]+' "$work/llmux.log" | head -1)

body() { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "${3:-}"; }

# curl -sS: the answer's text, with jq
out=$(curl -sS "$base/v1/chat/completions" -H 'Content-Type: application/json' -d "$(body up/x 'hi from bash')")
check "curl -sS non-stream content" "echo: hi from bash" "$(jq -r '.choices[0].message.content' <<<"$out")"
check "alias through curl" "stop" "$(curl -sS "$base/v1/chat/completions" -d "$(body fast 'x')" | jq -r '.choices[0].finish_reason')"

# curl -N: the stream, line by line, as a script would read it
curl -sS -N "$base/v1/chat/completions" -H 'Content-Type: application/json' \
  -d "$(body 'up/x;chunks=4' 'stream to bash' ',"stream":true')" >"$work/stream.txt"
check "curl -N ends with [DONE]" "data: [DONE]" "$(grep '^data:' "$work/stream.txt" | tail -1)"
text=$(grep '^data: {' "$work/stream.txt" | sed 's/^data: //' | jq -rj '.choices[0].delta.content // empty')
check "curl -N chunks join to the answer" "echo: stream to bash" "$text"
check "curl -N content chunks" "4" "$(grep '^data: {' "$work/stream.txt" | sed 's/^data: //' | jq -r 'select(.choices[0].delta.content != null and .choices[0].delta.content != "") | 1' | wc -l | tr -d ' ')"

# --fail-with-body: non-zero exit on an HTTP error, with the error JSON on stdout
out=$(curl -sS --fail-with-body "$base/v1/chat/completions" -d "$(body nobody/x 'x')" 2>"$work/err.txt")
rc=$?
check "--fail-with-body exits 22 on 404" "22" "$rc"
check "error JSON code on 404" "model_not_found" "$(jq -r '.error.code' <<<"$out")"
check "curl names the status on stderr" "1" "$(grep -c '404' "$work/err.txt")"
out=$(curl -sS --fail-with-body "$base/v1/chat/completions" -d '{"model":"up/x"}')
check "400 names the missing field" "messages" "$(jq -r '.error.param' <<<"$out")"
out=$(curl -sS --fail-with-body "$base/v1/chat/completions" -d "$(body 'up/x;status=429' 'x')" -D "$work/h.txt")
check "429 passes through" "rate_limit_exceeded" "$(jq -r '.error.code' <<<"$out")"
check "429 keeps Retry-After" "1" "$(grep -i '^retry-after:' "$work/h.txt" | tr -d '\r' | awk '{print $2}')"
check "status via -w" "405" "$(curl -sS -o /dev/null -w '%{http_code}' "$base/v1/chat/completions")"

# a stream that fails after it began: curl exits 0 and the last event is the error
curl -sS -N "$base/v1/chat/completions" -d "$(body 'up/x;fault=close_midstream' 'x' ',"stream":true')" >"$work/s2.txt"
check "mid-stream failure is an SSE error event" "upstream_error" "$(grep '^data: {"error"' "$work/s2.txt" | sed 's/^data: //' | jq -r '.error.type')"

# models and health
check "models list has the mock provider" "mock/echo" "$(curl -sS "$base/v1/models" | jq -r '.data[].id' | grep -x 'mock/echo')"
check "healthz" "ok" "$(curl -sS --fail "$base/healthz" | jq -r .status)"

# SIGTERM: exits 0
kill -TERM "$lpid"
wait "$lpid"
check "SIGTERM exits 0" "0" "$?"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
