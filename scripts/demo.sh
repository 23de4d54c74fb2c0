#!/usr/bin/env bash
# The main job on a default that needs no download: a CaffeNet-shaped
# classifier written by this script, random weights from a seed, then
# `netsurg info` on it and on its legacy V1 twin.
set -euo pipefail
build=${1:-build}
ns="$build/netsurg"
out=demo-out
mkdir -p "$out"
scripts/make-caffenet.sh > "$out/caffenet_deploy.prototxt"
echo "== netsurg info on a CaffeNet deploy net (built in, no download) =="
"$ns" info "$out/caffenet_deploy.prototxt"
echo
echo "== random weights from a seed, then loaded back by layer name =="
"$ns" init "$out/caffenet_deploy.prototxt" --seed 7 --filler msra --out "$out/caffenet_random.caffemodel"
"$ns" info "$out/caffenet_deploy.prototxt" "$out/caffenet_random.caffemodel" | grep ' weights are '
