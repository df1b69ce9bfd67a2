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

declare -A sum_rps sum_p50 sum_p99
targets=("ceiling http://127.0.0.1:$HELLO_PORT/healthz"
         "healthz http://127.0.0.1:$SOUQ_PORT/healthz"
         "status http://127.0.0.1:$SOUQ_PORT/api/v1/status")
for round in $(seq "$ROUNDS"); do
  for t in "${targets[@]}"; do
    name=${t%% *}; url=${t#* }
    read -r rps p50 p99 < <(measure "$url")
    echo "round $round  $name  $rps req/s  p50 ${p50} ms  p99 ${p99} ms" >&2
    sum_rps[$name]=$(( ${sum_rps[$name]:-0} + rps ))
    sum_p50[$name]=$(awk -v a="${sum_p50[$name]:-0}" -v b="$p50" 'BEGIN{print a+b}')
    sum_p99[$name]=$(awk -v a="${sum_p99[$name]:-0}" -v b="$p99" 'BEGIN{print a+b}')
  done
done

echo
echo "machine: $(machine); wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds; servers with $THREADS I/O threads"
echo
echo "| target | requests/s | p50 ms | p99 ms | ratio to ceiling |"
echo "|---|---|---|---|---|"
ceiling=$(( ${sum_rps[ceiling]} / ROUNDS ))
for name in ceiling healthz status; do
  rps=$(( ${sum_rps[$name]} / ROUNDS ))
  p50=$(awk -v s="${sum_p50[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}')
  p99=$(awk -v s="${sum_p99[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}')
  ratio=$(awk -v a="$rps" -v b="$ceiling" 'BEGIN{printf "%.0f %%", 100*a/b}')
  label=$name; [ "$name" = ceiling ] && label="Beast hello-world (bench/hello.cpp)"
  [ "$name" = healthz ] && label="souq GET /healthz"; [ "$name" = status ] && label="souq GET /api/v1/status (reads the database)"
  echo "| $label | $rps | $p50 | $p99 | $ratio |"
done
