#!/usr/bin/env bash
# The embedded adapter against the Linux kernel: a TAP device in a
# throwaway network namespace, the kernel side at 192.168.69.1/24, the
# adapter's embassy-net stack at 192.168.69.2. Needs root (CAP_NET_ADMIN).
set -euo pipefail
cd "$(dirname "$0")/.."

NS="stats-tap-$$"
TAP="tapstats0"
# Build outside the namespace (which has no route to crates.io).
cargo test -p stats-embedded --test tap --no-run
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" sh -c "
    ip link set lo up
    ip tuntap add name $TAP mode tap
    ip link set $TAP up
    ip addr add 192.168.69.1/24 dev $TAP
"
ip netns exec "$NS" env STATS_TAP="$TAP" timeout 120 \
    cargo test --offline -p stats-embedded --test tap -- --ignored --nocapture
