#!/usr/bin/env bash
# scripts/cluster.sh: a 3-node KRaft Apache Kafka 3.9 cluster on loopback, for the scale-out
# topology (scripts/topology.sh --cluster) and its failure tests (tests/cluster/). Each node is a
# combined broker+controller (the three form the controller quorum), configured by the one KRaft
# writer, scripts/lib/kraft.sh. Topics created against it get replication factor 3 and
# min.insync.replicas=2 (var/cluster/env.sh exports KAFKA_REPLICATION_FACTOR and
# KAFKA_MIN_INSYNC_REPLICAS for `ticketing topics`), so any one broker may die without losing an
# acknowledged record (producers use acks=all) and without stopping writes.
# The stack's single broker (scripts/stack.sh) stays the quick default; this is opt-in.
#
# Ports: node N (1..3) listens on CLUSTER_PORT_BASE+N, its controller on CLUSTER_PORT_BASE+10+N.
# CLUSTER_PORT_BASE defaults to TK_KAFKA_PORT+300 (19392 with the default ports), so a clone whose
# environment moves TK_KAFKA_PORT gets its own cluster ports too. Data in var/cluster/node-N.
#
# Usage: scripts/cluster.sh start|stop|status|wipe|kill-broker N|start-broker N|stop-broker N|
#                           leader TOPIC PARTITION|brokers
#   start          starts the nodes that are not running, waits until all three are registered
#   stop           SIGTERM to every node (SIGKILL after STOP_TIMEOUT s)
#   status         one line per node; exits 0 when all three are up, 1 when some, 3 when none
#   wipe           stops, then deletes var/cluster (a fresh cluster id at the next start)
#   kill-broker N  kill -9 node N (a crash: no controlled shutdown, no leadership hand-over)
#   stop-broker N  SIGTERM node N (controlled shutdown: leadership moves first)
#   start-broker N starts node N and waits until it is registered again
#   leader T P     prints the node id leading partition P of topic T (-1: none)
#   brokers        prints the bootstrap list (the KAFKA_BROKERS of the cluster's clients)
set -euo pipefail
umask 022

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source-path=SCRIPTDIR source=lib/kraft.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/kraft.sh"
TK_SCRIPT=cluster
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BASE="${CLUSTER_PORT_BASE:-$((TK_KAFKA_PORT + 300))}"
NODES=(1 2 3)
DIR="$TK_VAR/cluster"
START_TIMEOUT=240
STOP_TIMEOUT=30


port_of() { echo $((BASE + $1)); }
cport_of() { echo $((BASE + 10 + $1)); }
ndir() { echo "$DIR/node-$1"; }

voters() {
  local n out=""
  for n in "${NODES[@]}"; do out+="${out:+,}$n@127.0.0.1:$(cport_of "$n")"; done
  echo "$out"
}

brokers() {
  local n out=""
  for n in "${NODES[@]}"; do out+="${out:+,}127.0.0.1:$(port_of "$n")"; done
  echo "$out"
}

check_node() {
  case "${1:-}" in 1 | 2 | 3) ;; *) die "node must be 1, 2 or 3 (got '${1:-}')" ;; esac
}

# node_pid N: the pid of node N when it is the JVM we started (its command line names this
# clone's properties file, so a recycled pid or another clone's broker never matches).
node_pid() {
  local f="$DIR/node-$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(head -c 32 "$f" | tr -dc 0-9)
  [ -n "$pid" ] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(ndir "$1")/server.properties" ||
    return 1
  echo "$pid"
}

write_env() {
  cat >"$DIR/env.sh" <<EOF
# Written by scripts/cluster.sh start: the cluster's client settings (. this file).
export KAFKA_BROKERS=$(brokers)
export KAFKA_REPLICATION_FACTOR=3
export KAFKA_MIN_INSYNC_REPLICAS=2
EOF
}

# launch N: write node N's configuration (formatting its storage on first start) and start it.
launch() {
  local n=$1 d home java_bin id p
  d=$(ndir "$n")
  if node_pid "$n" >/dev/null; then
    return 0
  fi
  for p in "$(port_of "$n")" "$(cport_of "$n")"; do
    ! port_open "$p" || die "node $n: port $p is already used by another process"
  done
  home=$(tk_kafka_home) || die "no Kafka jars in $TK_CACHE (run scripts/setup.sh)"
  java_bin=$(tk_kraft_java)
  mkdir -p "$d/data"
  [ -s "$DIR/cluster.id" ] || tk_kraft_cluster_id >"$DIR/cluster.id"
  id=$(cat "$DIR/cluster.id")
  tk_kraft_write_props "$d/server.properties" "$n" "$(voters)" "$(port_of "$n")" "$(cport_of "$n")" \
    "$d/data" 3 2 scripts/cluster.sh
  tk_kraft_write_log4j "$d/log4j.properties" "$d/server.log"
  tk_kraft_write_log4j "$d/tools-log4j.properties" -
  if [ ! -f "$d/data/meta.properties" ]; then
    tk_kraft_format "$java_bin" "$home" "$d/server.properties" "$id" "$d/tools-log4j.properties" \
      "$d/format.log" || { log_tail "$d/format.log"; die "node $n: storage format failed"; }
  fi
  # setsid: its own session, so a signal to the caller's process group does not reach it; in a
  # script setsid execs in place, so $! is the JVM. Serial GC and the C1 compiler only: three JVMs
  # share a small machine, where C2's compile threads slowed a restart to over a minute.
  setsid "$java_bin" -Xmx400m -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
    -cp "$home/libs/*" kafka.Kafka "$d/server.properties" >>"$d/console.log" 2>&1 </dev/null 9>&- &
  echo "$!" >"$DIR/node-$n.pid"
}

# wait_nodes N...: until each node answers as registered; fails on a node's exit or the timeout.
wait_nodes() {
  local t0 n pending deadline
  t0=$(now_ms)
  deadline=$((t0 + START_TIMEOUT * 1000))
  while :; do
    pending=""
    for n in "$@"; do
      if ! node_pid "$n" >/dev/null; then
        err "node $n exited during start-up"
        log_tail "$(ndir "$n")/console.log" 10
        log_tail "$(ndir "$n")/server.log"
        return 1
      fi
      tk_kraft_answers "$(port_of "$n")" "$n" || pending+=" $n"
    done
    if [ -z "$pending" ]; then
      say "node(s) $* up in $(($(now_ms) - t0)) ms (brokers $(brokers))"
      return 0
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      err "node(s)$pending not registered within ${START_TIMEOUT}s"
      return 1
    fi
    sleep 0.25
  done
}

# signal_wait SIG N...: send SIG to each running node, wait until all exited (SIGKILL at timeout).
signal_wait() {
  local sig=$1 n pid pids=()
  shift
  for n in "$@"; do
    if pid=$(node_pid "$n"); then
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("node $n=$pid")
    fi
  done
  wait_gone_or_kill "$STOP_TIMEOUT" "${pids[@]}"
  for n in "$@"; do rm -f "$DIR/node-$n.pid"; done
}

cmd_start() {
  local n
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 300 9 || die "another scripts/cluster.sh is still running"
  command -v kcat >/dev/null || die "kcat not found (run scripts/setup.sh)"
  for n in "${NODES[@]}"; do launch "$n"; done
  write_env
  wait_nodes "${NODES[@]}"
}

cmd_status() {
  local n pid up=0 state
  for n in "${NODES[@]}"; do
    if pid=$(node_pid "$n"); then
      state="up (not registered)"
      if tk_kraft_answers "$(port_of "$n")" "$n"; then
        state=up
        up=$((up + 1))
      fi
      printf 'node-%s  %-20s pid %-8s 127.0.0.1:%s  controller :%s\n' "$n" "$state" "$pid" \
        "$(port_of "$n")" "$(cport_of "$n")"
    else
      printf 'node-%s  down\n' "$n"
    fi
  done
  [ $up -eq ${#NODES[@]} ] && return 0
  [ $up -eq 0 ] && return 3
  return 1
}

# leader T P: the node leading partition P of topic T, from any node that answers.
cmd_leader() {
  local topic=${1:?topic} part=${2:?partition} n out
  for n in "${NODES[@]}"; do
    port_open "$(port_of "$n")" || continue
    if out=$(kcat -b "127.0.0.1:$(port_of "$n")" -L -t "$topic" -m 3 2>/dev/null); then
      sed -n "s/^ *partition $part, leader \(-\{0,1\}[0-9]*\),.*/\1/p" <<<"$out" | head -n1
      return 0
    fi
  done
  echo -1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) signal_wait TERM "${NODES[@]}"; say "stopped" ;;
  status) cmd_status ;;
  wipe) signal_wait TERM "${NODES[@]}"; rm -rf "$DIR"; say "data deleted" ;;
  kill-broker)
    check_node "${2:-}"
    pid=$(node_pid "$2") || die "node $2 is not running"
    kill -KILL "$pid"
    say "node $2 (pid $pid) killed (SIGKILL)"
    ;;
  stop-broker) check_node "${2:-}"; signal_wait TERM "$2"; say "node $2 stopped" ;;
  start-broker)
    check_node "${2:-}"
    [ -f "$DIR/cluster.id" ] || die "no cluster yet (scripts/cluster.sh start)"
    launch "$2"
    wait_nodes "$2"
    ;;
  leader) shift; cmd_leader "$@" ;;
  brokers) brokers ;;
  *) sed -n 's/^# \{0,1\}//;/^Usage/,/^$/p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
