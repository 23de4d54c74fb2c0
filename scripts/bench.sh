#!/usr/bin/env bash
# make bench: netsurg alone on the configs of the performance issue (CaffeNet
# 227 at batch 1 and 10, its full-conv cast at 451x451), 2 threads and 1, with
# random weights generated into BUILD/bench; prints the medians and writes
# BUILD/bench/RESULTS.md and results.json. Scale with BENCH_ROUNDS, BENCH_ITERS,
# BENCH_THREADS, BENCH_CONFIGS (see bench/README.md).
# Usage: scripts/bench.sh [BUILD]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p "$build/bench"
scripts/install-deps.sh test
exec /usr/bin/python3 bench/run.py --build "$build" --engines netsurg --models "${BENCH_MODELS:-caffenet}" \
  --out "$build/bench/RESULTS.md" --json "$build/bench/results.json"
