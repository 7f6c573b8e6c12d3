#!/usr/bin/env bash
# scale.sh - a big queue: fills one TaskRouter queue with waiting tasks (no teller on duty)
# for DUR at 50 connections, then times the reads that must not grow with the queue:
# /queue/get-queue-position (hyperfine) and the queue's statistics.
#   ./bench/scale.sh          (after make build; needs wrk and hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TASSA_BIN:-./build/tassa}
DUR=${DUR:-20s}
PORT=${PORT:-3902}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
. bench/lib.sh
bench_serve "$DIR/scale.db" "$PORT"
bench_queue "$DIR/scale.db" "$PORT"
rps=$(wrk -t2 -c50 -d"$DUR" -s "$DIR/task.lua" "http://127.0.0.1:$PORT/v1/Workspaces/$WORKSPACE_SID/Tasks" |
  awk '/Requests\/sec/ {print $2}')
curl -s -u "$A" "$TR/Tasks" --data-urlencode 'Attributes={"topic":"probe","identity":"bob"}' >/dev/null
sleep 1
waiting=$(curl -s -u "$A" "$TR/TaskQueues/$Q/RealTimeStatistics" | grep -o '"total_tasks":[0-9]*' | cut -d: -f2)
echo "bench name=task_create conns=50 rps=$rps waiting_after=$waiting"
TOKEN=$($BIN user-token bob --data "$DIR/scale.db")
hyperfine -N -w 3 -r 30 --export-json "$DIR/h.json" \
  "curl -s localhost:$PORT/queue/get-queue-position -d token=$TOKEN -d identity=bob -d topic=probe" \
  "curl -s -u $A $TR/TaskQueues/$Q/CumulativeStatistics" >/dev/null
python3 - "$DIR/h.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    name = "queue_position" if "position" in r["command"] else "queue_cumulative_stats"
    print(f"bench name={name} mean_ms={r['mean']*1000:.2f} max_ms={r['max']*1000:.2f}")
PY
echo "rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)"
