# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts share. Each sources it first:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"      (bench/run.sh: "$(dirname ...)/lib.sh")
# It turns on strict mode (set -euo pipefail: a benchmark that half-fails must not print a
# result), and sources scripts/env.sh (ROOT, TK_VAR, the local stack's ports and configuration).
set -euo pipefail
# shellcheck source=../scripts/env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)/scripts/env.sh"

# bench_build BUILD TYPE TARGET...: configures BUILD (CMAKE_BUILD_TYPE=TYPE, Ninja) and builds
# TARGETs in it. Its output is the caller's to send (a log, or /dev/null).
bench_build() {
  local build=$1 type=$2
  shift 2
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$type"
  ninja -C "$build" "$@"
}

# bench_java_tool: sets JAVA_TOOL, the command line that runs one of Kafka's own tools (the
# ceilings: ProducerPerformance, ConsumerPerformance, TopicCommand ...) from the cached jars.
bench_java_tool() {
  local kafka_home
  kafka_home="$(tk_kafka_home)" || { echo "no Kafka jars: run scripts/setup.sh" >&2; exit 1; }
  JAVA_TOOL=(java -Xmx512m -cp "$kafka_home/libs/*"
    -Dlog4j.configuration="file:$ROOT/var/kafka/tools-log4j.properties")
}

# bench_post_ticket_script FILE TITLE COOKIE: writes the wrk script that POSTs one ticket titled
# TITLE (price 10) per request, signed in with COOKIE (from bench/cookies.py).
bench_post_ticket_script() {
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '{"title":"$2","price":10}'
wrk.headers["content-type"] = "application/json"
wrk.headers["cookie"] = "$3"
LUA
}
