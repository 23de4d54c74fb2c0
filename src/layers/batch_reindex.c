/* BatchReindex, as Caffe's BatchReindexLayer: bottom 0 (N, ...) and a
 * 1-axis index blob (M); top (M, ...) with top[m] = bottom0[index[m]]
 * (index read as Caffe's static_cast<int>, each in [0, N): an error
 * otherwise, as Caffe's CHECKs).  Backward: each item's gradient is the
 * sum of the gradients of the top items that copied it; the indices
 * take no gradient. */
#include <string.h>

#include "core/layer.h"

static ns_status reindex_setup(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

static ns_status reindex_reshape(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *b = l->bottom[0], *idx = l->bottom[1];
  if (idx->num_axes != 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the index bottom must have 1 axis, not %d",
                         idx->num_axes);
  if (b->num_axes < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom 0 needs a first axis");
  if (l->top[0] == b) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  shape[0] = idx->shape[0];
  if (ns_blob_reshape(ctx, l->top[0], b->num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (BatchReindex): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Index m as an item of bottom 0, checked. */
static ns_status item_of(ns_ctx *ctx, const ns_layer *l, int64_t m, int64_t *out) {
  float v = l->bottom[1]->data[m];
  int64_t n = l->bottom[0]->shape[0];
  if (!(v > -1 && v < (float)n))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "index %lld is %g; must be in [0, %lld) (the batch)",
                         (long long)m, (double)v, (long long)n);
  *out = (int64_t)v;
  return NS_OK;
}

static ns_status reindex_forward(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *b = l->bottom[0];
  int64_t dim = ns_blob_count_range(b, 1, b->num_axes);
  for (int64_t m = 0; m < l->bottom[1]->count; m++) {
    int64_t n = 0;
    if (item_of(ctx, l, m, &n) != NS_OK) return ctx->status;
    if (dim) memcpy(l->top[0]->data + m * dim, b->data + n * dim, (size_t)dim * sizeof(float));
  }
  return NS_OK;
}

static ns_status reindex_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the index input");
  if (!down[0]) return NS_OK;
  ns_blob *b = l->bottom[0];
  int64_t dim = ns_blob_count_range(b, 1, b->num_axes);
  if (b->count) memset(b->diff, 0, (size_t)b->count * sizeof(float));
  const float *dy = l->top[0]->diff;
  for (int64_t m = 0; m < l->bottom[1]->count; m++) {
    int64_t n = 0;
    if (item_of(ctx, l, m, &n) != NS_OK) return ctx->status;
    for (int64_t k = 0; k < dim; k++) b->diff[n * dim + k] += dy[m * dim + k];
  }
  return NS_OK;
}

const ns_layer_ops ns_batch_reindex_ops = {
    .type = "BatchReindex",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = reindex_setup,
    .reshape = reindex_reshape,
    .forward = reindex_forward,
    .backward = reindex_backward,
};
