#!/usr/bin/env bash
# Flash and static RAM of the minimal firmware (one embassy-net stack, one
# UDP socket, executor, no MAC driver), without the stats pipeline, with the
# event pipeline and with aggregation only, measured with llvm-size; the
# difference is the pipeline's cost.
set -euo pipefail
cd "$(dirname "$0")/../firmware/qemu"
SIZE=$(command -v llvm-size || true)
[ -n "$SIZE" ] || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; SIZE=llvm-size; }
printf '%-24s %-17s %8s %8s %8s\n' target firmware flash ram 'flash over base'
status=0
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    for variant in base with-stats with-aggregation; do
        features=()
        [ "$variant" = base ] || features=(--features "$variant")
        FIRMWARE_RAM=64K cargo build -q --release --target "$target" --bin footprint "${features[@]}"
        # text + data is flash (data's initial values live there); data + bss is RAM.
        read -r text data bss _ < <("$SIZE" "target/$target/release/footprint" | tail -1)
        flash=$((text + data)) ram=$((data + bss))
        [ "$variant" = base ] && base=$flash
        printf '%-24s %-17s %8d %8d %8d\n' "$target" "$variant" "$flash" "$ram" $((flash - base))
        # The whole minimal firmware's targets: 32 KB of flash, 16 KB of RAM.
        if [ "$flash" -ge 32768 ] || [ "$ram" -ge 16384 ]; then
            echo "the $variant firmware for $target is over 32 KB of flash or 16 KB of RAM" >&2
            status=1
        fi
        # The event pipeline's own flash target: 10 KB on thumbv7em, 11 KB
        # on thumbv6m.
        limit=$([ "$target" = thumbv6m-none-eabi ] && echo 11264 || echo 10240)
        if [ "$variant" = with-stats ] && [ $((flash - base)) -gt "$limit" ]; then
            echo "the event pipeline costs $((flash - base)) bytes of flash on $target, over $limit" >&2
            status=1
        fi
        # Aggregation alone: 14 KiB on both.
        if [ "$variant" = with-aggregation ] && [ $((flash - base)) -gt 14336 ]; then
            echo "aggregation costs $((flash - base)) bytes of flash on $target, over 14336" >&2
            status=1
        fi
    done
done
exit "$status"
