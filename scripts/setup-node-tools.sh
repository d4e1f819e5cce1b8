#!/bin/sh
# setup-node-tools.sh - install the Node tools of the tests with `npm ci`, exactly as each
# package-lock.json pins them: ajv and ajv-formats for the contract test (tests/contract), and
# playwright-core and axe-core for the browser suite (tests/browser; playwright-core drives
# Debian's chromium, which scripts/setup.sh installs: no browser is downloaded, and
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD makes sure of it).
# Idempotent: skips a directory whose node_modules was installed from the same package-lock.json
# (its SHA-256 is kept in node_modules/.tk-lock-sha256). Needs node >= 20 and npm.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup-node-tools: node (>= 20) and npm are required" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "setup-node-tools: node >= 20 is required, found $(node --version)" >&2
    exit 1
fi

# install DIR PROBE: npm ci in DIR unless its stamp matches; PROBE is a package it must have.
install() {
    dir="$root/$1"
    stamp="$dir/node_modules/.tk-lock-sha256"
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$dir/node_modules/$2/package.json" ]; then
        echo "setup-node-tools: $1/node_modules is up to date"
        return 0
    fi
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
    echo "setup-node-tools: installed $1/node_modules"
}

install tests/contract ajv
install tests/browser playwright-core
