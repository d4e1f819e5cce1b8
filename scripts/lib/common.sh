# shellcheck shell=bash
# scripts/lib/common.sh: the small helpers shared by scripts/stack.sh, scripts/topology.sh and
# scripts/cluster.sh (each had its own copy). The caller sets TK_SCRIPT, the prefix of its
# messages ("stack", "topology", "cluster"), before sourcing.
#
#   say MSG...            a line on stdout: "<script>: MSG"
#   err MSG...            a line on stderr: "<script>: ERROR: MSG"
#   die MSG...            err, then exit 1
#   now_ms                milliseconds since the epoch
#   log_tail FILE [N]     the last N (25) lines of FILE on stderr, to explain a failure
#   port_open PORT        true when something accepts TCP connections on 127.0.0.1:PORT
#   alive PID             true when process PID exists and is not a zombie
#   wait_gone SECONDS PID...   waits until none of the PIDs is alive, at most SECONDS
#   wait_gone_or_kill SECONDS NAME=PID...   wait_gone, then SIGKILL to each one still alive (saying
#                         "NAME (pid PID) still running after SECONDS s: SIGKILL"); the end of
#                         every graceful stop
# It changes no shell option and defines nothing else.

say() { printf '%s: %s\n' "$TK_SCRIPT" "$*"; }
err() { printf '%s: ERROR: %s\n' "$TK_SCRIPT" "$*" >&2; }
die() { err "$*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

log_tail() { # file [lines]
  if [ -s "$1" ]; then
    printf -- '---- last lines of %s ----\n' "$1" >&2
    tail -n "${2:-25}" "$1" >&2
    printf -- '----\n' >&2
  else
    printf '%s: (no log at %s)\n' "$TK_SCRIPT" "$1" >&2
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() {
  local st
  st=$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

wait_gone() { # seconds pid...
  local limit=$1 i pid left
  shift
  for ((i = 0; i < limit * 10; i++)); do
    left=0
    for pid in "$@"; do if alive "$pid"; then left=1; fi; done
    [ $left = 1 ] || return 0
    sleep 0.1
  done
}

wait_gone_or_kill() { # seconds name=pid...
  local limit=$1 entry pids=()
  shift
  for entry in "$@"; do pids+=("${entry##*=}"); done
  [ ${#pids[@]} -gt 0 ] || return 0
  wait_gone "$limit" "${pids[@]}"
  for entry in "$@"; do
    if alive "${entry##*=}"; then
      err "${entry%=*} (pid ${entry##*=}) still running after ${limit}s: SIGKILL"
      kill -KILL "${entry##*=}" 2>/dev/null || true
    fi
  done
}
