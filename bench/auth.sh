#!/usr/bin/env bash
# What the access-token check costs, on the same route: GET /api/v1/users/{id}
# (one account and its roles read) without a token and with a buyer's token
# (signature, session and account checked). GET /api/v1/users/me (token
# required, a larger document) is shown beside them.
#
# 1. Throughput: wrk, 50 connections, rounds alternating between targets.
# 2. Instructions per request under callgrind (exact and repeatable, unlike
#    seconds on a shared machine): the server is run once per target, N
#    requests each, minus a run with none. A third target sends a header of
#    the token's size that nothing reads, which separates receiving the
#    token (HTTP parsing) from checking it.
#
#   bench/auth.sh [seconds per round, default 10] [rounds, default 3] [requests under callgrind, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10}
ROUNDS=${2:-3}
COUNT=${3:-2000}
BUILD=${SOUQ_BUILD_DIR:-build}
ROOT=$(pwd)
command -v wrk >/dev/null || { echo "bench: needs wrk"; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Starts souq (optionally under a wrapper such as valgrind) in a fresh folder
# and registers one account: sets PORT, TOKEN, USER, pid.
start_souq() {
  local dir="$work/$1"; shift
  mkdir -p "$dir"
  PORT=$(free_port)
  (cd "$dir" && exec "$@" "$ROOT/$BUILD/souq" serve --listen "127.0.0.1:$PORT" --rate-limit 0 --workers 0 \
     --log-level warn >"$dir/souq.log" 2>&1) &
  pid=$!
  wait_ready "$PORT"
  local reply
  reply=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password","display_name":"Bench"}')
  TOKEN=$(python3 -c 'import sys,json; print(json.loads(sys.argv[1])["data"]["access_token"])' "$reply")
  USER=$(python3 -c 'import sys,json; print(json.loads(sys.argv[1])["data"]["user"]["id"])' "$reply")
}
stop_souq() { kill -INT "$pid"; wait "$pid" || true; pid=""; }

start_souq wrk
run_rounds "public|http://127.0.0.1:$PORT/api/v1/users/$USER|" \
           "checked|http://127.0.0.1:$PORT/api/v1/users/$USER|Authorization: Bearer $TOKEN" \
           "me|http://127.0.0.1:$PORT/api/v1/users/me|Authorization: Bearer $TOKEN"
stop_souq

# Instructions per request: target = none | public | padded | checked
declare -A INSTR
instructions() {
  local target=$1 n=$2 out="$work/cg.$1.$2"
  start_souq "cg-$1-$2" valgrind --tool=callgrind --callgrind-out-file="$out"
  local padding
  padding=$(python3 -c 'import sys; print("X" * len(sys.argv[1]))' "Bearer $TOKEN")
  case $target in
    public) python3 bench/keepalive_get.py "$PORT" "/api/v1/users/$USER" "$n" "" ;;
    padded) python3 bench/keepalive_get.py "$PORT" "/api/v1/users/$USER" "$n" "X-Padding: $padding" ;;
    checked) python3 bench/keepalive_get.py "$PORT" "/api/v1/users/$USER" "$n" "Authorization: Bearer $TOKEN" ;;
  esac
  stop_souq
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}
if command -v valgrind >/dev/null; then
  base=$(instructions none 0)
  for t in public padded checked; do INSTR[$t]=$(( ($(instructions "$t" "$COUNT") - base) / COUNT )); done
fi

echo
echo "machine: $(machine); wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds; SQLite"
echo
echo "| route | requests/s | p50 ms | p99 ms | ratio |"
echo "|---|---|---|---|---|"
table_row "GET /api/v1/users/{id}, no token" public public
table_row "GET /api/v1/users/{id}, token checked" checked public
table_row "GET /api/v1/users/me, token checked (a larger document)" me public
if [ -n "${INSTR[public]:-}" ]; then
  pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f %%", 100*a/b}'; }
  echo
  echo "callgrind, $COUNT requests per target on one keep-alive connection:"
  echo
  echo "| GET /api/v1/users/{id} | instructions per request | over no token |"
  echo "|---|---|---|"
  echo "| no token | ${INSTR[public]} | |"
  echo "| a header of the token's size, unread | ${INSTR[padded]} | $(pct $((INSTR[padded] - INSTR[public])) "${INSTR[public]}") |"
  echo "| token checked | ${INSTR[checked]} | $(pct $((INSTR[checked] - INSTR[public])) "${INSTR[public]}") |"
  echo "| the check alone (checked - unread header) | $((INSTR[checked] - INSTR[padded])) | $(pct $((INSTR[checked] - INSTR[padded])) "${INSTR[public]}") |"
fi
