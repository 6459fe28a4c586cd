#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, combined broker + controller) on 127.0.0.1,
# for development and the integration tests. See deploy/kafka/README.md.
#
#   kafka.sh jars     resolve the broker jars with Maven (cached, outside git)
#   kafka.sh start    configure (first time), format (first time) and start; prints bootstrap
#   kafka.sh stop     SIGTERM, wait, SIGKILL after KAFKA_STOP_TIMEOUT; idempotent
#   kafka.sh kill     SIGKILL at once (crash simulation); idempotent
#   kafka.sh status   exit 0 and print the bootstrap address when running, else exit 1
#   kafka.sh reset    stop, then delete the state (data, logs, config) for a fresh cluster
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_LIB_DIR="${KAFKA_LIB_DIR:-$HERE/lib-$KAFKA_VERSION}"
KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$REPO_ROOT/.kafka}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
# Small heap: the machine running the tests also runs the Python side.
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}"
if [[ -n "${JAVA:-}" ]]; then
  :
elif [[ -n "${JAVA_HOME:-}" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA=java
fi
PYTHON="${PYTHON:-python3}"
KAFKA_MAJOR="${KAFKA_VERSION%%.*}"

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

log4j_profile() {
  if ((KAFKA_MAJOR >= 4)); then echo log4j2; else echo log4j1; fi
}

# --- jars -----------------------------------------------------------------------------

cmd_jars() {
  local marker="$KAFKA_LIB_DIR/.resolved"
  local want
  want="$KAFKA_VERSION $(log4j_profile) $(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve the Kafka jars"
  echo "kafka.sh: resolving Kafka $KAFKA_VERSION jars into $KAFKA_LIB_DIR" >&2
  local tmp="$KAFKA_LIB_DIR.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" -P "$(log4j_profile)" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "Maven could not resolve Kafka $KAFKA_VERSION"
  fi
  echo "$want" >"$tmp/.resolved"
  rm -rf "$KAFKA_LIB_DIR"
  mv "$tmp" "$KAFKA_LIB_DIR"
}

# --- state ----------------------------------------------------------------------------

# All paths below are absolute so the broker does not depend on the caller's cwd.
state_init() {
  STATE="$(realpath -m "$KAFKA_STATE_DIR")"
  PID_FILE="$STATE/kafka.pid"
  CONFIG="$STATE/server.properties"
  BROKER_LOG="$STATE/logs/server.log"
  CONSOLE_LOG="$STATE/logs/console.out"
}

# The pid of our broker, or nothing. A pid file whose process is gone, or whose pid
# now belongs to another program, does not count.
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  pid_alive "$pid" || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONFIG"; then
    echo "$pid"
  fi
}

# True while PID exists and is not a zombie waiting for its parent to reap it.
pid_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

prop() { # prop KEY FILE -> value of KEY in a .properties file
  sed -n "s/^$1=//p" "$2" | tail -n 1
}

port_is_free() { # port_is_free PORT
  # SO_REUSEADDR like the broker's own listener: connections in TIME_WAIT after a
  # stop do not count, a process listening on the port does.
  "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

free_port() {
  # Below the kernel's ephemeral range (ip_local_port_range, 32768+ here). A client
  # reconnecting to a stopped broker on an ephemeral port can be given that very port
  # as its own source port and connect to itself (TCP simultaneous open); the port is
  # then taken when the broker restarts, and the client talks to itself meanwhile.
  "$PYTHON" -c 'import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(15000, min(low, 32768))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

new_cluster_id() {
  # Same shape as org.apache.kafka.common.Uuid: 16 random bytes, URL-safe base64, no
  # padding, never starting with "-" (it would read as a command-line option).
  "$PYTHON" -c 'import base64, uuid
while True:
    text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not text.startswith("-"):
        print(text)
        break'
}

write_server_properties() {
  local port="$1" controller_port="$2"
  cat >"$CONFIG" <<EOF
# Written by deploy/kafka/kafka.sh for Kafka $KAFKA_VERSION; reused by later starts.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$STATE/data

# One node: every internal topic has a single replica and needs a single in-sync one.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Few partitions for the internal topics: quick to create, load and recover in tests.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
num.partitions=1

# Tests create their own topics and want consumer groups to form at once.
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
# After a crash (kafka.sh kill) the controller waits one broker session before the
# restarted broker may register again; 9s by default, shortened for restart tests.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000

# Small segments and buffers: test data is tiny and the machine is small.
log.segment.bytes=16777216
offsets.topic.segment.bytes=8388608
transaction.state.log.segment.bytes=8388608
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
EOF
  if ((KAFKA_MAJOR >= 4)); then
    cat >>"$CONFIG" <<EOF

# Kafka 4: share-group state topic, also a single replica here.
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  fi
}

write_log_config() {
  mkdir -p "$STATE/logs"
  if ((KAFKA_MAJOR >= 4)); then
    cat >"$STATE/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $BROKER_LOG
appender.file.filePattern = $BROKER_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
    cat >"$STATE/tools-log4j2.properties" <<EOF
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
EOF
  else
    cat >"$STATE/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$BROKER_LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
EOF
    cat >"$STATE/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, err
log4j.appender.err=org.apache.log4j.ConsoleAppender
log4j.appender.err.Target=System.err
log4j.appender.err.layout=org.apache.log4j.PatternLayout
log4j.appender.err.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  fi
}

log_opts() { # log_opts broker|tools
  local prefix=""
  [[ "$1" == tools ]] && prefix="tools-"
  if ((KAFKA_MAJOR >= 4)); then
    echo "-Dlog4j2.configurationFile=$STATE/${prefix}log4j2.properties"
  else
    echo "-Dlog4j.configuration=file:$STATE/${prefix}log4j.properties"
  fi
}

# First start in a state dir: choose ports, write the config, format the storage.
# Later starts reuse all of it, so a restart keeps the port, cluster id and data.
configure() {
  if [[ -f "$CONFIG" && -f "$STATE/data/meta.properties" ]]; then
    local formatted_by
    formatted_by="$(cat "$STATE/kafka-version" 2>/dev/null || echo unknown)"
    if [[ "$formatted_by" != "$KAFKA_VERSION" ]]; then
      die "$STATE was formatted by Kafka $formatted_by, not $KAFKA_VERSION;" \
        "run 'kafka.sh reset' or use another KAFKA_STATE_DIR"
    fi
    local saved_port
    saved_port="$(prop advertised.listeners "$CONFIG")"
    saved_port="${saved_port##*:}"
    if [[ -n "${KAFKA_PORT:-}" && "$KAFKA_PORT" != "$saved_port" ]]; then
      die "$STATE is configured for port $saved_port, not KAFKA_PORT=$KAFKA_PORT;" \
        "run 'kafka.sh reset' or use another KAFKA_STATE_DIR"
    fi
    return 0
  fi
  rm -rf "$STATE/data"
  local port="${KAFKA_PORT:-$(free_port)}"
  local controller_port="${KAFKA_CONTROLLER_PORT:-$(free_port)}"
  while [[ "$controller_port" == "$port" ]]; do controller_port="$(free_port)"; done
  write_server_properties "$port" "$controller_port"
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    # Extra listeners, TLS, SASL...: later lines win in a .properties file.
    { echo; echo "# From KAFKA_EXTRA_CONFIG=$KAFKA_EXTRA_CONFIG"; cat "$KAFKA_EXTRA_CONFIG"; } >>"$CONFIG"
  fi
  write_log_config
  local cluster_id
  cluster_id="$(new_cluster_id)"
  # shellcheck disable=SC2046 # word splitting of the option lists is intended
  if ! "$JAVA" $KAFKA_HEAP_OPTS $(log_opts tools) -cp "$KAFKA_LIB_DIR/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" \
      ${KAFKA_ADD_SCRAM:+--add-scram "$KAFKA_ADD_SCRAM"} >"$STATE/logs/format.out" 2>&1; then
    cat "$STATE/logs/format.out" >&2
    die "formatting the storage in $STATE/data failed"
  fi
  echo "$KAFKA_VERSION" >"$STATE/kafka-version"
}

show_failure() {
  echo "kafka.sh: --- last lines of $BROKER_LOG ---" >&2
  tail -n 60 "$BROKER_LOG" >&2 2>/dev/null || true
  if [[ -s "$CONSOLE_LOG" ]]; then
    echo "kafka.sh: --- last lines of $CONSOLE_LOG ---" >&2
    tail -n 30 "$CONSOLE_LOG" >&2 || true
  fi
}

# --- commands -------------------------------------------------------------------------

cmd_start() {
  state_init
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    local running_version
    running_version="$(cat "$STATE/kafka-version" 2>/dev/null || echo unknown)"
    [[ "$running_version" == "$KAFKA_VERSION" ]] ||
      die "Kafka $running_version is already running in $STATE, not $KAFKA_VERSION"
    echo "kafka.sh: already running (pid $pid)" >&2
    cat "$STATE/bootstrap"
    return 0
  fi
  command -v "$JAVA" >/dev/null || die "java not found (set JAVA or JAVA_HOME)"
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON)"
  cmd_jars
  mkdir -p "$STATE"
  configure
  mkdir -p "$STATE/logs"
  rm -f "$STATE/bootstrap"
  local port controller_port
  port="$(prop advertised.listeners "$CONFIG")"
  port="${port##*:}"
  controller_port="$(prop controller.quorum.voters "$CONFIG")"
  controller_port="${controller_port##*:}"
  # Refuse a taken port up front: the readiness probe could otherwise reach whatever
  # else listens there before our broker fails to bind.
  for p in "$port" "$controller_port"; do
    port_is_free "$p" || die "port $p on 127.0.0.1 is in use (state: $STATE)"
  done

  local started_at=$SECONDS
  # The broker must not hold the caller's stdout/stderr open, or a caller that reads
  # them to the end (subprocess.run) would wait for the broker to exit.
  # shellcheck disable=SC2046
  nohup "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS $(log_opts broker) \
    -Dkafka.logs.dir="$STATE/logs" -cp "$KAFKA_LIB_DIR/*" \
    kafka.Kafka "$CONFIG" </dev/null >"$CONSOLE_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  if ! "$PYTHON" "$HERE/probe.py" 127.0.0.1 "$port" --timeout "$KAFKA_START_TIMEOUT" --pid "$pid"; then
    show_failure
    stop_pid "$pid" 10
    rm -f "$PID_FILE"
    die "broker did not become ready within ${KAFKA_START_TIMEOUT}s (state: $STATE)"
  fi
  echo "127.0.0.1:$port" >"$STATE/bootstrap"
  echo "kafka.sh: Kafka $KAFKA_VERSION ready at 127.0.0.1:$port (pid $pid, $((SECONDS - started_at))s)" >&2
  echo "127.0.0.1:$port"
}

stop_pid() { # stop_pid PID TIMEOUT_SECONDS
  local pid="$1" timeout="$2"
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "kafka.sh: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  # Reap it when it is our own child; otherwise wait until the kernel drops it.
  wait "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do sleep 0.1; done
}

cmd_stop() {
  state_init
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    stop_pid "$pid" "$KAFKA_STOP_TIMEOUT"
    echo "kafka.sh: stopped (pid $pid)" >&2
  fi
  rm -f "$PID_FILE" "$STATE/bootstrap"
}

cmd_kill() {
  state_init
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
    echo "kafka.sh: killed (pid $pid)" >&2
  fi
  rm -f "$PID_FILE" "$STATE/bootstrap"
}

cmd_status() {
  state_init
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" && -f "$STATE/bootstrap" ]]; then
    echo "kafka.sh: running (pid $pid)" >&2
    cat "$STATE/bootstrap"
    return 0
  fi
  echo "kafka.sh: not running ($STATE)" >&2
  return 1
}

cmd_reset() {
  cmd_stop
  # Delete only what this script creates, never the directory's other contents.
  rm -rf "$STATE/data" "$STATE/logs"
  rm -f "$STATE"/{server.properties,log4j.properties,tools-log4j.properties} \
    "$STATE"/{log4j2.properties,tools-log4j2.properties,kafka-version,bootstrap,kafka.pid}
  rmdir "$STATE" 2>/dev/null || true
}

case "${1:-}" in
  jars) cmd_jars && echo "$KAFKA_LIB_DIR" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 jars|start|stop|kill|status|reset" >&2
    echo "env: KAFKA_VERSION KAFKA_STATE_DIR KAFKA_PORT KAFKA_CONTROLLER_PORT" \
      "KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT KAFKA_HEAP_OPTS KAFKA_JVM_OPTS" \
      "KAFKA_LIB_DIR JAVA JAVA_HOME PYTHON" >&2
    exit 2
    ;;
esac
