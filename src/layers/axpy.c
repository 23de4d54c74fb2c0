/* Axpy, SENet's fused scale-and-add (hujie-frank/SENet
 * src/caffe/layers/axpy_layer.cpp): bottoms a (N, C, 1, 1) or (N, C),
 * x (N, C, H, W), y of x's shape; top = a[n, c] x[n, c, h, w] + y[n, c,
 * h, w], of x's shape.  In place on y allowed (the fork skips the copy
 * then), not on a or x.  Backward: da[n, c] = sum over (h, w) of
 * x dtop, dx = a dtop, dy = dtop. */
#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status axpy_setup(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0] || l->top[0] == l->bottom[1])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "in place is allowed on the third bottom only (blob '%s')",
                         l->top[0]->name);
  return NS_OK;
}

static ns_status axpy_reshape(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *a = l->bottom[0], *x = l->bottom[1], *y = l->bottom[2];
  if (!ns_blob_same_shape(x, y))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottoms '%s' and '%s' must have the same shape",
                         x->name, y->name);
  if (x->num_axes < 2 || a->num_axes < 2 || a->shape[0] != x->shape[0] ||
      a->shape[1] != x->shape[1] || a->count != x->shape[0] * x->shape[1])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "the scale '%s' must be (N, C, 1, 1) for '%s' (N, C, H, W)", a->name,
                         x->name);
  if (l->top[0] == y) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], x) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Axpy): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status axpy_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  const ns_blob *a = l->bottom[0], *x = l->bottom[1], *y = l->bottom[2];
  const int64_t plane = a->count ? x->count / a->count : 0;
  float *top = l->top[0]->data;
  for (int64_t c = 0; c < a->count; c++) {
    const float s = a->data[c];
    for (int64_t k = c * plane; k < (c + 1) * plane; k++) top[k] = s * x->data[k] + y->data[k];
  }
  return NS_OK;
}

static ns_status axpy_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  (void)ctx;
  ns_blob *a = l->bottom[0], *x = l->bottom[1], *y = l->bottom[2];
  const int64_t plane = a->count ? x->count / a->count : 0;
  const float *dt = l->top[0]->diff;
  if (down[0])
    for (int64_t c = 0; c < a->count; c++) {
      double sum = 0;
      for (int64_t k = c * plane; k < (c + 1) * plane; k++) sum += (double)x->data[k] * dt[k];
      a->diff[c] = (float)sum;
    }
  if (down[1])
    for (int64_t c = 0; c < a->count; c++)
      for (int64_t k = c * plane; k < (c + 1) * plane; k++) x->diff[k] = a->data[c] * dt[k];
  if (down[2] && l->top[0] != y)
    for (int64_t k = 0; k < y->count; k++) y->diff[k] = dt[k];
  return NS_OK;
}

/* One multiply-add per output value. */
static double axpy_flops(const ns_layer *l) { return 2.0 * (double)l->top[0]->count; }

const ns_layer_ops ns_axpy_ops = {
    .type = "Axpy",
    .min_bottoms = 3,
    .max_bottoms = 3,
    .min_tops = 1,
    .max_tops = 1,
    .setup = axpy_setup,
    .reshape = axpy_reshape,
    .forward = axpy_forward,
    .backward = axpy_backward,
    .flops = axpy_flops,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_axpy,
};
