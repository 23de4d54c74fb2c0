/* ShuffleChannel, ShuffleNet's channel shuffle (farmingyard/ShuffleNet's
 * shuffle_channel_layer.cpp): the C channels of each item, read as a
 * group x (C / group) matrix, are transposed, so that input channel
 * i (C / group) + j becomes output channel j group + i.  group (default
 * 1) must divide C.  Bottom (N, C, ...), top of the same shape; backward
 * applies the inverse permutation to the gradient. */
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct shuffle_state {
  int64_t group;
} shuffle_state;

static ns_status shuffle_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ShuffleChannelParameter *p = l->param->shuffle_channel_param;
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not supported (blob '%s')",
                         l->top[0]->name);
  shuffle_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->group = p && p->has_group ? p->group : 1;
  if (s->group < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "shuffle_channel_param.group must be >= 1");
  return NS_OK;
}

static ns_status shuffle_reshape(ns_ctx *ctx, ns_layer *l) {
  const shuffle_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2 || b->shape[1] % s->group != 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "shuffle_channel_param.group %lld must divide the channels of '%s'",
                         (long long)s->group, b->name);
  if (ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (ShuffleChannel): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Moves each channel plane of `from` to its place in `to`: forward
 * (inverse 0) sends channel i cols + j to j group + i; backward the
 * other way. */
static void permute(const ns_blob *b, int64_t group, const float *from, float *to, int inverse) {
  const int64_t channels = b->shape[1], items = b->shape[0];
  const int64_t plane = b->count / (items * channels), cols = channels / group;
  for (int64_t n = 0; n < items; n++)
    for (int64_t i = 0; i < group; i++)
      for (int64_t j = 0; j < cols; j++) {
        int64_t src = i * cols + j, dst = j * group + i;
        if (inverse) {
          int64_t t = src;
          src = dst;
          dst = t;
        }
        const float *x = from + (n * channels + src) * plane;
        float *y = to + (n * channels + dst) * plane;
        for (int64_t k = 0; k < plane; k++) y[k] = x[k];
      }
}

static ns_status shuffle_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  const shuffle_state *s = l->priv;
  if (l->bottom[0]->count) permute(l->bottom[0], s->group, l->bottom[0]->data, l->top[0]->data, 0);
  return NS_OK;
}

static ns_status shuffle_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  (void)ctx;
  const shuffle_state *s = l->priv;
  if (down[0] && l->bottom[0]->count)
    permute(l->bottom[0], s->group, l->top[0]->diff, l->bottom[0]->diff, 1);
  return NS_OK;
}

const ns_layer_ops ns_shuffle_channel_ops = {
    .type = "ShuffleChannel",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = shuffle_setup,
    .reshape = shuffle_reshape,
    .forward = shuffle_forward,
    .backward = shuffle_backward,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_shuffle_channel,
};
