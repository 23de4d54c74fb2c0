#!/usr/bin/env bash
# make bench-peers: installs the peer engines (Debian python3-opencv,
# python3-torch, python3-onnx; npm onnxruntime-node, installed with
# --ignore-scripts: its install script fetches extras from a host this machine
# cannot reach, and the CPU library ships inside the package), exports the same
# weights to each, checks their outputs against netsurg's and times all of
# them interleaved. Writes bench/RESULTS.md and bench/results.json.
# Usage: scripts/bench-peers.sh [BUILD]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
if [ ! -f bench/peers/node_modules/onnxruntime-node/package.json ]; then
  (cd bench/peers && npm install --ignore-scripts --no-audit --no-fund --no-package-lock)
fi
mkdir -p "$build/bench"
exec /usr/bin/python3 bench/run.py --build "$build" \
  --out "${BENCH_OUT:-bench/RESULTS.md}" --json "${BENCH_JSON:-bench/results.json}"
