#!/usr/bin/env bash
# The load tool's scenarios, shortened, judged against the objectives
# (--check: drop rate, p99 latency, memory, worker CPU, conservation), and a
# few minutes of soak whose RSS must not grow.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --example load
load=target/release/examples/load
"$load" --scenario baseline --duration 5 --check
"$load" --scenario high --duration 10 --check
"$load" --scenario stress --duration 5 --check
"$load" --scenario burst --duration 5 --check
"$load" --scenario soak --duration "${SOAK:-2m}" --check
