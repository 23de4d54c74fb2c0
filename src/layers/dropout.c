/* Dropout, as Caffe's.  TEST: the identity.  TRAIN: each element is kept
 * with probability 1 - ratio (a mask drawn from the net's generator, so a
 * seeded run repeats) and scaled by 1 / (1 - ratio); backward applies the
 * same mask and scale.  In place works. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct dropout_state {
  float ratio, scale;
  unsigned char *mask; /* of the last TRAIN forward */
  int64_t mask_cap;
} dropout_state;

/* dropout_ratio only matters in training (Caffe checks it in debug builds
 * only), so any value loads; training needs it in [0, 1). */
static ns_status dropout_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__DropoutParameter *p = l->param->dropout_param;
  dropout_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->ratio = p && p->has_dropout_ratio ? p->dropout_ratio : 0.5f;
  if (ns_layer_phase_train(l) && !(s->ratio >= 0.0f && s->ratio < 1.0f))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "dropout_ratio %g must be in [0, 1) for training",
                         (double)s->ratio);
  s->scale = 1.0f / (1.0f - s->ratio);
  return NS_OK;
}

static void dropout_destroy(ns_ctx *ctx, ns_layer *l) {
  dropout_state *s = l->priv;
  if (s) ns_free(ctx, s->mask);
}

static ns_status dropout_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Dropout): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status dropout_forward(ns_ctx *ctx, ns_layer *l) {
  dropout_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (!ns_layer_phase_train(l)) {
    if (l->top[0] != b && b->count > 0)
      memcpy(l->top[0]->data, b->data, (size_t)b->count * sizeof(float));
    return NS_OK;
  }
  if (b->count > s->mask_cap) {
    unsigned char *m = ns_alloc(ctx, (size_t)b->count);
    if (!m) return ctx->status;
    ns_free(ctx, s->mask);
    s->mask = m;
    s->mask_cap = b->count;
  }
  const float *x = b->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < b->count; i++) {
    s->mask[i] = ns_rng_uniform01(l->rng) >= s->ratio;
    y[i] = s->mask[i] ? x[i] * s->scale : 0.0f;
  }
  return NS_OK;
}

static ns_status dropout_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const dropout_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  if (!down[0]) return NS_OK;
  const float *dy = l->top[0]->diff;
  if (!ns_layer_phase_train(l)) {
    if (b->diff != dy && b->count > 0) memcpy(b->diff, dy, (size_t)b->count * sizeof(float));
    return NS_OK;
  }
  if (b->count > s->mask_cap)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "backward before a TRAIN forward");
  for (int64_t i = 0; i < b->count; i++) b->diff[i] = s->mask[i] ? dy[i] * s->scale : 0.0f;
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
    .backward = dropout_backward,
    .destroy = dropout_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_dropout,
};
