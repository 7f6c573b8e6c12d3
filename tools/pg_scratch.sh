#!/usr/bin/env bash
# tools/pg_scratch.sh - a throw-away PostgreSQL cluster for tests, on loopback only.
#
#   tools/pg_scratch.sh run CMD [ARGS...]  start a cluster, run CMD with TASSA_TEST_PG_URL set to
#                                          its database URL, stop and delete the cluster; exits
#                                          with CMD's status (non-zero when the cluster cannot
#                                          start: a test that needs it then FAILS, never skips)
#   tools/pg_scratch.sh start DIR          start a cluster in the empty folder DIR; prints its URL
#   tools/pg_scratch.sh stop DIR           stop the cluster of DIR (the folder stays)
#   tools/pg_scratch.sh restart DIR        start the stopped cluster of DIR again, same port
#
# In `run`, CMD also gets TASSA_TEST_PG_DIR (the cluster's folder) and TASSA_TEST_PG_SCRATCH
# (this script), so a test can stop and restart the server (an outage).
#
# The cluster: initdb -A trust -U tassa, one database "tassa", listening on 127.0.0.1 at a free
# port with its socket in DIR, fsync on. PostgreSQL refuses to run as root: as root, the server
# runs as the user $PG_SCRATCH_USER (default: nobody) through runuser, and DIR is handed to it.
# Needs initdb, pg_ctl and createdb on PATH (or in /usr/lib/postgresql/*/bin).
set -euo pipefail

# Debian keeps the server tools out of PATH: put the newest version's first, so that initdb,
# pg_ctl and createdb come from one version.
pg_bin=
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && pg_bin=$d
done
[ -n "$pg_bin" ] && PATH="$pg_bin:$PATH"
export PATH

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "${PG_SCRATCH_USER:-nobody}" -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1
  mkdir -p "$dir/data"
  if [ "$(id -u)" = 0 ]; then
    chmod 755 "$dir"
    chown -R "${PG_SCRATCH_USER:-nobody}" "$dir"
  fi
  as_owner initdb -A trust -U tassa -E UTF8 --no-locale -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
    echo "pg_scratch: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    return 1
  }
  launch "$dir" "" || return 1
  createdb -h 127.0.0.1 -p "$(cat "$dir/port")" -U tassa tassa || return 1
  echo "postgres://tassa@127.0.0.1:$(cat "$dir/port")/tassa"
}

# Starts the server of DIR on port PORT, or on a free one when PORT is empty.
launch() {
  local dir=$1 port=$2 tries=0
  while :; do
    [ -n "$2" ] || port=$((20000 + RANDOM % 40000))
    if as_owner pg_ctl -w -t 60 -D "$dir/data" -l "$dir/server.log" \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if [ $tries -ge 5 ]; then
      echo "pg_scratch: the server does not start:" >&2
      tail -n 20 "$dir/server.log" >&2 || true
      return 1
    fi
  done
  echo "$port" >"$dir/port"
}

stop() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  as_owner pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  restart) launch "$2" "$(cat "$2/port")" ;;
  run)
    shift
    dir=$(mktemp -d /tmp/tassa-pg-XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    url=$(start "$dir") || exit 1
    TASSA_TEST_PG_URL=$url TASSA_TEST_PG_DIR=$dir TASSA_TEST_PG_SCRATCH=$(realpath "$0") "$@"
    ;;
  *)
    echo "usage: $0 run CMD... | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
