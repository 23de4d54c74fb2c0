/* Softmax, as Caffe's: over softmax_param.axis (default 1, negative counts
 * from the end), independently for every position of the other axes;
 * the max is subtracted first so large inputs do not overflow. */
#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/softmax_kernel.h"

typedef struct softmax_state {
  int axis;                       /* as given; made canonical per reshape */
  int64_t outer, channels, inner; /* set by reshape */
} softmax_state;

static ns_status softmax_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__SoftmaxParameter *p = l->param->softmax_param;
  softmax_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->axis = p && p->has_axis ? p->axis : 1;
  return NS_OK;
}

static ns_status softmax_reshape(ns_ctx *ctx, ns_layer *l) {
  softmax_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int axis;
  if (ns_blob_axis(ctx, b, s->axis, "softmax_param.axis", &axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Softmax): ", l->name);
    return ctx->status;
  }
  s->outer = ns_blob_count_range(b, 0, axis);
  s->channels = b->shape[axis];
  s->inner = ns_blob_count_range(b, axis + 1, b->num_axes);
  if (l->top[0] != b && ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Softmax): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status softmax_forward(ns_ctx *ctx, ns_layer *l) {
  const softmax_state *s = l->priv;
  ns_softmax(s->outer, s->channels, s->inner, l->bottom[0]->data, l->top[0]->data,
             ns_ctx_threads(ctx));
  return NS_OK;
}

/* dx = y (dy - sum_c dy y), per position; in place works (the dot is
 * taken before any write). */
static ns_status softmax_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const softmax_state *s = l->priv;
  if (!down[0]) return NS_OK;
  const float *y = l->top[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  int64_t dim = s->channels * s->inner;
  for (int64_t o = 0; o < s->outer; o++)
    for (int64_t i = 0; i < s->inner; i++) {
      int64_t base = o * dim + i;
      double dot = 0;
      for (int64_t c = 0; c < s->channels; c++)
        dot += (double)dy[base + c * s->inner] * y[base + c * s->inner];
      for (int64_t c = 0; c < s->channels; c++) {
        int64_t k = base + c * s->inner;
        dx[k] = y[k] * (dy[k] - (float)dot);
      }
    }
  return NS_OK;
}

const ns_layer_ops ns_softmax_ops = {
    .type = "Softmax",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = softmax_setup,
    .reshape = softmax_reshape,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_softmax,
};
