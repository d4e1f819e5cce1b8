#!/usr/bin/env bash
# scripts/stack.sh: runs the local stack of real parts the code and its tests talk to, as plain
# background processes (no Docker here): PostgreSQL 15 on 127.0.0.1:15432, a single-node KRaft
# Apache Kafka 3.9 on 127.0.0.1:19092 and stripe-mock on http://127.0.0.1:12111. Data lives in
# $TK_VAR (<repo>/var), so a restart keeps it and `wipe` gives a clean slate. DEV/TEST ONLY: the
# PostgreSQL cluster trusts every local connection without a password.
#
# Usage: scripts/stack.sh start|stop|restart|status|wipe [pg|kafka|stripe|all]   (default all)
#   start    starts what is not running and waits until each part answers (idempotent)
#   stop     stops gracefully (SIGKILL after a bounded wait) and checks no process is left
#   status   one line per part; exits 0 when all asked parts are up, 3 otherwise
#   wipe     stops, then deletes the parts' data under $TK_VAR
# Needs scripts/setup.sh to have run once on the machine.
set -euo pipefail
umask 022

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source-path=SCRIPTDIR source=lib/kraft.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/kraft.sh"

PG_START_TIMEOUT=30
KAFKA_START_TIMEOUT=${TK_KAFKA_START_TIMEOUT:-120}   # a loaded 2-core machine needs more than 60 s
STRIPE_START_TIMEOUT=20
STOP_TIMEOUT=30

KAFKA_DIR="$TK_VAR/kafka"
STRIPE_DIR="$TK_VAR/stripe"

TK_SCRIPT=stack
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# is_ours PID COMM PATTERN [CWD]: PID is alive, its executable name is COMM, its command line
# contains PATTERN and (when given) its working directory is CWD.
is_ours() {
  alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    cmdline_of "$1" | grep -qF -- "$3" &&
    { [ -z "${4:-}" ] || [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$4" ]; }
}

# our_pid PIDFILE COMM PATTERN [CWD]: prints the pid of this clone's process: the one in PIDFILE,
# or else (pid file lost) one found in /proc; see is_ours. PATTERN/CWD are paths unique to this
# clone, so another program's or another clone's process never matches.
our_pid() {
  local f=$1 pid cand
  shift
  if [ -f "$f" ]; then
    pid=$(head -c 32 "$f" | tr -dc 0-9)
    if [ -n "$pid" ] && is_ours "$pid" "$@"; then
      echo "$pid"
      return 0
    fi
  fi
  while IFS=/ read -r _ _ cand _; do
    if is_ours "$cand" "$@"; then
      echo "$cand"
      return 0
    fi
  done < <(grep -lsF -- "$2" /proc/[0-9]*/cmdline 2>/dev/null)
  return 1
}

# kill_wait PID NAME: SIGTERM, up to STOP_TIMEOUT s for it to exit, then SIGKILL; fails if it stays.
kill_wait() {
  local pid=$1 name=$2
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone_or_kill "$STOP_TIMEOUT" "$name=$pid"
  wait_gone 5 "$pid"
  alive "$pid" || return 0
  err "$name (pid $pid) survived SIGKILL"
  return 1
}

# ---- PostgreSQL -----------------------------------------------------------------------------------
PG_ROOT=""     # the cluster's folder: data/, run/ (unix socket), postgres.log
PG_DATA=""

# service_stop LABEL PID_FN PIDFILE COMM: stop the process PID_FN finds (ours), forget its pid file.
service_stop() {
  local label=$1 pid_fn=$2 pidfile=$3 comm=$4 pid
  if ! pid=$("$pid_fn"); then
    rm -f "$pidfile"
    say "$label: not running"
    return 0
  fi
  say "$label: stopping (pid $pid)"
  kill_wait "$pid" "$comm" || return 1
  rm -f "$pidfile"
  say "$label: stopped"
}

# service_failed LOG PID COMM PIDFILE MESSAGE: a start that did not answer: say why, show its
# log, stop what was launched; returns 1.
service_failed() {
  err "$5"
  log_tail "$1"
  kill_wait "$2" "$3" || true
  rm -f "$4"
  return 1
}

# service_wait LABEL PID PIDFILE SECONDS PROBE WHERE TIMEOUT_MSG LOG [FIRST_LOG]: wait for a
# service started in the background (kafka, stripe-mock) to answer. Every 0.2 s: PROBE (a function)
# true -> "LABEL: up on WHERE (pid, ms)", 0; the process gone -> the tail of FIRST_LOG (10 lines,
# when not empty) and of LOG, the pid file removed, 1; SECONDS passed -> service_failed, 1.
service_wait() {
  local label=$1 pid=$2 pidfile=$3 seconds=$4 probe=$5 where=$6 timeout_msg=$7 log=$8 first=${9:-}
  local t0 i
  t0=$(now_ms)
  for ((i = 0; i < seconds * 5; i++)); do
    if ! alive "$pid"; then
      err "$label: the process exited during start-up"
      if [ -n "$first" ] && [ -s "$first" ]; then log_tail "$first" 10; fi
      log_tail "$log"
      rm -f "$pidfile"
      return 1
    fi
    if "$probe"; then
      say "$label: up on $where (pid $pid, $(($(now_ms) - t0)) ms)"
      return 0
    fi
    sleep 0.2
  done
  service_failed "$log" "$pid" "$label" "$pidfile" "$label: $timeout_msg"
}

# service_status LABEL PID_FN PROBE WHERE DATA WAITING: the line `status` prints for a service:
# down (1); up when PROBE answers, with DATA (its folder) when not empty (0); else starting,
# WAITING saying what it does not do yet (1).
service_status() {
  local label=$1 pid_fn=$2 probe=$3 where=$4 data=$5 waiting=$6 pid
  if ! pid=$("$pid_fn"); then
    printf '%-7s down\n' "$label"
    return 1
  fi
  if "$probe"; then
    printf '%-7s up      pid %-8s %s%s\n' "$label" "$pid" "$where" "${data:+  data $data}"
    return 0
  fi
  printf '%-7s starting pid %-7s %s (%s)\n' "$label" "$pid" "$where" "$waiting"
  return 1
}

# Runs a command as the postgres OS user (PostgreSQL refuses to run as root), from / so that a cwd
# the postgres user cannot read (e.g. under /root) does not break pg_ctl's own path lookup.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# Can the server live at $1 (= $TK_VAR/pg)? The postgres user must be able to reach it, and the
# unix socket path must fit in sun_path (107 bytes).
pg_place_ok() {
  local sock="$1/run/.s.PGSQL.$PGPORT_TK"
  [ "${#sock}" -le 100 ] || return 1
  [ "$(id -u)" -ne 0 ] && return 0
  runuser -u postgres -- test -x "$TK_VAR" 2>/dev/null
}

# Sets PG_ROOT/PG_DATA. With "create", makes the folder: $TK_VAR/pg when the postgres user can reach
# it, else /var/tmp/ticketing-<hash of TK_VAR>/pg with a symlink $TK_VAR/pg pointing to it.
pg_locate() {
  local link="$TK_VAR/pg" alt
  if [ -L "$link" ]; then
    PG_ROOT=$(readlink "$link")
  else
    PG_ROOT=$link
  fi
  PG_DATA="$PG_ROOT/data"
  [ "${1:-}" = create ] || return 0
  mkdir -p "$TK_VAR"
  if [ ! -L "$link" ] && [ ! -d "$link" ] && ! pg_place_ok "$link"; then
    alt="/var/tmp/ticketing-$(printf '%s' "$TK_VAR" | sha256sum | cut -c1-12)/pg"
    say "pg: $link is not reachable by the postgres user (or too long a socket path): using $alt (symlinked)"
    ln -sfn "$alt" "$link"
    PG_ROOT=$alt
    PG_DATA="$PG_ROOT/data"
  fi
  mkdir -p "$PG_ROOT/run"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "pg: no 'postgres' OS user (run scripts/setup.sh)"
    if [ "$(stat -c %U "$PG_ROOT")" != postgres ] ||
      { [ -d "$PG_DATA" ] && [ "$(stat -c %U "$PG_DATA")" != postgres ]; }; then
      chown -R postgres:postgres "$PG_ROOT"
    fi
    chown postgres:postgres "$PG_ROOT/run"
  fi
}

# The postmaster's pid, when it runs (pg_ctl status alone takes a zombie for a live server).
pg_pid() {
  local pid
  [ -f "$PG_DATA/postmaster.pid" ] || return 1
  pid=$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc 0-9)
  [ -n "$pid" ] && alive "$pid" || return 1
  as_pg "$TK_PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || return 1
  echo "$pid"
}

# -U/-d given, else the server logs "role root does not exist" for every probe.
pg_ready() {
  "$TK_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT_TK" -U postgres -d postgres -t 1 >/dev/null 2>&1
}

pg_write_conf() {
  cat >"$PG_DATA/ticketing.conf" <<EOF
# Written by scripts/stack.sh on every start; included last by postgresql.conf. DEV/TEST ONLY.
listen_addresses = '127.0.0.1'
port = $PGPORT_TK
unix_socket_directories = '$PG_ROOT/run'
max_connections = 200
shared_buffers = 256MB
# Checkpoints no more often than a busy run needs: after each one, the first write of every page
# logs the whole page (full_page_writes), so frequent checkpoints multiply the WAL of a backlog.
max_wal_size = 4GB
checkpoint_timeout = 15min
# Durability stays on: the tests check that an accepted command survives a crash.
fsync = on
synchronous_commit = on
full_page_writes = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PG_DATA/ticketing.conf"
}

pg_initdb() {
  say "pg: first start: initdb in $PG_DATA"
  if ! as_pg "$TK_PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$PG_ROOT/initdb.log" 2>&1; then
    log_tail "$PG_ROOT/initdb.log"
    die "pg: initdb failed"
  fi
  # TRUST authentication, no passwords: acceptable only because the server listens on loopback
  # of a dev/test machine. Never copy this file anywhere else.
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/stack.sh. DEV/TEST ONLY: trust, no password, loopback and unix socket only.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
EOF
  printf "\ninclude_if_exists = 'ticketing.conf'\n" >>"$PG_DATA/postgresql.conf"
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PG_DATA/pg_hba.conf" "$PG_DATA/postgresql.conf"
}

# Starts the server without waiting; sets PG_WAIT=1 when pg_wait has something to wait for.
PG_WAIT=0
pg_launch() {
  local pid
  [ -x "$TK_PG_BIN/pg_ctl" ] || die "pg: $TK_PG_BIN/pg_ctl not found (run scripts/setup.sh)"
  pg_locate create
  if pid=$(pg_pid); then
    say "pg: already running (pid $pid, 127.0.0.1:$PGPORT_TK)"
    PG_WAIT=1
    return 0
  fi
  if port_open "$PGPORT_TK"; then
    die "pg: port $PGPORT_TK is already used by another process (not this clone's cluster)"
  fi
  [ -f "$PG_DATA/PG_VERSION" ] || pg_initdb
  pg_write_conf
  say "pg: starting (data $PG_DATA)"
  # -W: don't wait here, pg_wait does it (so Kafka's JVM starts meanwhile).
  if ! as_pg "$TK_PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/postgres.log" -W -s start 9>&-; then
    log_tail "$PG_ROOT/postgres.log"
    die "pg: pg_ctl start failed"
  fi
  PG_WAIT=1
}

pg_wait() {
  local t0 i
  [ "$PG_WAIT" = 1 ] || return 0
  t0=$(now_ms)
  for ((i = 0; i < PG_START_TIMEOUT * 5; i++)); do
    if pg_ready; then
      say "pg: up on 127.0.0.1:$PGPORT_TK (pid $(pg_pid || echo '?'), $(($(now_ms) - t0)) ms)"
      return 0
    fi
    # The server writes postmaster.pid at once; if it is gone after 2 s, it died.
    if [ "$i" -ge 10 ] && ! pg_pid >/dev/null; then
      err "pg: the server exited during start-up"
      log_tail "$PG_ROOT/postgres.log"
      return 1
    fi
    sleep 0.2
  done
  err "pg: not ready within ${PG_START_TIMEOUT}s (pg_isready -h 127.0.0.1 -p $PGPORT_TK)"
  log_tail "$PG_ROOT/postgres.log"
  pg_stop >/dev/null 2>&1 || true
  return 1
}

pg_stop() {
  local pid
  pg_locate
  if ! pid=$(pg_pid); then
    say "pg: not running"
    return 0
  fi
  say "pg: stopping (pid $pid)"
  if ! as_pg "$TK_PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" -s stop; then
    err "pg: fast shutdown timed out: immediate shutdown"
    as_pg "$TK_PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 -s stop || true
  fi
  if alive "$pid"; then
    kill_wait "$pid" postgres || return 1
  fi
  say "pg: stopped"
}

pg_status() {
  pg_locate
  service_status pg pg_pid pg_ready "127.0.0.1:$PGPORT_TK" "$PG_DATA" "not accepting connections yet"
}

# ---- Kafka ----------------------------------------------------------------------------------------
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_PID="" # set by kafka_launch (started or found running): what kafka_wait waits for

kafka_pid() { our_pid "$KAFKA_PIDFILE" java "$KAFKA_PROPS"; }

kafka_java() { tk_kraft_java; }

kafka_write_conf() {
  tk_kraft_write_props "$KAFKA_PROPS" 1 "1@127.0.0.1:$TK_KAFKA_CONTROLLER_PORT" "$TK_KAFKA_PORT" \
    "$TK_KAFKA_CONTROLLER_PORT" "$KAFKA_DIR/data" 1 1 scripts/stack.sh
  tk_kraft_write_log4j "$KAFKA_DIR/log4j.properties" "$KAFKA_DIR/server.log"
  tk_kraft_write_log4j "$KAFKA_DIR/tools-log4j.properties" -
}

kafka_format() {
  local home=$1 id
  id=$(tk_kraft_cluster_id)
  say "kafka: first start: formatting $KAFKA_DIR/data (cluster id $id)"
  if ! tk_kraft_format "$(tk_kraft_java)" "$home" "$KAFKA_PROPS" "$id" \
      "$KAFKA_DIR/tools-log4j.properties" "$KAFKA_DIR/format.log"; then
    log_tail "$KAFKA_DIR/format.log"
    die "kafka: storage format failed"
  fi
}

kafka_launch() {
  local home pid p
  home=$(tk_kafka_home) || die "kafka: no Kafka jars in $TK_CACHE (run scripts/setup.sh)"
  command -v "$(kafka_java)" >/dev/null || die "kafka: java not found (run scripts/setup.sh)"
  if pid=$(kafka_pid); then
    say "kafka: already running (pid $pid, 127.0.0.1:$TK_KAFKA_PORT)"
    echo "$pid" >"$KAFKA_PIDFILE"
    KAFKA_PID=$pid
    return 0
  fi
  for p in "$TK_KAFKA_PORT" "$TK_KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "kafka: port $p is already used by another process (not this clone's broker)"
    fi
  done
  mkdir -p "$KAFKA_DIR/data"
  kafka_write_conf
  [ -f "$KAFKA_DIR/data/meta.properties" ] || kafka_format "$home"
  say "kafka: starting $(basename "$home") (data $KAFKA_DIR/data)"
  # setsid: its own session, so a signal to the caller's process group does not reach it. In a
  # script (no job control) setsid execs in place, so $! is the JVM's pid (checked below).
  setsid "$(kafka_java)" -Xmx512m -Xms256m -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "-Xlog:gc*:file=$KAFKA_DIR/gc.log:time,tags:filecount=2,filesize=10M" \
    -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
    -cp "$home/libs/*" kafka.Kafka "$KAFKA_PROPS" >>"$KAFKA_DIR/console.log" 2>&1 </dev/null 9>&- &
  KAFKA_PID=$!
  echo "$KAFKA_PID" >"$KAFKA_PIDFILE"
}

# True when the broker answers a metadata request and lists itself (so it is registered and
# unfenced: topics can be created).
kafka_answers() { tk_kraft_answers "$TK_KAFKA_PORT" 1; }

kafka_wait() {
  [ -n "$KAFKA_PID" ] || return 0 # not launched
  command -v kcat >/dev/null || die "kafka: kcat not found (run scripts/setup.sh)"
  service_wait kafka "$KAFKA_PID" "$KAFKA_PIDFILE" "$KAFKA_START_TIMEOUT" kafka_answers \
    "127.0.0.1:$TK_KAFKA_PORT" "no metadata answer within ${KAFKA_START_TIMEOUT}s (kcat -b 127.0.0.1:$TK_KAFKA_PORT -L)" \
    "$KAFKA_DIR/server.log" "$KAFKA_DIR/console.log"
}

kafka_stop() { service_stop kafka kafka_pid "$KAFKA_PIDFILE" kafka; }

kafka_status() {
  service_status kafka kafka_pid kafka_answers "127.0.0.1:$TK_KAFKA_PORT" "$KAFKA_DIR/data" \
    "no metadata answer yet"
}

# ---- stripe-mock ----------------------------------------------------------------------------------
STRIPE_BIN="$TK_CACHE/bin/stripe-mock"
STRIPE_PIDFILE="$STRIPE_DIR/stripe-mock.pid"
STRIPE_PID="" # set by stripe_launch (started or found running): what stripe_wait waits for

# stripe-mock runs in $STRIPE_DIR, which tells this clone's from another's (same binary).
stripe_pid() { our_pid "$STRIPE_PIDFILE" stripe-mock "$STRIPE_BIN" "$STRIPE_DIR"; }
stripe_answers() {
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$TK_STRIPE_PORT/v1/charges" \
    -H "Authorization: Bearer $STRIPE_KEY"
}

stripe_launch() {
  local pid
  [ -x "$STRIPE_BIN" ] || die "stripe: $STRIPE_BIN not found (run scripts/setup.sh)"
  mkdir -p "$STRIPE_DIR"
  if pid=$(stripe_pid); then
    say "stripe: already running (pid $pid, http://127.0.0.1:$TK_STRIPE_PORT)"
    echo "$pid" >"$STRIPE_PIDFILE"
    STRIPE_PID=$pid
    return 0
  fi
  if port_open "$TK_STRIPE_PORT"; then
    die "stripe: port $TK_STRIPE_PORT is already used by another process (not our stripe-mock)"
  fi
  say "stripe: starting stripe-mock"
  # env -u PORT: stripe-mock would otherwise also listen on $PORT (the app's port, from env.sh);
  # -https-addr with no port: else it also takes :12112, which another clone's may hold.
  (cd "$STRIPE_DIR" && exec setsid env -u PORT "$STRIPE_BIN" -http-addr "127.0.0.1:$TK_STRIPE_PORT" -https-addr "127.0.0.1:" \
    >>"$STRIPE_DIR/stripe-mock.log" 2>&1 </dev/null 9>&-) &
  STRIPE_PID=$!
  echo "$STRIPE_PID" >"$STRIPE_PIDFILE"
}

stripe_wait() {
  [ -n "$STRIPE_PID" ] || return 0 # not launched
  service_wait stripe "$STRIPE_PID" "$STRIPE_PIDFILE" "$STRIPE_START_TIMEOUT" stripe_answers \
    "http://127.0.0.1:$TK_STRIPE_PORT" "no answer on http://127.0.0.1:$TK_STRIPE_PORT within ${STRIPE_START_TIMEOUT}s" \
    "$STRIPE_DIR/stripe-mock.log"
}

stripe_stop() { service_stop stripe stripe_pid "$STRIPE_PIDFILE" stripe-mock; }

stripe_status() {
  service_status stripe stripe_pid stripe_answers "http://127.0.0.1:$TK_STRIPE_PORT" "" "no answer yet"
}

# ---- commands -------------------------------------------------------------------------------------
usage() {
  echo "usage: scripts/stack.sh start|stop|restart|status|wipe [pg|kafka|stripe|all]" >&2
  exit 2
}

# Serialises concurrent invocations (e.g. parallel test jobs calling start). fd 9 is closed in every
# server started, so a running server never holds the lock.
lock() {
  mkdir -p "$TK_VAR"
  exec 9>"$TK_VAR/.stack.lock"
  flock -w 300 9 || die "another scripts/stack.sh is still running (lock $TK_VAR/.stack.lock)"
}

do_start() {
  local parts=("$@") p rc=0 t0
  t0=$(now_ms)
  # Launch everything first, then wait for each, so the start-ups overlap.
  for p in "${parts[@]}"; do "${p}_launch"; done
  for p in "${parts[@]}"; do "${p}_wait" || rc=1; done
  if [ "$rc" -eq 0 ]; then
    say "started ${parts[*]} in $(($(now_ms) - t0)) ms"
  else
    err "start failed (see above)"
  fi
  return "$rc"
}

do_stop() {
  local parts=("$@") i rc=0
  for ((i = ${#parts[@]} - 1; i >= 0; i--)); do "${parts[i]}_stop" || rc=1; done
  return "$rc"
}

do_status() {
  local p rc=0
  for p in "$@"; do "${p}_status" || rc=3; done
  return "$rc"
}

do_wipe() {
  local p
  do_stop "$@" || die "wipe: could not stop everything; nothing deleted"
  for p in "$@"; do
    case "$p" in
      pg)
        pg_locate
        case "$PG_ROOT" in /var/tmp/ticketing-*/pg) rm -rf "$(dirname "$PG_ROOT")" ;; esac
        rm -rf "$TK_VAR/pg"
        ;;
      kafka) rm -rf "$KAFKA_DIR" ;;
      stripe) rm -rf "$STRIPE_DIR" ;;
    esac
    say "$p: data deleted"
  done
}

main() {
  local cmd=${1:-} what=${2:-all} parts
  [ $# -le 2 ] || usage
  case "$what" in
    all) parts=(pg kafka stripe) ;;
    pg | kafka | stripe) parts=("$what") ;;
    postgres | postgresql) parts=(pg) ;;
    stripe-mock) parts=(stripe) ;;
    *) usage ;;
  esac
  case "$cmd" in
    start) lock; do_start "${parts[@]}" ;;
    stop) lock; do_stop "${parts[@]}" ;;
    restart) lock; do_stop "${parts[@]}" && do_start "${parts[@]}" ;;
    status) do_status "${parts[@]}" ;;
    wipe) lock; do_wipe "${parts[@]}" ;;
    *) usage ;;
  esac
}

main "$@"
