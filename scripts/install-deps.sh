#!/usr/bin/env bash
# Installs the Debian 12 packages netsurg needs to build and test.
# As root it installs what is missing; otherwise it prints the apt-get line.
# Usage: scripts/install-deps.sh [build|test|torch|fuzz|bench|all]   (default: test)
# torch: the test set plus PyTorch, the oracle of the training tests and of
# scripts/bench-train.sh (those tests skip without it; CI's `all` has it).
# bench: the peer engines of `make bench-peers` (OpenCV dnn, PyTorch, ONNX,
# Node.js + npm for the onnxruntime-node package).
# graphviz: `dot`, which `netsurg draw` runs to lay out its SVG and HTML
# diagrams (a run-time need: nothing links it; .dot output needs nothing);
# chromium: test_draw opens the HTML diagram in it (headless).
# The test set also gets the de_DE.UTF-8 locale (generated from the locales
# package, about a second): test_textformat's locale test needs a locale
# whose decimal point is a comma, and scripts/run-tests.sh fails a skip in CI.
set -euo pipefail

build_pkgs=(gcc make pkg-config protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev
            libopenblas-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev liblmdb-dev libleveldb-dev
            libhdf5-dev)
test_pkgs=(libcmocka-dev python3 python3-numpy python3-opencv python3-protobuf protobuf-compiler
           python3-onnx locales dataset-fashion-mnist python3-setuptools python3-pip python3-lmdb
           python3-h5py graphviz chromium python3-skimage python3-matplotlib
           jupyter-nbconvert python3-ipykernel python3-distributed)
fuzz_pkgs=(clang libclang-rt-14-dev libomp-14-dev)
torch_pkgs=(python3-torch)
bench_pkgs=(python3-opencv python3-torch python3-onnx time)

want=("${build_pkgs[@]}")
case "${1:-test}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  torch) want+=("${test_pkgs[@]}" "${torch_pkgs[@]}") ;;
  fuzz) want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all) want+=("${test_pkgs[@]}" "${torch_pkgs[@]}" "${fuzz_pkgs[@]}") ;;  # CI: the oracles run; bench is apart
  *) echo "usage: $0 [build|test|torch|fuzz|bench|all]" >&2; exit 1 ;;
esac
# Node.js may come from elsewhere than Debian (with its own npm): only ask
# Debian for what is missing, so the two never conflict.
# CI's `all` takes them too: test_onnx_export runs the exported models in
# ONNX Runtime (npm onnxruntime-node; `make deps-ort` installs it).
case "${1:-test}" in
  bench|all)
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm) ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# The comma-decimal locale of test_textformat's locale test, when wanted.
comma_locale() {
  [ "${1:-test}" != build ] || return 0
  locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8' && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "install-deps: generating the de_DE.UTF-8 locale" >&2
    localedef -i de_DE -f UTF-8 de_DE.UTF-8
  else
    echo "install-deps: no de_DE.UTF-8 locale (a test skips); run as root:" >&2
    echo "  localedef -i de_DE -f UTF-8 de_DE.UTF-8" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  comma_locale "${1:-test}"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  comma_locale "${1:-test}"
else
  echo "install-deps: missing packages; run as root:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
