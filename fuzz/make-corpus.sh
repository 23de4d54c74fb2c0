#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets: small valid inputs of every
# kind each reader accepts, made here (prototxts below, caffemodels written
# by our own codec through `netsurg init` / `netsurg upgrade`, legacy V0/V1
# caffemodels, .npy, .binaryproto and images encoded by the Python at the
# end), plus Caffe's conformance cases when ../shared has them (NS_SHARED;
# they are not in the repo).
# Usage: fuzz/make-corpus.sh NETSURG_BINARY OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
cli=$1
out=$2
rm -rf "$out"
mkdir -p "$out"/{fuzz_text,fuzz_caffemodel,fuzz_weights,fuzz_net,fuzz_npy,fuzz_mean,fuzz_image,fuzz_conv,fuzz_datum}
conf=${NS_SHARED:-../shared}/conformance
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- convolution shapes (fuzz_conv) ---------------------------------------
# Bytes: items-1, groups-1, channels/group-1, outputs/group-1, kernel-1,
# stride-1, pad, height-1, width-1, threads-1, relu, then the value seed.
conv_seed() { printf "$2" >"$out/fuzz_conv/$1"; }
conv_seed conv1_11s4 '\x00\x00\x02\x0b\x0a\x03\x00\x1a\x1b\x01\x01seed'
conv_seed conv3x3_p1 '\x01\x00\x0b\x0b\x02\x00\x01\x0d\x0c\x01\x00seed'
conv_seed conv5x5_g2 '\x00\x01\x07\x0a\x04\x00\x02\x0e\x0f\x02\x01seed'
conv_seed conv7s2 '\x02\x00\x05\x05\x06\x01\x03\x15\x14\x00\x00seed'
conv_seed conv1x1 '\x00\x00\x03\x03\x00\x00\x00\x05\x05\x00\x00seed'

# ---- prototxts -----------------------------------------------------------

cat >"$tmp/small_cnn.prototxt" <<'EOF'
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 9 dim: 9 } } }
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 1
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0.1 } }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
  lrn_param { local_size: 3 alpha: 1e-4 beta: 0.75 } }
layer { name: "fc1" type: "InnerProduct" bottom: "norm1" top: "fc1"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "drop1" type: "Dropout" bottom: "fc1" top: "fc1" dropout_param { dropout_ratio: 0.5 } }
layer { name: "prob" type: "Softmax" bottom: "fc1" top: "prob" }
EOF

cat >"$tmp/branches.prototxt" <<'EOF'
# Two consumers of one blob (implicit Split), Concat, Eltwise, Slice,
# BatchNorm + Scale, PReLU, Deconvolution, Crop, Reshape, ArgMax.
name: "branches"
input: "data"
input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 2 dilation: 1
    weight_filler { type: "msra" } } }
layer { name: "b" type: "Convolution" bottom: "data" top: "b"
  convolution_param { num_output: 4 kernel_h: 1 kernel_w: 3 pad_w: 1 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "a" top: "a" batch_norm_param { eps: 1e-5 } }
layer { name: "sc" type: "Scale" bottom: "a" top: "a" scale_param { bias_term: true } }
layer { name: "pr" type: "PReLU" bottom: "b" top: "b" }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "cat" concat_param { axis: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum"
  eltwise_param { operation: SUM coeff: 1 coeff: -0.5 } }
layer { name: "sl" type: "Slice" bottom: "cat" top: "s0" top: "s1"
  slice_param { axis: 1 slice_point: 3 } }
layer { name: "up" type: "Deconvolution" bottom: "sum" top: "up"
  convolution_param { num_output: 2 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop"
  crop_param { axis: 2 offset: 1 } }
layer { name: "sig" type: "Sigmoid" bottom: "s0" top: "sig" }
layer { name: "th" type: "TanH" bottom: "s1" top: "th" }
layer { name: "pw" type: "Power" bottom: "th" top: "pw" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "flat" type: "Flatten" bottom: "sig" top: "flat" }
layer { name: "rs" type: "Reshape" bottom: "pw" top: "rs" reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "am" type: "ArgMax" bottom: "crop" top: "am" argmax_param { top_k: 2 axis: 1 } }
layer { name: "ave" type: "Pooling" bottom: "crop" top: "ave"
  pooling_param { pool: AVE global_pooling: true } }
EOF

cat >"$tmp/losses.prototxt" <<'EOF'
# Loss layers, Accuracy and force_backward: forward and backward run.
name: "losses"
force_backward: true
layer { name: "in" type: "Input" top: "data" top: "label" top: "target"
  input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } shape { dim: 2 dim: 4 dim: 4 }
                shape { dim: 2 dim: 4 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  param { lr_mult: 1 } param { lr_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label" top: "loss"
  loss_param { ignore_label: 0 normalization: FULL } }
layer { name: "acc" type: "Accuracy" bottom: "conv" bottom: "label" top: "acc" top: "per_class"
  accuracy_param { top_k: 2 } }
layer { name: "l2" type: "EuclideanLoss" bottom: "conv" bottom: "target" top: "l2"
  loss_weight: 0.5 }
layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "conv" bottom: "target" top: "sce"
  propagate_down: true propagate_down: false loss_param { normalize: true } }
EOF

cat >"$tmp/v1.prototxt" <<'EOF'
name: "legacy_v1"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 8
input_dim: 8
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 3 kernel_size: 3 stride: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 2 stride: 1 } }
layers { name: "ip" type: INNER_PRODUCT bottom: "pool1" top: "ip"
  inner_product_param { num_output: 4 } }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }
EOF

cat >"$tmp/v0.prototxt" <<'EOF'
name: "legacy_v0"
input: "data"
input_dim: 1 input_dim: 2 input_dim: 7 input_dim: 7
layers { layer { name: "conv1" type: "conv" num_output: 3 kernelsize: 3 stride: 1 pad: 1
    weight_filler { type: "gaussian" std: 0.1 } biasterm: true } bottom: "data" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 } bottom: "pool1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 2 } bottom: "norm1" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
EOF

cat >"$tmp/train_val.prototxt" <<'EOF'
name: "train_val"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mirror: true crop_size: 5 mean_value: 104 mean_value: 117 mean_value: 123 }
  data_param { source: "train_lmdb" batch_size: 4 backend: LMDB } }
layer { name: "data" type: "Input" top: "data" include { phase: TEST }
  input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 3 axis: 1 transpose: true } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
  include { phase: TRAIN } }
layer { name: "elu" type: "ELU" bottom: "ip" top: "elu" exclude { phase: TRAIN } }
layer { name: "abs" type: "AbsVal" bottom: "elu" top: "abs" }
layer { name: "bnll" type: "BNLL" bottom: "abs" top: "bnll" }
layer { name: "exp" type: "Exp" bottom: "bnll" top: "exp" exp_param { base: 2 scale: 0.5 } }
layer { name: "log" type: "Log" bottom: "exp" top: "log" }
layer { name: "si" type: "Silence" bottom: "log" }
EOF

cat >"$tmp/solver.prototxt" <<'EOF'
net: "train_val.prototxt"
test_iter: 10
test_interval: 500
base_lr: 0.01   # comment
lr_policy: "step"
gamma: 0.1
stepsize: 100000
display: 20
max_iter: 450000
momentum: 0.9
weight_decay: 0.0005
snapshot_prefix: "models/x"
solver_mode: CPU
solver_type: NESTEROV
EOF

# The SSD fork's head: Normalize, Permute, Flatten, PriorBox, DetectionOutput.
cat >"$tmp/ssd_head.prototxt" <<'EOF'
name: "ssd_head"
input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "norm" type: "Normalize" bottom: "data" top: "norm"
  norm_param { across_spatial: false channel_shared: false eps: 1e-6
    scale_filler { type: "constant" value: 20 } } }
layer { name: "pool" type: "Pooling" bottom: "norm" top: "feat"
  pooling_param { pool: MAX kernel_size: 4 stride: 4 } }
layer { name: "pb" type: "PriorBox" bottom: "feat" bottom: "data" top: "pb"
  prior_box_param { min_size: 3 max_size: 6 aspect_ratio: 2 flip: true clip: true
    variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 4 offset: 0.5 } }
layer { name: "loc" type: "Convolution" bottom: "feat" top: "loc"
  convolution_param { num_output: 16 kernel_size: 1 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loc_p" type: "Permute" bottom: "loc" top: "loc_p"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_f" type: "Flatten" bottom: "loc_p" top: "loc_f" }
layer { name: "conf" type: "Convolution" bottom: "feat" top: "conf"
  convolution_param { num_output: 12 kernel_size: 1 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "conf_p" type: "Permute" bottom: "conf" top: "conf_p"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_f" type: "Flatten" bottom: "conf_p" top: "conf_f" }
layer { name: "det" type: "DetectionOutput" bottom: "loc_f" bottom: "conf_f" bottom: "pb"
  top: "det"
  detection_output_param { num_classes: 3 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CENTER_SIZE keep_top_k: 5
    confidence_threshold: 0.01 } }
EOF

cat >"$tmp/forks.prototxt" <<'EOF'
# The forks' layers: BN (PSPNet), Interp (PSPNet, DeepLab), Upsample (YOLO's
# nearest form and SegNet's with the max-pooling mask), ShuffleChannel,
# Axpy (SENet), Normalize across space, Permute of a 3-axis order, ReLU6,
# ConvolutionDepthwise, Pooling with ceil_mode false; backward runs too.
name: "forks"
force_backward: true
input: "data" input_shape { dim: 1 dim: 4 dim: 7 dim: 6 }
layer { name: "bn" type: "BN" bottom: "data" top: "bn"
  bn_param { slope_filler { type: "constant" value: 1.5 } bias_filler { type: "constant" value: -0.2 }
    eps: 1e-5 frozen: true } }
layer { name: "interp" type: "Interp" bottom: "bn" top: "interp"
  interp_param { zoom_factor: 2 pad_beg: 0 pad_end: -1 } }
layer { name: "shrink" type: "Interp" bottom: "interp" top: "shrink"
  interp_param { shrink_factor: 3 } }
layer { name: "fixed" type: "Interp" bottom: "data" top: "fixed"
  interp_param { height: 5 width: 9 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" top: "mask"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: false } }
layer { name: "unpool" type: "Upsample" bottom: "pool" bottom: "mask" top: "unpool"
  upsample_param { scale: 2 upsample_h: 7 upsample_w: 6 } }
layer { name: "up" type: "Upsample" bottom: "pool" top: "up" upsample_param { scale: 3 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "bn" top: "shuffle"
  shuffle_channel_param { group: 2 } }
layer { name: "gap" type: "Pooling" bottom: "shuffle" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "gate" type: "Sigmoid" bottom: "gap" top: "gate" }
layer { name: "axpy" type: "Axpy" bottom: "gate" bottom: "shuffle" bottom: "data" top: "axpy" }
layer { name: "dw" type: "ConvolutionDepthwise" bottom: "axpy" top: "dw"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "relu6" type: "ReLU6" bottom: "dw" top: "dw" }
layer { name: "norm" type: "Normalize" bottom: "dw" top: "norm"
  norm_param { across_spatial: true channel_shared: true eps: 1e-10
    scale_filler { type: "constant" value: 2 } } }
layer { name: "perm" type: "Permute" bottom: "norm" top: "perm"
  permute_param { order: 0 order: 3 order: 1 } }
EOF

cat >"$tmp/ssd_variants.prototxt" <<'EOF'
# DetectionOutput without shared locations, CORNER / CORNER_SIZE codes,
# variances in the target; PriorBox with two sizes, img_h/w, step_h/w,
# OpenCV's width/height lists; two images.
name: "ssd_variants"
input: "data" input_shape { dim: 2 dim: 2 dim: 12 dim: 10 }
layer { name: "feat" type: "Pooling" bottom: "data" top: "feat"
  pooling_param { pool: AVE kernel_size: 4 stride: 4 ceil_mode: false } }
layer { name: "pb" type: "PriorBox" bottom: "feat" bottom: "data" top: "pb"
  prior_box_param { min_size: 2 min_size: 5 max_size: 4 max_size: 9 aspect_ratio: 3
    flip: false img_h: 12 img_w: 10 step_h: 4 step_w: 3.5 offset: 0.25 variance: 0.1 } }
layer { name: "pbw" type: "PriorBox" bottom: "feat" bottom: "data" top: "pbw"
  prior_box_param { width: 2 width: 4 height: 3 height: 1 clip: true variance: 0.1
    variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "loc" type: "Convolution" bottom: "feat" top: "loc"
  convolution_param { num_output: 72 kernel_size: 1 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "loc_p" type: "Permute" bottom: "loc" top: "loc_p"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_f" type: "Flatten" bottom: "loc_p" top: "loc_f" }
layer { name: "conf" type: "Convolution" bottom: "feat" top: "conf"
  convolution_param { num_output: 18 kernel_size: 1 weight_filler { type: "gaussian" std: 2 } } }
layer { name: "conf_p" type: "Permute" bottom: "conf" top: "conf_p"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_f" type: "Flatten" bottom: "conf_p" top: "conf_f" }
layer { name: "conf_s" type: "Softmax" bottom: "conf_f" top: "conf_s" }
layer { name: "det" type: "DetectionOutput" bottom: "loc_f" bottom: "conf_s" bottom: "pb"
  top: "det"
  detection_output_param { num_classes: 3 share_location: false background_label_id: -1
    nms_param { nms_threshold: 0.3 } code_type: CORNER_SIZE variance_encoded_in_target: true
    confidence_threshold: 0.2 } }
layer { name: "det2" type: "DetectionOutput" bottom: "loc_f" bottom: "conf_s" bottom: "pb"
  top: "det2"
  detection_output_param { num_classes: 3 share_location: false background_label_id: 2
    nms_param { nms_threshold: 0.6 top_k: 3 } code_type: CORNER keep_top_k: 4 } }
EOF

# Faster R-CNN's layers: Proposal (native and as py-faster-rcnn's Python
# layer) feeding ROIPooling and PSROIPooling; im_info (48, 48, 1) made by
# Power and Concat.
cat >"$tmp/rcnn.prototxt" <<'EOF'
layer { name: "in" type: "Input" top: "data" top: "cls" top: "bbox" top: "z2" top: "z1"
  input_param { shape { dim: 1 dim: 4 dim: 3 dim: 3 } shape { dim: 1 dim: 6 dim: 3 dim: 3 }
                shape { dim: 1 dim: 12 dim: 3 dim: 3 } shape { dim: 1 dim: 2 }
                shape { dim: 1 dim: 1 } } }
layer { name: "hw" type: "Power" bottom: "z2" top: "hw" power_param { shift: 48 } }
layer { name: "sc" type: "Power" bottom: "z1" top: "sc" power_param { shift: 1 } }
layer { name: "info" type: "Concat" bottom: "hw" bottom: "sc" top: "im_info" }
layer { name: "proposal" type: "Proposal" bottom: "cls" bottom: "bbox" bottom: "im_info"
  top: "rois" top: "scores"
  proposal_param { feat_stride: 16 ratio: 1 scale: 1 scale: 2 scale: 4 min_size: 4
                   pre_nms_topn: 20 post_nms_topn: 8 nms_thresh: 0.5 } }
layer { name: "py" type: "Python" bottom: "cls" bottom: "bbox" bottom: "im_info" top: "rois2"
  python_param { module: "rpn.proposal_layer" layer: "ProposalLayer"
                 param_str: "'feat_stride': 16\n'scales': !!python/tuple [1]" } }
layer { name: "roi" type: "ROIPooling" bottom: "data" bottom: "rois" top: "pool"
  roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0.0625 } }
layer { name: "psroi" type: "PSROIPooling" bottom: "data" bottom: "rois2" top: "ps"
  psroi_pooling_param { spatial_scale: 0.0625 output_dim: 1 group_size: 2 } }
EOF

# Spellings the text format allows: `<>` blocks, lists, escapes, numbers.
cat >"$tmp/spellings.prototxt" <<'EOF'
name: 'it\'s \x41\101\n' # comment
input: "data" input_shape < dim: [1, 0x2, 5, 05] >
layer: { name: "p" type: "Power" bottom: "data" top: "p";
  power_param { power: 1.5e0 scale: -.25 shift: inf } }
layer { name: "r" type: "ReLU" bottom: "p" top: "p" relu_param { negative_slope: -0.0f } }
state { phase: TEST level: -3 stage: "deploy" }
EOF

for f in "$tmp"/*.prototxt; do
  cp "$f" "$out/fuzz_text/"
  cp "$f" "$out/fuzz_net/"
done
for d in "$conf"/*/; do
  [ -f "$d/net.prototxt" ] || continue
  n=$(basename "$d")
  cp "$d/net.prototxt" "$out/fuzz_text/conf_$n.prototxt"
  cp "$d/net.prototxt" "$out/fuzz_net/conf_$n.prototxt"
done

# ---- caffemodels: Caffe's (conformance) and ours ---------------------------

put_model() { # file name
  cp "$1" "$out/fuzz_caffemodel/$2"
  cp "$1" "$out/fuzz_weights/$2"
  cp "$1" "$out/fuzz_net/$2"
}
for d in "$conf"/*/; do
  n=$(basename "$d")
  [ -f "$d/weights.caffemodel" ] && put_model "$d/weights.caffemodel" "conf_$n.caffemodel"
done
for n in small_cnn branches v1 v0 forks ssd_head; do
  if "$cli" init "$tmp/$n.prototxt" --seed 1 --out "$tmp/$n.caffemodel" >/dev/null; then
    put_model "$tmp/$n.caffemodel" "init_$n.caffemodel"
  else
    echo "make-corpus: netsurg init $n.prototxt failed (skipped)" >&2
  fi
done
if [ -f "$conf/mini_caffenet_v1/weights.caffemodel" ] &&
   "$cli" upgrade "$conf/mini_caffenet_v1/weights.caffemodel" "$tmp/upgraded.caffemodel" >/dev/null; then
  put_model "$tmp/upgraded.caffemodel" "upgraded_v1.caffemodel"
fi

# ---- .npy inputs ------------------------------------------------------------

for f in "$conf"/*/in_*.npy; do
  [ -f "$f" ] || continue  # no ../shared: the pattern itself
  [ "$(stat -c %s "$f")" -le 16384 ] || continue
  cp "$f" "$out/fuzz_npy/conf_$(basename "$(dirname "$f")")_$(basename "$f")"
done

# ---- Python-made seeds: .npy variants, .binaryproto, images, legacy models ---

/usr/bin/python3 - "$out" <<'EOF'
import os, struct, sys
out = sys.argv[1]

def put(sub, name, data):
    with open(os.path.join(out, sub, name), "wb") as f:
        f.write(data)

# Protobuf wire encoding, enough for BlobProto and legacy layers.
def varint(v):
    v &= (1 << 64) - 1
    b = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        b.append(c | (0x80 if v else 0))
        if not v:
            return bytes(b)
def key(field, wt): return varint(field << 3 | wt)
def vi(field, v): return key(field, 0) + varint(v)
def ld(field, payload): return key(field, 2) + varint(len(payload)) + payload
def s(field, text): return ld(field, text.encode())
def floats(field, xs): return ld(field, struct.pack("<%df" % len(xs), *xs))
def doubles(field, xs): return ld(field, struct.pack("<%dd" % len(xs), *xs))

def blob_legacy(n, c, h, w, values):
    return vi(1, n) + vi(2, c) + vi(3, h) + vi(4, w) + floats(5, values)
def blob_shape(dims, values, dbl=False):
    shape = ld(1, b"".join(varint(d) for d in dims))  # packed BlobShape.dim
    return ld(7, shape) + (doubles(8, values) if dbl else floats(5, values))

# Datum records (fuzz_datum: a first byte picks the decoding): raw bytes,
# float_data; encoded images below with the images.
put("fuzz_datum", "raw_2x2x3", b"\0" + vi(1, 2) + vi(2, 2) + vi(3, 3) + ld(4, bytes(range(12))) + vi(5, 7))
put("fuzz_datum", "float_1x2x2", b"\1" + vi(1, 1) + vi(2, 2) + vi(3, 2) + vi(5, 1) +
    b"".join(key(6, 5) + struct.pack("<f", v) for v in (0.5, -1.0, 2.0, 3.25)))

# Mean files.
put("fuzz_mean", "legacy_1x3x2x2.binaryproto", blob_legacy(1, 3, 2, 2, [i * 0.5 for i in range(12)]))
put("fuzz_mean", "shape_1x3x2x3.binaryproto", blob_shape([1, 3, 2, 3], [float(i) for i in range(18)]))
put("fuzz_mean", "shape_3x1x1.binaryproto", blob_shape([3, 1, 1], [104.0, 117.0, 123.0]))
put("fuzz_mean", "double_1x1x2x2.binaryproto", blob_shape([1, 1, 2, 2], [1.0, 2.0, 3.0, 4.0], True))
put("fuzz_mean", "unpacked.binaryproto",
    vi(1, 1) + vi(2, 1) + vi(3, 1) + vi(4, 2) + key(5, 5) + struct.pack("<f", 1.5) +
    key(5, 5) + struct.pack("<f", -2.0))

# A V0 caffemodel: layers { layer { name type num_output kernelsize blobs } }.
def v0_layer(name, type_, extra, blobs):
    return ld(1, s(1, name) + s(2, type_) + extra + b"".join(ld(50, b) for b in blobs))
conv = v0_layer("conv1", "conv", vi(3, 2) + vi(8, 3),
                [blob_legacy(2, 1, 3, 3, [0.1 * i for i in range(18)]), blob_legacy(1, 1, 1, 2, [0.5, -0.5])])
relu = v0_layer("relu1", "relu", b"", [])
v0 = (s(1, "v0net") + s(3, "data") + b"".join(vi(4, d) for d in (1, 1, 5, 5)) +
      ld(2, conv + s(2, "data") + s(3, "conv1")) + ld(2, relu + s(2, "conv1") + s(3, "conv1")))
# A V1 caffemodel: layers { name: 4 type: 5 (enum) bottom: 2 top: 3 blobs: 6 }.
ip = (s(4, "ip") + vi(5, 14) + s(2, "data") + s(3, "ip") +
      ld(6, blob_legacy(1, 1, 2, 25, [0.01 * i for i in range(50)])) + ld(6, blob_legacy(1, 1, 1, 2, [0, 1])) +
      ld(17, vi(1, 2)))  # inner_product_param { num_output: 2 }
v1 = s(1, "v1net") + s(3, "data") + b"".join(vi(4, d) for d in (1, 1, 5, 5)) + ld(2, ip)
for sub in ("fuzz_caffemodel", "fuzz_weights", "fuzz_net"):
    put(sub, "handmade_v0.caffemodel", v0)
    put(sub, "handmade_v1.caffemodel", v1)

# Binary net definitions with fork fields at clashing numbers (see
# src/format/binary_fields.h): PSPNet's interp_param at 143, SegNet's
# upsample_param at 137, PR #3057's ceil_mode at Pooling's 13, and
# fields our schema lacks (SSD's multibox_loss_param 201, a convolution's 9999).
def layer(name, type_, *fields):
    return ld(100, s(1, name) + s(2, type_) + b"".join(fields))
inp = layer("in", "Input", s(4, "data"), ld(143, ld(1, b"".join(vi(1, d) for d in (1, 2, 6, 6)))))
conv = layer("conv", "Convolution", s(3, "data"), s(4, "conv"),
             ld(106, vi(1, 2) + vi(4, 3) + vi(9999, 1)), ld(201, vi(1, 3)))
pool = layer("pool", "Pooling", s(3, "conv"), s(4, "pool"), ld(121, vi(2, 3) + vi(3, 2) + vi(13, 0)))
interp = layer("interp", "Interp", s(3, "conv"), s(4, "up"), ld(143, vi(3, 2)))
unpool = layer("up", "Upsample", s(3, "pool"), s(4, "unpool"), ld(137, vi(1, 2) + vi(4, 1)))
put("fuzz_net", "clash_ok.caffemodel", inp + conv + pool)
put("fuzz_net", "clash_interp.caffemodel", inp + conv + interp)
put("fuzz_net", "clash_upsample.caffemodel", inp + conv + pool + unpool)

try:
    import numpy as np
except ImportError:
    np = None
if np is not None:
    import io
    from numpy.lib import format as npf
    def npy(name, arr, version=None):
        buf = io.BytesIO()
        if version:
            npf.write_array(buf, arr, version=version)
        else:
            np.save(buf, arr)
        put("fuzz_npy", name, buf.getvalue())
    r = np.random.RandomState(1)
    npy("f4_3x4x5.npy", r.rand(3, 4, 5).astype("<f4"))
    npy("f8_2x3.npy", r.rand(2, 3))
    npy("f4_be_4.npy", r.rand(4).astype(">f4"))
    npy("f8_be_2x2.npy", r.rand(2, 2).astype(">f8"))
    npy("f4_scalar.npy", np.float32(2.5).reshape(()))
    npy("f4_empty_0x3.npy", np.zeros((0, 3), "<f4"))
    npy("f4_v2.npy", r.rand(2, 2).astype("<f4"), (2, 0))
    npy("f4_v3.npy", r.rand(3).astype("<f4"), (3, 0))
    npy("f4_fortran.npy", np.asfortranarray(r.rand(2, 3).astype("<f4")))
    npy("i4_wrong_dtype.npy", np.arange(6, dtype="<i4").reshape(2, 3))
    npy("f2_wrong_dtype.npy", np.ones(3, "<f2"))
    npy("mean_3x4x4.npy", (r.rand(3, 4, 4) * 255).astype("<f4"))
    for name in os.listdir(os.path.join(out, "fuzz_npy")):
        if name.startswith("mean_"):
            put("fuzz_mean", name, open(os.path.join(out, "fuzz_npy", name), "rb").read())

try:
    import cv2
except ImportError:
    cv2 = None
if cv2 is not None and np is not None:
    r = np.random.RandomState(2)
    rgb = (r.rand(9, 7, 3) * 255).astype(np.uint8)
    grey = (r.rand(6, 5) * 255).astype(np.uint8)
    def img(name, ext, arr, params=(), flags=0):
        ok, enc = cv2.imencode(ext, arr, list(params))
        if ok:
            put("fuzz_image", name, bytes([flags]) + enc.tobytes())
            # the same file as an encoded Datum (label 1, encoded true)
            put("fuzz_datum", name, bytes([flags % 3]) + ld(4, enc.tobytes()) + vi(5, 1) + vi(7, 1))
    img("rgb.png", ".png", rgb)
    img("rgb_grey.png", ".png", rgb, flags=1)
    img("rgba.png", ".png", np.dstack([rgb, rgb[:, :, :1]]))
    img("grey.png", ".png", grey)
    img("grey16.png", ".png", (grey.astype(np.uint16) * 257))
    img("rgb16.png", ".png", rgb.astype(np.uint16) * 200, flags=1)
    img("rgb.jpg", ".jpg", rgb, (cv2.IMWRITE_JPEG_QUALITY, 90))
    img("grey.jpg", ".jpg", grey)
    img("progressive.jpg", ".jpg", rgb, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), flags=4)
    ok, enc = cv2.imencode(".jpg", rgb)
    if ok:  # an EXIF APP1 segment with orientation 6 after SOI
        tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
               struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<I", 0)
        app1 = b"Exif\x00\x00" + tiff
        seg = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
        data = enc.tobytes()
        put("fuzz_image", "exif6.jpg", bytes([0]) + data[:2] + seg + data[2:])
EOF

for d in "$out"/*/; do
  echo "$(basename "$d"): $(find "$d" -type f | wc -l) seeds"
done
