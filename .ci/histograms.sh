#!/usr/bin/env bash
# Distributions the engines can window, against Prometheus 2.42 (native
# histograms on) and VictoriaMetrics 1.79 on loopback:
#
# * a latency spike (1 ms at 5,000 values a second for 20 s, then 200 ms
#   at 500 a second for 1 s, then 1 ms again) recorded by the client and
#   sent to collector s (le buckets: scraped every second by both
#   engines, and remote written to both) and to collector n (native
#   histograms, remote written to Prometheus): the p99 over the last 6 s
#   must read the base latency before the spike and the spike's after it,
#   by the query each engine's users write;
# * values chosen inside buckets, sent to collector x (native histograms
#   into Prometheus, OTLP into a receiver that decodes with
#   OpenTelemetry's own Python package): every bucket holds exactly the
#   values its boundaries hold.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=.ci/peers.sh
. .ci/peers.sh

cargo build --release -p stats-collector
cargo build --release --example spike
python3 -c 'import opentelemetry.proto' 2>/dev/null \
    || pip install -q --disable-pip-version-check opentelemetry-proto

VM=127.0.0.1:18438
PROM=127.0.0.1:19095

cat >"$work/scrape.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: collector-s
    static_configs:
      - targets: ["127.0.0.1:19211"]
EOF
victoria-metrics -httpListenAddr=$VM -storageDataPath="$work/vm" \
    -promscrape.config="$work/scrape.yml" -search.latencyOffset=1s -loggerLevel=ERROR &
pids+=($!)
prometheus --config.file="$work/scrape.yml" --storage.tsdb.path="$work/prom" \
    --web.listen-address=$PROM --web.enable-remote-write-receiver \
    --enable-feature=native-histograms --log.level=error &
pids+=($!)

collector() { # NAME UDP_PORT HTTP_PORT FLAGS...
    local name=$1 udp=$2 http=$3
    shift 3
    target/release/stats-collector --listen "127.0.0.1:$udp" --http "127.0.0.1:$http" \
        --label "collector=$name" --export-interval 1 "$@" >"$work/collector-$name.log" 2>&1 &
    pids+=($!)
}
collector s 18211 19211 --remote-write "http://$VM/api/v1/write" \
    --remote-write "http://$PROM/api/v1/write"
collector n 18212 19212 --native-histograms --remote-write "http://$PROM/api/v1/write"
collector x 18213 19213 --native-histograms --remote-write "http://$PROM/api/v1/write" \
    --otlp http://127.0.0.1:14338/v1/metrics

up "http://$VM/health"
up "http://$PROM/-/ready"
for port in 19211 19212 19213; do up "http://127.0.0.1:$port/health"; done

echo "--- values inside buckets: native histograms and OTLP exponential histograms"
python3 .ci/histograms.py exact "http://$PROM" 14338 127.0.0.1:18213

echo "--- a latency spike, seen through le buckets and native histograms"
target/release/examples/spike --target 127.0.0.1:18211 >"$work/spike-s.txt" &
spike_s=$!
target/release/examples/spike --target 127.0.0.1:18212 >"$work/spike-n.txt"
wait "$spike_s"
cat "$work/spike-s.txt"
sleep 2
curl -fsS http://127.0.0.1:19211/metrics | grep -E '^spike_request_seconds_(bucket|count)' | tail -4
python3 .ci/histograms.py spike "http://$PROM" "http://$VM" "$work/spike-s.txt"
