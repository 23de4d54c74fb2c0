/* Dropout at test time, as Caffe's: the identity (the training-time mask
 * and its 1 / (1 - ratio) scaling never apply in phase TEST). */
#include <string.h>

#include "core/layer.h"

/* dropout_ratio only matters in training (Caffe checks it in debug builds
 * only), so any value loads. */
static ns_status dropout_setup(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

static ns_status dropout_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Dropout): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status dropout_forward(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *b = l->bottom[0];
  if (l->top[0] != b && b->count > 0)
    memcpy(l->top[0]->data, b->data, (size_t)b->count * sizeof(float));
  return NS_OK;
}

const ns_layer_ops ns_dropout_ops = {
    .type = "Dropout",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = dropout_setup,
    .reshape = dropout_reshape,
    .forward = dropout_forward,
};
