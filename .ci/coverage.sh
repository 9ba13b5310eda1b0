#!/usr/bin/env bash
# Line coverage of stats-core and stats-std under the workspace's tests
# (cargo-llvm-cov); each must be over 85%.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
rustup component add llvm-tools-preview
report=$(mktemp)
cargo llvm-cov --workspace --summary-only >"$report"
grep -E '^(Filename|core/|std-adapter/|TOTAL)' "$report"
awk '
  $1 ~ /^core\/src\// { lines["stats-core"] += $8; missed["stats-core"] += $9 }
  $1 ~ /^std-adapter\/src\// { lines["stats-std"] += $8; missed["stats-std"] += $9 }
  END {
    failed = 0
    for (c in lines) {
      pct = 100 * (lines[c] - missed[c]) / lines[c]
      printf "%s: %.1f%% of %d lines covered\n", c, pct, lines[c]
      if (pct < 85) failed = 1
    }
    exit failed
  }' "$report"
