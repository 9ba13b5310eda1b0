#!/usr/bin/env bash
# The pipeline on emulated Cortex-M cores: the core's checks and the
# embedded adapter's network tests (events, and aggregated totals), as
# firmware under qemu-system-arm, each reporting through semihosting and
# exiting 0 (pass) or 1 (fail), wrapped in a timeout (a fault would
# otherwise loop forever).
set -euo pipefail
cd "$(dirname "$0")/../firmware/qemu"

run() {
    local target=$1 bin=$2
    echo "--- $bin on $target"
    cargo build --release --target "$target" --bin "$bin"
    timeout 120 cargo run --release --target "$target" --bin "$bin"
}

for target in thumbv7m-none-eabi thumbv7em-none-eabihf thumbv6m-none-eabi; do
    run "$target" core_tests
    run "$target" net_loopback
    run "$target" net_aggregate
done
