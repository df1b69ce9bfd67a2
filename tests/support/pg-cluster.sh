#!/usr/bin/env bash
# Throw-away PostgreSQL 15 cluster for tests.
#
#   pg-cluster.sh start DIR   create a cluster in DIR, start it on 127.0.0.1 and a free
#                             port, wait until it accepts connections, and print ONE line
#                             on stdout: postgres://postgres@127.0.0.1:PORT/postgres
#   pg-cluster.sh stop DIR    stop it (pg_ctl stop -m fast) and remove DIR
#
# initdb and postgres refuse to run as root: when run as root, they run as the
# `postgres` user (runuser) and DIR is made owned by that user. Works as a normal
# user too. Auth is `trust`: for test clusters only. Diagnostics go to stderr;
# the server log is DIR/postgres.log.
#
# Tests trade durability for speed (fsync off, 64 MB of shared buffers);
# PG_CLUSTER_SETTINGS="-c name=value …" comes after those and wins (the
# benchmarks run a production-like cluster that way).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg-cluster.sh: $*" >&2; exit 1; }

usage() { die "usage: pg-cluster.sh start|stop DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

as_owner() {
  # Run a command as the cluster owner (postgres when we are root).
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  # Ask the kernel for an ephemeral port (closed again at once; start retries on a race).
  if command -v python3 >/dev/null 2>&1 &&
     python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null; then
    return 0
  fi
  if command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
    return 0
  fi
  # Last resort: a random port in a range the kernel does not hand out by default.
  echo $(( 20000 + RANDOM % 12000 ))
}

start() {
  [ -x "$PGBIN/initdb" ] || die "no PostgreSQL binaries in $PGBIN (Debian package postgresql-15)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir is not empty"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
    chown postgres: "$dir"
    chmod 700 "$dir"
    # The postgres user must be able to reach DIR through its parents.
    runuser -u postgres -- test -x "$dir" ||
      die "user postgres cannot reach $dir (a parent folder is not traversable); use a folder under /tmp"
  fi

  # Run everything from inside DIR so the owner never needs access to our cwd.
  cd "$dir"
  as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
    --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_owner mkdir -p "$dir/sock"

  local attempt port
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(free_port)
    if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             -c shared_buffers=64MB ${PG_CLUSTER_SETTINGS:-}" \
         start >"$dir/pg_ctl.log" 2>&1; then
      # pg_ctl -w waited for the postmaster; also check TCP on the chosen port.
      local i
      for i in $(seq 1 100); do
        if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
          echo "$port" >"$dir/port"
          echo "postgres://postgres@127.0.0.1:$port/postgres"
          return 0
        fi
        sleep 0.1
      done
      echo "pg-cluster.sh: started but port $port does not answer; retrying" >&2
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    else
      echo "pg-cluster.sh: start on port $port failed (attempt $attempt):" >&2
      tail -n 5 "$dir/postgres.log" >&2 2>/dev/null || true
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  die "could not start PostgreSQL in $dir (see $dir/postgres.log)"
}

stop() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd -P)
  if [ -f "$dir/data/postmaster.pid" ]; then
    (cd "$dir" && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) ||
      (cd "$dir" && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$dir"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
