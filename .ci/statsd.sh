#!/usr/bin/env bash
# Interop with a real StatsD server: the Etsy `statsd` package from npm,
# started on loopback. The client's statsd and dogstatsd codecs and the
# collector's forwarding are checked against what the server holds (its
# management interface), and the demo is pointed at it with each codec.
set -euo pipefail
cd "$(dirname "$0")/.."

peer=$(mktemp -d)
trap 'kill $statsd 2>/dev/null || true; rm -rf "$peer"' EXIT
(cd "$peer" && npm install --no-audit --no-fund --silent statsd@0.9.0 >/dev/null)
# A long flush interval: counters are read before the server resets them.
cat >"$peer/config.js" <<'CONF'
{ port: 18135, address: "127.0.0.1", mgmt_address: "127.0.0.1", mgmt_port: 18136,
  backends: ["./backends/console"], flushInterval: 3600000, automaticConfigReload: false }
CONF
(cd "$peer" && exec node_modules/.bin/statsd config.js >statsd.log 2>&1) &
statsd=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/18136) 2>/dev/null && break
  sleep 0.2
done

STATSD_ADDRESS=127.0.0.1:18135 STATSD_ADMIN=127.0.0.1:18136 \
  cargo test -p stats-std --test statsd_interop -- --ignored --test-threads 1

cargo build --release --example demo
admin() {
  exec 3<>/dev/tcp/127.0.0.1/18136
  echo "$1" >&3
  timeout 2 cat <&3 || true
  exec 3>&-
}
# The Etsy dialect: every line read.
target/release/examples/demo --target 127.0.0.1:18135 --codec statsd \
  --duration 1 --rate 20000 >/dev/null 2>&1
stats=$(admin stats)
grep -q 'bad_lines_seen: 0' <<<"$stats" || { echo "statsd saw bad lines: $stats"; exit 1; }
counters=$(admin counters)
grep -q "'http.errors'" <<<"$counters" || { echo "no plain demo counter: $counters"; exit 1; }
# The DogStatsD dialect: Etsy statsd reads its tags (as key suffixes) but
# not the lines of several values (DogStatsD 1.1) timers and histograms
# become, nor the container id; the collector reads all of it
# (collector/tests/collector.rs), so here only the tagged counters count.
STATS_ORIGIN_DETECTION=false target/release/examples/demo --target 127.0.0.1:18135 \
  --codec dogstatsd --duration 1 --rate 20000 >/dev/null 2>&1
counters=$(admin counters)
grep -q "'http.errors;status=500'" <<<"$counters" || { echo "no tagged demo counter: $counters"; exit 1; }
echo "statsd interop: counts, gauges and timers arrive; no bad lines in the Etsy dialect"

echo "--- Datadog's Python client (datadog from PyPI) into the collector: every DogStatsD type"
python3 -c 'import datadog' 2>/dev/null || pip install -q --disable-pip-version-check datadog
cargo build --release -p stats-collector
target/release/stats-collector --listen 127.0.0.1:18137 --http 127.0.0.1:19137 \
  --export-interval 2 >"$peer/collector.log" 2>&1 &
collector=$!
trap 'kill $statsd $collector 2>/dev/null || true; rm -rf "$peer"' EXIT
for _ in $(seq 50); do curl -fsS http://127.0.0.1:19137/health >/dev/null 2>&1 && break; sleep 0.1; done
python3 .ci/datadog_client.py 18137 19137
