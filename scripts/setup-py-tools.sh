#!/bin/sh
# setup-py-tools.sh - install the Python tools of the e2e suite (pytest, requests, jsonschema,
# PyYAML, schemathesis; tests/e2e/requirements.txt pins them all) into a virtualenv at
# ${TK_CACHE}/venv (default ~/.cache/ticketing/venv), shared by every clone on the machine.
# Python is for test tools only: the product stays C.
# Idempotent: skips the install when the venv was made from the same requirements file (its
# SHA-256 is kept in the venv as .tk-req-sha256). Uses Debian's python3 (apt python3-venv when
# the venv module is missing).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tests/e2e/requirements.txt"
venv="${TK_CACHE:-${HOME:-/root}/.cache/ticketing}/venv"
stamp="$venv/.tk-req-sha256"

want=$(sha256sum "$req" | cut -d' ' -f1)
# Several ctests may call this at once on a fresh machine: one installs, the others wait.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import schemathesis' \
    >/dev/null 2>&1; then
    echo "setup-py-tools: $venv is up to date"
    exit 0
fi

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || {
    echo "setup-py-tools: python3 is required (apt-get install python3 python3-venv)" >&2
    exit 1
}
if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' >/dev/null 2>&1; then
    echo "setup-py-tools: installing python3-venv"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo=sudo; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        python3-venv >/dev/null || {
        $sudo apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            python3-venv >/dev/null
    }
fi
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
echo "$want" >"$stamp"
echo "setup-py-tools: installed $(grep -c '==' "$req") packages into $venv"
