#!/usr/bin/env bash
# nodes.sh - router events and document writes in three set-ups, measured in one run with wrk:
# one node on SQLite, one node on PostgreSQL, two nodes on one PostgreSQL (wrk drives both at
# once, half the connections each). Prints `bench setup=... name=... rps=...` lines and the
# ratios of each PostgreSQL set-up to the SQLite one.
#   ./bench/nodes.sh          (after make build; needs wrk and PostgreSQL's server binaries)
# DUR=10s CONNS=100 by default. The PostgreSQL cluster is a throw-away one (tools/pg_scratch.sh)
# on loopback, fsync on, in a temporary folder; the SQLite file is in a temporary folder too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TASSA_BIN:-./build/tassa}
DUR=${DUR:-10s}
CONNS=${CONNS:-100}
DIR=$(mktemp -d)
chmod 755 "$DIR" # the PostgreSQL server may run as another user (see tools/pg_scratch.sh)
. bench/lib.sh
stop_nodes() {
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  BENCH_PIDS=()
}
cleanup() {
  stop_nodes
  tools/pg_scratch.sh stop "$DIR/pg" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
export TASSA_VERIFY_SIGNATURE=false

# prepare STORE PORT: credentials and the document the updates go to.
prepare() {
  eval "$($BIN credentials --data "$1")"
  export BASIC=$(printf '%s:%s' "$API_KEY" "$API_SECRET" | base64 -w0)
  curl -sf -u "$API_KEY:$API_SECRET" "localhost:$2/v1/Services/default/Documents" \
    -d UniqueName=bench-doc -d 'Data={"n":0}' >/dev/null || true
}

# rps URL SCRIPT CONNS: "RPS NON2XX" of one wrk run (2 threads).
rps() {
  wrk -t2 -c"$3" -d"$DUR" -s "$2" "$1" |
    awk '/Requests\/sec/ {r = $2} /Non-2xx/ {e = $5} END {print r, e + 0}'
}

# measure SETUP PORT...: document updates, then router events, spread over the given nodes.
measure() {
  local setup=$1
  shift
  local n=$# per=$((CONNS / $#))
  for c in "doc_update /v1/Services/default/Documents/bench-doc bench/doc_update.lua" \
    "router_event /general/router bench/router.lua"; do
    set -- $c "$@"
    local name=$1 path=$2 script=$3
    shift 3
    local total=0 bad=0 outs=()
    for port in "$@"; do
      rps "http://127.0.0.1:$port$path" "$script" "$per" >"$DIR/rps-$port" &
      outs+=($!)
    done
    wait "${outs[@]}"
    for port in "$@"; do
      read -r r e <"$DIR/rps-$port"
      total=$(awk -v a="$total" -v b="$r" 'BEGIN {print a + b}')
      bad=$((bad + e))
    done
    echo "bench setup=$setup nodes=$n name=$name conns=$CONNS rps=$total non2xx=$bad"
    eval "R_${setup}_${name}=$total"
  done
}

bench_serve "$DIR/bench.db" 3911
prepare "$DIR/bench.db" 3911
measure sqlite 3911
stop_nodes

URL=$(tools/pg_scratch.sh start "$DIR/pg")
bench_serve "$URL" 3912
prepare "$URL" 3912
measure pg1 3912
bench_serve "$URL" 3913
measure pg2 3912 3913
stop_nodes

awk -v s1="$R_sqlite_router_event" -v p1="$R_pg1_router_event" -v p2="$R_pg2_router_event" \
  -v s2="$R_sqlite_doc_update" -v q1="$R_pg1_doc_update" -v q2="$R_pg2_doc_update" 'BEGIN {
  printf "ratio router_event pg1/sqlite=%.2f pg2/sqlite=%.2f pg2/pg1=%.2f\n", p1/s1, p2/s1, p2/p1
  printf "ratio doc_update pg1/sqlite=%.2f pg2/sqlite=%.2f pg2/pg1=%.2f\n", q1/s2, q2/s2, q2/q1 }'
