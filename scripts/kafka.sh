#!/usr/bin/env bash
# scripts/kafka.sh: runs one of Apache Kafka's own command-line tools from the jars scripts/setup.sh
# cached (there is no Kafka tarball with bin/*.sh here), against the local broker by default.
# Auto-creation of topics is off on the local broker, so this is how a person or a test makes one
# by hand (the app itself uses `ticketing topics`).
#
# Usage: scripts/kafka.sh TOOL [args...]
#   topics          org.apache.kafka.tools.TopicCommand            e.g. topics --list
#   consumer-groups org.apache.kafka.tools.consumer.group.ConsumerGroupCommand  e.g. consumer-groups --list
#   configs         kafka.admin.ConfigCommand
#   get-offsets     org.apache.kafka.tools.GetOffsetShell
#   console-consumer / console-producer, storage, or any fully qualified class name
# --bootstrap-server $KAFKA_BROKERS is added unless the arguments name one (not for storage).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

[ $# -ge 1 ] || { sed -n 's/^# \{0,1\}//;/^Usage/,/^--bootstrap/p' "${BASH_SOURCE[0]}" >&2; exit 2; }
tool=$1
shift
bootstrap=1
case "$tool" in
  topics) cls=org.apache.kafka.tools.TopicCommand ;;
  consumer-groups) cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  configs) cls=kafka.admin.ConfigCommand ;;
  get-offsets) cls=org.apache.kafka.tools.GetOffsetShell ;;
  console-consumer) cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  console-producer) cls=kafka.tools.ConsoleProducer ;;
  storage) cls=kafka.tools.StorageTool; bootstrap=0 ;;
  *.*) cls=$tool ;;
  *) echo "kafka.sh: unknown tool '$tool'" >&2; exit 2 ;;
esac
for a in "$@"; do
  case "$a" in --bootstrap-server | --bootstrap-server=* | --broker-list | --broker-list=*) bootstrap=0 ;; esac
done
[ "$bootstrap" = 0 ] || set -- --bootstrap-server "$KAFKA_BROKERS" "$@"

home=$(tk_kafka_home) || { echo "kafka.sh: no Kafka jars in $TK_CACHE (run scripts/setup.sh)" >&2; exit 1; }
log4j="$TK_VAR/kafka/tools-log4j.properties"
if [ ! -f "$log4j" ]; then
  log4j="${TMPDIR:-/tmp}/ticketing-tools-log4j.properties"
  printf '%s\n' 'log4j.rootLogger=WARN, stderr' \
    'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
    'log4j.appender.stderr.Target=System.err' \
    'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
    'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n' >"$log4j"
fi
java_bin=java
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java_bin="$JAVA_HOME/bin/java"; fi
exec "$java_bin" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j.configuration="file:$log4j" -cp "$home/libs/*" "$cls" "$@"
