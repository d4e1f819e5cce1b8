#!/usr/bin/env bash
# bench/http/run.sh [seconds] - HTTP throughput of ticketing as ratios of ceilings measured in
# the same run on the same machine:
#   - /healthz (inline on the loop thread) vs a trivial h2o handler (bench_h2o_trivial): the cost
#     of our routing, request copy, request ids and access log;
#   - GET /api/tickets/:id (worker pool + one indexed PostgreSQL read) vs pgbench's select-only
#     TPS at the same concurrency: the cost of HTTP + hand-off on top of the database round trip.
# Uses wrk and pgbench (Debian packages) against the local stack (scripts/stack.sh). Prints a
# table; exits 0. Not run by ctest: speed is measured here, never asserted in unit tests.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$ROOT"
secs=${1:-10}
conns=${BENCH_CONNECTIONS:-32}
build=build/release
# Ports from the environment, so that worktrees side by side do not collide.
trivial_port=${BENCH_TRIVIAL_PORT:-$((PORT + 2))}
http_port=${BENCH_HTTP_PORT:-$((PORT + 1))}
bash scripts/setup.sh >/dev/null
bash scripts/stack.sh start >/dev/null
bench_build "$build" RelWithDebInfo ticketing bench_h2o_trivial >/dev/null
"$build/app/ticketing" migrate >/dev/null 2>&1
"$build/app/ticketing" topics >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
rps() { wrk -t2 -c"$conns" -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }

"$build/bench/http/bench_h2o_trivial" "$trivial_port" & pids+=($!)
PORT=$http_port TK_LOG_LEVEL=warn "$build/app/ticketing" serve all 2>/dev/null & pids+=($!)
wait_http http://127.0.0.1:$trivial_port/ && wait_http http://127.0.0.1:$http_port/healthz

# One ticket in the read model to read back (create it through the real command path).
cookie=$(python3 "$ROOT/bench/cookies.py" 1)
id=$(curl -fs -X POST http://127.0.0.1:$http_port/api/tickets -H 'content-type: application/json' \
  --cookie "$cookie" -d '{"title":"bench","price":10}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$build/app/ticketing" project tickets 2>/dev/null & pids+=($!)
"$build/app/ticketing" relay tickets 2>/dev/null & pids+=($!)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$http_port/api/tickets/$id" >/dev/null && break; sleep 0.1; done

trivial=$(rps http://127.0.0.1:$trivial_port/)
healthz=$(rps http://127.0.0.1:$http_port/healthz)
ticket=$(rps "http://127.0.0.1:$http_port/api/tickets/$id")
pg_tps=$(PGPASSWORD= pgbench -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -n -c "$conns" -j 2 -T "$secs" \
  -f <(echo "SELECT id, title FROM ticket_view WHERE id = '$id';") tk_tickets 2>/dev/null |
  awk '/^tps/ {print $3; exit}')

printf '\n%-44s %12s %12s %8s\n' "measure" "req/s" "ceiling" "ratio"
printf '%-44s %12.0f %12.0f %8.2f\n' "GET /healthz vs trivial h2o handler" "$healthz" "$trivial" \
  "$(echo "$healthz / $trivial" | bc -l)"
printf '%-44s %12.0f %12.0f %8.2f\n' "GET /api/tickets/:id vs pgbench same query" "$ticket" "$pg_tps" \
  "$(echo "$ticket / $pg_tps" | bc -l)"
echo "(connections: $conns, duration: ${secs}s each, machine: $(nproc) cores)"
