#!/usr/bin/env bash
# The Fashion-MNIST LeNet cast to a 112x112 FCN (as make demo does), on
# GRIDS tiled images of 4x4 test items (items 0-15, 16-31, ...): for each,
# how many tiles the cell whose window is exactly that tile names right.
# Usage: scripts/fmnist-grids.sh [BUILD_DIR] [GRIDS]   (default build, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
grids=${2:-8}
ns=$build/netsurg
model=models/fmnist_lenet
fm=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ns" fcn "$model/deploy.prototxt" "$model/fmnist_lenet.caffemodel" --size 112x112 \
  --out "$tmp/fcn" >/dev/null
total=0
for ((g = 0; g < grids; g++)); do
  "$build/examples/fmnist_tiles" make "$fm/t10k-images-idx3-ubyte.gz" \
    "$fm/t10k-labels-idx1-ubyte.gz" "$model/labels.txt" "$tmp/t.png" "$tmp/truth.txt" 4 \
    $((16 * g)) >/dev/null
  "$ns" classify "$tmp/fcn.prototxt" "$tmp/fcn.caffemodel" "$tmp/t.png" --raw-scale 1 \
    --save-input "$tmp/in.npy" >/dev/null 2>&1
  "$ns" forward "$tmp/fcn.prototxt" "$tmp/fcn.caffemodel" --input data="$tmp/in.npy" \
    --output prob="$tmp/p.npy" >/dev/null 2>&1
  right=$("$build/examples/fmnist_tiles" check "$tmp/p.npy" "$tmp/truth.txt" "$model/labels.txt" |
    sed -n 's/^\([0-9]*\) of 16.*/\1/p')
  echo "items $((16 * g))-$((16 * g + 15)): $right of 16"
  total=$((total + right))
done
echo "total: $total of $((16 * grids))"
