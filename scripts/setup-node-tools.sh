#!/bin/sh
# setup-node-tools.sh - install the Node tools of the tests (ajv and ajv-formats for the contract
# test, tests/contract) with `npm ci`, exactly as package-lock.json pins them.
# Idempotent: skips the install when node_modules was installed from the same package-lock.json
# (its SHA-256 is kept in node_modules/.tk-lock-sha256). Needs node >= 20 and npm.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/contract"
stamp="$dir/node_modules/.tk-lock-sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup-node-tools: node (>= 20) and npm are required" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "setup-node-tools: node >= 20 is required, found $(node --version)" >&2
    exit 1
fi

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$dir/node_modules/ajv/package.json" ]; then
    echo "setup-node-tools: tests/contract/node_modules is up to date"
    exit 0
fi
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
echo "setup-node-tools: installed tests/contract/node_modules"
