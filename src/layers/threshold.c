/* Threshold, as Caffe's ThresholdLayer: y = x > threshold ? 1 : 0
 * element-wise (threshold_param.threshold, default 0; a NaN gives 0).
 * One bottom, one top of the same shape, in place allowed.  Caffe has no
 * backward for it (a step has no useful gradient), so neither do we. */
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct threshold_state {
  float threshold;
} threshold_state;

static ns_status threshold_setup(ns_ctx *ctx, ns_layer *l) {
  threshold_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const Caffe__ThresholdParameter *p = l->param->threshold_param;
  s->threshold = p && p->has_threshold ? p->threshold : 0.0f;
  return NS_OK;
}

static ns_status threshold_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Threshold): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status threshold_forward(ns_ctx *ctx, ns_layer *l) {
  const threshold_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < l->bottom[0]->count; i++) y[i] = x[i] > s->threshold ? 1.0f : 0.0f;
  return NS_OK;
}

const ns_layer_ops ns_threshold_ops = {
    .type = "Threshold",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = threshold_setup,
    .reshape = threshold_reshape,
    .forward = threshold_forward,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_threshold,
};
