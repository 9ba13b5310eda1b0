#!/usr/bin/env bash
# Flash and static RAM of the minimal firmware (one embassy-net stack, one
# UDP socket, executor, no MAC driver), without and with the stats
# pipeline, measured with llvm-size; the difference is the pipeline's cost.
set -euo pipefail
cd "$(dirname "$0")/../firmware/qemu"
SIZE=$(command -v llvm-size || true)
[ -n "$SIZE" ] || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; SIZE=llvm-size; }
printf '%-24s %-10s %8s %8s\n' target firmware flash ram
status=0
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    for variant in base with-stats; do
        features=()
        [ "$variant" = with-stats ] && features=(--features with-stats)
        FIRMWARE_RAM=64K cargo build -q --release --target "$target" --bin footprint "${features[@]}"
        # text + data is flash (data's initial values live there); data + bss is RAM.
        read -r text data bss _ < <("$SIZE" "target/$target/release/footprint" | tail -1)
        flash=$((text + data)) ram=$((data + bss))
        printf '%-24s %-10s %8d %8d\n' "$target" "$variant" "$flash" "$ram"
        # The whole minimal firmware's targets: 32 KB of flash, 16 KB of RAM.
        if [ "$flash" -ge 32768 ] || [ "$ram" -ge 16384 ]; then
            echo "the $variant firmware for $target is over 32 KB of flash or 16 KB of RAM" >&2
            status=1
        fi
    done
done
exit "$status"
