/* Swish, as Caffe's SwishLayer: y = x sigmoid(beta x) element-wise
 * (swish_param.beta, default 1).  One bottom, one top of the same shape,
 * in place allowed: backward reads y and the sigmoid kept by forward,
 * never x.  Backward, Caffe's form: dx = dy (beta y + s (1 - beta y)),
 * s = sigmoid(beta x). */
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct swish_state {
  float beta;
  float *sig; /* sigmoid(beta x) of the last forward */
  int64_t sig_cap;
} swish_state;

static ns_status swish_setup(ns_ctx *ctx, ns_layer *l) {
  swish_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const Caffe__SwishParameter *p = l->param->swish_param;
  s->beta = p && p->has_beta ? p->beta : 1.0f;
  return NS_OK;
}

static void swish_destroy(ns_ctx *ctx, ns_layer *l) {
  swish_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->sig);
}

static ns_status swish_reshape(ns_ctx *ctx, ns_layer *l) {
  swish_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (l->top[0] != b && ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Swish): ", l->name);
    return ctx->status;
  }
  if (b->count > s->sig_cap) {
    float *p = ns_floats_alloc(ctx, b->count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, s->sig);
    s->sig = p;
    s->sig_cap = b->count;
  }
  return NS_OK;
}

static ns_status swish_forward(ns_ctx *ctx, ns_layer *l) {
  swish_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < l->bottom[0]->count; i++) {
    s->sig[i] = 1.0f / (1.0f + expf(-s->beta * x[i]));
    y[i] = x[i] * s->sig[i];
  }
  return NS_OK;
}

static ns_status swish_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const swish_state *s = l->priv;
  if (!down[0]) return NS_OK;
  const float *y = l->top[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  for (int64_t i = 0; i < l->bottom[0]->count; i++) {
    float by = s->beta * y[i];
    dx[i] = dy[i] * (by + s->sig[i] * (1.0f - by));
  }
  return NS_OK;
}

const ns_layer_ops ns_swish_ops = {
    .type = "Swish",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = swish_setup,
    .reshape = swish_reshape,
    .forward = swish_forward,
    .backward = swish_backward,
    .destroy = swish_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_swish,
};
