#!/usr/bin/env bash
# A throw-away PostgreSQL server on localhost for tests/test_cluster.py.
#
# Source it (`. .ci/postgres.sh`): it installs the Debian package when no
# server binaries are found, initdb's a cluster into a temporary directory,
# starts it on 127.0.0.1 on a free port (as the `postgres` user when run as
# root: the server refuses to run as root), creates a database, exports
# AELAB_TEST_POSTGRES_URL and stops the server when the calling shell exits.
# Run directly (`bash .ci/postgres.sh CMD ...`) it runs CMD with the URL set.

aelab_pg_bin() {
  { ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -n 1
}

aelab_pg_start() {
  local bin dir port user
  bin="$(aelab_pg_bin)"
  if [ -z "$bin" ]; then
    echo "postgres.sh: installing the postgresql Debian package" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin="$(aelab_pg_bin)"
  fi
  [ -n "$bin" ] || { echo "postgres.sh: no PostgreSQL server binaries after install" >&2; return 1; }
  dir="$(mktemp -d /tmp/aelab-pg.XXXXXX)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    chown postgres "$dir"
    user=postgres
  else
    user="$(id -un)"
  fi
  aelab_pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  aelab_pg_as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  aelab_pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  aelab_pg_as "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres aelab_test
  AELAB_PG_DIR="$dir"
  AELAB_PG_STOP="$bin/pg_ctl -D $dir/data -m immediate stop"
  export AELAB_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/aelab_test"
  echo "postgres.sh: $("$bin/postgres" --version) at $AELAB_TEST_POSTGRES_URL (user $user)" >&2
}

aelab_pg_stop() {
  if [ -n "${AELAB_PG_DIR:-}" ]; then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- $AELAB_PG_STOP >/dev/null 2>&1 || true
    else $AELAB_PG_STOP >/dev/null 2>&1 || true; fi
    rm -rf "$AELAB_PG_DIR"
    AELAB_PG_DIR=""
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run directly: CMD with the URL set
  set -euo pipefail
  aelab_pg_start
  trap aelab_pg_stop EXIT
  if [ $# -gt 0 ]; then "$@"; else echo "$AELAB_TEST_POSTGRES_URL"; fi
else  # sourced: keep the server for the caller's shell, stop it when that shell exits
  aelab_pg_start
  _aelab_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
  trap "aelab_pg_stop; ${_aelab_prev_trap}" EXIT
fi
