#!/usr/bin/env bash
# HTTP throughput, side by side in one run: a minimal Beast hello-world built
# from bench/hello.cpp (the ceiling) against souq's /healthz and a route that
# reads the database (/api/v1/status). Each target gets the same wrk load
# (50 connections), rounds alternate so machine noise hits both alike, and
# the result is reported as requests/s, p50/p99 and the ratio to the ceiling.
#
#   bench/http.sh [seconds per round, default 10] [rounds, default 3]
# Needs: wrk (Debian package), a build (scripts/setup).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10}
ROUNDS=${2:-3}
THREADS=${SOUQ_BENCH_THREADS:-2}
BUILD=${SOUQ_BUILD_DIR:-build}
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)"; exit 1; }
[ -x "$BUILD/souq" ] && [ -x "$BUILD/bench_hello" ] || { echo "bench: build first (scripts/setup)"; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

HELLO_PORT=$(free_port)
SOUQ_PORT=$(free_port)
"$BUILD/bench_hello" "$HELLO_PORT" "$THREADS" & pids+=($!)
# The default configuration, except the per-IP rate limit: every wrk
# connection comes from 127.0.0.1. Logs go to a file, as in production.
(cd "$work" && exec "$OLDPWD/$BUILD/souq" serve --listen "127.0.0.1:$SOUQ_PORT" --threads "$THREADS" \
   --rate-limit 0 >"$work/souq.log" 2>&1) & pids+=($!)
for port in "$HELLO_PORT" "$SOUQ_PORT"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done

# Prints "rps p50_ms p99_ms" for one wrk run.

run_rounds "ceiling|http://127.0.0.1:$HELLO_PORT/healthz|" \
           "healthz|http://127.0.0.1:$SOUQ_PORT/healthz|" \
           "status|http://127.0.0.1:$SOUQ_PORT/api/v1/status|"

echo
echo "machine: $(machine); wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds; servers with $THREADS I/O threads"
echo
echo "| target | requests/s | p50 ms | p99 ms | ratio to ceiling |"
echo "|---|---|---|---|---|"
table_row "Beast hello-world (bench/hello.cpp)" ceiling ceiling
table_row "souq GET /healthz" healthz ceiling
table_row "souq GET /api/v1/status (reads the database)" status ceiling
