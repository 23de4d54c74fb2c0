#!/usr/bin/env bash
# The seed's workflow end to end (net surgery: a classifier cast into a
# fully convolutional net, then a dense classification map), twice:
#  A. on a real trained model: the LeNet in models/fmnist_lenet, trained on
#     Fashion-MNIST by `netsurg train` (scripts/train-fmnist.sh reproduces
#     it), cast and run on an image tiled with 4x4 test items;
#  B. on a default that needs no download: a CaffeNet-shaped net written by
#     scripts/make-caffenet.sh with random weights from a seed, and
#     ../shared/data/cat.jpg when present, else an image the repo draws.
# Usage: scripts/demo.sh [BUILD_DIR]   (outputs go to demo-out/)
set -euo pipefail
build=${1:-build}
ns="$build/netsurg"
out=demo-out
shared=${NS_SHARED:-../shared}
mkdir -p "$out"
start=$SECONDS

say() { printf '\n== %s ==\n' "$*"; }

model=models/fmnist_lenet
fm=${NS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -f "$fm/t10k-images-idx3-ubyte.gz" ] && [ -f "$model/fmnist_lenet.caffemodel" ]; then
  say "A1. the Fashion-MNIST LeNet trained by netsurg train ($model), its test accuracy"
  echo "(trained by scripts/train-fmnist.sh: $ns train $model/solver.prototxt --threads 1)"
  "$ns" test "$model/train_val.prototxt" "$model/fmnist_lenet.caffemodel" --iterations 100

  say "A2. 16 test items tiled 4x4 into one 112x112 image (examples/fmnist_tiles.c)"
  "$build/examples/fmnist_tiles" make "$fm/t10k-images-idx3-ubyte.gz" \
    "$fm/t10k-labels-idx1-ubyte.gz" "$model/labels.txt" "$out/fmnist_tiles.png" \
    "$out/fmnist_truth.txt" 4 0

  say "A3. the cast: ip1/ip2 -> convolutions, input 112x112"
  "$ns" fcn "$model/deploy.prototxt" "$model/fmnist_lenet.caffemodel" --size 112x112 \
    --out "$out/fmnist_fcn"

  say "A4. classify the tiled image: a 22x22 map (28x28 windows every 4 px), heatmap PNG"
  "$ns" classify "$out/fmnist_fcn.prototxt" "$out/fmnist_fcn.caffemodel" "$out/fmnist_tiles.png" \
    --raw-scale 1 --labels "$model/labels.txt" --top 3 --heatmap "$out/fmnist_heatmap.png" \
    --save-input "$out/fmnist_input.npy" 2>/dev/null | sed -n '/^argmax/,/^confidence/p' | sed '$d'
  echo "heatmap: $out/fmnist_heatmap.png"
  "$ns" forward "$out/fmnist_fcn.prototxt" "$out/fmnist_fcn.caffemodel" \
    --input data="$out/fmnist_input.npy" --output prob="$out/fmnist_prob.npy" 2>/dev/null
  "$build/examples/fmnist_tiles" check "$out/fmnist_prob.npy" "$out/fmnist_truth.txt" \
    "$model/labels.txt" || true

  say "B. CaffeNet with random weights: the notebook's shapes and plumbing"
else
  echo "(skipping the Fashion-MNIST part: no $fm/t10k-images-idx3-ubyte.gz or"
  echo " $model/fmnist_lenet.caffemodel; scripts/install-deps.sh installs dataset-fashion-mnist)"
fi

say "1. a CaffeNet-shaped classifier, random weights (seed 7), its fc params"
scripts/make-caffenet.sh 1 227 > "$out/caffenet_deploy.prototxt"
"$ns" init "$out/caffenet_deploy.prototxt" --seed 7 --filler msra \
  --out "$out/caffenet_random.caffemodel"
"$ns" info "$out/caffenet_deploy.prototxt" "$out/caffenet_random.caffemodel" | grep '^fc[0-9]* weights are '

say "2-4. the automatic cast: fc6/fc7/fc8 -> convolutions, input 451x451, weights transplanted"
# and its diagram (netsurg draw's, the cast layers marked), when Graphviz is here
draw=()
if command -v dot >/dev/null 2>&1; then
  draw=(--draw "$out/caffenet_full_conv.html")
else
  echo "(no Graphviz dot: no diagram; scripts/install-deps.sh installs graphviz)"
fi
"$ns" fcn "$out/caffenet_deploy.prototxt" "$out/caffenet_random.caffemodel" --size 451x451 \
  --out "$out/caffenet_full_conv" "${draw[@]}"
"$ns" info "$out/caffenet_full_conv.prototxt" "$out/caffenet_full_conv.caffemodel" |
  grep -- '-conv weights are '

say "   the same transplant by hand with the C API (examples/net_surgery.c)"
"$build/examples/net_surgery" "$out/caffenet_deploy.prototxt" "$out/caffenet_random.caffemodel" \
  "$out/caffenet_full_conv.prototxt" "$out/by_hand.caffemodel" | tail -1
if cmp -s "$out/by_hand.caffemodel" "$out/caffenet_full_conv.caffemodel"; then
  echo "   by_hand.caffemodel and caffenet_full_conv.caffemodel are byte for byte the same"
else
  echo "   note: by_hand.caffemodel differs from caffenet_full_conv.caffemodel"
fi

if [ -f "$shared/data/cat.jpg" ]; then
  image="$shared/data/cat.jpg"
else
  image="$out/scene.png"
  "$build/examples/synth_image" "$image"
  echo "(no $shared/data/cat.jpg here: classifying $image, drawn by examples/synth_image.c)"
fi

say "5-6. classify $image: the 8x8 argmax map, a heatmap PNG"
"$ns" classify "$out/caffenet_full_conv.prototxt" "$out/caffenet_full_conv.caffemodel" "$image" \
  --mean 104,117,123 --top 3 --heatmap "$out/heatmap.png" --save-input "$out/input.npy"
[ -f "$out/caffenet_full_conv.html" ] &&
  echo "heatmap $out/heatmap.png, the net that made it: $out/caffenet_full_conv.html"

say "7. dense features: the fc6-conv blob over the whole image (one pass, shared work)"
"$ns" forward "$out/caffenet_full_conv.prototxt" "$out/caffenet_full_conv.caffemodel" \
  --input data="$out/input.npy" --output fc6-conv="$out/fc6-conv.npy"

say "8. leaving Caffe: the cast net as ONNX, run by ONNX Runtime on the same input (--verify)"
# ONNX Runtime comes from npm (make deps-ort); fetched here when npm is
# present, so that the workflow ends in ONNX on a fresh machine too.
ort=${NETSURG_ORT_NODE_PATH:-bench/peers/node_modules}
if [ ! -f "$ort/onnxruntime-node/package.json" ] && command -v npm >/dev/null 2>&1; then
  echo "(ONNX Runtime absent: make deps-ort, npm install of onnxruntime-node into bench/peers)"
  make --no-print-directory deps-ort >/dev/null 2>&1 ||
    echo "   make deps-ort failed (offline?): the ONNX Runtime check below is skipped"
fi
"$ns" export "$out/caffenet_full_conv.prototxt" "$out/caffenet_full_conv.caffemodel" \
  --onnx "$out/caffenet_full_conv.onnx" --verify-input data="$out/input.npy" ||
  echo "   note: ONNX Runtime's output differs from netsurg's beyond 1e-4 (above)"
if [ ! -f "$ort/onnxruntime-node/package.json" ]; then
  echo "   (to see ONNX Runtime's 8x8 map beside netsurg's: make deps-ort, which needs node and"
  echo "    npm, then make demo again; NETSURG_ORT_NODE_PATH names another node_modules folder)"
fi

say "the notebook's first half: designer filters on a grey image"
grey="$image"
[ -f "$shared/data/cat_gray.jpg" ] && grey="$shared/data/cat_gray.jpg"
# the notebook's one-layer net (three 5x5 filters over a grey image), written
# here so that a clone without ../shared runs it too; the filler's random
# weights are what the example edits, and it reshapes the input to the image
cat >"$out/designer.prototxt" <<'EOF'
name: "designer_filters"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer {
  name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 5
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 } }
}
EOF
"$build/examples/designer_filters" "$out/designer.prototxt" "$grey" "$out/designer"

face="$shared/data/prototxt/wild/face__res10_300x300_ssd_deploy.prototxt"
if [ -f "$face" ]; then
  say "SSD: netsurg detect with OpenCV's face detector (res10_300x300_ssd), RANDOM weights"
  "$ns" init "$face" --seed 7 --out "$out/face_random.caffemodel" 2>/dev/null
  # init leaves each BatchNorm's statistics zero, which divides by
  # sqrt(eps) ten times over: give them unit variances, copying the ones
  # of the Scale layer that follows each (its gammas, filled with 1)
  edits=() bn=""
  while read -r kind name; do
    if [ "$kind" = BatchNorm ]; then
      bn=$name
    elif [ -n "$bn" ]; then
      edits+=(--dump "$name[0]=$out/ones.npy" --load "$bn[1]=$out/ones.npy" --set "$bn[2][0]=1")
      bn=""
    fi
  done < <(awk '/^layer/ { n = "" } /^  name:/ { gsub(/"/, "", $2); n = $2 }
                /type: "(BatchNorm|Scale)"/ { gsub(/"/, "", $2); print $2, n }' "$face")
  "$ns" edit "$face" "$out/face_random.caffemodel" "${edits[@]}" \
    --out "$out/face_random.caffemodel" 2>/dev/null | tail -1
  "$ns" detect "$face" "$out/face_random.caffemodel" "$image" --mean 104,177,123 \
    --input-scale 0.01 --threshold 0.999 --out "$out/boxes.png" 2>/dev/null
fi

cat <<EOF

== done in $((SECONDS - start)) s; outputs in $out/ ==
The weights above are RANDOM (netsurg init, seed 7): the class numbers mean
nothing, only the shapes and the plumbing are real. To run the seed's own
workflow with the trained model:

  # from Caffe's model zoo and repository:
  #   bvlc_reference_caffenet.caffemodel (233 MB), models/bvlc_reference_caffenet/deploy.prototxt,
  #   data/ilsvrc12/synset_words.txt, python/caffe/imagenet/ilsvrc_2012_mean.npy
  $ns fcn deploy.prototxt bvlc_reference_caffenet.caffemodel --size 451x451 --out full_conv
  $ns classify full_conv.prototxt full_conv.caffemodel cat.jpg \\
      --mean-file ilsvrc_2012_mean.npy --labels synset_words.txt --heatmap cat.png --class 281

(the seed's map is mostly 281 tabby, 282 tiger cat, 283 persian cat)
EOF
