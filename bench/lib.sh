# lib.sh - what the bench scripts share; sourced, never run. Needs BIN, DIR (a temporary folder
# the caller removes) and curl.

# bench_serve STORE PORT: starts `tassa serve` on STORE (a data file or a postgres:// URL) in the
# background, its log in $DIR/log-PORT; sets PID and appends it to BENCH_PIDS; waits until
# /healthz answers, or exits 1 with the log.
BENCH_PIDS=()
bench_serve() {
  $BIN serve --port "$2" --data "$1" --quiet 2>>"$DIR/log-$2" &
  PID=$!
  BENCH_PIDS+=("$PID")
  for _ in $(seq 100); do curl -sf "localhost:$2/healthz" >/dev/null && return; sleep 0.1; done
  echo "tassa on port $2 did not start:" >&2
  cat "$DIR/log-$2" >&2
  exit 1
}

# bench_queue STORE PORT: reads STORE's credentials into the environment and sets A (Basic
# user:password for curl -u) and TR (the workspace's URL); creates queue Q (every worker) and
# a workflow routing to it; writes $DIR/task.lua, a wrk script creating one task per request.
bench_queue() {
  eval "$($BIN credentials --data "$1")"
  A="$API_KEY:$API_SECRET"
  TR="localhost:$2/v1/Workspaces/$WORKSPACE_SID"
  Q=$(curl -s -u "$A" "$TR/TaskQueues" -d FriendlyName=Q -d 'TargetWorkers=1==1' |
    grep -o '"sid":"WQ[0-9a-f]*"' | cut -d'"' -f4)
  curl -s -u "$A" "$TR/Workflows" -d FriendlyName=W \
    --data-urlencode "Configuration={\"task_routing\":{\"default_filter\":{\"queue\":\"$Q\"}}}" >/dev/null
  cat >"$DIR/task.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$API_KEY" "$API_SECRET" | base64 -w0)"
wrk.body = "Attributes=%7B%22topic%22%3A%22x%22%7D&Priority=3"
LUA
}
