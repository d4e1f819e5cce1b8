#!/usr/bin/env bash
# bench/schemathesis/run.sh: the long contract check (issue 16) - schemathesis against
# schemas/openapi.yaml through the isolated topology (tests/e2e/run.sh ... schemathesis) with a
# budget of at least 5,000 generated cases instead of CI's 20 examples per operation. Run by hand,
# never by ctest (it takes tens of minutes).
#
#   bash bench/schemathesis/run.sh [BINARY] [EXAMPLES_PER_OPERATION]
#
# EXAMPLES_PER_OPERATION defaults to 400: 16 operations through the ingress (those tagged
# `service` are excluded) x 400 = 6,400 cases at most; schemathesis stops an operation early when
# its input space is exhausted, so check the "test cases" count it prints at the end. A seed can
# be fixed with E2E_SCHEMATHESIS_SEED.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$root/build/release" ticketing >/dev/null
  bin="$root/build/release/app/ticketing"
fi
E2E_SCHEMATHESIS_MAX_EXAMPLES=${2:-400} exec bash "$root/tests/e2e/run.sh" "$bin" schemathesis
