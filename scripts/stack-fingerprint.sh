#!/usr/bin/env bash
# scripts/stack-fingerprint.sh: prints what a stack holds (databases, Kafka topics with their end
# offsets, consumer groups), one sorted line each. CI takes it of a developer's stack before and
# after `scripts/test.sh` and fails when they differ: the tests must live in a world of their own
# and leave a developer's data, topics, groups and `ticketing status` exactly as they were.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
{
  psql -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -d postgres -Atc \
    "SELECT 'database ' || datname FROM pg_database WHERE NOT datistemplate"
  bash "$ROOT/scripts/kafka.sh" get-offsets 2>/dev/null | sed 's/^/offset /'
  bash "$ROOT/scripts/kafka.sh" consumer-groups --list 2>/dev/null | sed 's/^/group /'
} | sort
