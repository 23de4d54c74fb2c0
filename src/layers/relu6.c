/* ReLU6, the type some forks (MobileNet v2 ports) give min(max(x, 0), 6):
 * exactly Caffe's Clip with clip_param { min: 0 max: 6 } (src/layers/
 * clip.c), which this layer runs with that parameter.  No param of its
 * own; in place allowed, backward as Clip's. */
#include "core/layer.h"
#include "export/onnx_layers.h"

extern const ns_layer_ops ns_clip_ops;

/* Clip reads clip_param in setup only: it sees a copy of the layer's
 * parameter with the bounds 0 and 6 for the length of the call. */
static ns_status relu6_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__LayerParameter *own = l->param;
  Caffe__LayerParameter with_bounds = *own;
  Caffe__ClipParameter bounds = CAFFE__CLIP_PARAMETER__INIT;
  bounds.min = 0;
  bounds.max = 6;
  with_bounds.clip_param = &bounds;
  l->param = &with_bounds;
  ns_status st = ns_clip_ops.setup(ctx, l);
  l->param = own;
  return st;
}

static ns_status relu6_reshape(ns_ctx *ctx, ns_layer *l) { return ns_clip_ops.reshape(ctx, l); }
static ns_status relu6_forward(ns_ctx *ctx, ns_layer *l) { return ns_clip_ops.forward(ctx, l); }
static ns_status relu6_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  return ns_clip_ops.backward(ctx, l, down);
}
static void relu6_destroy(ns_ctx *ctx, ns_layer *l) { ns_clip_ops.destroy(ctx, l); }

const ns_layer_ops ns_relu6_ops = {
    .type = "ReLU6",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = relu6_setup,
    .reshape = relu6_reshape,
    .forward = relu6_forward,
    .backward = relu6_backward,
    .destroy = relu6_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_relu6,
};
