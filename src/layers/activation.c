/* ReLU, as Caffe's: y = max(x, 0) + negative_slope min(x, 0); in place
 * allowed. */
#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/parallel.h"

typedef struct relu_state {
  float negative_slope;
} relu_state;

static ns_status relu_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ReLUParameter *p = l->param->relu_param;
  relu_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->negative_slope = p && p->has_negative_slope ? p->negative_slope : 0.0f;
  return NS_OK;
}

/* Same shape as the bottom (nothing to do in place). */
static ns_status relu_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (ReLU): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status relu_forward(ns_ctx *ctx, ns_layer *l) {
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  int64_t n = l->bottom[0]->count;
  float slope = ((const relu_state *)l->priv)->negative_slope;
  int nt = ns_kernel_threads(ns_ctx_threads(ctx));
  /* Written as Caffe's std::max / std::min, so NaN passes through. */
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = (v < 0.0f ? 0.0f : v) + slope * (0.0f < v ? 0.0f : v);
  }
  return NS_OK;
}

/* dx = dy (x > 0) + slope dy (x <= 0), as Caffe's.  In place the top
 * stands for the bottom: same sign for slope >= 0. */
static ns_status relu_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  if (!down[0]) return NS_OK;
  const float *x = l->bottom[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  int64_t n = l->bottom[0]->count;
  float slope = ((const relu_state *)l->priv)->negative_slope;
  int nt = ns_kernel_threads(ns_ctx_threads(ctx));
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * ((x[i] > 0.0f) + slope * (x[i] <= 0.0f));
  return NS_OK;
}

/* Only the plain max(0, x) can ride in the previous layer's epilogue. */
static int relu_fuses(const ns_layer *l) {
  return ((const relu_state *)l->priv)->negative_slope == 0.0f;
}

const ns_layer_ops ns_relu_ops = {
    .type = "ReLU",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = relu_setup,
    .reshape = relu_reshape,
    .forward = relu_forward,
    .backward = relu_backward,
    .fuses_as_relu = relu_fuses,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_relu,
};
