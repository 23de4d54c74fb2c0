#!/usr/bin/env bash
# Training speed, netsurg vs PyTorch (Debian's python3-torch), in one run:
# the Fashion-MNIST LeNet (models/fmnist_lenet), batch 64, whole iterations
# (forward + backward + SGD update), median of ITERS, on THREADS threads.
# Usage: scripts/bench-train.sh [BUILD_DIR] [THREADS] [ITERS]
set -euo pipefail
build=${1:-build}
threads=${2:-1}
iters=${3:-50}
ours=$("$build/netsurg" bench --train models/fmnist_lenet/solver.prototxt --iters "$iters" \
  --threads "$threads" --json)
echo "netsurg: $ours"
theirs=$(/usr/bin/python3 scripts/bench-train-torch.py 64 "$threads" "$iters")
echo "$theirs"
a=$(echo "$ours" | sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p')
b=$(echo "$theirs" | sed -n 's/.*, \([0-9.]*\) images\/s/\1/p')
echo "netsurg / pytorch images/s: $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
