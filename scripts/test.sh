#!/usr/bin/env bash
# scripts/test.sh: the README's test command. Installs what is missing (scripts/setup.sh), starts
# the local stack of real parts (Kafka 3.9 KRaft, PostgreSQL, stripe-mock) unless it already runs,
# builds, creates databases and topics, and runs every ctest: unit, then integration and e2e.
#
#   scripts/test.sh                 debug build in build/debug
#   scripts/test.sh --sanitize      the same suite under ASan+UBSan in build/asan
#   scripts/test.sh -- -L unit      extra arguments after -- go to ctest
#
# A stack this script started is stopped on exit; one that was already running is left running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

mode=debug
cmake_extra=()
ctest_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) mode=asan; cmake_extra+=(-DTK_SANITIZE=address,undefined) ;;
    --) shift; ctest_extra=("$@"); break ;;
    *) echo "usage: scripts/test.sh [--sanitize] [-- ctest args]" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh
bash scripts/setup-node-tools.sh   # ajv, for the event-schema contract test
bash scripts/setup-py-tools.sh     # pytest, jsonschema, schemathesis, for tests/e2e

if ! bash scripts/stack.sh status >/dev/null 2>&1; then
  trap 'bash scripts/stack.sh stop' EXIT
  bash scripts/stack.sh start
fi

build="build/$mode"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug "${cmake_extra[@]}" >/dev/null
ninja -C "$build"

if [ "$mode" = asan ]; then
  # Leaks are errors; librdkafka and h2o keep a few process-lifetime singletons (suppressed).
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  if [ -f tests/lsan.supp ]; then
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  fi
fi

"$build/app/ticketing" migrate
"$build/app/ticketing" topics
(cd "$build" && ctest --output-on-failure --timeout 300 -j2 "${ctest_extra[@]}")
