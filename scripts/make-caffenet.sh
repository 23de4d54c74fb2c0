#!/usr/bin/env bash
# Prints a CaffeNet-shaped deploy net (the BVLC reference architecture:
# 5 convolutions, 3 fully connected layers, 1000 classes) in the current
# prototxt format. Usage: make-caffenet.sh [BATCH] [SIZE]
batch=${1:-1}
size=${2:-227}
conv() { # name bottom num_output kernel stride pad group
  cat <<EOT
layer {
  name: "$1"
  type: "Convolution"
  bottom: "$2"
  top: "$1"
  convolution_param { num_output: $3 kernel_size: $4 stride: $5 pad: $6 group: $7 }
}
layer { name: "relu${1#conv}" type: "ReLU" bottom: "$1" top: "$1" }
EOT
}
pool() { echo "layer { name: \"$1\" type: \"Pooling\" bottom: \"$2\" top: \"$1\" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }"; }
lrn() { echo "layer { name: \"$1\" type: \"LRN\" bottom: \"$2\" top: \"$1\" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }"; }
fc() { # name bottom num_output [relu+dropout]
  echo "layer { name: \"$1\" type: \"InnerProduct\" bottom: \"$2\" top: \"$1\" inner_product_param { num_output: $3 } }"
  if [ -n "${4:-}" ]; then
    echo "layer { name: \"relu${1#fc}\" type: \"ReLU\" bottom: \"$1\" top: \"$1\" }"
    echo "layer { name: \"drop${1#fc}\" type: \"Dropout\" bottom: \"$1\" top: \"$1\" dropout_param { dropout_ratio: 0.5 } }"
  fi
}
echo 'name: "CaffeNet"'
echo "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: $batch dim: 3 dim: $size dim: $size } } }"
conv conv1 data 96 11 4 0 1
pool pool1 conv1
lrn norm1 pool1
conv conv2 norm1 256 5 1 2 2
pool pool2 conv2
lrn norm2 pool2
conv conv3 norm2 384 3 1 1 1
conv conv4 conv3 384 3 1 1 2
conv conv5 conv4 256 3 1 1 2
pool pool5 conv5
fc fc6 pool5 4096 yes
fc fc7 fc6 4096 yes
fc fc8 fc7 1000
echo 'layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }'
