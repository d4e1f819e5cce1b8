#!/usr/bin/env bash
# bench/cluster/run.sh [--report FILE] [BINARY]: recovery times of the scale-out topology, each
# against the bound it is configured by (DESIGN.md section 10: ratios against a ceiling):
#   leader election          kill -9 of the leader broker of the busiest orders partition until
#                            another node leads it  / broker.session.timeout.ms (5000)
#   broker restart           start-broker until registered, and until every orders partition has
#                            3 in-sync replicas again (no configured bound: reported as is)
#   projector takeover       kill -9 of one of two projector instances until the other has all 6
#                            partitions  / session.timeout.ms (10000) + the rebalance
#   projector static rejoin  kill -9 and immediate restart until the restarted instance has its
#                            partitions again (no rebalance)  / session.timeout.ms (10000)
#   relay failover           kill -9 of the active relay until the standby is active
#                            / the standby's lock retry interval (1000)
#   rolling restart          per instance: SIGTERM, start, ready (serve: /readyz answers)
# It runs tests/cluster/run.sh (which also checks that nothing was lost or doubled) and prints
# its report; --report FILE prints an existing report (var/cluster-test/recovery.json) instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=/dev/null
. "$root/scripts/env.sh"
report="$TK_VAR/cluster-test/recovery.json"
rc=0
if [ "${1:-}" = --report ]; then
  report=${2:?--report needs a file}
else
  bash "$root/tests/cluster/run.sh" "$@" || rc=$?
fi
[ -s "$report" ] || { echo "bench/cluster: no report at $report" >&2; exit 1; }
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ms = r.get("recovery_ms", {})
bounds = {"leader_election": 5000, "projector_takeover": 10000, "projector_static_rejoin": 10000}
print(f"cluster recovery ({r.get('started', '?')}, checks {'passed' if not r.get('failures') else 'FAILED: ' + ', '.join(r['failures'])})")
print(f"{'what':34} {'ms':>8}  {'bound ms':>8}  ratio")
rows = [("leader_election", "leader election")]
rows += [("broker_restart_to_registered", "broker restart: registered"),
         ("broker_restart_to_full_isr", "broker restart: ISR full again"),
         ("projector_takeover", "projector takeover (no restart)"),
         ("projector_static_rejoin", "projector static rejoin")]
rows += [(k, "relay failover " + k.rsplit("_", 1)[1]) for k in sorted(ms) if k.startswith("relay_failover_")]
for key, name in rows:
    if key not in ms:
        continue
    b = bounds.get(key, 1000 if key.startswith("relay_failover_") else None)
    print(f"{name:34} {ms[key]:>8}  {b if b else '-':>8}  {ms[key] / b:.2f}" if b else
          f"{name:34} {ms[key]:>8}  {'-':>8}  -")
roll = r.get("rolling_restart_ms", {})
if roll:
    v = sorted(roll.values())
    print(f"{'rolling restart per instance':34} {v[len(v) // 2]:>8}  (median of {len(v)}; max {v[-1]})")
c = r.get("counts", {})
print("load:", {k: c.get(k) for k in ("users", "tickets", "orders", "payments", "cancels", "records")},
      "GETs:", {k: v for k, v in c.items() if k.startswith("get_")})
PY
exit $rc
