#!/usr/bin/env bash
# scripts/run.sh: the README's run command. Installs what is missing, starts the local stack
# (Kafka 3.9 KRaft, PostgreSQL, stripe-mock) unless it already runs, builds the binary, creates
# databases and topics, and runs every context in one process on $PORT (default 3000).
# Ctrl-C stops the system; a stack this script started is stopped too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

bash scripts/setup.sh
if ! bash scripts/stack.sh status >/dev/null 2>&1; then
  tk_stack_stop_on_exit stop   # works when stdout is a pipe that Ctrl-C already closed
  bash scripts/stack.sh start
fi

build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" ticketing
"$build/app/ticketing" migrate
"$build/app/ticketing" topics

cat <<MSG

  the storefront: http://localhost:$PORT/   (open it in a browser; Ctrl-C to stop)
  the API:
    curl -i -X POST localhost:$PORT/api/users/signup -H 'content-type: application/json' \\
         -d '{"email":"me@example.com","password":"secret"}'
    curl localhost:$PORT/api/tickets
  logs are JSON lines on stderr; health: /healthz /readyz /metrics

MSG
# Not exec: the trap above must run after the binary stops.
"$build/app/ticketing" run || status=$?
exit "${status:-0}"
