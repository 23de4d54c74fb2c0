/* Normalize, as the SSD fork's NormalizeLayer (weiliu89/caffe, branch ssd,
 * src/caffe/layers/normalize_layer.cpp): an L2 normalisation with a
 * learned scale.  For each image n of a bottom (N, C, spatial...):
 *   across_spatial (default):  y = x / sqrt(sum_{c,s} x^2 + eps)
 *   otherwise, per position s: y[c,s] = x[c,s] / sqrt(sum_c x[c,s]^2 + eps)
 * then y *= scale, one value (channel_shared, default; a 0-axis param)
 * or one per channel (a [C] param), filled by scale_filler (constant 1
 * if absent).  eps defaults to 1e-10 and is added once, inside the root,
 * in both forms (the fork seeds the sum with eps).  At least 2 axes; the
 * spatial size is the product of the axes after the channel.  In place
 * allowed (TRAIN keeps a copy of the bottom for backward).
 * Backward, with g = dy * scale and n the norm of x's group (the image,
 * or the position): dx = g / n - x * sum(g x) / n^3, and
 * dscale += sum(dy * x / n) over the scale's cells.  This is the exact
 * gradient; the fork's Backward_cpu takes sum(dy x) without the scale
 * inside the sum, which is the same only for a shared scale. */
#include <math.h>

#include "core/filler.h"
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct normalize_state {
  int across_spatial, channel_shared;
  float eps;
  float *saved; /* in place, TRAIN: the bottom before forward */
  int64_t saved_cap;
} normalize_state;

static void normalize_destroy(ns_ctx *ctx, ns_layer *l) {
  normalize_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->saved);
}

static ns_status normalize_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__NormalizeParameter *p = l->param->norm_param;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' needs at least 2 axes (N, C, ...)",
                         b->name);
  normalize_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->across_spatial = p && p->has_across_spatial ? p->across_spatial : 1;
  s->channel_shared = p && p->has_channel_shared ? p->channel_shared : 1;
  s->eps = p && p->has_eps ? p->eps : 1e-10f;
  if (!(s->eps >= 0.0f) || isinf(s->eps))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "norm_param.eps must be a finite value >= 0");
  int64_t channels = b->shape[1];
  if (ns_layer_add_param(ctx, l, s->channel_shared ? 0 : 1, &channels) != NS_OK)
    return ctx->status;
  Caffe__FillerParameter one = CAFFE__FILLER_PARAMETER__INIT;
  one.type = (char *)"constant";
  one.has_value = 1;
  one.value = 1.0f;
  return ns_filler_fill(ctx, l->params[0], p && p->scale_filler ? p->scale_filler : &one, l->rng);
}

static ns_status normalize_reshape(ns_ctx *ctx, ns_layer *l) {
  const normalize_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' needs at least 2 axes (N, C, ...)",
                         b->name);
  if (!s->channel_shared && b->shape[1] != l->params[0]->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %lld channels, the scale %lld",
                         b->name, (long long)b->shape[1], (long long)l->params[0]->count);
  if (l->top[0] == b) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Normalize): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* One image, channels x spatial, x may alias y. */
static void normalize_image(const normalize_state *s, const float *scale, int64_t channels,
                            int64_t spatial, const float *x, float *y) {
  if (s->across_spatial) {
    double sum = 0.0;
    for (int64_t i = 0; i < channels * spatial; i++) sum += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(sum + s->eps));
    for (int64_t c = 0; c < channels; c++) {
      float k = inv * scale[s->channel_shared ? 0 : c];
      for (int64_t i = 0; i < spatial; i++) y[c * spatial + i] = x[c * spatial + i] * k;
    }
    return;
  }
  for (int64_t i = 0; i < spatial; i++) {
    double sum = 0.0;
    for (int64_t c = 0; c < channels; c++) sum += (double)x[c * spatial + i] * x[c * spatial + i];
    float norm = (float)sqrt(sum + s->eps);
    for (int64_t c = 0; c < channels; c++)
      y[c * spatial + i] = x[c * spatial + i] / norm * scale[s->channel_shared ? 0 : c];
  }
}

static ns_status normalize_forward(ns_ctx *ctx, ns_layer *l) {
  normalize_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (l->top[0] == b && ns_layer_phase_train(l) &&
      ns_floats_save(ctx, &s->saved, &s->saved_cap, b->data, b->count) != NS_OK)
    return ctx->status;
  int64_t num = b->shape[0], channels = b->shape[1];
  int64_t spatial = ns_blob_count_range(b, 2, b->num_axes);
  int64_t dim = channels * spatial;
  for (int64_t n = 0; n < num; n++)
    normalize_image(s, l->params[0]->data, channels, spatial, b->data + n * dim,
                    l->top[0]->data + n * dim);
  return NS_OK;
}

/* One group of `len` values `stride` apart (an image: stride 1; a
 * position: stride spatial); value k's channel is k * stride / spatial. */
typedef struct norm_group {
  const float *x, *dy;
  float *dx, *dscale;
  int64_t len, stride, spatial;
} norm_group;

static void backward_group(const normalize_state *s, const float *scale, const norm_group *g) {
  double sum_sq = 0.0, dot = 0.0;
  for (int64_t k = 0; k < g->len; k++) {
    int64_t i = k * g->stride;
    double sc = scale[s->channel_shared ? 0 : i / g->spatial];
    sum_sq += (double)g->x[i] * g->x[i];
    dot += g->dy[i] * sc * g->x[i];
  }
  double n = sqrt(sum_sq + s->eps);
  for (int64_t k = 0; k < g->len; k++) {
    int64_t i = k * g->stride, c = s->channel_shared ? 0 : i / g->spatial;
    /* dscale first: in place, dx overwrites dy */
    if (g->dscale) g->dscale[c] += (float)(g->dy[i] * g->x[i] / n);
    if (g->dx) g->dx[i] = (float)(g->dy[i] * scale[c] / n - g->x[i] * dot / (n * n * n));
  }
}

static ns_status normalize_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const normalize_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  const float *x = l->top[0] == b ? s->saved : b->data;
  if (l->top[0] == b && (!x || s->saved_cap < b->count))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place backward needs a TRAIN forward first");
  int64_t num = b->shape[0], channels = b->shape[1];
  int64_t spatial = ns_blob_count_range(b, 2, b->num_axes), dim = channels * spatial;
  float *dscale = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  /* In place, dy and dx share memory: each group reads all its dy before
   * writing any of its dx, and groups do not overlap. */
  for (int64_t n = 0; n < num; n++) {
    norm_group g = {x + n * dim, l->top[0]->diff + n * dim, down[0] ? b->diff + n * dim : NULL,
                    dscale, dim, 1, spatial};
    if (s->across_spatial) {
      backward_group(s, l->params[0]->data, &g);
      continue;
    }
    g.len = channels;
    g.stride = spatial;
    for (int64_t i = 0; i < spatial; i++, g.x++, g.dy++, g.dx = g.dx ? g.dx + 1 : NULL)
      backward_group(s, l->params[0]->data, &g);
  }
  return NS_OK;
}

const ns_layer_ops ns_normalize_ops = {
    .type = "Normalize",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = normalize_setup,
    .reshape = normalize_reshape,
    .forward = normalize_forward,
    .backward = normalize_backward,
    .destroy = normalize_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_normalize,
};
