#!/usr/bin/env bash
# The collector's /metrics checked by Prometheus's own linter: the demo sends
# a mixed workload to a running stats-collector, then `promtool check
# metrics` reads what it serves.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p stats-collector
cargo build --release --example demo
target/release/stats-collector --listen 127.0.0.1:18125 --http 127.0.0.1:19102 &
collector=$!
trap 'kill $collector 2>/dev/null || true' EXIT
sleep 1
target/release/examples/demo --target 127.0.0.1:18125 --duration 1 --rate 100000 >/dev/null
metrics=$(mktemp)
curl -fsS http://127.0.0.1:19102/metrics >"$metrics"
grep -q '^http_requests_total{route=' "$metrics"
grep -q '^db_query_seconds_count{table="orders"}' "$metrics"
grep -q '^db_query_seconds_bucket{table="orders",le="+Inf"}' "$metrics"
promtool check metrics <"$metrics"
echo "promtool: the collector's metrics are valid ($(grep -vc '^#' "$metrics") samples)"
