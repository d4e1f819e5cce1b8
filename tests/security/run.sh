#!/usr/bin/env bash
# tests/security/run.sh BINARY: the black-box security suite (issue 11), registered as the ctest
# `security` (label e2e, tests/security/CMakeLists.txt). It starts the multi-process topology with
# BINARY (scripts/topology.sh start --isolated, as tests/e2e/run.sh does) unless one already runs,
# then runs pytest on every tests/security/test_*.py, and stops what it started: a sanitizer report
# in any role's log fails the run too (topology.sh stop scans them).
#
# Small limits make the bounds testable in seconds. The processes get:
#   - every SECURITY_ENV_<NAME>=<value> of the caller's environment as <NAME>=<value>, and
#   - the defaults below for the HTTP limits, unless the caller sets them (README lists them).
# Tests see the same values in their environment (e.g. os.environ["SSE_MAX_STREAMS_PER_ORDER"]).
#
# Environment of the tests (conftest.py reads it):
#   SECURITY_BASE_URL        the ingress (nginx), as a browser sees the system
#   SECURITY_SERVICE_<CTX>   http://127.0.0.1:<port> of `ticketing serve <ctx>` itself, for
#                            protocol-level cases the ingress would absorb (HTTP/2, raw framing)
#   SECURITY_LOG_DIR         the roles' logs (<role>.log: one JSON object per line)
#   SECURITY_TICKETING_BIN   the binary, for tests that start a process of their own
#   SECURITY_FAKE_STRIPE     the fault-injecting Stripe the payments servers call (FAKE_STRIPE_BIN,
#                            tests/support/fake_stripe.h), with its /__fake/ control endpoints
#   SECURITY_STRIPE_WEBHOOK_SECRET  the servers' STRIPE_WEBHOOK_SECRET (to sign webhook deliveries)
# With a topology already running, its processes keep their own limits (tests that depend on the
# small ones skip themselves when /metrics or the limits say otherwise is not checkable).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:?usage: tests/security/run.sh BINARY [FAKE_STRIPE_BIN]}
bin=$(readlink -f "$bin")
fake_stripe_bin=${2:-}
# shellcheck source=/dev/null
. "$root/scripts/env.sh"

# shellcheck source=tests/support/suite.sh
. "$root/tests/support/suite.sh"
suite_venv

# The processes' limits: small, so that each bound is reached with a handful of requests.
: "${HTTP_QUEUE_MAX:=16}" "${HTTP_MAX_CONNECTIONS:=48}" "${HTTP_DEADLINE_MS:=20000}"
: "${SSE_MAX_STREAMS:=6}" "${SSE_MAX_STREAMS_PER_USER:=4}" "${SSE_MAX_STREAMS_PER_ORDER:=2}"
export HTTP_QUEUE_MAX HTTP_MAX_CONNECTIONS HTTP_DEADLINE_MS SSE_MAX_STREAMS \
  SSE_MAX_STREAMS_PER_USER SSE_MAX_STREAMS_PER_ORDER
while IFS='=' read -r name value; do
  case "$name" in
    SECURITY_ENV_?*) export "${name#SECURITY_ENV_}=$value" ;;
  esac
done < <(env)

fake_pid=""
stop_fake_stripe() {
  if [ -n "$fake_pid" ]; then
    kill -TERM "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=""
  fi
}
trap 'suite_topology_stop || true; stop_fake_stripe' EXIT

if bash "$root/scripts/topology.sh" status >/dev/null 2>&1; then
  echo "security: a topology is already running: using it (its own limits apply)"
else
  # Stripe is the fault-injecting fake (item 4: "charge, then time out"), its answers awaited
  # 1 s, and the webhook endpoint on with a secret the tests sign with.
  if [ -n "$fake_stripe_bin" ]; then
    fake_out=$(mktemp)
    "$fake_stripe_bin" >"$fake_out" &
    fake_pid=$!
    for _ in $(seq 50); do [ -s "$fake_out" ] && break; sleep 0.1; done
    SECURITY_FAKE_STRIPE=$(head -n 1 "$fake_out")
    rm -f "$fake_out"
    [ -n "$SECURITY_FAKE_STRIPE" ] || { echo "security: $fake_stripe_bin did not start" >&2; exit 1; }
    export SECURITY_FAKE_STRIPE STRIPE_API_BASE=$SECURITY_FAKE_STRIPE STRIPE_TIMEOUT_MS=1000 \
      STRIPE_MAX_ATTEMPTS=2 STRIPE_BACKOFF_MS=50 STRIPE_BACKOFF_MAX_MS=100
    export SECURITY_STRIPE_WEBHOOK_SECRET=whsec_security_suite_$$
    export STRIPE_WEBHOOK_SECRET=$SECURITY_STRIPE_WEBHOOK_SECRET
  fi
  suite_topology_start --bin "$bin" --window 30
fi
# shellcheck source=/dev/null
. "$TK_VAR/topology/env.sh"
base_port=${TOPOLOGY_SERVE_PORT_BASE:-3100}
export SECURITY_BASE_URL=$TOPOLOGY_INGRESS
export SECURITY_SERVICE_AUTH=http://127.0.0.1:$((base_port + 1))
export SECURITY_SERVICE_TICKETS=http://127.0.0.1:$((base_port + 2))
export SECURITY_SERVICE_ORDERS=http://127.0.0.1:$((base_port + 3))
export SECURITY_SERVICE_PAYMENTS=http://127.0.0.1:$((base_port + 4))
export SECURITY_LOG_DIR=$TK_VAR/topology
export SECURITY_TICKETING_BIN=$bin

rc=0
t0=$(date +%s)
(cd "$here" && "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs --durations=8 .) || rc=1
echo "security: pytest took $(($(date +%s) - t0)) s"
suite_topology_stop || rc=1
stop_fake_stripe
exit $rc
