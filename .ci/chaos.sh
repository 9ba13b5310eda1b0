#!/usr/bin/env bash
# Chaos cases beyond a plain test run:
#   .ci/chaos.sh nftables     loss injected by nftables inside throwaway
#                             network namespaces (needs root and nftables):
#                             events: 10% of the datagrams to one port
#                             dropped on their way out and counted by the
#                             firewall, and the receiver's accounting must
#                             match that counter exactly; aggregated totals:
#                             10% and 50% lost on their way in (the sender
#                             never knows), and the collector's totals must
#                             equal what was recorded once the sender has
#                             flushed, while metrics-exporter-dogstatsd
#                             through the same 10% loses its share;
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
    # A fresh namespace with `rules` (nftables), then the chaos tests
    # matching `filter` in it, with the given environment.
    in_namespace() {
        local rules=$1 filter=$2
        shift 2
        cleanup
        ip netns add "$NS"
        ip netns exec "$NS" ip link set lo up
        ip netns exec "$NS" nft -f - <<<"$rules"
        ip netns exec "$NS" env CHAOS_NFT_PORT="$PORT" CHAOS_SECONDS=5 "$@" timeout 120 \
            cargo test --offline --release --test chaos -- --ignored --nocapture "$filter"
        ip netns exec "$NS" nft list table inet chaos
    }
    in_namespace "table inet chaos { chain output {
        type filter hook output priority 0; policy accept;
        udp dport $PORT numgen random mod 10 0 counter drop; }; }" nftables_loss
    for loss in 10 50; do
        in_namespace "table inet chaos { chain input {
            type filter hook input priority 0; policy accept;
            udp dport $PORT numgen random mod 100 lt $loss counter drop; }; }" \
            totals_are_exact_through_network_loss CHAOS_LOSS_PERCENT=$loss
    done
    in_namespace "table inet chaos { chain input {
        type filter hook input priority 0; policy accept;
        udp dport $PORT numgen random mod 100 lt 10 counter drop; }; }" \
        a_peer_that_sends_deltas CHAOS_LOSS_PERCENT=10
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
