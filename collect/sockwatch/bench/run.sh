#!/usr/bin/env bash
# Socket-machinery cost on a synthetic busy host: 2,000 sleeping processes,
# 10 processes holding 1,000 loopback TCP connections (2,000 sockets) and 100
# UDP sockets each (~21,000 sockets), Run for 60 s with Interval 2s and
# FullWalkEvery 30s, then 100 client processes that live ~100 ms.
#
# Farms and clients run in a network namespace the benchmark creates, and
# the inventory is restricted to it, so other programs' sockets on a shared
# machine do not count; the fd walk still covers every process on the host.
# Needs root and iproute2. SOCKWATCH_BENCH_SECONDS overrides the 60 s.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH="$PATH:/usr/local/go/bin"
ulimit -n "$(ulimit -Hn)"
# One Go processor, as flowblame collect runs while capturing.
GOMAXPROCS=${GOMAXPROCS:-1} SOCKWATCH_BENCH=1 go test -count=1 -timeout 15m -run '^TestBenchSockets$' -v ./collect/sockwatch | grep -v '^=== RUN'
