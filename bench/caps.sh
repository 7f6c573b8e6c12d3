#!/usr/bin/env bash
# caps.sh - tassa at Twilio's caps (issue 12): one workspace, one queue, 15,000 workers and a
# big queue of waiting tasks, printing the ratios the issue's targets name.
#   ./bench/caps.sh           (after make build; needs wrk and node)
# Settings: CAPS_WORKERS (15000), CAPS_TASKS (waiting tasks at the end; 100000 by default,
# which fits in a few minutes on a 2-core machine; 500000 is Twilio's cap), DUR (wrk runs, 10s),
# ROUNDS (3: the alternations below), TASSA_BIN, PORT (and PORT+1). The workers are Offline (the
# workspace default): present, none eligible.
# This machine's speed drifts by tens of percent from one minute to the next, so the two rates
# a ratio compares are taken side by side: a second server (PORT+1, its own data file, the same
# queue and workflow, no workers) runs beside the main one, and /healthz, task creation there
# and task creation on the main server (with its workers) take turns, ROUNDS slices of DUR
# each; each ratio is of the sums.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TASSA_BIN:-./build/tassa}
DUR=${DUR:-10s}
PORT=${PORT:-3903}
WORKERS=${CAPS_WORKERS:-15000}
TASKS=${CAPS_TASKS:-100000}
BIG=${CAPS_BIG:-100000} # the queue length of the second get-queue-position sample
LOAD="node $PWD/bench/caps_load.mjs"
ROUNDS=${ROUNDS:-3}
DIR=$(mktemp -d)
. bench/lib.sh
trap 'for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$DIR"' EXIT
# the side server, no workers: its credentials, workspace and wrk script under NONE_*
NONE_PORT=$((PORT + 1))
bench_serve "$DIR/none.db" "$NONE_PORT"
bench_queue "$DIR/none.db" "$NONE_PORT"
NONE_A=$A NONE_TR=$TR NONE_Q=$Q NONE_WS=$WORKSPACE_SID
cp "$DIR/task.lua" "$DIR/task-none.lua"
bench_serve "$DIR/caps.db" "$PORT"
bench_queue "$DIR/caps.db" "$PORT"
TASK_BODY='Attributes=%7B%22topic%22%3A%22t{i}%22%7D&Priority=3'
# waiting [AUTH TR Q]: the tasks waiting in the main server's queue (or in that one)
waiting() {
  curl -s -u "${1:-$A}" "${2:-$TR}/TaskQueues/${3:-$Q}/RealTimeStatistics" |
    grep -o '"total_tasks":[0-9]*' | cut -d: -f2
}
fill_to() { # fill_to N [AUTH TR Q]: creates tasks until N wait
  local n=$(($1 - $(waiting "${2:-$A}" "${3:-$TR}" "${4:-$Q}")))
  if [ "$n" -gt 0 ]; then $LOAD create "http://${3:-$TR}/Tasks" "${2:-$A}" "$n" 20 "$TASK_BODY" >/dev/null; fi
}
# create_workers N CONC: creates N workers (Offline, attributes {"n": i}) over CONC connections
# with wrk and bench/create.lua, timed from wrk's start to its last answer (Node's fetch, the
# client before, took a whole core of the two and was the limit); prints n= seconds= rps=
# failed=, and fails unless all N were created.
create_workers() {
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(wrk -t1 -c"$2" -d${CREATE_BOUND:-300s} -s bench/create.lua "http://127.0.0.1:$PORT/v1/Workspaces/$WORKSPACE_SID/Workers" \
    -- "$1" "Basic $(printf '%s' "$A" | base64 -w0)" 'FriendlyName=w{i}&Attributes=%7B%22n%22%3A{i}%7D')
  t1=$(date +%s.%N)
  local created failed
  created=$(echo "$out" | sed -n 's/^created=\([0-9]*\) failed=.*/\1/p')
  failed=$(echo "$out" | sed -n 's/^created=[0-9]* failed=\([0-9]*\)/\1/p')
  awk -v n="${created:-0}" -v f="${failed:-1}" -v s="$(awk "BEGIN {print $t1 - $t0}")" \
    'BEGIN {printf "n=%d seconds=%.2f rps=%.0f failed=%d\n", n, s, n / s, f}'
  [ "${created:-0}" -eq "$1" ] && [ "${failed:-1}" -eq 0 ]
}
wrk_rps() { wrk -t2 -c50 -d"$DUR" "$@" | awk '/Requests\/sec/ {print $2}'; }
sum() { awk '{ s += $1 } END { printf "%.2f", s }' <<<"$(printf '%s\n' "$@")"; }
position() { # latency of get-queue-position for a probe task at the end of the queue
  # the probe has the queue's priority and is the newest: every waiting task is ahead of it
  curl -s -u "$A" "$TR/Tasks" -d Priority=3 \
    --data-urlencode "Attributes={\"topic\":\"probe$1\",\"identity\":\"bob\"}" >/dev/null
  $LOAD latency "http://localhost:$PORT/queue/get-queue-position" x:y 30 \
    "token=$TOKEN&identity=bob&topic=probe$1"
}
TOKEN=$($BIN user-token bob --data "$DIR/caps.db")
# settle LABEL [DB]: waits (at most 5 minutes) until the engine has delivered every recorded event
# to the router function, so that a measurement does not share the store with the delivery of
# the previous step's events, and prints how many were waiting and how long that took (the
# delivery lag a burst leaves behind). Reads the data file with sqlite3 (read-only, beside the
# server, as WAL allows).
settle() {
  command -v sqlite3 >/dev/null || return 0
  local db=${2:-$DIR/caps.db}
  local q="SELECT coalesce((SELECT max(seq) FROM tr_events), 0) - (SELECT seq FROM tr_event_cursor)"
  local t0 n0 n
  t0=$(date +%s.%N)
  n0=$(sqlite3 "file:$db?mode=ro" "$q" 2>/dev/null || echo 0)
  n=$n0
  for _ in $(seq 3000); do
    [ "${n:-0}" -le 0 ] && break
    sleep 0.1
    n=$(sqlite3 "file:$db?mode=ro" "$q" 2>/dev/null || echo "$n")
  done
  echo "bench name=events_settled after=$1 undelivered=$n0 seconds=$(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}")"
}

fill_to 1000
settle fill_1000
pos_small=$(position small)
echo "bench name=queue_position waiting=$(waiting) $pos_small"
wk=$(create_workers "$WORKERS" 20) || { echo "worker creation failed: $wk" >&2; exit 1; }
echo "bench name=worker_create conns=20 $wk"
settle worker_create
fill_to 1000 "$NONE_A" "$NONE_TR" "$NONE_Q"
settle fill_1000 "$DIR/none.db"
# the side by side rounds: /healthz, creation with no workers, creation with WORKERS present
H=() R0=() R1=()
for round in $(seq "$ROUNDS"); do
  H+=("$(wrk_rps "http://127.0.0.1:$NONE_PORT/healthz")")
  echo "bench name=healthz round=$round conns=50 rps=${H[-1]}"
  R0+=("$(wrk_rps -s "$DIR/task-none.lua" "http://127.0.0.1:$NONE_PORT/v1/Workspaces/$NONE_WS/Tasks")")
  echo "bench name=task_create round=$round workers=0 conns=50 rps=${R0[-1]} waiting_after=$(waiting "$NONE_A" "$NONE_TR" "$NONE_Q")"
  settle "task_create_workers_0_round_$round" "$DIR/none.db"
  R1+=("$(wrk_rps -s "$DIR/task.lua" "http://127.0.0.1:$PORT/v1/Workspaces/$WORKSPACE_SID/Tasks")")
  echo "bench name=task_create round=$round workers=$WORKERS conns=50 rps=${R1[-1]} waiting_after=$(waiting)"
  settle "task_create_workers_${WORKERS}_round_$round"
done
healthz=$(sum "${H[@]}") rps0=$(sum "${R0[@]}") rps1=$(sum "${R1[@]}")
fill_to "$BIG"
settle fill_$BIG
pos_big=$(position big)
echo "bench name=queue_position waiting=$(waiting) $pos_big"
# the workspace holds at most 500,000 tasks (Twilio's cap): the first-in-line probe below is
# the last of CAPS_TASKS
if [ "$TASKS" -gt 100000 ]; then fill_to "$((TASKS - 1))" && settle "fill_$TASKS"; fi
n=$(waiting)
rt=$($LOAD latency "http://$TR/TaskQueues/$Q/RealTimeStatistics" "$A" 10)
echo "bench name=queue_realtime_stats waiting=$n $rt"
rt=$($LOAD latency "http://$TR/RealTimeStatistics" "$A" 10)
echo "bench name=workspace_realtime_stats waiting=$n $rt"
sid=$(curl -s -u "$A" "$TR/Tasks" -d Priority=100 --data-urlencode 'Attributes={"topic":"first"}' |
  grep -o '"sid":"WT[0-9a-f]*"' | cut -d'"' -f4)
if [ -z "$sid" ]; then echo "the first-in-line probe task was not created" >&2; exit 1; fi
n=$(waiting)
first=$($LOAD first "http://localhost:$PORT/v1/Services/default/Documents/queue-status" "$A" "$sid" 60000)
echo "bench name=queue_status_first waiting=$n $first"
bytes=$(du -cb "$DIR"/caps.db* | tail -1 | cut -f1)
echo "bench name=disk waiting=$n bytes=$bytes bytes_per_waiting_task=$((bytes / n))"
# where the bytes are: sqlite's dbstat, bytes per waiting task of the biggest tables and indexes
if command -v sqlite3 >/dev/null; then
  sqlite3 "$DIR/caps.db" "SELECT name, sum(pgsize) / $n FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 10" |
    while IFS='|' read -r name per; do echo "bench name=dbstat table=$name bytes_per_waiting_task=$per"; done
fi
echo "bench name=rss peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)"
python3 - "$rps1" "$rps0" "$healthz" "$pos_small" "$pos_big" "$wk" "$ROUNDS" "$WORKERS" <<'PY'
import sys
w, n, h = (float(x) for x in sys.argv[1:4])
kv = lambda s: dict(p.split("=", 1) for p in s.split())
small, big, wk = (kv(s) for s in sys.argv[4:7])
rounds = int(sys.argv[7])
print(f"ratio name=task_create_workers_vs_none value={w / n:.2f} target=0.7 rounds={rounds}")
print(f"ratio name=task_create_vs_healthz value={n / h:.3f} target=0.1 rounds={rounds}")
print(f"ratio name=queue_position_big_vs_small value={float(big['p50_ms']) / float(small['p50_ms']):.2f} target=2")
print(f"figure name=worker_create_seconds value={wk['seconds']} target=15")
print(f"figure name=task_create_per_s_workers_0 value={n / rounds:.0f}")
print(f"figure name=task_create_per_s_workers_{sys.argv[8]} value={w / rounds:.0f}")
PY
