#!/usr/bin/env bash
# run.sh - measures tassa with wrk on this machine and prints one machine-readable line per
# case: `bench name=... conns=... rps=... p50_ms=... p99_ms=...`, plus ratios to the HTTP
# baseline (GET /healthz) measured in the same run. Reproducible: same binary, same durations.
#   ./bench/run.sh            (after make build; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TASSA_BIN:-./build/tassa}
DUR=${DUR:-10s}
PORT=${PORT:-3901}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
export TASSA_VERIFY_SIGNATURE=false
$BIN serve --port "$PORT" --data "$DIR/bench.db" --quiet 2>"$DIR/log" &
PID=$!
for _ in $(seq 50); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done
eval "$($BIN credentials --data "$DIR/bench.db")"
export TOKEN=$($BIN user-token alice --data "$DIR/bench.db")
export BASIC=$(printf '%s:%s' "$API_KEY" "$API_SECRET" | base64 -w0)
curl -sf -u "$API_KEY:$API_SECRET" "localhost:$PORT/v1/Services/default/Documents" \
  -d UniqueName=bench-doc -d 'Data={"n":0}' >/dev/null

# wrk_case NAME CONNS URL [SCRIPT]: prints the bench line and leaves rps in $RPS.
wrk_case() {
  local name=$1 conns=$2 url=$3 script=${4:-}
  local out
  local threads=$(( conns < 2 ? 1 : 2 ))
  out=$(wrk -t"$threads" -c"$conns" -d"$DUR" --latency ${script:+-s "$script"} "$url")
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local p50 p99
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "bench name=$name conns=$conns rps=$RPS p50=$p50 p99=$p99 non2xx=${non2xx:-0}"
}
base="http://127.0.0.1:$PORT"
wrk_case healthz 100 "$base/healthz";                         BASE=$RPS
wrk_case grant 100 "$base/task/get-sync-grant" bench/grant.lua; GRANT=$RPS
wrk_case grant 1 "$base/task/get-sync-grant" bench/grant.lua
wrk_case router_event 100 "$base/general/router" bench/router.lua; ROUTER=$RPS
wrk_case doc_update 100 "$base/v1/Services/default/Documents/bench-doc" bench/doc_update.lua; DOC=$RPS
awk -v b="$BASE" -v g="$GRANT" -v r="$ROUTER" -v d="$DOC" 'BEGIN {
  printf "ratio grant/healthz=%.2f router_event/healthz=%.3f doc_update/healthz=%.3f\n", g/b, r/b, d/b }'
echo "rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)"
