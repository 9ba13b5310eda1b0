#!/usr/bin/env bash
# StatsD lines against collectd: the collector and collectd 5's statsd
# plugin (Debian's collectd-core, read back through its write_prometheus
# plugin) each take 6M counter lines a second for 5 s from one paced
# sender; the collector must account for at least 99% of them at no more
# CPU a line than collectd. Both receivers' share and CPU a line are
# printed. One rerun when the first fails: a 5 s run on a shared 2-core
# machine can catch a neighbour's burst.
set -euo pipefail
cd "$(dirname "$0")/.."

plugin=/usr/lib/collectd/write_prometheus.so
if ! command -v collectd >/dev/null || [ ! -e "$plugin" ] || ldd "$plugin" | grep -q 'not found'; then
    apt-get update -qq
    apt-get install -y -qq collectd-core libprotobuf-c1 libmicrohttpd12
fi
cargo build --release --example collector_load
compare() {
    target/release/examples/collector_load statsd --rate 6000000 --seconds 5 \
        --collectd "$(command -v collectd)" --check
}
compare || { echo "--- once more"; compare; }
