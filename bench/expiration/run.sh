#!/usr/bin/env bash
# bench/expiration/run.sh - the expiration scheduler's benchmark (DESIGN.md sections 7 and 10).
#
#   bash bench/expiration/run.sh [N] [window_s] [lead_s]      (defaults: 100000 60 20)
#
# For N pending expirations spread over a due window, on private topics of the local stack:
#   - lateness p50/p99/max: time an expiration:complete reaches a consumer - its dueAt
#     (and the scheduler-side part: the event's own time - dueAt);
#   - the scheduler's memory: VmRSS with all N pending and VmHWM (peak) while firing them, in a
#     scheduler restarted after the intake; the same with N/10 pending shows whether memory
#     follows the pending count (it must not); the intake's own peak, taking in a backlog of N
#     order:created at once, is shown apart (bounded by librdkafka's queue limits);
#   - intake throughput (order:created -> delay records) as a ratio of the ceiling measured in the
#     same run: Kafka's own ProducerPerformance writing N records of the delay record's size with
#     the producer settings of platform/kafka.c (acks=all, idempotence, linger.ms=0).
# Needs the stack (scripts/stack.sh start). BUILD (default build-bench, Release) is configured and
# built here. Private topics are deleted afterwards.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

N="${1:-100000}"
WINDOW="${2:-60}"
LEAD="${3:-20}"
BUILD="${BUILD:-$ROOT/build-bench}"
BIN="$BUILD/bench/expiration/bench_expiration"

bench_build "$BUILD" Release bench_expiration >/dev/null
bench_java_tool
PARTITIONS="${KAFKA_PARTITIONS:-6}"

# key=value lines of one bench_expiration run into an associative array named by $1.
run_bench() {
  local -n out=$1
  local n=$2 line
  while IFS= read -r line; do
    out["${line%%=*}"]="${line#*=}"
  done < <("$BIN" "$n" "$WINDOW" "$LEAD" 2>>"$LOG")
}

LOG="$(mktemp /tmp/bench_expiration.XXXXXX.log)"
echo "expiration benchmark: N=$N, window ${WINDOW}s, lead ${LEAD}s (scheduler logs: $LOG)" >&2

declare -A small big
echo "run 1/3: $((N / 10)) pending ..." >&2
run_bench small $((N / 10))
echo "run 2/3: $N pending ..." >&2
run_bench big "$N"

# The ceiling: Kafka's producer on records of the same size, on a private topic.
echo "run 3/3: ProducerPerformance, $N records of ${big[record_bytes]} bytes ..." >&2
TOPIC="xt.perf.$(date +%s).$$"
"${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
  --create --topic "$TOPIC" --partitions "$PARTITIONS" --replication-factor 1 >>"$LOG" 2>&1
PERF="$("${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$TOPIC" \
  --num-records "$N" --record-size "${big[record_bytes]}" --throughput -1 \
  --producer-props bootstrap.servers="$KAFKA_BROKERS" acks=all enable.idempotence=true \
  linger.ms=0 2>>"$LOG" | tail -1)"
"${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
  --delete --topic "$TOPIC" >>"$LOG" 2>&1 || true
CEILING="$(sed -n 's/.* records sent, \([0-9]*\)[0-9.]* records\/sec.*/\1/p' <<<"$PERF")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

printf '\n%-44s %14s %14s\n' "expiration scheduler" "$((N / 10)) pending" "$N pending"
printf '%-44s %14s %14s\n' "--------------------------------------------" "--------------" "--------------"
row() { printf '%-44s %14s %14s\n' "$1" "${small[$2]}" "${big[$2]}"; }
row "expired (all must)" expired
row "fired before dueAt (must be 0)" early
row "duplicates" duplicates
row "lateness p50, ms (at a consumer)" lateness_p50_ms
row "lateness p99, ms (at a consumer)" lateness_p99_ms
row "lateness max, ms (at a consumer)" lateness_max_ms
row "lateness p50, ms (event time)" sched_lateness_p50_ms
row "lateness p99, ms (event time)" sched_lateness_p99_ms
row "delay records pending at the first dueAt" pending_seen
row "scheduler RSS with all pending, kB" rss_all_pending_kb
row "scheduler peak RSS while firing all, kB" rss_peak_kb
row "peak RSS while taking the backlog in, kB" intake_peak_rss_kb
row "all pending before the first was due" all_pending_before_first_due
row "intake, records/s" intake_per_s
printf '%-44s %14s %14s\n' "ceiling: ProducerPerformance, records/s" "" "${CEILING:-n/a}"
printf '%-44s %14s %14s\n' "intake / ceiling" "" "$(ratio "${big[intake_per_s]}" "${CEILING:-0}")"
printf '%-44s %14s %14s\n' "peak RSS while firing, N / (N/10) pending" "" \
  "$(ratio "${big[rss_peak_kb]}" "${small[rss_peak_kb]}")"
