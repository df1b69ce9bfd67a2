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


declare -A rps p50 p99
for round in $(seq "$ROUNDS"); do
  for name in public me; do
    if [ "$name" = public ]; then read -r r a b < <(measure "http://127.0.0.1:$PORT/api/v1/users/$USER")
    else read -r r a b < <(measure "http://127.0.0.1:$PORT/api/v1/users/me" "Authorization: Bearer $TOKEN"); fi
    echo "round $round  $name  $r req/s  p50 $a ms  p99 $b ms" >&2
    rps[$name]=$(( ${rps[$name]:-0} + r ))
    p50[$name]=$(awk -v x="${p50[$name]:-0}" -v y="$a" 'BEGIN{print x+y}')
    p99[$name]=$(awk -v x="${p99[$name]:-0}" -v y="$b" 'BEGIN{print x+y}')
  done
done
echo
echo "machine: $(machine); wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds; SQLite"
echo
echo "| route | requests/s | p50 ms | p99 ms | ratio |"
echo "|---|---|---|---|---|"
base=$(( ${rps[public]} / ROUNDS ))
for name in public me; do
  r=$(( ${rps[$name]} / ROUNDS ))
  label="GET /api/v1/users/{id} (no token)"; [ "$name" = me ] && label="GET /api/v1/users/me (token checked)"
  echo "| $label | $r | $(awk -v s="${p50[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}') | $(awk -v s="${p99[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}') | $(awk -v a="$r" -v b="$base" 'BEGIN{printf "%.0f %%", 100*a/b}') |"
done
