/* Split: one bottom fanned out to several tops.  Caffe shares the data;
 * we copy it, which keeps tops independent, except where activation reuse
 * has given a top the bottom's own buffer (core/net_reuse.c). */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status split_setup(ns_ctx *ctx, ns_layer *l) {
  for (int i = 0; i < l->n_top; i++)
    if (l->top[i] == l->bottom[0])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed (top '%s')",
                           l->top[i]->name);
  return NS_OK;
}

static ns_status split_reshape(ns_ctx *ctx, ns_layer *l) {
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape_like(ctx, l->top[i], l->bottom[0]) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Split): ", l->name);
      return ctx->status;
    }
  return NS_OK;
}

static ns_status split_forward(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *b = l->bottom[0];
  if (b->count == 0) return NS_OK;
  for (int i = 0; i < l->n_top; i++)
    if (l->top[i]->data != b->data)
      memcpy(l->top[i]->data, b->data, (size_t)b->count * sizeof(float));
  return NS_OK;
}

/* The bottom's gradient is the sum of its tops' (Caffe's SplitLayer). */
static ns_status split_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  if (!down[0]) return NS_OK;
  ns_blob *b = l->bottom[0];
  if (b->count == 0) return NS_OK;
  memcpy(b->diff, l->top[0]->diff, (size_t)b->count * sizeof(float));
  for (int i = 1; i < l->n_top; i++) {
    const float *d = l->top[i]->diff;
    for (int64_t k = 0; k < b->count; k++) b->diff[k] += d[k];
  }
  return NS_OK;
}

const ns_layer_ops ns_split_ops = {
    .type = "Split",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = split_setup,
    .reshape = split_reshape,
    .forward = split_forward,
    .backward = split_backward,
    .geometry = ns_layer_geometry_pointwise,
    .tops_copy_bottom = 1,
    .export_onnx = ns_onnx_export_split,
};
