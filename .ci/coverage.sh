#!/usr/bin/env bash
# The README's test command, `cargo test --workspace`, run once with line
# coverage measured (cargo-llvm-cov, in its own target directory): every
# test must pass, and stats-core and stats-std must each be over 85%
# covered.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
rustup component add llvm-tools-preview
export CARGO_TARGET_DIR=target/llvm-cov-target
eval "$(cargo llvm-cov show-env --sh 2>/dev/null)"
cargo llvm-cov clean --workspace
cargo test --workspace
report=$(mktemp)
cargo llvm-cov report --workspace --summary-only >"$report"
grep -E '^(Filename|core/|std-adapter/|TOTAL)' "$report"
awk '
  $1 ~ /^core\/src\// { lines["stats-core"] += $8; missed["stats-core"] += $9 }
  $1 ~ /^std-adapter\/src\// { lines["stats-std"] += $8; missed["stats-std"] += $9 }
  END {
    failed = 0
    if (!("stats-core" in lines) || !("stats-std" in lines)) {
      print "the report covers not both stats-core and stats-std"
      exit 1
    }
    for (c in lines) {
      pct = 100 * (lines[c] - missed[c]) / lines[c]
      printf "%s: %.1f%% of %d lines covered\n", c, pct, lines[c]
      if (pct < 85) failed = 1
    }
    exit failed
  }' "$report"
