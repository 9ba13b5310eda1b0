#!/usr/bin/env bash
# Both /metrics endpoints checked by Prometheus's own linter: the demo sends
# a mixed workload to a running stats-collector, then `promtool check
# metrics` reads what the collector serves; and what the demo's own client
# serves while it runs (its series aggregated at the source, with the
# pipeline's telemetry).
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

STATS_HTTP=true STATS_HTTP_ADDRESS=127.0.0.1:19103 target/release/examples/demo \
    --target 127.0.0.1:18125 --duration 3 --rate 100000 >/dev/null &
demo=$!
client=$(mktemp)
for _ in $(seq 50); do
    sleep 0.1
    curl -fsS http://127.0.0.1:19103/metrics >"$client" 2>/dev/null \
        && grep -q '^http_requests_total{' "$client" && break
done
wait "$demo"
grep -q '^http_requests_total{' "$client"
grep -q '_bucket{.*le="+Inf"}' "$client"
grep -q '^stats_health_status' "$client"
promtool check metrics <"$client"
echo "promtool: the client's metrics are valid ($(grep -vc '^#' "$client") samples)"
