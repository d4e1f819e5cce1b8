#!/usr/bin/env bash
# scripts/topology.sh: the production topology as local processes, for the e2e suite and for a
# developer who wants to see it: every role of docker/docker-compose.yml as its own process of
# the `ticketing` binary, behind Debian's nginx as the ingress (docker/nginx.conf's routes, with
# loopback upstreams). PostgreSQL and stripe-mock come from the local stack (scripts/stack.sh,
# started when not running, never stopped here); Kafka too, unless --isolated.
#
#   role              command                      port
#   serve-auth        ticketing serve auth         3101
#   serve-tickets     ticketing serve tickets      3102
#   serve-orders      ticketing serve orders       3103
#   serve-payments    ticketing serve payments     3104
#   project-<ctx>     ticketing project <ctx>      tickets, orders, payments
#   relay-<ctx>       ticketing relay <ctx>        auth, tickets, orders, payments
#   expire            ticketing expire
#   nginx             nginx -c var/topology/nginx.conf     127.0.0.1:8080 (the ingress)
#   kafka             (--isolated only) a fresh single-node KRaft broker   127.0.0.1:29092
#
# Usage:
#   scripts/topology.sh start [--bin PATH] [--window SECONDS] [--isolated] [--fresh-expirations]
#                             [--replicas N] [--cluster]
#   scripts/topology.sh stop | status | logs [INSTANCE]
#   scripts/topology.sh kill INSTANCE | restart INSTANCE
#   scripts/topology.sh restart-role INSTANCE|kafka
#
#   --bin PATH            the ticketing binary (default: build it in build/release, as run.sh)
#   --window SECONDS      EXPIRATION_WINDOW_SECONDS of the processes (default
#                         $TOPOLOGY_EXPIRATION_WINDOW_SECONDS, else 5: this is a test topology)
#   --isolated            a world of its own, made afresh at every start: its own Kafka broker
#                         (empty log, in var/topology/kafka) and its own databases tk_e2e_<context>
#                         (dropped and re-created) on the stack's PostgreSQL. Nothing else on the
#                         machine shares its topics, consumer groups or tables, so a replay
#                         compares the live models with exactly the events this topology saw.
#                         The e2e suite uses it.
#   --fresh-expirations   (shared Kafka) move the scheduler's consumer groups to the end of their
#                         topics first, dropping pending expirations: the delay topic fires in
#                         order, so earlier orders with a longer window would hold back this
#                         topology's short ones (commands/expiration/delay.c).
#   --replicas N          N instances (1..9) of every role, named ROLE.1 .. ROLE.N (N=1: ROLE).
#                         Instance i of serve-<ctx> listens on the role's port + STEP*(i-1)
#                         (STEP: TOPOLOGY_REPLICA_PORT_STEP, default 100); nginx's
#                         upstream of a context lists all of them. Projectors and the scheduler's
#                         stages are members of one consumer group per (context, projector) and
#                         share the partitions; relays take one advisory lock per database: one is
#                         active, the others stand by. Every instance gets TK_INSTANCE_ID=<its
#                         name>, its static group membership (docs/deploy.md).
#   --cluster             Kafka is scripts/cluster.sh's 3-node cluster (started when down; afresh,
#                         wiped first, with --isolated), topics with replication factor 3 and
#                         min.insync.replicas=2. stop leaves the cluster running: cluster.sh stop.
#
# kill INSTANCE sends SIGKILL (a crash); restart INSTANCE stops it (SIGTERM) when it runs and
# starts it again with the same command and environment, waiting for /readyz when it serves.
# The failure tests (tests/cluster/) drive the topology with them.
#
# restart-role INSTANCE starts one that is not running again exactly as start did (same binary,
# configuration, port; for kafka, --isolated's broker with the same log, not a fresh one) and
# appends to its log (fault injection: tests/chaos).
#
# start refuses when a role already runs or a port is taken; it waits until every serve answers
# /readyz and the ingress answers /healthz and proxies /api/users/currentuser, and shows the end of
# a role's log when that role dies. It writes var/topology/env.sh: `. var/topology/env.sh` gives a
# shell (or the e2e suite) the processes' configuration, e.g. for `ticketing events tail`.
# stop sends SIGTERM to every process (SIGKILL after STOP_TIMEOUT s), then scans the roles' logs
# for sanitizer reports and exits 3 when it finds one: with an ASan+UBSan binary, a leak or UB in
# any role fails the e2e run. status exits 0 when every role runs, 1 when some do, 3 when none.
set -euo pipefail
umask 022

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source-path=SCRIPTDIR source=lib/kraft.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/kraft.sh"

DIR="$TK_VAR/topology"
INGRESS_PORT="${TOPOLOGY_INGRESS_PORT:-8080}"
ISO_KAFKA_PORT="${TOPOLOGY_KAFKA_PORT:-29092}"
ISO_CONTROLLER_PORT="${TOPOLOGY_KAFKA_CONTROLLER_PORT:-29093}"
# The servers listen on SERVE_BASE+1..+4 (auth, tickets, orders, payments): another clone on the
# same machine picks another base (and ingress and Kafka ports) to run its own topology.
SERVE_BASE="${TOPOLOGY_SERVE_PORT_BASE:-3100}"
REPLICA_STEP="${TOPOLOGY_REPLICA_PORT_STEP:-100}"
ISO_DB_PREFIX=tk_e2e_
ISO_CONTEXTS=(auth tickets orders payments expiration)
START_TIMEOUT=60
STOP_TIMEOUT=20

# role|port|ticketing arguments (port empty: no HTTP). --replicas N runs N instances of each.
ROLES=(
  "serve-auth|$((SERVE_BASE + 1))|serve auth"
  "serve-tickets|$((SERVE_BASE + 2))|serve tickets"
  "serve-orders|$((SERVE_BASE + 3))|serve orders"
  "serve-payments|$((SERVE_BASE + 4))|serve payments"
  "project-tickets||project tickets"
  "project-orders||project orders"
  "project-payments||project payments"
  "relay-auth||relay auth"
  "relay-tickets||relay tickets"
  "relay-orders||relay orders"
  "relay-payments||relay payments"
  "expire||expire"
)

TK_SCRIPT=topology
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# pid_of ROLE: the pid in ROLE's pid file when that process is still the one we started (its
# command line contains the signature recorded next to it: the whole command line, or for nginx,
# which rewrites its title, the path of our config), else fails.
pid_of() {
  local f="$DIR/$1.pid" pid want
  [ -f "$f" ] || return 1
  pid=$(head -c 32 "$f" | tr -dc 0-9)
  [ -n "$pid" ] && alive "$pid" || return 1
  want=$(cat "$DIR/$1.cmd" 2>/dev/null) || return 1
  [ -n "$want" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want" || return 1
  echo "$pid"
}

http_code() { # url
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# The instances of this run, one "name|port|ticketing arguments" line each: written by start
# (--replicas), so stop, status, kill and restart see the same set; one per role before a start.
instances() {
  local r
  if [ -s "$DIR/instances" ]; then
    cat "$DIR/instances"
  else
    for r in "${ROLES[@]}"; do echo "$r"; done
  fi
}

# make_instances N: write $DIR/instances for N replicas of every role.
make_instances() {
  local n=$1 r i role port args name
  for r in "${ROLES[@]}"; do
    role=${r%%|*}
    port=${r#*|}
    port=${port%%|*}
    args=${r##*|}
    for ((i = 1; i <= n; i++)); do
      name=$role
      [ "$n" = 1 ] || name="$role.$i"
      echo "$name|${port:+$((port + REPLICA_STEP * (i - 1)))}|$args"
    done
  done >"$DIR/instances"
}

app_roles() {
  local r
  while IFS= read -r r; do echo "${r%%|*}"; done < <(instances)
}

# upstream_servers ROLE: nginx server lines for every instance of ROLE. Passive health checks
# only: Debian's nginx-light has no active health_check (an nginx Plus directive), so an
# instance that refuses or drops a connection is marked failed for fail_timeout and the request
# goes to the next one (proxy_next_upstream below).
upstream_servers() {
  local r name port
  while IFS= read -r r; do
    name=${r%%|*}
    port=${r#*|}
    port=${port%%|*}
    case "$name" in "$1" | "$1".*) printf 'server 127.0.0.1:%s max_fails=1 fail_timeout=2s; ' "$port" ;; esac
  done < <(instances)
}

# Every role that may have a pid file, the broker last (it outlives its clients when stopping).
all_roles() {
  app_roles
  echo nginx
  echo kafka
}

# ---- start ----------------------------------------------------------------------------------------

# spawn ROLE SIGNATURE CMD...: start CMD in its own session with output to ROLE's log; records the
# pid and SIGNATURE (a string its command line contains, "" for the whole command line) so that
# stop never signals a recycled pid. The previous run's log is kept as ROLE.log.prev. In a script
# (no job control) setsid execs in place, so $! is the process itself.
spawn() {
  local role=$1 sig=$2
  shift 2
  [ -n "${KEEP_LOG:-}" ] || [ ! -f "$DIR/$role.log" ] || mv -f "$DIR/$role.log" "$DIR/$role.log.prev"
  setsid "$@" >>"$DIR/$role.log" 2>&1 </dev/null &
  echo "$!" >"$DIR/$role.pid"
  if [ -n "$sig" ]; then
    printf '%s' "$sig" >"$DIR/$role.cmd"
  else
    printf '%s ' "$@" >"$DIR/$role.cmd"
  fi
}

write_nginx_conf() {
  local user_line=""
  # As root, nginx would run its workers as nobody, who may not reach var/ (e.g. under /root).
  [ "$(id -u)" -ne 0 ] || user_line="user root root;"
  mkdir -p "$DIR/nginx"
  cat >"$DIR/nginx.conf" <<EOF
# Generated by scripts/topology.sh on every start: docker/nginx.conf with loopback upstreams.
$user_line
worker_processes 1;
daemon off;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $DIR/nginx-access.log;
    client_body_temp_path $DIR/nginx/client_body;
    proxy_temp_path $DIR/nginx/proxy;
    client_max_body_size 2m;
    # An instance that refuses a connection, or a GET that fails on one, is retried on the next
    # one: nginx never resends a POST/PUT/DELETE it already sent (non_idempotent is not set).
    proxy_next_upstream error timeout http_502 http_503 http_504;
    proxy_next_upstream_tries 3;
    proxy_connect_timeout 2s;
    upstream auth     { $(upstream_servers serve-auth)keepalive 16; }
    upstream tickets  { $(upstream_servers serve-tickets)keepalive 16; }
    upstream orders   { $(upstream_servers serve-orders)keepalive 16; }
    upstream payments { $(upstream_servers serve-payments)keepalive 16; }
    server {
        listen 127.0.0.1:$INGRESS_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Request-Id \$request_id;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP \$remote_addr;
        location /api/users    { proxy_pass http://auth; }
        location /api/tickets  { proxy_pass http://tickets; }
        # Event streams (GET /api/orders/:id/events) pass unbuffered and may stay open long.
        location /api/orders   { proxy_pass http://orders; proxy_buffering off; proxy_read_timeout 1h; }
        location /api/payments { proxy_pass http://payments; }
        location = /healthz    { return 200 "ok\n"; }
        # What the ingress answers itself (an unknown path, a malformed request, a body over
        # 2 MiB, a service down) has the contract's error body, not nginx's HTML pages.
        error_page 400 /.errors/400.json;
        error_page 404 /.errors/404.json;
        error_page 413 /.errors/413.json;
        error_page 502 503 504 =503 /.errors/503.json;
        # The storefront (web/, compiled into every server): pages, modules and /config.json;
        # an unknown path gets the server's 404 in the contract's format.
        location / { proxy_pass http://tickets; }
        location = /.errors/400.json { internal; default_type application/json; return 400 '{"errors":[{"message":"Bad Request"}]}'; }
        location = /.errors/404.json { internal; default_type application/json; return 404 '{"errors":[{"message":"Not Found"}]}'; }
        location = /.errors/413.json { internal; default_type application/json; return 413 '{"errors":[{"message":"Request body is too large"}]}'; }
        location = /.errors/503.json { internal; default_type application/json; return 503 '{"errors":[{"message":"Service unavailable, try again later"}]}'; }
    }
}
EOF
}

# --isolated: a fresh single-node KRaft broker in $DIR/kafka (scripts/lib/kraft.sh, other ports).
iso_kafka_start() {
  local home kdir="$DIR/kafka" java_bin t0 i
  home=$(tk_kafka_home) || die "no Kafka jars in $TK_CACHE (run scripts/setup.sh)"
  java_bin=$(tk_kraft_java)
  t0=$(now_ms)
  rm -rf "$kdir"
  mkdir -p "$kdir/data"
  tk_kraft_write_props "$kdir/server.properties" 1 "1@127.0.0.1:$ISO_CONTROLLER_PORT" \
    "$ISO_KAFKA_PORT" "$ISO_CONTROLLER_PORT" "$kdir/data" 1 1 "scripts/topology.sh --isolated"
  tk_kraft_write_log4j "$kdir/log4j.properties" -
  if ! tk_kraft_format "$java_bin" "$home" "$kdir/server.properties" "$(tk_kraft_cluster_id)" \
      "$kdir/log4j.properties" "$DIR/kafka-format.log"; then
    log_tail "$DIR/kafka-format.log"
    die "kafka: storage format failed"
  fi
  iso_kafka_spawn "$java_bin" "$home"
  iso_kafka_wait "$t0"
}

iso_kafka_spawn() { # java home
  local kdir="$DIR/kafka"
  spawn kafka "$kdir/server.properties" "$1" -Xmx384m -Xms128m -XX:+UseSerialGC \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$kdir/log4j.properties" \
    -Dkafka.logs.dir="$kdir" -cp "$2/libs/*" kafka.Kafka "$kdir/server.properties"
}

iso_kafka_wait() { # t0
  local t0=$1 i
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    pid_of kafka >/dev/null || { log_tail "$DIR/kafka.log"; die "kafka: the broker exited"; }
    if tk_kraft_answers "$ISO_KAFKA_PORT" 1; then
      say "kafka: broker up on 127.0.0.1:$ISO_KAFKA_PORT in $(($(now_ms) - t0)) ms"
      return 0
    fi
    sleep 0.1
  done
  log_tail "$DIR/kafka.log"
  die "kafka: no answer on 127.0.0.1:$ISO_KAFKA_PORT within ${START_TIMEOUT}s"
}

# --isolated: drop and re-create tk_e2e_<context> for every context.
iso_databases() {
  local ctx db psql_bin="$TK_PG_BIN/psql"
  [ -x "$psql_bin" ] || psql_bin=psql
  for ctx in "${ISO_CONTEXTS[@]}"; do
    db="$ISO_DB_PREFIX$ctx"
    PGOPTIONS="--client-min-messages=warning" "$psql_bin" -q -v ON_ERROR_STOP=1 "${DATABASE_URL%/*}/postgres" \
      -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null ||
      die "cannot re-create database $db"
  done
}

# The processes' configuration, also written to $DIR/env.sh for tools and shells.
export_config() { # window isolated cluster
  local ctx var
  {
    echo "# Written by scripts/topology.sh start: the topology's configuration (. this file)."
    echo "export EXPIRATION_WINDOW_SECONDS=$1"
    # A replica's version gap never fills by waiting here (one partition per aggregate):
    # dead-letter foreign producers' deliberate gaps quickly instead of holding them for 30 s.
    echo "export PROJECTOR_GAP_TIMEOUT_MS=${TOPOLOGY_GAP_TIMEOUT_MS:-2000}"
    # A query's wait for its client's consistency token (read your own writes): 2 s as in
    # production unless the caller asks otherwise (a loaded CI machine may lag longer).
    echo "export CONSISTENCY_WAIT_MS=${TOPOLOGY_CONSISTENCY_WAIT_MS:-${CONSISTENCY_WAIT_MS:-2000}}"
    # The ingress (nginx) is on loopback: the servers believe its X-Forwarded-For.
    echo "export TRUSTED_PROXIES=${TRUSTED_PROXIES:-127.0.0.1}"
    if [ "$3" = 1 ]; then
      cat "$TK_VAR/cluster/env.sh"
    elif [ "$2" = 1 ]; then
      echo "export KAFKA_BROKERS=127.0.0.1:$ISO_KAFKA_PORT"
    else
      echo "export KAFKA_BROKERS=$KAFKA_BROKERS"
    fi
    if [ "$2" = 1 ]; then
      for ctx in "${ISO_CONTEXTS[@]}"; do
        var="DATABASE_URL_${ctx^^}"
        echo "export $var=${DATABASE_URL%/*}/$ISO_DB_PREFIX$ctx"
      done
    else
      for ctx in "${ISO_CONTEXTS[@]}"; do echo "unset DATABASE_URL_${ctx^^}"; done
    fi
    echo "export TOPOLOGY_ISOLATED=$2"
    echo "export TOPOLOGY_CLUSTER=$3"
    echo "export TOPOLOGY_INGRESS=http://127.0.0.1:$INGRESS_PORT"
  } >"$DIR/env.sh"
  # shellcheck source=/dev/null
  . "$DIR/env.sh"
}

# Positions the expiration scheduler's groups at the end of their topics (see --fresh-expirations).
# A group with live members cannot be moved: then say so and go on (expirations may be late).
fresh_expirations() {
  local pair group topic out
  say "expire: moving groups expiration.intake and expiration.delay to the end of their topics"
  for pair in "expiration.intake orders" "expiration.delay expiration.delay"; do
    read -r group topic <<<"$pair"
    if ! out=$(bash "$ROOT/scripts/kafka.sh" consumer-groups --group "$group" --reset-offsets \
      --to-latest --topic "$topic" --execute 2>&1) || grep -qiE "error|inactive" <<<"$out"; then
      err "expire: could not move group $group (another scheduler running?): $(tail -n 2 <<<"$out")"
    fi
  done
}

build_default_bin() {
  local build="$ROOT/build/release"
  say "building $build (pass --bin to use another binary)"
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" ticketing >/dev/null
  BIN="$build/app/ticketing"
}

# spawn_instance NAME: start the instance NAME of $DIR/instances with its port and
# TK_INSTANCE_ID (the processes' other settings are exported by export_config or env.sh).
spawn_instance() {
  local r name port args
  r=$(instances | grep -m1 "^$1|") || die "no instance '$1' (see scripts/topology.sh status)"
  name=${r%%|*}
  port=${r#*|}
  port=${port%%|*}
  args=${r##*|}
  # shellcheck disable=SC2086 # args is a word list by construction
  if [ -n "$port" ]; then
    PORT=$port TK_INSTANCE_ID=$name spawn "$name" "" "$BIN" $args
  else
    TK_INSTANCE_ID=$name spawn "$name" "" "$BIN" $args
  fi
}

# wait_ready [INSTANCE...]: until those (default: every instance, nginx and the ingress) answer.
wait_ready() {
  local deadline=$(($(now_ms) + START_TIMEOUT * 1000)) r role port pending only=("$@")
  while :; do
    pending=""
    while IFS= read -r r; do
      if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qxF -- "${r%%|*}"; then
        continue
      fi
      role=${r%%|*}
      port=${r#*|}
      port=${port%%|*}
      if ! pid_of "$role" >/dev/null; then
        err "$role exited during start-up"
        log_tail "$DIR/$role.log"
        return 1
      fi
      if [ -n "$port" ] && [ "$(http_code "http://127.0.0.1:$port/readyz")" != 200 ]; then
        pending+=" $role"
      fi
    done < <(instances)
    if [ ${#only[@]} -gt 0 ]; then
      [ -n "$pending" ] || return 0
    elif ! pid_of nginx >/dev/null; then
      err "nginx exited during start-up"
      log_tail "$DIR/nginx.log"
      log_tail "$DIR/nginx-error.log"
      return 1
    fi
    if [ ${#only[@]} -eq 0 ]; then
      [ "$(http_code "http://127.0.0.1:$INGRESS_PORT/healthz")" = 200 ] || pending+=" nginx"
    fi
    [ -n "$pending" ] || [ ${#only[@]} -gt 0 ] ||
      [ "$(http_code "http://127.0.0.1:$INGRESS_PORT/api/users/currentuser")" = 200 ] ||
      pending+=" ingress->auth"
    [ -n "$pending" ] || return 0
    if [ "$(now_ms)" -ge "$deadline" ]; then
      err "not ready after ${START_TIMEOUT}s:$pending"
      return 1
    fi
    sleep 0.2
  done
}

cmd_start() {
  local window="${TOPOLOGY_EXPIRATION_WINDOW_SECONDS:-5}" fresh=0 isolated=0 r role port t0
  local running="" nginx_bin p ports=() replicas=1 cluster=0
  BIN=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --bin) BIN=${2:?--bin needs a path}; shift ;;
      --window) window=${2:?--window needs seconds}; shift ;;
      --isolated) isolated=1 ;;
      --fresh-expirations) fresh=1 ;;
      --replicas) replicas=${2:?--replicas needs a count}; shift ;;
      --cluster) cluster=1 ;;
      *) die "unknown option '$1' (see the top of scripts/topology.sh)" ;;
    esac
    shift
  done
  case "$replicas" in [1-9]) ;; *) die "--replicas must be 1..9 (got '$replicas')" ;; esac
  t0=$(now_ms)
  for role in $(all_roles); do
    if pid_of "$role" >/dev/null; then running+=" $role"; fi
  done
  [ -z "$running" ] || die "already running:$running (scripts/topology.sh stop first)"
  mkdir -p "$DIR"
  make_instances "$replicas"
  ports=("$INGRESS_PORT")
  while IFS= read -r r; do
    port=${r#*|}
    port=${port%%|*}
    [ -z "$port" ] || ports+=("$port")
  done < <(instances)
  [ "$isolated" = 0 ] || [ "$cluster" = 1 ] || ports+=("$ISO_KAFKA_PORT" "$ISO_CONTROLLER_PORT")
  for p in "${ports[@]}"; do
    ! port_open "$p" || die "port $p is taken by another process (another topology or run.sh?)"
  done
  nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  [ -x "$nginx_bin" ] || die "nginx not found (scripts/setup.sh installs Debian's nginx-light)"
  [ -n "$BIN" ] || build_default_bin
  [ -x "$BIN" ] || die "no executable at $BIN"
  BIN=$(readlink -f "$BIN")
  mkdir -p "$DIR"
  printf '%s\n' "$BIN" >"$DIR/bin"

  bash "$ROOT/scripts/stack.sh" status >/dev/null 2>&1 || bash "$ROOT/scripts/stack.sh" start
  if [ "$cluster" = 1 ]; then
    [ "$isolated" = 0 ] || bash "$ROOT/scripts/cluster.sh" wipe >/dev/null
    bash "$ROOT/scripts/cluster.sh" start
  elif [ "$isolated" = 1 ]; then
    iso_kafka_start
  fi
  [ "$isolated" = 0 ] || iso_databases
  export_config "$window" "$isolated" "$cluster"
  "$BIN" migrate >"$DIR/setup.log" 2>&1 || { log_tail "$DIR/setup.log"; die "migrate failed"; }
  "$BIN" topics >>"$DIR/setup.log" 2>&1 || { log_tail "$DIR/setup.log"; die "topics failed"; }
  if [ "$fresh" = 1 ] && [ "$isolated" = 0 ]; then fresh_expirations; fi

  printf '%s\n' "$BIN" >"$DIR/bin"
  for role in $(app_roles); do spawn_instance "$role"; done
  write_nginx_conf
  if ! "$nginx_bin" -t -q -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" \
    >"$DIR/nginx-test.log" 2>&1; then
    log_tail "$DIR/nginx-test.log"
    cmd_stop >/dev/null 2>&1 || true
    die "nginx rejected $DIR/nginx.conf"
  fi
  spawn nginx "$DIR/nginx.conf" "$nginx_bin" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log"

  if ! wait_ready; then
    cmd_stop >/dev/null 2>&1 || true
    die "start failed (logs in $DIR)"
  fi
  say "up in $(($(now_ms) - t0)) ms: ingress http://127.0.0.1:$INGRESS_PORT" \
    "($([ "$isolated" = 1 ] && echo "isolated, " || echo "shared stack, ")kafka $KAFKA_BROKERS," \
    "$replicas instance(s) per role, window ${window}s, binary $BIN, logs and env.sh in $DIR)"
}

# ---- stop -----------------------------------------------------------------------------------------

# Sanitizer reports in the roles' logs of this run.
scan_logs() {
  local found=0 f pattern="ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:"
  for f in "$DIR"/*.log; do
    [ -f "$f" ] || continue
    if grep -qE "$pattern" "$f"; then
      err "sanitizer report in $f:"
      grep -m 5 -E -A 15 "$pattern" "$f" >&2 || true
      found=1
    fi
  done
  return $found
}

# stop_roles ROLE...: SIGTERM to each running one, wait for all, SIGKILL what is left.
stop_roles() {
  local role pid pids=()
  for role in "$@"; do
    if pid=$(pid_of "$role"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$role=$pid")
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  wait_gone_or_kill "$STOP_TIMEOUT" "${pids[@]}"
  STOPPED=$((STOPPED + ${#pids[@]}))
}

cmd_stop() {
  STOPPED=0
  # The ingress first (no new requests), then every role together, the broker last.
  stop_roles nginx
  # shellcheck disable=SC2046 # one word per role
  stop_roles $(app_roles)
  stop_roles kafka
  local role
  for role in $(all_roles); do rm -f "$DIR/$role.pid"; done
  if [ "$STOPPED" = 0 ]; then
    say "nothing running"
    return 0
  fi
  say "stopped $STOPPED process(es)"
  scan_logs || return 3
}

# ---- status, logs ---------------------------------------------------------------------------------

cmd_status() {
  local r role port up=0 total=0 pid state path
  while IFS= read -r r; do
    role=${r%%|*}
    port=${r#*|}
    port=${port%%|*}
    total=$((total + 1))
    if pid=$(pid_of "$role"); then
      up=$((up + 1))
      state=up
      if [ -n "$port" ]; then
        path=/readyz
        [ "$role" != nginx ] || path=/healthz
        [ "$(http_code "http://127.0.0.1:$port$path")" = 200 ] || state="up (not ready)"
      fi
      printf '%-18s %-16s pid %-8s %s\n' "$role" "$state" "$pid" "${port:+127.0.0.1:$port}"
    else
      printf '%-18s %-16s\n' "$role" down
    fi
  done < <(instances; echo "nginx|$INGRESS_PORT|")
  if pid=$(pid_of kafka); then
    printf '%-17s %-16s pid %-8s %s\n' kafka "up (isolated)" "$pid" "127.0.0.1:$ISO_KAFKA_PORT"
  fi
  [ $up -eq $total ] && return 0
  [ $up -eq 0 ] && return 3
  return 1
}

cmd_kill() { # INSTANCE
  local pid
  pid=$(pid_of "${1:?kill needs an instance}") || die "$1 is not running"
  kill -KILL "$pid"
  while alive "$pid"; do sleep 0.05; done # gone when this returns (tests/chaos counts on it)
  say "$1 (pid $pid) killed (SIGKILL)"
}

cmd_restart() { # INSTANCE
  local name=${1:?restart needs an instance} t0
  instances | grep -q "^$name|" || die "no instance '$name' (see scripts/topology.sh status)"
  [ -s "$DIR/env.sh" ] && [ -s "$DIR/bin" ] || die "no topology was started here"
  t0=$(now_ms)
  STOPPED=0
  stop_roles "$name"
  # shellcheck source=/dev/null
  . "$DIR/env.sh"
  BIN=$(cat "$DIR/bin")
  spawn_instance "$name"
  wait_ready "$name" || die "$name did not come back (log $DIR/$name.log)"
  say "$name restarted in $(($(now_ms) - t0)) ms"
}

cmd_logs() {
  local role
  for role in ${1:-$(all_roles)}; do
    log_tail "$DIR/$role.log" "${LINES_PER_LOG:-10}" 2>&1
  done
}

# ---- kill, restart-role (fault injection) ---------------------------------------------------------

cmd_restart_role() { # INSTANCE or kafka: start one that is not running, as start did
  local role=${1:?restart-role needs an instance} java_bin=java home
  ! pid_of "$role" >/dev/null || die "$role is running (kill it first)"
  [ -s "$DIR/env.sh" ] && [ -s "$DIR/bin" ] || die "no topology was started here"
  # shellcheck source=/dev/null
  . "$DIR/env.sh"
  BIN=$(cat "$DIR/bin")
  if [ "$role" = kafka ]; then
    home=$(tk_kafka_home) || die "no Kafka jars in $TK_CACHE"
    [ -z "${JAVA_HOME:-}" ] || [ ! -x "$JAVA_HOME/bin/java" ] || java_bin="$JAVA_HOME/bin/java"
    [ -f "$DIR/kafka/server.properties" ] || die "no isolated broker here"
    KEEP_LOG=1 iso_kafka_spawn "$java_bin" "$home"
    iso_kafka_wait "$(now_ms)"
    return 0
  fi
  KEEP_LOG=1 spawn_instance "$role"
  say "restarted $role (pid $(cat "$DIR/$role.pid"))"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  restart-role) shift; cmd_restart_role "${1:-}" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "${1:-}" ;;
  kill) shift; cmd_kill "${1:-}" ;;
  restart) shift; cmd_restart "${1:-}" ;;
  *) sed -n 's/^# \{0,1\}//;/^Usage/,/^$/p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
