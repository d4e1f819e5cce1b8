# shellcheck shell=bash
# scripts/lib/kraft.sh: the one writer of a KRaft Kafka node's configuration, sourced by
# scripts/stack.sh (the single dev broker), scripts/topology.sh --isolated (a throw-away broker)
# and scripts/cluster.sh (a 3-node cluster). Before this file each script wrote its own
# server.properties and they drifted (the isolated broker lacked the short broker session that
# makes a restart after kill -9 quick).
#
# Every node is a combined broker+controller on loopback (PLAINTEXT: dev/test only; docs/deploy.md
# says what a real cluster changes). A single node and a cluster differ only by the arguments:
# the voters list and the replication settings.
#
#   tk_kraft_write_props FILE NODE_ID VOTERS PORT CONTROLLER_PORT DATA_DIR RF MIN_ISR WRITER
#   tk_kraft_write_log4j FILE LOGFILE|-        (- : warnings to stderr, for tools and throw-aways)
#   tk_kraft_cluster_id                        a fresh cluster id
#   tk_kraft_format JAVA HOME PROPS CLUSTER_ID LOG4J LOG     formats DATA_DIR once (fails loudly)
#   tk_kraft_java                              the java binary (JAVA_HOME's when set)
#   tk_kraft_answers PORT NODE_ID              true when that broker is registered and unfenced
# It changes no shell option and defines nothing else.

# tk_kraft_write_props FILE NODE_ID VOTERS PORT CONTROLLER_PORT DATA_DIR RF MIN_ISR WRITER
#   VOTERS   controller.quorum.voters, e.g. 1@127.0.0.1:19093 or 1@..:a,2@..:b,3@..:c
#   RF       default.replication.factor and the internal topics' replication (1 or 3)
#   MIN_ISR  min.insync.replicas (1 for one node; 2 for three: one broker may die, none lost)
#   WRITER   the calling script, named in the file's header
tk_kraft_write_props() {
  local file=$1 node=$2 voters=$3 port=$4 cport=$5 data=$6 rf=$7 isr=$8 writer=$9
  cat >"$file" <<EOF
# Written by scripts/lib/kraft.sh for $writer on every start: KRaft broker+controller, dev/test.
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=6
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
# 6, not 50, consumer-offsets partitions: a dev node restarted after kill -9 recovers ~1/3 of the
# partitions it would otherwise (the time a restarted cluster node needs is mostly that).
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
# A replica that lost its leader must never become leader with missing records.
unclean.leader.election.enable=false
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# After a kill -9 the restarted broker cannot register until its old session expires (default 9 s,
# plus retry back-off: ~15 s to start); and in a cluster the controller fences a dead broker, and
# so moves its partitions' leadership, only when its session expires. 5 s for both.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
EOF
}

# tk_kraft_write_log4j FILE LOGFILE|-: the node's log4j (reload4j) configuration: INFO into a
# rolling LOGFILE, or with "-" warnings only, to stderr.
tk_kraft_write_log4j() {
  local file=$1 log=$2
  if [ "$log" = - ]; then
    cat >"$file" <<'EOF'
# Written by scripts/lib/kraft.sh: warnings to stderr.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    return 0
  fi
  cat >"$file" <<EOF
# Written by scripts/lib/kraft.sh: the broker's log4j (reload4j) configuration.
log4j.rootLogger=INFO, server
log4j.appender.server=org.apache.log4j.RollingFileAppender
log4j.appender.server.File=$log
log4j.appender.server.MaxFileSize=50MB
log4j.appender.server.MaxBackupIndex=2
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.state.change.logger=INFO
log4j.logger.kafka.log.LogCleaner=INFO
EOF
}

# A Kafka cluster id: 16 random bytes in URL-safe base64 without padding (22 characters), not
# starting with '-' (like Kafka's own Uuid.randomUuid()).
tk_kraft_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    case "$id" in -*) ;; *) echo "$id"; return ;; esac
  done
}

tk_kraft_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    echo "$JAVA_HOME/bin/java"
  else
    echo java
  fi
}

# tk_kraft_format JAVA HOME PROPS CLUSTER_ID LOG4J LOG: format the node's log.dirs with
# CLUSTER_ID (every node of one cluster gets the same id). Output to LOG; fails when Kafka does.
tk_kraft_format() {
  "$1" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$2/libs/*" \
    -Dlog4j.configuration="file:$5" \
    kafka.tools.StorageTool format -t "$4" -c "$3" >"$6" 2>&1 9>&-
}

# tk_kraft_answers PORT NODE_ID: the broker answers a metadata request and lists itself, so it is
# registered and unfenced (topics can be created, partitions led).
tk_kraft_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null &&
    kcat -b "127.0.0.1:$1" -L -t __tk_probe -m 2 2>/dev/null | grep -q "broker $2 at 127.0.0.1:$1"
}
