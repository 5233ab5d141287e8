#!/usr/bin/env bash
# testbed.sh installs and runs the real services metricpipe's integration tests
# talk to: an Apache Kafka KRaft broker (jars from Maven Central, run with the
# machine's Java), InfluxDB 1.8.10 (built from the Go module proxy) and
# InfluxDB 2.7.12 (built from the Go module proxy and crates.io: see
# scripts/testbed/influxdb2.sh). It needs Go, Java 17, Maven and cargo.
#
#   scripts/testbed.sh install [kafka|influx|influx2]
#                                        resolve Kafka's jars, build both influxd (cached)
#   scripts/testbed.sh start             start all three on loopback, create the
#                                        database the services write to by default,
#                                        print the test env and the services' env
#   scripts/testbed.sh stop              stop them
#   scripts/testbed.sh run -- CMD...     install, start, run CMD with the test env,
#                                        stop whatever happens; exits with CMD's code
#   scripts/testbed.sh influx stop|start [fresh]
#                                        stop or (re)start InfluxDB alone (fault
#                                        tests; `make demo` uses it too)
#   scripts/testbed.sh env               print the env of the running test bed
#
#   scripts/testbed.sh cluster start|stop|env
#                                        a 3-node Kafka KRaft cluster (each node a
#                                        broker and a controller) with plaintext,
#                                        TLS and SASL_SSL (SCRAM-SHA-512) listeners;
#                                        env prints METRICPIPE_TEST_CLUSTER_*
#   scripts/testbed.sh cluster run -- CMD...
#                                        the cluster and its own InfluxDB, CMD run
#                                        with their env, stopped whatever happens
#   scripts/testbed.sh cluster kill|pause|resume|stop|restart N
#                                        SIGKILL, SIGSTOP, SIGCONT, SIGTERM or
#                                        (re)start node N (1-3) alone
#
# Settings (environment): METRICPIPE_CACHE (downloads and builds, default
# ~/.cache/metricpipe), METRICPIPE_TESTBED_DIR (data, logs and pids, default
# .cache/testbed in the repo), METRICPIPE_TESTBED_KAFKA_PORT (19092; the
# controller listens on the next port), METRICPIPE_TESTBED_INFLUX_PORT (18086),
# METRICPIPE_TESTBED_INFLUX2_PORT (18096).
# The cluster: METRICPIPE_TESTBED_CLUSTER_PORT (19100): node N listens on
# base+10(N-1) (plaintext), +1 (TLS), +2 (SASL_SSL) and +3 (controller);
# METRICPIPE_TESTBED_CLUSTER_INFLUX_PORT (base+86, and +2 for its RPC) for the
# InfluxDB of `cluster run`. Its state is under METRICPIPE_TESTBED_DIR/cluster.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${METRICPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metricpipe}
state=${METRICPIPE_TESTBED_DIR:-$root/.cache/testbed}
kafka_port=${METRICPIPE_TESTBED_KAFKA_PORT:-19092}
controller_port=$((kafka_port + 1))
influx_port=${METRICPIPE_TESTBED_INFLUX_PORT:-18086}
influx_rpc_port=$((influx_port + 2))
influx_dir=$state/influxdb

cluster_port=${METRICPIPE_TESTBED_CLUSTER_PORT:-19100}
cluster_influx_port=${METRICPIPE_TESTBED_CLUSTER_INFLUX_PORT:-$((cluster_port + 86))}
cluster_state=$state/cluster
cluster_nodes=(1 2 3)

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/testbed/pom.xml")
influx_version=1.8.10
# The jars are resolved again whenever pom.xml changes: the directory is named
# by its hash, so a test bed still running on the previous set keeps it.
pom_hash=$(sha256sum "$root/scripts/testbed/pom.xml" | cut -c1-12)
kafka_libs=$cache/kafka-$kafka_version/libs-$pom_hash
influxd=$cache/influxdb-$influx_version/bin/influxd
# shellcheck source=testbed/influxdb2.sh
source "$root/scripts/testbed/influxdb2.sh"

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_kafka() {
  [ -f "$kafka_libs/.complete" ] && return 0
  [ -d "$kafka_libs" ] && rm -rf "$kafka_libs" # an install cut short
  command -v mvn >/dev/null || die "mvn not found: Maven is needed to fetch Kafka's jars"
  log "resolving Apache Kafka $kafka_version jars from Maven Central into $kafka_libs"
  mkdir -p "$(dirname "$kafka_libs")"
  # A private temporary directory: two test beds may install at once.
  local tmp
  tmp=$(mktemp -d "$kafka_libs.tmp.XXXXXX")
  mvn -q -B -Dstyle.color=never -f "$root/scripts/testbed/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
  touch "$tmp/.complete"
  if ! mv -T "$tmp" "$kafka_libs" 2>/dev/null; then
    rm -rf "$tmp" # another install finished first
  fi
  [ -f "$kafka_libs/.complete" ] || die "installing Kafka's jars into $kafka_libs failed"
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
  local dir=$influx_dir
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
stop_one() { stop_dir "$state/$1" "$1" 30; }

# stop_dir DIR NAME SECONDS: stops the process group whose leader's pid is in
# DIR/pid: SIGCONT (a paused process cannot act on SIGTERM), SIGTERM, then
# SIGKILL after SECONDS.
stop_dir() {
  local pidfile=$1/pid name=$2 limit=$3 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT -- "-$pid" 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + limit))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${limit}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    log "$name stopped"
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
  influx2_env >>"$state/env"
}

# services_env creates the database the services write to by default on
# 1.8 and prints the environment that points them at the test bed.
services_env() {
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$influx_port/query" --data-urlencode 'q=CREATE DATABASE metricpipe' ||
    die "creating database metricpipe on InfluxDB 1.8 failed"
  cat <<EOF
# The services against this test bed (database metricpipe created on 1.8):
export METRICPIPE_KAFKA_BROKERS=127.0.0.1:$kafka_port
export METRICPIPE_INFLUX_URL=http://127.0.0.1:$influx_port
export METRICPIPE_INFLUX_BUCKET=metricpipe/autogen
# or InfluxDB 2.7 (bucket metricpipe created at setup):
# export METRICPIPE_INFLUX_URL=http://127.0.0.1:$influx2_port METRICPIPE_INFLUX_ORG=$influx2_org METRICPIPE_INFLUX_BUCKET=metricpipe METRICPIPE_INFLUX_TOKEN=$influx2_token
EOF
}

stop_all() {
  stop_one kafka
  stop_one influxdb
  stop_one influxdb2
}

start_all() {
  mkdir -p "$state"
  stop_all
  start_kafka
  start_influx fresh
  start_influx2
  write_env
}

# ---- The 3-node cluster ---------------------------------------------------

# node_port N OFFSET: node N's port for OFFSET 0 (plaintext), 1 (TLS),
# 2 (SASL_SSL) or 3 (controller).
node_port() { echo $((cluster_port + 10 * ($1 - 1) + $2)); }

# node_list OFFSET: every node's host:port for that listener, comma separated.
node_list() {
  local n out=()
  for n in "${cluster_nodes[@]}"; do out+=("127.0.0.1:$(node_port "$n" "$1")"); done
  (
    IFS=,
    echo "${out[*]}"
  )
}

check_node() {
  case "${1:-}" in
  1 | 2 | 3) ;;
  *) die "node: want 1, 2 or 3, got '${1:-}'" ;;
  esac
}

# make_tls: a self-signed CA and a broker keystore (PKCS12) holding a key and
# a certificate the CA signed for 127.0.0.1 and localhost, made with the JDK's
# keytool, and the CA as PEM for Go clients. Kept between starts, as each
# keytool run starts a JVM.
make_tls() {
  local dir=$cluster_state/tls
  [ -f "$dir/.complete" ] && return 0
  command -v keytool >/dev/null || die "keytool not found: it comes with the JDK"
  rm -rf "$dir" && mkdir -p "$dir"
  local pw
  pw=$(head -c12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$pw" >"$dir/password"
  local kt=(keytool -noprompt -storetype PKCS12 -storepass "$pw" -keypass "$pw")
  {
    "${kt[@]}" -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 3650 \
      -dname "CN=metricpipe test bed CA" -ext bc:c -keystore "$dir/ca.p12"
    "${kt[@]}" -exportcert -rfc -alias ca -keystore "$dir/ca.p12" -file "$dir/ca.pem"
    "${kt[@]}" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
      -dname "CN=127.0.0.1" -keystore "$dir/broker.p12"
    "${kt[@]}" -certreq -alias broker -keystore "$dir/broker.p12" -file "$dir/broker.csr"
    # Go checks the subject alternative names only, never the CN.
    "${kt[@]}" -gencert -rfc -alias ca -keystore "$dir/ca.p12" -infile "$dir/broker.csr" -outfile "$dir/broker.pem" \
      -validity 3650 -ext SAN=IP:127.0.0.1,DNS:localhost -ext KU=digitalSignature,keyEncipherment -ext EKU=serverAuth
    # The CA first, so that the signed certificate's reply is accepted as a chain.
    "${kt[@]}" -importcert -alias ca -file "$dir/ca.pem" -keystore "$dir/broker.p12"
    "${kt[@]}" -importcert -alias broker -file "$dir/broker.pem" -keystore "$dir/broker.p12"
  } >"$dir/keytool.log" 2>&1 || {
    cat "$dir/keytool.log" >&2
    die "making the TLS keystores failed"
  }
  touch "$dir/.complete"
}

# node_java_opts DIR: the JVM options of the node whose state is in DIR.
node_java_opts() {
  # Three brokers on two cores: small heaps, one GC thread each.
  echo -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$root/scripts/testbed/log4j2.properties" "-Dkafka.logs.dir=$1/logs"
}

# write_node_config N: node N's server.properties.
write_node_config() {
  local n=$1 dir=$cluster_state/node$1 voters=() m pw
  for m in "${cluster_nodes[@]}"; do voters+=("$m@127.0.0.1:$(node_port "$m" 3)"); done
  pw=$(cat "$cluster_state/tls/password")
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(
    IFS=,
    echo "${voters[*]}"
  )
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n" 0),SSL://127.0.0.1:$(node_port "$n" 1),SASL_SSL://127.0.0.1:$(node_port "$n" 2),CONTROLLER://127.0.0.1:$(node_port "$n" 3)
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n" 0),SSL://127.0.0.1:$(node_port "$n" 1),SASL_SSL://127.0.0.1:$(node_port "$n" 2)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
ssl.keystore.type=PKCS12
ssl.keystore.location=$cluster_state/tls/broker.p12
ssl.keystore.password=$pw
ssl.key.password=$pw
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
# A write is acknowledged once two of the three nodes have it.
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
# The retention scenario waits for old segments to go: look every second.
log.retention.check.interval.ms=1000
EOF
}

# start_node N: starts node N, formatted already; await_node waits for it.
start_node() {
  local n=$1 dir=$cluster_state/node$1 p
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "node $n is running (pid $(cat "$dir/pid"))"
  fi
  for p in 0 1 2 3; do
    port_free "$(node_port "$n" "$p")" || die "port $(node_port "$n" "$p") of node $n is in use (try: $0 cluster stop)"
  done
  # The log is appended to: only a started line after this start counts.
  local before
  before=$(grep -cs 'Kafka Server started' "$dir/logs/server.log" || true)
  echo "${before:-0}" >"$dir/started-before"
  # shellcheck disable=SC2046 # the options are words
  setsid java $(node_java_opts "$dir") -cp "$kafka_libs/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

node_started() {
  local dir=$cluster_state/node$1 now
  now=$(grep -cs 'Kafka Server started' "$dir/logs/server.log" || true)
  ((${now:-0} > $(cat "$dir/started-before")))
}

await_node() {
  local dir=$cluster_state/node$1
  wait_until 180 "$dir/pid" "$dir/logs/server.log" node_started "$1"
}

# signal_node N SIGNAL: sends SIGNAL to node N's process group.
signal_node() {
  local pidfile=$cluster_state/node$1/pid
  { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; } || die "node $1 is not running"
  kill "-$2" -- "-$(cat "$pidfile")"
}

cluster_stop() {
  local n pidfile
  # All at once: the last node's controlled shutdown would wait in vain for a
  # controller quorum that left with the others.
  for n in "${cluster_nodes[@]}"; do
    pidfile=$cluster_state/node$n/pid
    if [ -f "$pidfile" ]; then
      kill -CONT -- "-$(cat "$pidfile")" 2>/dev/null || true
      kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for n in "${cluster_nodes[@]}"; do stop_dir "$cluster_state/node$n" "node $n" 15; done
}

cluster_start() {
  mkdir -p "$cluster_state"
  cluster_stop
  local n dir cluster_id version user=metricpipe password
  for n in "${cluster_nodes[@]}"; do rm -rf "$cluster_state/node$n"; done
  make_tls
  cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  cluster_id=${cluster_id/#-/A} # as in start_kafka
  password=$(head -c12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  for n in "${cluster_nodes[@]}"; do
    write_node_config "$n"
    dir=$cluster_state/node$n
    # --add-scram puts the user in the metadata log from the start: no
    # broker has to be up to create it.
    # shellcheck disable=SC2046 # the options are words
    java $(node_java_opts "$dir") -cp "$kafka_libs/*" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$dir/server.properties" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]" \
      >"$dir/logs/format.log" 2>&1 || {
      cat "$dir/logs/format.log" >&2
      die "formatting node $n failed"
    }
  done
  for n in "${cluster_nodes[@]}"; do start_node "$n"; done
  for n in "${cluster_nodes[@]}"; do await_node "$n"; done
  version=$(grep -o 'Kafka version: [^ ]*' "$cluster_state/node1/logs/server.log" | head -n1 | cut -d' ' -f3)
  cat >"$cluster_state/env" <<EOF
export METRICPIPE_TEST_CLUSTER_BROKERS=$(node_list 0)
export METRICPIPE_TEST_CLUSTER_TLS_BROKERS=$(node_list 1)
export METRICPIPE_TEST_CLUSTER_SASL_BROKERS=$(node_list 2)
export METRICPIPE_TEST_CLUSTER_CA_FILE="$cluster_state/tls/ca.pem"
export METRICPIPE_TEST_CLUSTER_SASL_MECHANISM=scram-sha-512
export METRICPIPE_TEST_CLUSTER_SASL_USERNAME=$user
export METRICPIPE_TEST_CLUSTER_SASL_PASSWORD=$password
export METRICPIPE_TEST_CLUSTER_KAFKA_VERSION=$version
export METRICPIPE_TEST_CLUSTER_JARS="$kafka_libs"
export METRICPIPE_TEST_TESTBED="$root/scripts/testbed.sh"
export METRICPIPE_TESTBED_DIR="$state"
export METRICPIPE_TESTBED_CLUSTER_PORT=$cluster_port
EOF
  log "Apache Kafka $version, 3 KRaft nodes, ready: plaintext $(node_list 0), TLS $(node_list 1), SASL_SSL $(node_list 2)"
}

cluster_usage() {
  die "usage: $0 cluster start|stop|env|run -- CMD...|kill N|pause N|resume N|stop N|restart N"
}

cluster_cmd() {
  local sub=${1:-} pid
  shift || true
  # `cluster run` has an InfluxDB of its own, beside the cluster's state.
  influx_dir=$cluster_state/influxdb
  influx_port=$cluster_influx_port
  influx_rpc_port=$((cluster_influx_port + 2))
  case "$sub" in
  start)
    install_kafka
    cluster_start
    cat "$cluster_state/env"
    ;;
  stop)
    if [ $# -gt 0 ]; then
      check_node "$1"
      stop_dir "$cluster_state/node$1" "node $1" 60
    else
      cluster_stop
      stop_dir "$influx_dir" influxdb 30
    fi
    ;;
  env) cat "$cluster_state/env" ;;
  kill)
    check_node "${1:-}"
    signal_node "$1" KILL
    pid=$(cat "$cluster_state/node$1/pid")
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$cluster_state/node$1/pid"
    log "node $1 killed (SIGKILL)"
    ;;
  pause)
    check_node "${1:-}"
    signal_node "$1" STOP
    log "node $1 paused (SIGSTOP)"
    ;;
  resume)
    check_node "${1:-}"
    signal_node "$1" CONT
    log "node $1 resumed (SIGCONT)"
    ;;
  restart)
    check_node "${1:-}"
    stop_dir "$cluster_state/node$1" "node $1" 60
    start_node "$1"
    await_node "$1"
    log "node $1 serving again"
    ;;
  run)
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || cluster_usage
    install_kafka
    install_influx
    trap 'cluster_stop; stop_dir "$influx_dir" influxdb 30' EXIT
    trap 'exit 130' INT TERM
    cluster_start
    stop_dir "$influx_dir" influxdb 30
    start_influx fresh
    cat >>"$cluster_state/env" <<EOF
export METRICPIPE_TEST_INFLUX_URL=http://127.0.0.1:$influx_port
export METRICPIPE_TEST_INFLUX_VERSION=$(cat "$influx_dir/version")
EOF
    # shellcheck disable=SC1091
    source "$cluster_state/env"
    set +e
    "$@"
    status=$?
    set -e
    exit "$status"
    ;;
  *) cluster_usage ;;
  esac
}

cmd=${1:-}
shift || true
case "$cmd" in
install)
  case "${1:-all}" in
  kafka) install_kafka ;;
  influx) install_influx ;;
  influx2) install_influx2 ;;
  all) install_kafka && install_influx && install_influx2 ;;
  *) die "usage: $0 install [kafka|influx|influx2]" ;;
  esac
  ;;
start)
  install_kafka
  install_influx
  install_influx2
  start_all
  echo "# The integration tests' environment:"
  cat "$state/env"
  services_env
  ;;
stop) stop_all ;;
env) cat "$state/env" ;;
cluster) cluster_cmd "$@" ;;
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
  install_influx2
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
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
