#!/usr/bin/env bash
# testbed.sh installs and runs the real services metricpipe's integration tests
# talk to: an Apache Kafka KRaft broker (jars from Maven Central, run with the
# machine's Java) and InfluxDB 1.8.10 (built from the Go module proxy). It needs
# only Go, Java 17 and Maven.
#
#   scripts/testbed.sh install [kafka|influx]  resolve Kafka's jars, build influxd (cached)
#   scripts/testbed.sh start             start both on loopback, print the test env
#   scripts/testbed.sh stop              stop both
#   scripts/testbed.sh run -- CMD...     install, start, run CMD with the test env,
#                                        stop whatever happens; exits with CMD's code
#   scripts/testbed.sh influx stop|start [fresh]
#                                        stop or (re)start InfluxDB alone (fault
#                                        tests; `make demo` uses it too)
#   scripts/testbed.sh env               print the env of the running test bed
#
# Settings (environment): METRICPIPE_CACHE (downloads and builds, default
# ~/.cache/metricpipe), METRICPIPE_TESTBED_DIR (data, logs and pids, default
# .cache/testbed in the repo), METRICPIPE_TESTBED_KAFKA_PORT (19092; the
# controller listens on the next port), METRICPIPE_TESTBED_INFLUX_PORT (18086).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${METRICPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metricpipe}
state=${METRICPIPE_TESTBED_DIR:-$root/.cache/testbed}
kafka_port=${METRICPIPE_TESTBED_KAFKA_PORT:-19092}
controller_port=$((kafka_port + 1))
influx_port=${METRICPIPE_TESTBED_INFLUX_PORT:-18086}
influx_rpc_port=$((influx_port + 2))

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/testbed/pom.xml")
influx_version=1.8.10
kafka_libs=$cache/kafka-$kafka_version/libs
influxd=$cache/influxdb-$influx_version/bin/influxd

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_kafka() {
  [ -f "$kafka_libs/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn not found: Maven is needed to fetch Kafka's jars"
  log "resolving Apache Kafka $kafka_version jars from Maven Central into $kafka_libs"
  local tmp="$kafka_libs.tmp"
  rm -rf "$tmp"
  mvn -q -B -Dstyle.color=never -f "$root/scripts/testbed/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
  rm -rf "$kafka_libs"
  mv "$tmp" "$kafka_libs"
  touch "$kafka_libs/.complete"
}

install_influx() {
  [ -x "$influxd" ] && return 0
  log "building InfluxDB $influx_version from the Go module proxy into $(dirname "$influxd") (about a minute)"
  GOBIN=$(dirname "$influxd") GOFLAGS=-mod=mod go install \
    -ldflags "-X main.version=$influx_version -X main.branch=$influx_version" \
    "github.com/influxdata/influxdb/cmd/influxd@v$influx_version" >&2
}

port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

# wait_until SECONDS PIDFILE LOG CMD...: polls CMD until it succeeds; fails early
# if the process behind PIDFILE dies, showing the end of its log.
wait_until() {
  local limit=$1 pidfile=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -n 40 "$logfile" >&2 || true
      die "$(basename "$(dirname "$pidfile")") exited during start-up (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$logfile" >&2 || true
      die "$(basename "$(dirname "$pidfile")") not ready after ${limit}s (log: $logfile)"
    fi
    sleep 0.5
  done
}

start_kafka() {
  local dir=$state/kafka
  port_free "$kafka_port" || die "port $kafka_port is in use (a test bed left running? try: $0 stop)"
  port_free "$controller_port" || die "port $controller_port is in use"
  rm -rf "$dir" && mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# The services create their topics; a test that forgets to shows up as an error.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
EOF
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$root/scripts/testbed/log4j2.properties" "-Dkafka.logs.dir=$dir/logs")
  local cluster_id
  cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  # One ID in 64 starts with '-', which the tool reads as an option (as
  # Kafka's own random-uuid avoids): change its top bits.
  cluster_id=${cluster_id/#-/A}
  java "${java_opts[@]}" -cp "$kafka_libs/*" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 ||
    { cat "$dir/logs/format.log" >&2; die "formatting Kafka storage failed"; }
  setsid java "${java_opts[@]}" -cp "$kafka_libs/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_until 120 "$dir/pid" "$dir/logs/server.log" grep -qs 'Kafka Server started' "$dir/logs/server.log"
  local version
  version=$(grep -o 'Kafka version: [^ ]*' "$dir/logs/server.log" | head -n1 | cut -d' ' -f3)
  echo "$version" >"$dir/version"
  log "Apache Kafka $version (KRaft, single node) ready on 127.0.0.1:$kafka_port"
}

influx_ping() { curl -fs -o /dev/null "http://127.0.0.1:$influx_port/ping"; }

# start_influx [fresh]: with "fresh" the data directory is wiped first.
start_influx() {
  local dir=$state/influxdb
  port_free "$influx_port" || die "port $influx_port is in use (a test bed left running? try: $0 stop)"
  if [ "${1:-}" = fresh ]; then rm -rf "$dir"; fi
  mkdir -p "$dir/logs"
  cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$influx_rpc_port"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$influx_port"
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
EOF
  setsid "$influxd" run -config "$dir/influxdb.conf" >>"$dir/logs/influxd.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_until 60 "$dir/pid" "$dir/logs/influxd.log" influx_ping
  local version
  version=$(curl -fsSI "http://127.0.0.1:$influx_port/ping" | tr -d '\r' | sed -n 's/^[Xx]-[Ii]nfluxdb-[Vv]ersion: //p')
  echo "$version" >"$dir/version"
  log "InfluxDB $version (flux enabled) ready on http://127.0.0.1:$influx_port"
}

# stop_one NAME: SIGTERM to the process group, SIGKILL after 30 s.
stop_one() {
  local pidfile=$state/$1/pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 did not stop in 30s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$1 stopped"
  fi
  rm -f "$pidfile"
}

write_env() {
  cat >"$state/env" <<EOF
export METRICPIPE_TEST_KAFKA_BROKERS=127.0.0.1:$kafka_port
export METRICPIPE_TEST_KAFKA_VERSION=$(cat "$state/kafka/version")
export METRICPIPE_TEST_INFLUX_URL=http://127.0.0.1:$influx_port
export METRICPIPE_TEST_INFLUX_VERSION=$(cat "$state/influxdb/version")
export METRICPIPE_TEST_TESTBED="$root/scripts/testbed.sh"
export METRICPIPE_TESTBED_DIR="$state"
EOF
}

stop_all() {
  stop_one kafka
  stop_one influxdb
}

start_all() {
  mkdir -p "$state"
  stop_all
  start_kafka
  start_influx fresh
  write_env
}

cmd=${1:-}
shift || true
case "$cmd" in
install)
  case "${1:-all}" in
  kafka) install_kafka ;;
  influx) install_influx ;;
  all) install_kafka && install_influx ;;
  *) die "usage: $0 install [kafka|influx]" ;;
  esac
  ;;
start)
  install_kafka
  install_influx
  start_all
  cat "$state/env"
  ;;
stop) stop_all ;;
env) cat "$state/env" ;;
influx)
  case "${1:-}" in
  stop) stop_one influxdb ;;
  start)
    mkdir -p "$state"
    install_influx
    start_influx "${2:-}"
    ;;
  *) die "usage: $0 influx stop|start" ;;
  esac
  ;;
run)
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: $0 run -- CMD..."
  install_kafka
  install_influx
  trap stop_all EXIT
  trap 'exit 130' INT TERM
  start_all
  # shellcheck disable=SC1091
  source "$state/env"
  set +e
  "$@"
  status=$?
  set -e
  exit "$status"
  ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
