#!/usr/bin/env bash
# The collector against the real engines: Prometheus 2.42 (remote write
# receiver on, and scraping one collector's /metrics) and VictoriaMetrics
# 1.79, on loopback. Two collectors (labels collector=a and collector=b)
# each receive one demo run, a over a Unix datagram socket and b over a
# Unix stream socket, and remote-write into both engines; then each
# engine's /api/v1/query must give exactly what the demos recorded
# (counters summed, timer and histogram counts) and what the collectors
# hold (gauges), summed over the two collectors. OTLP into a receiver that
# decodes with OpenTelemetry's own Python package. Then the faults: the
# engine down, then answering 500, 429 and 400 (a proxy in front of it),
# and the collector killed and restarted: drops past the queue counted,
# and the totals exact once the engine takes requests again.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=.ci/peers.sh
. .ci/peers.sh

cargo build --release -p stats-collector
cargo build --release --example demo

echo "--- the demo pointed where nothing listens says so, and fails"
if target/release/examples/demo --target 127.0.0.1:1 --duration 1 >"$work/demo-nowhere.txt" 2>&1; then
    echo "the demo exited 0 having delivered nothing" >&2
    exit 1
fi
grep "nothing was delivered" "$work/demo-nowhere.txt"

VM=127.0.0.1:18428
PROM=127.0.0.1:19090

# VictoriaMetrics on $VM (its data kept across a restart); its pid in vm.
start_vm() {
    victoria-metrics -httpListenAddr=$VM -storageDataPath="$work/vm" \
        -search.latencyOffset=1s -loggerLevel=ERROR &
    vm=$!
    pids+=("$vm")
}
start_vm
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: collector-a
    static_configs:
      - targets: ["127.0.0.1:19201"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
    --web.listen-address=$PROM --web.enable-remote-write-receiver \
    --log.level=error &
pids+=($!)

for name in a b; do
    port=$([ $name = a ] && echo 1 || echo 2)
    unix=$([ $name = a ] && echo --listen-unix || echo --listen-unix-stream)
    target/release/stats-collector --listen 127.0.0.1:1820$port --http 127.0.0.1:1920$port \
        "$unix" "$work/$name.sock" \
        --remote-write http://$VM/api/v1/write --remote-write http://$PROM/api/v1/write \
        --label collector=$name --export-interval 1 >"$work/collector-$name.log" 2>&1 &
    pids+=($!)
    eval "collector_$name=$!"
done

up "http://$VM/health"
up "http://$PROM/-/ready"
up http://127.0.0.1:19201/health
up http://127.0.0.1:19202/health

# One demo run into collector NAME at ADDRESS (a UDP port, or a Unix
# socket's URL); what it recorded, by kind, in recorded-NAME.txt.
demo() {
    target/release/examples/demo --target "$2" --duration 2 --rate 50000 \
        --threads 2 >"$work/demo-$1.txt" 2>&1
    grep -E '^  by kind' "$work/demo-$1.txt" >"$work/recorded-$1.txt"
}
demo a "unixgram://$work/a.sock"
demo b "unix://$work/b.sock"
# Two export intervals for the last totals to be pushed; the collectors'
# own view of the gauges, then SIGTERM (a last push, drained).
sleep 3
curl -fsS http://127.0.0.1:19201/metrics >"$work/metrics-a.txt"
curl -fsS http://127.0.0.1:19202/metrics >"$work/metrics-b.txt"
# shellcheck disable=SC2154
kill -TERM "$collector_a" "$collector_b"
wait "$collector_a" "$collector_b"
grep -h 'stopped' "$work"/collector-*.log

python3 .ci/engines.py "$work" "http://$VM" "http://$PROM"

echo "--- OTLP/HTTP, decoded by OpenTelemetry's opentelemetry-proto (PyPI)"
python3 -c 'import opentelemetry.proto' 2>/dev/null \
    || pip install -q --disable-pip-version-check opentelemetry-proto
python3 .ci/otlp_receiver.py 14318 "$work/recorded-o.txt" >"$work/otlp.log" 2>&1 &
receiver=$!
pids+=($receiver)
target/release/stats-collector --listen 127.0.0.1:18204 --http 127.0.0.1:19204 \
    --otlp http://127.0.0.1:14318/v1/metrics --label collector=o --export-interval 1 \
    >"$work/collector-o.log" 2>&1 &
collector_o=$!
pids+=($collector_o)
up http://127.0.0.1:19204/health
demo o 127.0.0.1:18204
sleep 2
kill -TERM "$collector_o"
wait "$collector_o"
kill -TERM "$receiver"
status=0
wait "$receiver" || status=$?
cat "$work/otlp.log"
[ "$status" -eq 0 ]

echo "--- faults: a real engine down, then answering 500, 429 and 400; the collector killed and restarted"
# Collector c writes to VictoriaMetrics through a proxy that answers as a
# failing engine does. Its memory budget is the smallest (1 MiB) and it
# exports every 20 ms, so that its queue overflows while the engine is
# away: drops are counted, and, the totals being cumulative, nothing is
# lost once the engine takes requests again.
kill "$vm"
wait "$vm" 2>/dev/null || true
collector_c_start() {
    target/release/stats-collector --listen 127.0.0.1:18203 --http 127.0.0.1:19203 \
        --remote-write http://127.0.0.1:18429/api/v1/write --label collector=c \
        --max-memory 1MiB --export-interval 0.02 >>"$work/collector-c.log" 2>&1 &
    collector_c=$!
    pids+=($collector_c)
    up http://127.0.0.1:19203/health
}
# The value of the collector's own counter LINE (a sample's name and labels).
pushed() {
    curl -fsS http://127.0.0.1:19203/metrics | awk -v l="$1" '$1 == l {print int($2)}'
}
at_proxy='output="remote_write",url="http://127.0.0.1:18429/api/v1/write"'
dropped() {
    pushed "stats_collector_push_samples_dropped_total{$at_proxy,reason=\"$1\"}"
}
collector_c_start
# Killed (SIGKILL) and started again while the demo runs: the demo's
# refresh (every second here) sends every series' totals again.
STATS_REFRESH_INTERVAL_S=1 demo c 127.0.0.1:18203 &
demo_c=$!
sleep 1
kill -KILL "$collector_c"
wait "$collector_c" 2>/dev/null || echo "collector c killed (SIGKILL)"
collector_c_start
wait "$demo_c"
sleep "${ENGINE_DOWN_SECONDS:-60}"
retried=$(pushed "stats_collector_push_samples_retried_total{$at_proxy}")
queue_full=$(dropped queue_full)
echo "engine down: $retried samples retried, $queue_full dropped from the full queue"
[ "$retried" -gt 0 ] && [ "$queue_full" -gt 0 ]
start_vm
up "http://$VM/health"
# Two answers of each fault, then the engine's own.
python3 .ci/fault_proxy.py 18429 "http://$VM" 500:2,429:2,400:2 >"$work/proxy.log" 2>&1 &
proxy=$!
pids+=($proxy)
for _ in $(seq 300); do grep -q passing "$work/proxy.log" && break; sleep 0.1; done
grep -q passing "$work/proxy.log" || { echo "the faults were not all met" >&2; exit 1; }
sleep 4
rejected=$(dropped rejected)
echo "answered 400: $rejected samples rejected"
[ "$rejected" -gt 0 ]
curl -fsS http://127.0.0.1:19203/metrics >"$work/metrics-c.txt"
grep -E '^stats_collector_push_samples_(sent|retried|dropped)_total' "$work/metrics-c.txt"
kill -TERM "$proxy"
wait "$proxy" || true
cat "$work/proxy.log"
python3 .ci/engines.py "$work" "http://$VM" "" c
