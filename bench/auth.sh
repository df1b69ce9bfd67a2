#!/usr/bin/env bash
# What the access-token check costs: GET /api/v1/users/me (token checked, then
# the account and its roles read) against GET /api/v1/users/{id} (the same
# account and roles read, no token), side by side in one run, rounds
# alternating, 50 connections each.
#
#   bench/auth.sh [seconds per round, default 10] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10}
ROUNDS=${2:-3}
BUILD=${SOUQ_BUILD_DIR:-build}
command -v wrk >/dev/null || { echo "bench: needs wrk"; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
PORT=$(free_port)
(cd "$work" && exec "$OLDPWD/$BUILD/souq" serve --listen "127.0.0.1:$PORT" --rate-limit 0 >"$work/souq.log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
reply=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password","display_name":"Bench"}')
TOKEN=$(python3 -c 'import sys,json; print(json.loads(sys.argv[1])["data"]["access_token"])' "$reply")
USER=$(python3 -c 'import sys,json; print(json.loads(sys.argv[1])["data"]["user"]["id"])' "$reply")


run_rounds "public|http://127.0.0.1:$PORT/api/v1/users/$USER|" \
           "public_hdr|http://127.0.0.1:$PORT/api/v1/users/$USER|Authorization: Bearer $TOKEN" \
           "me|http://127.0.0.1:$PORT/api/v1/users/me|Authorization: Bearer $TOKEN"

echo
echo "machine: $(machine); wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds; SQLite"
echo
echo "| route | requests/s | p50 ms | p99 ms | ratio |"
echo "|---|---|---|---|---|"
table_row "GET /api/v1/users/{id} (no token)" public public
table_row "GET /api/v1/users/{id} (token sent, not checked)" public_hdr public
table_row "GET /api/v1/users/me (token checked)" me public
