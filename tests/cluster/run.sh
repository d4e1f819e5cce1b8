#!/usr/bin/env bash
# tests/cluster/run.sh [BINARY]: the scale-out failure test (issue 17), a separate command: it
# takes about 6 minutes on a 2-core machine (a 3-broker cluster to start, broker and instance
# kills, a rolling restart of 24 instances, six replays), past the e2e ctests' budget.
#
#   1. scripts/topology.sh start --isolated --cluster --replicas 2 --window 8: a fresh 3-node KRaft
#      cluster (scripts/cluster.sh; RF 3, min.insync.replicas=2), fresh databases, two instances
#      of every role behind nginx;
#   2. tests/cluster/chaos.py: bounded load through the ingress while it kills the leader broker
#      of the busiest partition, one instance of every role, then restarts every instance in
#      turn; then the checks (see chaos.py's top comment);
#   3. stops the topology and the cluster, whatever happened.
# The recovery report (JSON) goes to var/cluster-test/recovery.json; bench/cluster/run.sh prints
# it against the configured ceilings. BINARY defaults to build/release's (built when missing).
# Loopback only; needs scripts/setup.sh's Kafka, kcat, nginx and the e2e venv.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=/dev/null
. "$root/scripts/env.sh"

bin=${1:-}
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$root/build/release" ticketing >/dev/null
  bin="$root/build/release/app/ticketing"
fi
bin=$(readlink -f "$bin")
bash "$root/scripts/setup-py-tools.sh" >/dev/null
venv="$TK_CACHE/venv"
out="$TK_VAR/cluster-test"
mkdir -p "$out"

if bash "$root/scripts/topology.sh" status >/dev/null 2>&1; then
  echo "cluster test: a topology is already running here (scripts/topology.sh stop first)" >&2
  exit 2
fi
cleanup() {
  local rc=0
  bash "$root/scripts/topology.sh" stop || rc=$?
  bash "$root/scripts/cluster.sh" stop || true
  return $rc
}
trap 'cleanup || true' EXIT

t0=$(date +%s)
bash "$root/scripts/topology.sh" start --bin "$bin" --isolated --cluster --replicas 2 --window 8
# shellcheck source=/dev/null
. "$TK_VAR/topology/env.sh"
export E2E_BASE_URL=$TOPOLOGY_INGRESS E2E_TICKETING_BIN=$bin CHAOS_REPORT="$out/recovery.json"
rc=0
"$venv/bin/python" "$here/chaos.py" || rc=1
trap - EXIT
cleanup || rc=1
echo "cluster test: $([ $rc = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - t0)) s" \
  "(report $out/recovery.json)"
exit $rc
