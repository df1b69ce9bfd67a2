# Shared by the bench scripts: sourced, not run.

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One wrk run: measure URL [HEADER] [LUA SCRIPT] → prints "requests/s p50_ms p99_ms".
# Fails when any answer was not 2xx, so an error page is never measured.
# Uses DURATION (seconds) from the caller.
measure() {
  local args=(-t1 -c50 -d"${DURATION}s" --latency)
  [ -n "${2:-}" ] && args+=(-H "$2")
  [ -n "${3:-}" ] && args+=(-s "$3")
  wrk "${args[@]}" "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 } /^ +50%/ { p50=ms($2) } /^ +99%/ { p99=ms($2) }
    /Non-2xx/ { bad=$NF } END { if (bad) { print "non-2xx answers: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}

# Waits until souq on PORT answers /readyz (up to 30 s).
wait_ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.1; done; return 1; }

machine() { echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"; }

# Measures each target ROUNDS times, rounds alternating between targets so that
# machine noise hits them alike. Targets are "name|url|header|script" (header
# and script may be empty). Leaves per-target averages in RPS, P50 and P99.
declare -A RPS P50 P99
run_rounds() {
  local round t name url header r a b
  for round in $(seq "$ROUNDS"); do
    for t in "$@"; do
      IFS='|' read -r name url header script <<<"$t"
      read -r r a b < <(measure "$url" "$header" "$script")
      echo "round $round  $name  $r req/s  p50 $a ms  p99 $b ms" >&2
      RPS[$name]=$(( ${RPS[$name]:-0} + r ))
      P50[$name]=$(awk -v x="${P50[$name]:-0}" -v y="$a" 'BEGIN{print x+y}')
      P99[$name]=$(awk -v x="${P99[$name]:-0}" -v y="$b" 'BEGIN{print x+y}')
    done
  done
  for name in "${!RPS[@]}"; do
    RPS[$name]=$(( ${RPS[$name]} / ROUNDS ))
    P50[$name]=$(awk -v s="${P50[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}')
    P99[$name]=$(awk -v s="${P99[$name]}" -v n="$ROUNDS" 'BEGIN{printf "%.3f", s/n}')
  done
}

# A markdown row: label, target name, the name of the target it is compared to.
table_row() {
  echo "| $1 | ${RPS[$2]} | ${P50[$2]} | ${P99[$2]} | $(awk -v a="${RPS[$2]}" -v b="${RPS[$3]}" 'BEGIN{printf "%.0f %%", 100*a/b}') |"
}
