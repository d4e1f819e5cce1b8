# shellcheck shell=bash
# tests/support/suite.sh - sourced by the run.sh of the Python suites (tests/chaos, tests/e2e,
# tests/security): the tools' venv, and the isolated topology a suite starts for itself and
# stops again (scripts/topology.sh start --isolated: its own broker and databases on this clone's
# stack). The caller sets $root (the repository) and has sourced scripts/env.sh.

suite_started=0

# suite_venv [quiet]: the Python tools (pytest, schemathesis, ...) installed; $venv names them.
suite_venv() {
  if [ "${1:-}" = quiet ]; then
    bash "$root/scripts/setup-py-tools.sh" >/dev/null
  else
    bash "$root/scripts/setup-py-tools.sh"
  fi
  venv="$TK_CACHE/venv"
}

# suite_topology_start ARG...: `topology.sh start --isolated ARG...`, then its env.sh
# (TOPOLOGY_INGRESS, ...) in this shell. suite_topology_stop stops it again.
suite_topology_start() {
  suite_started=1
  bash "$root/scripts/topology.sh" start --isolated "$@"
  # shellcheck source=/dev/null
  . "$TK_VAR/topology/env.sh"
}

# suite_topology_stop: stops the topology suite_topology_start started, once (nothing when the
# suite used one already running). Fails as topology.sh stop does: a sanitizer report in any
# role's log fails it.
suite_topology_stop() {
  if [ "$suite_started" = 1 ]; then
    suite_started=0
    bash "$root/scripts/topology.sh" stop || return $?
  fi
}
