#!/usr/bin/env bash
# The reverse marketplace under load, on SQLite and on PostgreSQL: `souq seed`
# builds a marketplace of REQUESTS requests and OFFERS offers, then wrk
# measures, rounds alternating, 50 connections:
#   - the open-request list as a client opens it (newest first, 20 a page),
#     anonymous (served from the page cache) and signed in (from the database);
#   - the list with filters (category, city, budget) and with a distance
#     filter, signed in (from the database);
#   - offer creation (POST /api/v1/offers), each on a fresh (request, seller) pair.
#
#   bench/marketplace.sh [seconds per round, default 10] [rounds, default 3] [requests, default 100000] [offers, default 500000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10}
ROUNDS=${2:-3}
REQUESTS=${3:-100000}
OFFERS=${4:-500000}
BUILD=${SOUQ_BUILD_DIR:-build}
ROOT=$(pwd)
command -v wrk >/dev/null || { echo "bench: needs wrk"; exit 1; }
work=$(mktemp -d)
pid="" pg_dir=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  [ -n "$pg_dir" ] && bash tests/support/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
json() { python3 -c "import sys,json; d=json.load(sys.stdin); print($1)"; }

bench_engine() {
  local engine=$1 db=$2
  echo "== $engine: seeding $REQUESTS requests, $OFFERS offers" >&2
  local t0=$SECONDS
  "$BUILD/souq" seed --database "$db" --requests "$REQUESTS" --offers "$OFFERS" --log-level warn >&2
  SEED_SECONDS[$engine]=$((SECONDS - t0))
  PORT=$(free_port)
  (cd "$work" && exec "$ROOT/$BUILD/souq" serve --listen "127.0.0.1:$PORT" --database "$db" --rate-limit 0 \
     --log-level warn >"$work/souq-$engine.log" 2>&1) &
  pid=$!
  wait_ready "$PORT"
  local base="http://127.0.0.1:$PORT/api/v1" h='Content-Type: application/json'
  "$BUILD/souq" admin create --database "$db" --email "admin-$engine@example.com" --password 'bench password' >/dev/null
  local admin
  admin=$(curl -sf -X POST "$base/auth/login" -H "$h" -d "{\"email\":\"admin-$engine@example.com\",\"password\":\"bench password\"}" | json 'd["data"]["access_token"]')
  local tokens=()
  for i in 1 2 3 4 5; do
    local reply token profile
    reply=$(curl -sf -X POST "$base/auth/register" -H "$h" -d "{\"email\":\"seller$i-$engine@example.com\",\"password\":\"bench password\",\"display_name\":\"Bench seller $i\"}")
    token=$(echo "$reply" | json 'd["data"]["access_token"]')
    profile=$(curl -sf -X POST "$base/seller-profiles" -H "$h" -H "Authorization: Bearer $token" -d '{"business_name":"Bench","city":"Cairo"}' | json 'd["data"]["id"]')
    curl -sf -X POST "$base/admin/seller-profiles/$profile/approve" -H "Authorization: Bearer $admin" >/dev/null
    tokens+=("$token")
  done
  # Open requests to offer on (the newest, far from expiring): ids and lowest budgets.
  python3 - "$base" 300 >"$work/offers-$engine.txt" <<'PY'
import datetime, json, sys, urllib.request
base, pages, cursor = sys.argv[1], int(sys.argv[2]), None
# Only requests open for another day: none may expire while offers are made.
later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
for _ in range(pages):
    url = f"{base}/requests?limit=100&sort=newest" + (f"&cursor={cursor}" if cursor else "")
    page = json.load(urllib.request.urlopen(url))
    for r in page["data"]:
        if r["expires_at"] > later:
            print(r["id"], r["budget_min"])
    cursor = page["meta"]["next_cursor"]
    if not cursor:
        break
PY
  export OFFERS_FILE="$work/offers-$engine.txt" SELLER_TOKENS
  SELLER_TOKENS=$(IFS=,; echo "${tokens[*]}")
  unset RPS P50 P99
  declare -gA RPS P50 P99
  local buyer
  buyer=$(curl -sf -X POST "$base/auth/register" -H "$h" -d "{\"email\":\"buyer-$engine@example.com\",\"password\":\"bench password\",\"display_name\":\"Bench buyer\"}" | json 'd["data"]["access_token"]')
  run_rounds "${engine}_cached|$base/requests|" \
             "${engine}_open|$base/requests|Authorization: Bearer $buyer" \
             "${engine}_filtered|$base/requests?category=phones&city=Cairo&currency=EGP&budget_min=500000&budget_max=1500000|Authorization: Bearer $buyer" \
             "${engine}_near|$base/requests?lat=30.0444&lng=31.2357&radius_km=5&sort=ending_soon|Authorization: Bearer $buyer" \
             "${engine}_offer|$base/offers||$ROOT/bench/offers.lua"
  for k in "${!RPS[@]}"; do ALL_RPS[$k]=${RPS[$k]}; ALL_P50[$k]=${P50[$k]}; ALL_P99[$k]=${P99[$k]}; done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

declare -A SEED_SECONDS ALL_RPS ALL_P50 ALL_P99
bench_engine sqlite "sqlite:$work/souq.db"
pg_dir=$(mktemp -d /tmp/souq-bench-pg.XXXXXX)
rmdir "$pg_dir"
pg_admin=$(bash tests/support/pg-cluster.sh start "$pg_dir")
psql -q "$pg_admin" -c 'CREATE DATABASE souq_bench' >/dev/null
bench_engine postgres "${pg_admin%/postgres}/souq_bench"

echo
echo "machine: $(machine); $REQUESTS requests, $OFFERS offers; wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds"
echo
echo "| engine | target | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
for engine in sqlite postgres; do
  for t in cached open filtered near offer; do
    k="${engine}_$t"
    label=$(case $t in
      cached) echo "GET /api/v1/requests, anonymous (page cache)";;
      open) echo "GET /api/v1/requests, signed in (database)";;
      filtered) echo "GET /api/v1/requests?category&city&currency&budget, signed in";;
      near) echo "GET /api/v1/requests?lat&lng&radius_km=5&sort=ending_soon, signed in";;
      offer) echo "POST /api/v1/offers";;
    esac)
    echo "| $engine | $label | ${ALL_RPS[$k]} | ${ALL_P50[$k]} | ${ALL_P99[$k]} |"
  done
done
echo
echo "seeding took ${SEED_SECONDS[sqlite]} s on SQLite and ${SEED_SECONDS[postgres]} s on PostgreSQL"
