# shellcheck shell=bash
# scripts/env.sh: the local stack's environment, sourced by the other scripts (and by a developer's
# shell: `. scripts/env.sh`). It sets ROOT (the repo root, found from this file's location, so a clone
# anywhere works), TK_CACHE (downloads kept across clones: Kafka jars, stripe-mock) and TK_VAR (this
# clone's runtime data), and exports the 12-factor defaults of DESIGN.md §2 for the local stack, each
# only when not already set, so CI or a developer can point the code elsewhere.
# It changes no shell option, so sourcing it from an interactive shell is safe.

_tk_env_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$_tk_env_dir/.." && pwd -P)"
unset _tk_env_dir
TK_CACHE="${TK_CACHE:-${HOME:-/root}/.cache/ticketing}"
# TK_STACK_VAR gives a stack a folder of its own: scripts/test.sh runs the tests in one, so that a
# developer's stack under var/ is never touched by them.
TK_VAR="${TK_STACK_VAR:-$ROOT/var}"
export ROOT TK_CACHE TK_VAR

# Ports of the local stack (fixed, so one clone at a time runs it on a machine).
: "${PGPORT_TK:=15432}"
: "${TK_KAFKA_PORT:=19092}"
: "${TK_KAFKA_CONTROLLER_PORT:=19093}"
: "${TK_STRIPE_PORT:=12111}"
: "${TK_PG_BIN:=/usr/lib/postgresql/15/bin}"   # Debian's real binaries, not /usr/local/bin wrappers
# Kafka versions, preferred first; scripts/setup.sh caches the first one Maven resolves.
: "${TK_KAFKA_VERSIONS:=3.9.1 3.9.0 3.9.2}"
# Builds made by the scripts treat warnings as errors (CMakeLists.txt: plain users' builds do not).
: "${TK_WERROR:=ON}"
export TK_WERROR
export PGPORT_TK TK_KAFKA_PORT TK_KAFKA_CONTROLLER_PORT TK_STRIPE_PORT TK_PG_BIN TK_KAFKA_VERSIONS

# The application's configuration (DESIGN.md §2), defaults for the local stack.
: "${KAFKA_BROKERS:=127.0.0.1:$TK_KAFKA_PORT}"
: "${DATABASE_URL:=postgresql://postgres@127.0.0.1:$PGPORT_TK/postgres}"
: "${STRIPE_API_BASE:=http://127.0.0.1:$TK_STRIPE_PORT}"
: "${STRIPE_KEY:=sk_test_123}"
: "${JWT_KEY:=dev-only-insecure-jwt-key-do-not-use-in-production}"
: "${PORT:=3000}"
: "${EXPIRATION_WINDOW_SECONDS:=900}"
# Development mode (DESIGN.md section 2): e.g. a JWT_KEY shorter than 32 bytes is allowed.
: "${TK_DEV:=1}"
# scrypt at the original's cost locally (N=2^14, 16 MiB): suites sign up hundreds of users on a
# shared 2-core machine; the default (2^17, OWASP's) is for deployments. Tests that need the
# default set it themselves.
: "${SCRYPT_LOG2_N:=14}"
export KAFKA_BROKERS DATABASE_URL STRIPE_API_BASE STRIPE_KEY JWT_KEY PORT \
  EXPIRATION_WINDOW_SECONDS TK_DEV SCRYPT_LOG2_N

# Tools installed by scripts/setup.sh (stripe-mock), and the machine's Go when it is not on PATH.
case ":$PATH:" in *":$TK_CACHE/bin:"*) ;; *) PATH="$TK_CACHE/bin:$PATH" ;; esac
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="$PATH:/usr/local/go/bin"
fi
export PATH

# tk_kafka_home: prints the cached Kafka folder (with libs/ inside) that setup.sh completed, or
# fails when there is none.
tk_kafka_home() {
  local v
  for v in $TK_KAFKA_VERSIONS; do
    if [ -f "$TK_CACHE/kafka-$v/.complete" ]; then
      printf '%s\n' "$TK_CACHE/kafka-$v"
      return 0
    fi
  done
  return 1
}

# tk_stack_stop_on_exit ACTION: runs `scripts/stack.sh ACTION` (stop or wipe) when the calling
# script exits, however it exits. The stop must not depend on stdout: after a Ctrl-C on
# `scripts/run.sh | tee log` the pipe is already closed, and a stop that printed into it died of
# SIGPIPE half-way and left the stack running. So the stop ignores SIGPIPE and the signals of a
# second Ctrl-C, writes to $TK_VAR/stack-stop.log, and copies that to stderr when it still can.
tk_stack_stop_on_exit() {
  # shellcheck disable=SC2064 # expand ACTION now
  trap "tk__stack_stop_now $1" EXIT
}
tk__stack_stop_now() {
  trap '' PIPE INT TERM HUP
  local log="$TK_VAR/stack-stop.log" rc=0
  mkdir -p "$TK_VAR" 2>/dev/null || log=/dev/null
  bash "$ROOT/scripts/stack.sh" "$1" >"$log" 2>&1 || rc=$?
  [ "$log" = /dev/null ] || cat "$log" >&2 2>/dev/null || true
  return "$rc"
}
