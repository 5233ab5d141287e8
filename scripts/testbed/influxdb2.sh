# influxdb2.sh: InfluxDB 2.x for the test bed, sourced by testbed.sh (which
# defines cache, state, log, die, port_free and wait_until).
#
# influxd 2.x cannot be `go install`ed (its go.mod has replace directives)
# and its Flux engine is Rust, built by influxdata/pkg-config with cargo. So:
# copy the module from the Go module proxy, build there with pkg-config
# v0.2.7 on today's stable Rust (the pinned 1.72 toolchain cannot be
# installed offline), and without the `assets` tag (the UI is a download;
# the API, Flux and the v1 endpoints work without it). Today's rustc warns
# on flux's crates, which deny warnings: after a failing first build the
# copy of libflux pkg-config made is patched to allow them, and built
# again. About 10 minutes on two cores, once; cached in $cache.

influx2_version=2.7.12
influxd2=$cache/influxdb-$influx2_version/bin/influxd
influx2_port=${METRICPIPE_TESTBED_INFLUX2_PORT:-18096}
influx2_org=metricpipe
influx2_token=metricpipe-test-operator-token

install_influx2() {
  [ -x "$influxd2" ] && return 0
  command -v cargo >/dev/null || die "cargo not found: InfluxDB 2.x's Flux engine is built with Rust"
  log "building InfluxDB $influx2_version from the Go module proxy and crates.io into $(dirname "$influxd2") (about 10 minutes, once)"
  local src tmp libflux
  src=$(go mod download -json "github.com/influxdata/influxdb/v2@v$influx2_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "downloading github.com/influxdata/influxdb/v2@v$influx2_version failed"
  tmp=$(mktemp -d)
  cp -r "$src" "$tmp/influxdb" && chmod -R u+w "$tmp/influxdb"
  GOBIN="$tmp/bin" GOFLAGS=-mod=mod go install github.com/influxdata/pkg-config@v0.2.7 >&2
  libflux=$(go env GOCACHE)/pkgconfig/github.com/influxdata/flux@v0.196.1/libflux
  build_influx2() {
    (cd "$tmp/influxdb" && PKG_CONFIG="$tmp/bin/pkg-config" RUSTUP_TOOLCHAIN=stable \
      go build -tags sqlite_foreign_keys,sqlite_json -ldflags "-X main.version=$influx2_version" \
      -o "$tmp/influxd" ./cmd/influxd) >>"$tmp/build.log" 2>&1
  }
  if ! build_influx2; then
    [ -f "$libflux/flux/src/lib.rs" ] || { tail -n 40 "$tmp/build.log" >&2; die "building InfluxDB $influx2_version failed before Flux (log: $tmp/build.log)"; }
    log "allowing the warnings today's rustc raises in flux's crates; building again"
    sed -i 's/^#!\[cfg_attr(feature = "strict", deny(warnings, missing_docs))\]/#![allow(warnings)]/' \
      "$libflux/flux-core/src/lib.rs" "$libflux/flux/src/lib.rs"
    build_influx2 || { tail -n 40 "$tmp/build.log" >&2; die "building InfluxDB $influx2_version failed (log: $tmp/build.log)"; }
  fi
  mkdir -p "$(dirname "$influxd2")"
  mv "$tmp/influxd" "$influxd2"
  rm -rf "$tmp"
}

influx2_ready() { curl -fs -o /dev/null "http://127.0.0.1:$influx2_port/health"; }

# start_influx2: a fresh instance, set up with an org, a bucket and an
# operator token the tests use to create buckets and scoped tokens.
start_influx2() {
  local dir=$state/influxdb2
  port_free "$influx2_port" || die "port $influx2_port is in use (a test bed left running? try: $0 stop)"
  rm -rf "$dir" && mkdir -p "$dir/logs"
  setsid "$influxd2" --bolt-path "$dir/influxd.bolt" --engine-path "$dir/engine" --sqlite-path "$dir/influxd.sqlite" \
    --http-bind-address "127.0.0.1:$influx2_port" --reporting-disabled --log-level warn \
    >"$dir/logs/influxd.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_until 60 "$dir/pid" "$dir/logs/influxd.log" influx2_ready
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$influx2_port/api/v2/setup" -H 'Content-Type: application/json' \
    -d "{\"username\":\"metricpipe\",\"password\":\"metricpipe-test\",\"org\":\"$influx2_org\",\"bucket\":\"metricpipe\",\"token\":\"$influx2_token\"}" ||
    die "InfluxDB $influx2_version setup failed (log: $dir/logs/influxd.log)"
  local version
  version=$(curl -fsSI "http://127.0.0.1:$influx2_port/ping" | tr -d '\r' | sed -n 's/^[Xx]-[Ii]nfluxdb-[Vv]ersion: //p')
  echo "${version#v}" >"$dir/version"
  log "InfluxDB $(cat "$dir/version") (org $influx2_org, bucket metricpipe) ready on http://127.0.0.1:$influx2_port"
}

influx2_env() {
  cat <<ENV
export METRICPIPE_TEST_INFLUX2_URL=http://127.0.0.1:$influx2_port
export METRICPIPE_TEST_INFLUX2_ORG=$influx2_org
export METRICPIPE_TEST_INFLUX2_TOKEN=$influx2_token
export METRICPIPE_TEST_INFLUX2_VERSION=$(cat "$state/influxdb2/version")
ENV
}
