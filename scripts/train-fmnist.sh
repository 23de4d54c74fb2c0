#!/usr/bin/env bash
# Reproduces models/fmnist_lenet/fmnist_lenet.caffemodel: Caffe's LeNet
# recipe (models/fmnist_lenet/solver.prototxt: SGD, momentum 0.9, weight
# decay 5e-4, lr policy inv, 10,000 iterations of 64 images, seed 1) on
# Fashion-MNIST from Debian's dataset-fashion-mnist, on one thread so that
# the run is deterministic.  About 10-20 minutes on one core.
# Usage: scripts/train-fmnist.sh [BUILD_DIR]    (or: make train-fmnist)
set -euo pipefail
build=${1:-build}
model=models/fmnist_lenet
"$build/netsurg" train "$model/solver.prototxt" --threads 1
cp "$model/lenet_iter_10000.caffemodel" "$model/fmnist_lenet.caffemodel"
rm -f "$model"/lenet_iter_*.caffemodel "$model"/lenet_iter_*.solverstate
echo "wrote $model/fmnist_lenet.caffemodel"
