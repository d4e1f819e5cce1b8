#!/usr/bin/env bash
# bench/soak/run.sh: the soak (issue 16) - `ticketing run` (every role in one process) under
# moderate steady load (bench/soak/load.py: FLOWS_PER_S purchase flows per second, default 2),
# reporting its RSS every minute; with --topology the multi-process topology instead
# (scripts/topology.sh start --isolated), reporting the RSS of every role process. Run by hand,
# never by ctest:
#
#   bash bench/soak/run.sh 3600                      the one-hour soak of `ticketing run`
#   bash bench/soak/run.sh 3600 --topology           per role, as deployed
#   bash bench/soak/run.sh 180 --every 30            a short check that it works
#   --bin PATH   the binary (default build/release/app/ticketing, built if missing)
#
# Output: "rss <minute> <role>=<KiB> ..." lines, then per role first, last and max RSS and the
# growth from the second sample to the last (the first covers warm-up). Exit 1 when the load
# failed or a role's RSS grew by more than SOAK_MAX_GROWTH_PCT (default 20) percent.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

duration=${1:?usage: bench/soak/run.sh SECONDS [--topology] [--every S] [--bin PATH]}
shift
topology=0 every=60 bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --topology) topology=1 ;;
    --every) every=${2:?}; shift ;;
    --bin) bin=$(readlink -f "${2:?}"); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  bench_build "$ROOT/build/release" RelWithDebInfo ticketing >/dev/null
  bin="$ROOT/build/release/app/ticketing"
fi
bash "$ROOT/scripts/setup-py-tools.sh" >/dev/null
venv="$TK_CACHE/venv"
out=$(mktemp -d)
run_pid=""
cleanup() {
  [ -z "$run_pid" ] || { kill -TERM "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; }
  [ "$topology" = 0 ] || bash "$ROOT/scripts/topology.sh" stop >/dev/null || true
}
trap cleanup EXIT

if [ "$topology" = 1 ]; then
  bash "$ROOT/scripts/topology.sh" start --bin "$bin" --isolated --window 5
  . "$TK_VAR/topology/env.sh"
  base=$TOPOLOGY_INGRESS
else
  bash "$ROOT/scripts/stack.sh" status >/dev/null 2>&1 || bash "$ROOT/scripts/stack.sh" start
  "$bin" migrate >/dev/null 2>&1 && "$bin" topics >/dev/null 2>&1
  export JWT_KEY=${JWT_KEY:-soak-key-soak-key-soak-key-soak-key} EXPIRATION_WINDOW_SECONDS=5
  "$bin" run >"$out/run.log" 2>&1 &
  run_pid=$!
  base="http://127.0.0.1:$PORT"
  for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
fi

# role=pid pairs to sample
pids() {
  if [ "$topology" = 1 ]; then
    for f in "$TK_VAR"/topology/*.pid; do
      r=$(basename "$f" .pid)
      [ "$r" = nginx ] || [ "$r" = kafka ] || echo "$r=$(cat "$f")"
    done
  else
    echo "run=$run_pid"
  fi
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

E2E_BASE_URL=$base DURATION=$duration "$venv/bin/python" -u "$ROOT/bench/soak/load.py" &
load_pid=$!
start=$(date +%s)
: >"$out/samples"
while kill -0 "$load_pid" 2>/dev/null; do
  line="rss $(( ($(date +%s) - start) / 60 ))m"
  for p in $(pids); do line+=" ${p%%=*}=$(rss "${p#*=}")"; done
  echo "$line" | tee -a "$out/samples"
  for _ in $(seq "$every"); do kill -0 "$load_pid" 2>/dev/null || break; sleep 1; done
done
rc=0
wait "$load_pid" || rc=1
echo "soak: ${duration}s of load, RSS in KiB (first / second / last / max, growth second->last):"
awk -v limit="${SOAK_MAX_GROWTH_PCT:-20}" '
  { for (i = 3; i <= NF; i++) { split($i, kv, "="); r = kv[1]; v = kv[2] + 0
      n[r]++; if (n[r] == 1) first[r] = v; if (n[r] == 2) second[r] = v
      last[r] = v; if (v > max[r]) max[r] = v } }
  END { bad = 0
    for (r in n) { base = n[r] > 2 ? second[r] : first[r]; g = base ? 100 * (last[r] - base) / base : 0
      printf "  %-17s %8d %8d %8d %8d  %+.1f%%\n", r, first[r], (n[r] > 1 ? second[r] : first[r]), last[r], max[r], g
      if (g > limit) bad = 1 }
    exit bad }' "$out/samples" || { echo "soak: RSS grew more than ${SOAK_MAX_GROWTH_PCT:-20}%"; rc=1; }
rm -rf "$out"
exit $rc
