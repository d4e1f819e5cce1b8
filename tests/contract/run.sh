#!/bin/sh
# run.sh <ev_samples binary> - the contract_schemas ctest: checks the tools, then runs
# validate.mjs with the repository's schemas and sample files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
    echo "contract_schemas: node (>= 20) is not installed" >&2
    exit 1
fi
if [ ! -f "$here/node_modules/ajv/package.json" ] || [ ! -f "$here/node_modules/ajv-formats/package.json" ]; then
    echo "contract_schemas: tests/contract/node_modules is missing; run scripts/setup-node-tools.sh" \
         "(npm ci --prefix tests/contract)" >&2
    exit 1
fi
exec node "$here/validate.mjs" --samples "$1" --schemas "$here/../../schemas/events" \
    --good "$here/good.jsonl" --bad "$here/bad.jsonl"
