#!/usr/bin/env bash
# Flash and static RAM of the minimal firmware (one embassy-net stack, one
# UDP socket, executor, no MAC driver), without and with the stats
# pipeline, measured with llvm-size; the difference is the pipeline's cost.
set -euo pipefail
cd "$(dirname "$0")/../firmware/qemu"
SIZE=$(command -v llvm-size || true)
[ -n "$SIZE" ] || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; SIZE=llvm-size; }
printf '%-24s %-10s %8s %8s\n' target firmware flash ram
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    for variant in base with-stats; do
        features=()
        [ "$variant" = with-stats ] && features=(--features with-stats)
        FIRMWARE_RAM=64K cargo build -q --release --target "$target" --bin footprint "${features[@]}"
        # text + data is flash (data's initial values live there); data + bss is RAM.
        read -r text data bss _ < <("$SIZE" "target/$target/release/footprint" | tail -1)
        printf '%-24s %-10s %8d %8d\n' "$target" "$variant" $((text + data)) $((data + bss))
    done
done
