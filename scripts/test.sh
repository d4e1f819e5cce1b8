#!/usr/bin/env bash
# scripts/test.sh: the README's test command. Installs what is missing (scripts/setup.sh), starts
# a stack of real parts of the tests' own (Kafka 3.9 KRaft, PostgreSQL, stripe-mock; see below),
# builds, creates databases and topics, and runs every ctest: unit, then integration and e2e.
#
#   scripts/test.sh                 debug build in build/debug
#   scripts/test.sh --sanitize      the same suite under ASan+UBSan in build/asan
#   scripts/test.sh -- -L unit      extra arguments after -- go to ctest
#
# The tests' stack is stopped on exit and deleted when every test passed; the developer's stack
# (scripts/stack.sh, var/) is left exactly as it was.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tests' own world: a stack of their own (PostgreSQL, Kafka, stripe-mock) under var/test-stack,
# on the developer's ports + TK_TEST_PORT_OFFSET (7), made afresh at every run. Every topic,
# consumer group and database a test creates lives there, so a developer's stack under var/, its
# data and `ticketing status` are never touched. It is deleted after a passing run and kept (stopped)
# for inspection after a failing one. Ports and addresses are set here, before env.sh, so that a
# shell which sourced env.sh for the developer's stack cannot point the tests at it.
root_dir=$PWD
offset=${TK_TEST_PORT_OFFSET:-7}
export TK_STACK_VAR="$root_dir/var/test-stack"
export PGPORT_TK=$((${PGPORT_TK:-15432} + offset))
export TK_KAFKA_PORT=$((${TK_KAFKA_PORT:-19092} + offset))
export TK_KAFKA_CONTROLLER_PORT=$((${TK_KAFKA_CONTROLLER_PORT:-19093} + offset))
export TK_STRIPE_PORT=$((${TK_STRIPE_PORT:-12111} + offset))
export KAFKA_BROKERS="127.0.0.1:$TK_KAFKA_PORT"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT_TK/postgres"
export STRIPE_API_BASE="http://127.0.0.1:$TK_STRIPE_PORT"
unset DATABASE_URL_AUTH DATABASE_URL_TICKETS DATABASE_URL_ORDERS DATABASE_URL_PAYMENTS \
  DATABASE_URL_EXPIRATION
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

bash scripts/stack.sh wipe >/dev/null   # a failed run's leftovers
tk_stack_stop_on_exit stop
bash scripts/stack.sh start

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
# Passed: drop the tests' world (topics, groups, databases, logs) with the stack.
tk_stack_stop_on_exit wipe
