#!/usr/bin/env bash
# tests/e2e/run.sh BINARY [flow|schemathesis|all]: the e2e ctests (labelled e2e, see
# tests/e2e/CMakeLists.txt). Starts the multi-process topology with BINARY (scripts/topology.sh
# start --isolated: its own Kafka broker and databases, a 5 s reservation window) unless a topology
# already runs, then
#   flow          pytest: the purchase flow and its events on Kafka, expiry, cancel, SSE,
#                 replay of every projection (tests/e2e/test_*.py)
#   schemathesis  schemathesis against schemas/openapi.yaml through the ingress, bounded
#                 (E2E_SCHEMATHESIS_MAX_EXAMPLES per operation, default 20), authenticated with a
#                 session cookie registered first; fails on a 5xx or a response off the spec
# and stops what it started: a sanitizer report in any role's log fails the run too.
# E2E_BASE_URL points both at another deployment instead (e.g. docker compose on :8080); then
# nothing is started and the Kafka/replay checks are skipped unless E2E_TICKETING_BIN is set.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:?usage: tests/e2e/run.sh BINARY [flow|schemathesis|all]}
mode=${2:-all}
bin=$(readlink -f "$bin")
# shellcheck source=/dev/null
. "$root/scripts/env.sh"

# shellcheck source=tests/support/suite.sh
. "$root/tests/support/suite.sh"
suite_venv
trap 'suite_topology_stop || true' EXIT

if [ -n "${E2E_BASE_URL:-}" ]; then
  echo "e2e: against $E2E_BASE_URL (nothing started here)"
  base=$E2E_BASE_URL
elif bash "$root/scripts/topology.sh" status >/dev/null 2>&1; then
  echo "e2e: a topology is already running: using it"
  # shellcheck source=/dev/null
  . "$TK_VAR/topology/env.sh"
  base=$TOPOLOGY_INGRESS
  export E2E_TICKETING_BIN="${E2E_TICKETING_BIN:-$bin}"
else
  suite_topology_start --bin "$bin" --window 5
  base=$TOPOLOGY_INGRESS
  export E2E_TICKETING_BIN="${E2E_TICKETING_BIN:-$bin}"
fi
export E2E_BASE_URL=$base

rc=0
if [ "$mode" = flow ] || [ "$mode" = all ]; then
  t0=$(date +%s)
  (cd "$here" && "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs --durations=8 \
    test_users.py test_purchase.py test_read_your_writes.py test_replay.py) || rc=1
  echo "e2e: pytest took $(($(date +%s) - t0)) s"
fi

if [ "$mode" = schemathesis ] || [ "$mode" = all ]; then
  t0=$(date +%s)
  # A signed-up user's session, so the authenticated operations are exercised past their 401.
  email="schemathesis-$(date +%s%N)@example.com"
  cookie=$(curl -s -D - -o /dev/null -X POST "$base/api/users/signup" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"secret\"}" |
    sed -n 's/^[Ss]et-[Cc]ookie: \(session=[^;]*\).*/\1/p' | tr -d '\r')
  [ -n "$cookie" ] || { echo "e2e: sign-up for schemathesis failed" >&2; exit 1; }
  report=$(mktemp -d)
  # --exclude-tag service: /healthz, /readyz and /metrics are per service, not behind the ingress.
  # --exclude-operation-id signout: sign-out revokes the session (DESIGN.md section 9), so one call
  # with the shared cookie would leave every later authenticated case a 401 (tests/security covers
  # sign-out).
  (cd "$report" && "$venv/bin/schemathesis" --no-color run "$root/schemas/openapi.yaml" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${E2E_SCHEMATHESIS_MAX_EXAMPLES:-20}" \
    ${E2E_SCHEMATHESIS_SEED:+--seed "$E2E_SCHEMATHESIS_SEED"} \
    --header "Cookie: $cookie" \
    --exclude-tag service \
    --exclude-operation-id signout \
    --request-timeout 20 \
    --generation-with-security-parameters false \
    --generation-database none \
    --workers 1) || rc=1
  rm -rf "$report"
  echo "e2e: schemathesis took $(($(date +%s) - t0)) s"
fi

suite_topology_stop || rc=1
exit $rc
