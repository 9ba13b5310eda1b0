#!/usr/bin/env bash
# The load tool against the objectives (--check: drop rate, p99 latency,
# memory, worker CPU, conservation).
#   .ci/load.sh scenarios   every scenario, shortened, aggregating at the
#                           source and as events
#   .ci/load.sh soak        a few minutes of soak, whose RSS must not grow
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --example load
load=target/release/examples/load
case "${1:-scenarios}" in
scenarios)
    for mode in source off; do
        echo "--- aggregation $mode"
        STATS_AGGREGATION=$mode "$load" --scenario baseline --duration 5 --check
        STATS_AGGREGATION=$mode "$load" --scenario high --duration 10 --check
        STATS_AGGREGATION=$mode "$load" --scenario stress --duration 5 --check
        STATS_AGGREGATION=$mode "$load" --scenario burst --duration 5 --check
    done
    ;;
soak)
    "$load" --scenario soak --duration "${SOAK:-2m}" --check
    ;;
*)
    echo "usage: $0 [scenarios|soak]" >&2
    exit 2
    ;;
esac
