# Sourced by the scripts that run outside peers (engines, collectors) on
# loopback: a work directory and the processes started, both gone on exit,
# and `up URL` to wait for a peer's HTTP endpoint.
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Waits up to 10 s for URL to answer 2xx.
up() {
    for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "$1 did not come up" >&2
    return 1
}
