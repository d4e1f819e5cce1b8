#!/usr/bin/env bash
# bench/projector/cpu.sh - CPU per event of the live projector and the replay, A/B across binaries.
#
#   bash bench/projector/cpu.sh EVENTS ROUNDS BINARY...
#
# Each round runs every BINARY (a bench_projector, e.g. an old build's copy and the current one)
# once, in turn, so that the machine's foreign load falls on all of them alike. For each run and
# phase (the live projector draining the backlog; the replay: rebuild, verify, swap) it prints
# the rate and the CPU time spent per event by the bench process (all its threads: librdkafka's
# included), by the local PostgreSQL (every process of the stack's server: the backends, WAL
# writer, checkpointer, autovacuum) and by the Kafka broker, from /proc (utime + stime) at the
# phase's start and end. Wall rate alone follows the other sessions' load on a shared machine;
# CPU per event does much less. Lines: "bin=<n> phase=<live|replay> events_per_s=... ms=...
# us_ev_self=... us_ev_pg=... us_ev_kafka=... idle_pct=..." (idle: the share of the phase's
# two-core capacity none of the three used).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$ROOT"

EVENTS=${1:?events}
ROUNDS=${2:?rounds}
shift 2
HZ=$(getconf CLK_TCK)
CORES=$(nproc)
PGPID=$(head -1 "$TK_VAR/pg/data/postmaster.pid")
KPID=$(head -c 32 "$TK_VAR/kafka/kafka.pid" 2>/dev/null | tr -dc 0-9 || true)

ticks() { # pid...: utime + stime of those processes (all threads), in clock ticks
  local s=0 p f
  for p in "$@"; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }
    # shellcheck disable=SC2086
    set -- $f
    s=$((s + ${12} + ${13}))
  done
  echo "$s"
}
# PostgreSQL's processes come and go (a backend per connection), and an ended one's CPU reaches
# the server's cutime only once reaped: each process's ticks are remembered as last seen, sampled
# every 100 ms while the bench runs (an ending process loses at most its last 100 ms).
declare -A PGL=()
pg_sample() {
  local p t
  for p in $(ps -o pid= --ppid "$PGPID"); do
    t=$(ticks "$p")
    if [ "$t" -ge "${PGL[$p]:-0}" ]; then PGL[$p]=$t; fi
  done
}
pg_ticks() {
  pg_sample
  local s p
  s=$(ticks "$PGPID")
  for p in "${!PGL[@]}"; do s=$((s + PGL[$p])); done
  echo "$s"
}
now_ms() { date +%s%3N; }

snap() { # prefix
  eval "$1_self=$(ticks "$bp")" "$1_pg=$(pg_ticks)" "$1_k=$(ticks ${KPID:-0})" "$1_t=$(now_ms)"
}
report() { # bin phase events a b
  local ms=$(($5_t - $4_t))
  local self=$(($5_self - $4_self)) pg=$(($5_pg - $4_pg)) k=$(($5_k - $4_k))
  awk -v b="$1" -v ph="$2" -v n="$3" -v ms="$ms" -v s="$self" -v pg="$pg" -v k="$k" -v hz="$HZ" \
    -v c="$CORES" 'BEGIN {
      us = 1e6 / hz
      idle = 100 - 100 * (s + pg + k) / hz / (ms / 1000 * c)
      printf "bin=%s phase=%s events_per_s=%.0f ms=%d us_ev_self=%.1f us_ev_pg=%.1f us_ev_kafka=%.1f idle_pct=%.0f\n",
        b, ph, n * 1000 / (ms > 0 ? ms : 1), ms, s * us / n, pg * us / n, k * us / n, idle }'
}

for round in $(seq "$ROUNDS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    # `times` after it: the process's own CPU once it has ended (its /proc entry is gone by then)
    coproc BP { "$bin" "$EVENTS" 2>>"$TK_VAR/bench-cpu.log"; times; }
    cp=$BP_PID
    exec {out}<&"${BP[0]}" {in}>&"${BP[1]}" # bash forgets BP once the process ends
    declare -A R=()
    while IFS= read -r line <&"$out"; do
      R[${line%%=*}]=${line#*=}
      [[ $line == topic=* ]] && break
    done
    bp=$(ps -o pid= --ppid "$cp" | tr -d ' ')
    snap a
    echo go >&"$in"
    while :; do
      IFS= read -r -t 0.1 line <&"$out" || { [ $? -gt 128 ] && { pg_sample; continue; }; break; }
      R[${line%%=*}]=${line#*=}
      case $line in
      live_per_s=*) snap b ;;
      replay_swapped=*) snap c ;;
      *m*s\ *m*s) # times: the shell's line, then its child's (user, system)
        c_self=$(awk -v hz="$HZ" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/);
          t += a[1] * 60 + a[2] } printf "%d", t * hz }' <<<"$line") ;;
      esac
    done
    exec {out}<&- {in}>&-
    wait "$cp" || true
    echo "# round=$round bin=$i $bin load=$(cut -d' ' -f1 /proc/loadavg) identical=${R[replay_identical]:-?} build_per_s=${R[replay_build_per_s]:-?}"
    report "$i" live "$EVENTS" a b
    report "$i" replay "$EVENTS" b c
  done
done
