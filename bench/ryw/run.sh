#!/usr/bin/env bash
# bench/ryw/run.sh - what read-your-own-writes costs (issue 15, DESIGN.md section 6).
#
#   bash bench/ryw/run.sh [pairs] [clients]          (defaults: 300 4)
#
# Through the ingress of the multi-process topology (scripts/topology.sh; started here with the
# release build unless one already runs, and stopped afterwards), with `clients` concurrent
# clients, each pair a command (POST /api/tickets, or POST /api/orders) and a query of its effect:
#   - freshness, the ceiling in the same run: after the command, a plain read without a token
#     polled every 2 ms until the write shows (the read model's own lag, command 2xx -> visible);
#   - read your own writes: after the command, ONE query with the token; its latency (command
#     2xx -> the answer with the write);
#   - added latency = RYW - freshness, per percentile: what the token's wait adds beyond the
#     read model's own lag (the wake-up by NOTIFY, the re-read, the resume), against the
#     freshness p99 target of issue 14 (50 ms);
#   - a covered token's cost on a query: GET of a ticket already there, with and without it.
# Prints a table and writes var/bench/ryw.json.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIRS="${1:-300}"
CLIENTS="${2:-4}"
BUILD="${BUILD:-$ROOT/build/release}"

bash "$ROOT/scripts/setup-py-tools.sh" >/dev/null
started=0
cleanup() { if [ "$started" = 1 ]; then bash "$ROOT/scripts/topology.sh" stop >/dev/null || true; fi; }
trap cleanup EXIT
if ! bash "$ROOT/scripts/topology.sh" status >/dev/null 2>&1; then
  bench_build "$BUILD" Release ticketing >/dev/null
  started=1
  bash "$ROOT/scripts/topology.sh" start --bin "$BUILD/app/ticketing" --window 60
fi
# shellcheck source=/dev/null
. "$TK_VAR/topology/env.sh"
mkdir -p "$TK_VAR/bench"
E2E_BASE_URL=$TOPOLOGY_INGRESS PYTHONPATH="$ROOT/tests/e2e" \
  "$TK_CACHE/venv/bin/python" "$ROOT/bench/ryw/bench_ryw.py" "$PAIRS" "$CLIENTS" "$TK_VAR/bench/ryw.json"
