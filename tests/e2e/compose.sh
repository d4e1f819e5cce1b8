#!/usr/bin/env bash
# tests/e2e/compose.sh [BINARY]: the compose_config ctest. docker/ checked without a Docker
# engine: tests/e2e/compose_check.py (engine-free `docker compose config` or docker-compose, then
# structural checks; BINARY enables the runtime-library check). Needs the venv of
# scripts/setup-py-tools.sh, which it installs when missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=/dev/null
. "$root/scripts/env.sh"
bash "$root/scripts/setup-py-tools.sh" >/dev/null
if [ $# -ge 1 ]; then export TICKETING_BIN=$1; fi
cd "$here"
exec "$TK_CACHE/venv/bin/python" -m pytest -p no:cacheprovider -q -rs compose_check.py
