#!/usr/bin/env bash
# bench/run.sh [seconds] - every figure of the event paths beside its ceiling, measured in the same
# run on the same machine (issue "Event paths at the database's speed"; DESIGN.md section 10).
#
#   bash bench/run.sh            30 s per HTTP phase, 60 s of freshness, a backlog of 200k events
#   bash bench/run.sh 10         shorter phases (BENCH_FRESHNESS_SECONDS defaults to 2x seconds)
#
# Environment: BENCH_EVENTS (backlog of the projector, replay and relay phases, default 200000),
# BENCH_FRESHNESS_SECONDS, BENCH_CONNECTIONS (wrk and pgbench -N clients, default 32),
# BENCH_HTTP_PORT / BENCH_TRIVIAL_PORT (default PORT+1 / PORT+2, so worktrees do not collide),
# BUILD (default build/release).
#
# Prints one table; writes the same figures to var/bench/results.json and the freshness
# distribution to var/bench/freshness.png (matplotlib from a venv in var/bench/venv, created on
# first use; skipped with a note when it cannot be installed). Not run by CI: it takes minutes.
#
# Ceilings: pgbench -N (TPC-B-like writes, fsync on) and pgbench running the very queries of the
# GET routes; a trivial h2o handler; Kafka's ConsumerPerformance on the projector's own topic and
# ProducerPerformance with the relay's record size, acks=all and idempotence.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

SECS=${1:-${BENCH_SECONDS:-30}}
FRESH_SECS=${BENCH_FRESHNESS_SECONDS:-$((SECS * 2))}
EVENTS=${BENCH_EVENTS:-200000}
CONNS=${BENCH_CONNECTIONS:-32}
HTTP_PORT=${BENCH_HTTP_PORT:-$((PORT + 1))}
TRIVIAL_PORT=${BENCH_TRIVIAL_PORT:-$((PORT + 2))}
WORKERS=${HTTP_WORKERS:-$CONNS} # the serve's workers per lane, and the GET ceilings' connections
BUILD=${BUILD:-build/release}
OUT=var/bench
BASE=http://127.0.0.1:$HTTP_PORT
mkdir -p "$OUT"
LOG="$OUT/run.log"
: >"$LOG"
say() { echo "bench: $*" >&2; }

bash scripts/setup.sh >>"$LOG" 2>&1
bash scripts/stack.sh start >>"$LOG" 2>&1
bench_build "$BUILD" RelWithDebInfo ticketing bench_h2o_trivial bench_freshness bench_projector >>"$LOG"
TK="$BUILD/app/ticketing"
"$TK" migrate >>"$LOG" 2>&1
"$TK" topics >>"$LOG" 2>&1
bench_java_tool
PG=(psql -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -X -q -A -t -v ON_ERROR_STOP=1)

declare -A R # every figure, by key: the table and results.json are made from it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_http() {
  for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no answer from $1" >&2
  exit 1
}
# wrk's figures: requests/s, non-2xx/3xx responses and p99 (ms) into R[$1_rps|_non2xx|_p99_ms].
wrk_run() {
  local key=$1 out
  shift
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$@")
  echo "$out" >>"$LOG"
  R[${key}_rps]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  R[${key}_non2xx]=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  R[${key}_non2xx]=${R[${key}_non2xx]:-0}
  R[${key}_p99_ms]=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000}
    else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  local total
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  R[${key}_accepted_per_s]=$(awk -v t="$total" -v n="${R[${key}_non2xx]}" -v s="$SECS" \
    'BEGIN { printf "%.0f", (t - n) / s }')
}
pgbench_tps() { # db clients script-args...
  local db=$1 c=$2
  shift 2
  PGPASSWORD='' pgbench -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -n -c "$c" -j 2 -T "$SECS" "$@" \
    "$db" 2>>"$LOG" | awk '/^tps/ {printf "%.0f", $3; exit}'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- the application, one process per role --------------------------------------------------
say "starting the roles (serve, project, relay) and a trivial h2o server"
"$BUILD/bench/http/bench_h2o_trivial" "$TRIVIAL_PORT" & pids+=($!)
# The bench's users each place more orders than the per-user open-order cap (ORDERS_OPEN_MAX,
# 10) allows in a phase, so the bench lifts it (it measures throughput, not the cap).
# HTTP_WORKERS = the client count (unless set): each worker holds one transaction at a time, and
# commits that wait for the WAL flush together share it (group commit), as pgbench's clients do.
# The default (8 per lane) suits several serve processes sharing one PostgreSQL's connections.
PORT=$HTTP_PORT TK_LOG_LEVEL=warn ORDERS_OPEN_MAX=1000000 HTTP_WORKERS=$WORKERS "$TK" serve all \
  2>>"$LOG" & serve_pid=$!
TK_LOG_LEVEL=warn "$TK" project all 2>>"$LOG" & project_pid=$!
TK_LOG_LEVEL=warn "$TK" relay all 2>>"$LOG" & relay_pid=$!
pids+=("$serve_pid" "$project_pid" "$relay_pid")
wait_http "http://127.0.0.1:$TRIVIAL_PORT/" && wait_http "$BASE/healthz"
sleep 3
for role in serve project relay; do
  pid_var=${role}_pid
  R[rss_idle_${role}_kb]=$(rss_kb "${!pid_var}")
done

user_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
cookie=$(python3 bench/cookies.py 1 "$user_id")

# ---- commands: POST /api/tickets vs pgbench -N -----------------------------------------------
say "POST /api/tickets, $CONNS connections, ${SECS}s"
bench_post_ticket_script "$OUT/post_ticket.lua" bench "$cookie"
wrk_run post_tickets -s "$OUT/post_ticket.lua" "$BASE/api/tickets"
say "ceiling: pgbench -N, $CONNS clients"
"${PG[@]}" -d postgres -c "DROP DATABASE IF EXISTS tk_bench_pgbench" -c "CREATE DATABASE tk_bench_pgbench" 2>>"$LOG"
PGPASSWORD='' pgbench -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -i -s 4 -q tk_bench_pgbench >>"$LOG" 2>&1
R[pgbench_n_tps]=$(pgbench_tps tk_bench_pgbench "$CONNS" -N)

# ---- queries: GET /api/tickets/:id and GET /api/orders vs pgbench on the same queries ----------
id=$(curl -fs -X POST "$BASE/api/tickets" -H 'content-type: application/json' --cookie "$cookie" \
  -d '{"title":"bench","price":10}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 300); do curl -fs "$BASE/api/tickets/$id" >/dev/null && break; sleep 0.1; done
say "GET /api/tickets/:id and GET /api/orders, $CONNS connections"
wrk_run get_ticket "$BASE/api/tickets/$id"
cat >"$OUT/get_orders.lua" <<LUA
wrk.headers["cookie"] = "$cookie"
LUA
wrk_run get_orders -s "$OUT/get_orders.lua" "$BASE/api/orders"
R[pgbench_get_ticket_tps]=$(pgbench_tps tk_tickets "$WORKERS" -f <(echo \
  "SELECT id, title, price_cents, user_id, order_id, version, created_at FROM ticket_view WHERE id = '$id';"))
R[pgbench_get_orders_tps]=$(pgbench_tps tk_orders "$WORKERS" -f <(echo \
  "SELECT o.id, o.user_id, o.ticket_id, o.status, to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), o.version, t.title, t.price_cents, t.version FROM order_view o LEFT JOIN tickets_replica t ON t.id = o.ticket_id WHERE o.user_id = '$user_id' ORDER BY o.created_at, o.id;"))
R[trivial_rps]=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$TRIVIAL_PORT/" | awk '/Requests\/sec/ {print $2}')

# ---- POST /api/orders: one free ticket per order ---------------------------------------------
say "POST /api/orders, $CONNS connections (free tickets from the POST phase)"
for _ in $(seq 600); do # the orders context must know the tickets first (its replica)
  lag=$("${PG[@]}" -d tk_orders -c "SELECT count(*) FROM tickets_replica")
  want=$("${PG[@]}" -d tk_tickets -c "SELECT count(*) FROM ticket_view")
  [ "$lag" -ge "$want" ] && break
  sleep 1
done
"${PG[@]}" -d tk_tickets -c "SELECT id FROM ticket_view WHERE order_id IS NULL" >"$OUT/free_tickets.txt"
# Orders come from 256 users, as real traffic does: one user's orders are serialized by the
# per-user open-order check (a lock per user), so a single bench user measured that lock, not
# the command path (pgbench -N likewise spreads over its accounts).
python3 bench/cookies.py 256 >"$OUT/order_cookies.txt"
cat >"$OUT/post_order.lua" <<LUA
local ids, n = {}, 0
for line in io.lines("$OUT/free_tickets.txt") do n = n + 1; ids[n] = line end
local cookies, nc = {}, 0
for line in io.lines("$OUT/order_cookies.txt") do nc = nc + 1; cookies[nc] = line end
local counter, stride = 0, 1
function setup(thread) counter = counter + 1; thread:set("first", counter) end
function init(args) i = first end
function request()
  i = i + 2
  local tid = ids[(i % n) + 1]
  return wrk.format("POST", "/api/orders", {["content-type"] = "application/json",
    ["cookie"] = cookies[(i % nc) + 1]}, '{"ticketId":"' .. tid .. '"}')
end
LUA
wrk_run post_orders -s "$OUT/post_order.lua" "$BASE/api/orders"

# ---- freshness at half the measured command rate ---------------------------------------------
rate=$(awk -v r="${R[post_tickets_accepted_per_s]}" 'BEGIN { printf "%.0f", r / 2 }')
say "freshness: POST /api/tickets at $rate/s for ${FRESH_SECS}s, GET with its token until visible"
"$BUILD/bench/http/bench_freshness" 127.0.0.1 "$HTTP_PORT" "$cookie" "$rate" "$FRESH_SECS" \
  "$OUT/freshness.json"
eval "$(python3 - "$OUT/freshness.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("rate", "sent", "ok", "shed", "errors", "not_visible_10s", "cmd_p50_ms", "cmd_p99_ms", "fresh_p50_ms",
          "fresh_p90_ms", "fresh_p99_ms", "fresh_p999_ms"):
    v = d[k]
    print("R[fresh_%s]=%s" % (k, "%.2f" % v if isinstance(v, float) else v))
PY
)"
for role in serve project relay; do
  pid_var=${role}_pid
  R[rss_load_${role}_kb]=$(hwm_kb "${!pid_var}")
done
cleanup
pids=()

# ---- the live projector and replay on a backlog, vs Kafka's own consumer on that topic ---------
say "projector: publishing a backlog of $EVENTS ticket events"
coproc BP { "$BUILD/bench/projector/bench_projector" "$EVENTS" 2>>"$LOG"; }
bp_pid=$BP_PID
while IFS= read -r line <&"${BP[0]}"; do
  echo "$line" >>"$LOG"
  R[proj_${line%%=*}]=${line#*=}
  [[ $line == topic=* ]] && break
done
say "ceiling: ConsumerPerformance on ${R[proj_topic]}"
cperf=$("${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$KAFKA_BROKERS" \
  --topic "${R[proj_topic]}" --messages "$EVENTS" --timeout 300000 2>>"$LOG" | tail -1)
echo "$cperf" >>"$LOG"
# fetch.nMsg.sec; nothing consumed (the group join outlived --timeout): n/a
R[kafka_consumer_per_s]=$(awk -F', *' '$5 > 0 {printf "%.0f", $10}' <<<"$cperf")
say "live projector draining it, then replay (rebuild, verify, swap)"
echo go >&"${BP[1]}"
while IFS= read -r line <&"${BP[0]}"; do
  echo "$line" >>"$LOG"
  R[proj_${line%%=*}]=${line#*=}
done
wait "$bp_pid" || say "bench_projector failed (see $LOG)"

# ---- the outbox relay vs ProducerPerformance -------------------------------------------------
topic="bench.relay.$(date +%s).$$"
"${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
  --topic "$topic" --partitions 6 --replication-factor 1 >>"$LOG" 2>&1
payload=$(python3 -c 'print("x" * 600)')
say "relay: $EVENTS outbox rows of 600 bytes"
"${PG[@]}" -d tk_tickets -c "INSERT INTO outbox (topic, key, payload, headers) SELECT '$topic', \
  gen_random_uuid()::text, '$payload', '{}'::jsonb FROM generate_series(1, $EVENTS)"
t0=$(date +%s%N)
TK_LOG_LEVEL=warn "$TK" relay tickets 2>>"$LOG" & rpid=$!
pids+=("$rpid")
while [ "$("${PG[@]}" -d tk_tickets -c "SELECT count(*) FROM outbox WHERE topic = '$topic'")" -gt 0 ]; do
  sleep 0.2
done
t1=$(date +%s%N)
R[rss_load_relay_backlog_kb]=$(hwm_kb "$rpid")
cleanup
pids=()
R[relay_per_s]=$(awk -v n="$EVENTS" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
published=$("${JAVA_TOOL[@]}" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$KAFKA_BROKERS" \
  --topic "$topic" 2>>"$LOG" | awk -F: '{s += $3} END {print s + 0}')
R[relay_skipped]=$(( EVENTS > published ? EVENTS - published : 0 ))
say "ceiling: ProducerPerformance, $EVENTS records of 600 bytes, acks=all, idempotence"
pperf=$("${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
  --num-records "$EVENTS" --record-size 600 --throughput -1 --producer-props \
  bootstrap.servers="$KAFKA_BROKERS" acks=all enable.idempotence=true linger.ms=0 2>>"$LOG" | tail -1)
echo "$pperf" >>"$LOG"
R[kafka_producer_per_s]=$(sed -n 's/.* records sent, \([0-9]*\)[0-9.]* records\/sec.*/\1/p' <<<"$pperf")
"${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --delete \
  --topic "$topic" >>"$LOG" 2>&1 || true
"${PG[@]}" -d postgres -c "DROP DATABASE IF EXISTS tk_bench_pgbench" 2>>"$LOG"

# ---- the table, results.json, the PNG --------------------------------------------------------
R[machine]="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
R[seconds]=$SECS
R[events]=$EVENTS
R[connections]=$CONNS
for k in "${!R[@]}"; do printf '%s\t%s\n' "$k" "${R[$k]}"; done >"$OUT/results.tsv"
python3 bench/report.py "$OUT/results.tsv" "$OUT/results.json"
if [ ! -x "$OUT/venv/bin/python" ]; then
  python3 -m venv "$OUT/venv" >>"$LOG" 2>&1 && "$OUT/venv/bin/pip" install -q matplotlib >>"$LOG" 2>&1 || true
fi
if "$OUT/venv/bin/python" bench/plot.py "$OUT/freshness.json" "$OUT/freshness.png" >>"$LOG" 2>&1; then
  echo "freshness distribution: $OUT/freshness.png"
else
  echo "no PNG: matplotlib could not be installed in $OUT/venv (see $LOG)"
fi
echo "figures: $OUT/results.json (log: $LOG)"
