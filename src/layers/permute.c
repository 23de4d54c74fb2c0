/* Permute, as the SSD fork's PermuteLayer (weiliu89/caffe, branch ssd,
 * src/caffe/layers/permute_layer.cpp): top axis i is bottom axis
 * order[i]; the axes permute_param.order leaves out follow in their
 * natural order, so `order: 0 order: 2 order: 3 order: 1` turns (N, C, H,
 * W) into (N, H, W, C).  Each top element i, written in the top's steps
 * as i = sum_j k_j * new_step[j], reads bottom element
 * sum_j k_j * old_step[order[j]].  An order value out of range or given
 * twice is an error (the fork's CHECK_LT and "duplicate orders").  No
 * in place.  Backward scatters the top's diff back the same way. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct permute_state {
  int order[NS_MAX_AXES];
  int64_t old_steps[NS_MAX_AXES], new_steps[NS_MAX_AXES];
  int num_axes;
} permute_state;

static ns_status permute_setup(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed");
  permute_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  return NS_OK;
}

/* The full order for a bottom of `num_axes` axes: the given values, then
 * the missing axes ascending. */
static ns_status permute_order(ns_ctx *ctx, const ns_layer *l, int num_axes, int *order) {
  const Caffe__PermuteParameter *p = l->param->permute_param;
  size_t n_given = p ? p->n_order : 0;
  int used[NS_MAX_AXES] = {0};
  if (n_given > (size_t)num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "permute_param.order has %zu values for a bottom of %d axes", n_given,
                         num_axes);
  for (size_t i = 0; i < n_given; i++) {
    uint32_t o = p->order[i];
    if (o >= (uint32_t)num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "permute_param.order value %u is not an axis of a %d-axis bottom", o,
                           num_axes);
    if (used[o])
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "permute_param.order names axis %u twice: not a permutation", o);
    used[o] = 1;
    order[i] = (int)o;
  }
  int next = (int)n_given;
  for (int a = 0; a < num_axes; a++)
    if (!used[a]) order[next++] = a;
  return NS_OK;
}

static ns_status permute_reshape(ns_ctx *ctx, ns_layer *l) {
  permute_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (permute_order(ctx, l, b->num_axes, s->order) != NS_OK) return ctx->status;
  s->num_axes = b->num_axes;
  int64_t shape[NS_MAX_AXES];
  for (int i = 0; i < b->num_axes; i++) shape[i] = b->shape[s->order[i]];
  int64_t old_step = 1, new_step = 1;
  for (int i = b->num_axes - 1; i >= 0; i--) {
    s->old_steps[i] = old_step;
    s->new_steps[i] = new_step;
    old_step *= b->shape[i];
    new_step *= shape[i];
  }
  if (ns_blob_reshape(ctx, l->top[0], b->num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Permute): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* The bottom index that top index i reads. */
static int64_t permute_source(const permute_state *s, int64_t i) {
  int64_t src = 0;
  for (int j = 0; j < s->num_axes; j++) {
    src += i / s->new_steps[j] * s->old_steps[s->order[j]];
    i %= s->new_steps[j];
  }
  return src;
}

static ns_status permute_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  const permute_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < l->top[0]->count; i++) y[i] = x[permute_source(s, i)];
  return NS_OK;
}

static ns_status permute_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  (void)ctx;
  if (!down[0]) return NS_OK;
  const permute_state *s = l->priv;
  const float *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  for (int64_t i = 0; i < l->top[0]->count; i++) dx[permute_source(s, i)] = dy[i];
  return NS_OK;
}

const ns_layer_ops ns_permute_ops = {
    .type = "Permute",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = permute_setup,
    .reshape = permute_reshape,
    .forward = permute_forward,
    .backward = permute_backward,
    .export_onnx = ns_onnx_export_permute,
};
