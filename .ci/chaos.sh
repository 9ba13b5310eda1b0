#!/usr/bin/env bash
# Chaos cases beyond a plain test run:
#   .ci/chaos.sh nftables     loss injected by nftables inside a throwaway
#                             network namespace: 10% of the datagrams to one
#                             port are dropped and counted by the firewall,
#                             and the receiver's accounting must match that
#                             counter exactly (needs root and nftables);
#   .ci/chaos.sh full-lanes   lanes held full for two minutes (nothing
#                             listening), then recovery.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outside the namespace (which has no route to crates.io).
cargo test --release --test chaos --no-run
case "${1:-}" in
nftables)
    NS="stats-chaos-$$"
    PORT=18199
    cleanup() { ip netns del "$NS" 2>/dev/null || true; }
    trap cleanup EXIT
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    ip netns exec "$NS" nft -f - <<RULES
table inet chaos {
    chain output {
        type filter hook output priority 0; policy accept;
        udp dport $PORT numgen random mod 10 0 counter drop
    }
}
RULES
    ip netns exec "$NS" env CHAOS_NFT_PORT="$PORT" CHAOS_SECONDS=5 timeout 120 \
        cargo test --offline --release --test chaos -- --ignored --nocapture nftables
    ip netns exec "$NS" nft list chain inet chaos output
    ;;
full-lanes)
    CHAOS_SECONDS="${CHAOS_FULL_SECONDS:-120}" timeout 300 \
        cargo test --offline --release --test chaos -- --nocapture lanes_full_for_a_long_time
    ;;
*)
    echo "usage: $0 nftables|full-lanes" >&2
    exit 2
    ;;
esac
