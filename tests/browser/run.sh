#!/usr/bin/env bash
# tests/browser/run.sh BINARY: the storefront in a real browser (the browser_storefront ctest,
# labelled e2e). Installs the pinned Node tools (scripts/setup-node-tools.sh), puts Stripe's
# test-mode declines in front of stripe-mock (stripe-declines.mjs: stripe-mock charges every
# card), starts the multi-process topology with BINARY behind its nginx ingress
# (scripts/topology.sh start --isolated), runs storefront.test.mjs in Debian's headless chromium
# through the ingress, and stops what it started (a sanitizer report in any role's log fails).
#
# The reservation window is BROWSER_WINDOW_SECONDS (default 30, not the e2e suite's 5): the buyer
# must get from Purchase to Pay, with screenshots on the way, inside it on a loaded 2-core machine
# where a page and its screenshots can take 10 s; the expiry itself is waited for, not timed. Screenshots go to SCREENSHOT_DIR (default var/screenshots).
# BROWSER_BASE_URL runs the suite against a deployment that is already up instead (its Stripe
# must decline tok_chargeDeclined as Stripe does).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:?usage: tests/browser/run.sh BINARY}
bin=$(readlink -f "$bin")
# shellcheck source=/dev/null
. "$root/scripts/env.sh"

sh "$root/scripts/setup-node-tools.sh"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "browser: $CHROMIUM not found (scripts/setup.sh installs Debian's chromium)" >&2; exit 1; }
# Under var/ itself, not $TK_VAR: scripts/test.sh deletes its own stack folder after a pass.
export SCREENSHOT_DIR=${SCREENSHOT_DIR:-$ROOT/var/screenshots}
rm -rf "$SCREENSHOT_DIR"
mkdir -p "$SCREENSHOT_DIR"

work=$(mktemp -d)
proxy=""
started=0
cleanup() {
  local rc=0
  if [ "$started" = 1 ]; then
    bash "$root/scripts/topology.sh" stop || rc=$?
  fi
  if [ -n "$proxy" ]; then kill "$proxy" 2>/dev/null || true; wait "$proxy" 2>/dev/null || true; fi
  rm -rf "$work"
  return "$rc"
}
trap 'cleanup || exit $?' EXIT

if [ -n "${BROWSER_BASE_URL:-}" ]; then
  base=$BROWSER_BASE_URL
  echo "browser: against $base (nothing started here)"
else
  if bash "$root/scripts/topology.sh" status >/dev/null 2>&1; then
    echo "browser: a topology is already running; stop it (scripts/topology.sh stop) or set BROWSER_BASE_URL" >&2
    exit 1
  fi
  node "$here/stripe-declines.mjs" "$STRIPE_API_BASE" "$work/stripe.port" >"$work/stripe.log" 2>&1 &
  proxy=$!
  for _ in $(seq 100); do [ -s "$work/stripe.port" ] && break; sleep 0.1; done
  [ -s "$work/stripe.port" ] || { cat "$work/stripe.log" >&2; echo "browser: the Stripe proxy did not start" >&2; exit 1; }
  export STRIPE_API_BASE="http://127.0.0.1:$(cat "$work/stripe.port")"
  started=1
  bash "$root/scripts/topology.sh" start --bin "$bin" --isolated --window "${BROWSER_WINDOW_SECONDS:-30}"
  # shellcheck source=/dev/null
  . "$TK_VAR/topology/env.sh"
  base=$TOPOLOGY_INGRESS
fi

t0=$(date +%s)
rc=0
(cd "$here" && BASE_URL=$base node storefront.test.mjs) || rc=$?
echo "browser: the suite took $(($(date +%s) - t0)) s; screenshots in $SCREENSHOT_DIR"
exit "$rc"
