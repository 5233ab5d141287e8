#!/usr/bin/env bash
# bench.sh runs every benchmark COUNT times (default 5) and prints the
# medians with benchstat. Benchmarks that need Kafka and InfluxDB read the
# test bed's environment: run it through `make bench`, which starts them.
# Each benchmark reports its figure next to a baseline measured in the same
# iteration (a ratio), so a noisy machine shifts both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp -d)/bench.txt
# One package at a time (-p 1), so benchmarks do not compete for the two cores.
go test -p 1 -run '^$' -bench "${BENCH:-.}" -benchmem -count "$count" -timeout 60m ./... | tee "$out" | grep -E '^(Benchmark|ok|FAIL|pkg:)' >&2
echo
echo "medians of $count runs (benchstat):"
go tool benchstat -table '' "$out"
