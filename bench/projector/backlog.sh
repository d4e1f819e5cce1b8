#!/usr/bin/env bash
# bench/projector/backlog.sh [tickets] - the `project` role's memory and speed on a backlog: the
# real `ticketing project all` process (every projector of every context, as deployed) started
# behind a backlog of ticket:created events, until each projector of the `tickets` topic has
# caught up. Prints key=value lines: the backlog, the role's peak RSS (VmHWM, from /proc), its RSS
# once drained, and each projector's drain rate (events over the time from its first stored
# offset to its last, so the group join is not counted).
#
#   bash bench/projector/backlog.sh 10000
#
# The backlog comes through the real write path: `ticketing serve all` and `relay all` take
# POST /api/tickets from wrk while no projector runs, then stop. Each run adds a fresh backlog on
# top of the last one's, so runs can be repeated and compared (e.g. the same binary with
# PROJECTOR_BATCH_BYTES set differently); with N = 0 the role drains what is there. Environment: BUILD (default build/release), BENCH_HTTP_PORT
# (default PORT+1), and any setting of the role (it inherits the environment).
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$ROOT"

N=${1:-10000}
BUILD=${BUILD:-build/release}
HTTP_PORT=${BENCH_HTTP_PORT:-$((PORT + 1))}
TK="$BUILD/app/ticketing"
OUT=var/bench
LOG="$OUT/backlog.log"
mkdir -p "$OUT"
PG=(psql -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -X -q -A -t -v ON_ERROR_STOP=1)
say() { echo "backlog: $*" >&2; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

bash scripts/stack.sh start >>"$LOG" 2>&1
"$TK" migrate >>"$LOG" 2>&1
"$TK" topics >>"$LOG" 2>&1

# Sum over the partitions of `tickets` of its end offsets (Kafka) and of a projector's stored ones.
end_offsets() {
  local args=() p
  for p in $(seq 0 $((${KAFKA_PARTITIONS:-6} - 1))); do args+=(-t "tickets:$p:-1"); done
  kcat -b "$KAFKA_BROKERS" -Q "${args[@]}" 2>>"$LOG" | awk '{s += $NF} END {print s + 0}'
}
stored() { # database projection
  "${PG[@]}" -d "$1" -c "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets \
    WHERE projection = '$2' AND topic = 'tickets'"
}

# ---- the backlog, through serve and relay ----------------------------------------------------
before=$(end_offsets)
if [ "$N" -gt 0 ]; then
say "publishing about $N ticket:created events (serve + relay, no projector)"
PORT=$HTTP_PORT TK_LOG_LEVEL=warn "$TK" serve all 2>>"$LOG" & serve_pid=$!
TK_LOG_LEVEL=warn "$TK" relay all 2>>"$LOG" & relay_pid=$!
pids+=("$serve_pid" "$relay_pid")
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
user_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
cookie=$(python3 "$ROOT/bench/cookies.py" 1 "$user_id")
bench_post_ticket_script "$OUT/backlog_post.lua" backlog "$cookie"
# wrk until the relay has published N more records.
wrk -t2 -c16 -d600s -s "$OUT/backlog_post.lua" "http://127.0.0.1:$HTTP_PORT/api/tickets" >>"$LOG" &
wrk_pid=$!
while [ "$(end_offsets)" -lt $((before + N)) ]; do sleep 0.5; done
kill "$wrk_pid"
wait "$wrk_pid" 2>/dev/null || true
while [ "$("${PG[@]}" -d tk_tickets -c "SELECT count(*) FROM outbox")" -gt 0 ]; do sleep 0.2; done
cleanup
pids=()
fi
end=$(end_offsets)

# ---- the role drains it ----------------------------------------------------------------------
declare -A DB=([ticket_view]=tk_tickets [tickets_replica]=tk_orders) FROM=() FIRST=() DONE=()
for p in "${!DB[@]}"; do FROM[$p]=$(stored "${DB[$p]}" "$p"); done
echo "backlog_events=$((end - FROM[ticket_view]))"
say "project all: draining $((end - FROM[ticket_view])) events"
uptime | sed 's/.*load average: /load_average_start=/' | tr -d ' '
TK_LOG_LEVEL=warn "$TK" project all 2>>"$LOG" & project_pid=$!
pids+=("$project_pid")
t0=$(date +%s%N)
ndone=0
while [ "$ndone" -lt ${#DB[@]} ]; do
  [ $(($(date +%s%N) - t0)) -gt 600000000000 ] && { say "not caught up in 600 s"; exit 1; }
  for p in "${!DB[@]}"; do
    [ -n "${DONE[$p]:-}" ] && continue
    s=$(stored "${DB[$p]}" "$p")
    now=$(date +%s%N)
    [ -z "${FIRST[$p]:-}" ] && [ "$s" -gt "${FROM[$p]}" ] && FIRST[$p]=$now
    [ "$s" -ge "$end" ] && [ -z "${FIRST[$p]:-}" ] && FIRST[$p]=$now
    [ "$s" -ge "$end" ] && DONE[$p]=$now && ndone=$((ndone + 1))
  done
  sleep 0.05
done
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$project_pid/status")
sleep 2
idle=$(awk '/^VmRSS/ {print $2}' "/proc/$project_pid/status")
uptime | sed 's/.*load average: /load_average_end=/' | tr -d ' '
echo "project_rss_peak_kb=$hwm"
echo "project_rss_drained_kb=$idle"
for p in "${!DB[@]}"; do
  awk -v n="$((end - FROM[$p]))" -v ns="$((DONE[$p] - FIRST[$p]))" -v p="$p" \
    'BEGIN { printf "%s_events=%d\n%s_per_s=%.0f\n", p, n, p, n / (ns > 0 ? ns / 1e9 : 1) }'
done
