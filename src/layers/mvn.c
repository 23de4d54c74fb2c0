/* MVN (mean-variance normalization), as Caffe's MVNLayer.  The bottom
 * (at most 4 axes, read as num, channels, height, width) is cut into rows:
 * one per (n, c) plane, or one per n with mvn_param.across_channels.  Per
 * row of dim values:
 *   y = x - mean(x)                          (normalize_variance false)
 *   y = (x - mean(x)) / (sqrt(mean((x - mean)^2)) + eps)   (default)
 * eps (default 1e-9) is added to the standard deviation, not to the
 * variance, as Caffe does.  The top is 4-D (num, channels, height,
 * width) as Caffe reshapes it, even for a 2-D bottom.  In place allowed
 * (backward reads y, not x).  Backward, Caffe's formula with sd the
 * divisor above:
 *   dx = (dy - mean(dy) - y mean(y dy)) / sd,  or dx = dy - mean(dy). */
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct mvn_state {
  int normalize_variance, across_channels;
  float eps;
  int64_t rows, dim;
  float *sd; /* per row: sqrt(variance) + eps, kept for backward */
  int64_t sd_cap;
} mvn_state;

static ns_status mvn_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__MVNParameter *p = l->param->mvn_param;
  mvn_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->normalize_variance = p && p->has_normalize_variance ? p->normalize_variance : 1;
  s->across_channels = p && p->has_across_channels ? p->across_channels : 0;
  s->eps = p && p->has_eps ? p->eps : 1e-9f;
  return NS_OK;
}

static void mvn_destroy(ns_ctx *ctx, ns_layer *l) {
  mvn_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->sd);
}

/* Caffe's LegacyShape: axis i of a blob of at most 4 axes, 1 past its end. */
static int64_t legacy_dim(const ns_blob *b, int i) { return i < b->num_axes ? b->shape[i] : 1; }

static ns_status mvn_reshape(ns_ctx *ctx, ns_layer *l) {
  mvn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes > 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the bottom has %d axes; MVN takes at most 4",
                         b->num_axes);
  const int64_t shape[4] = {legacy_dim(b, 0), legacy_dim(b, 1), legacy_dim(b, 2),
                            legacy_dim(b, 3)};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (MVN): ", l->name);
    return ctx->status;
  }
  s->rows = s->across_channels ? shape[0] : shape[0] * shape[1];
  s->dim = s->rows ? l->top[0]->count / s->rows : 0;
  if (s->rows > s->sd_cap) {
    float *p = ns_floats_alloc(ctx, s->rows);
    if (!p) return ctx->status;
    ns_floats_free(ctx, s->sd);
    s->sd = p;
    s->sd_cap = s->rows;
  }
  return NS_OK;
}

static ns_status mvn_forward(ns_ctx *ctx, ns_layer *l) {
  mvn_state *s = l->priv;
  if (!s->dim) return NS_OK;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  for (int64_t r = 0; r < s->rows; r++, x += s->dim, y += s->dim) {
    double mean = 0;
    for (int64_t k = 0; k < s->dim; k++) mean += x[k];
    mean /= (double)s->dim;
    for (int64_t k = 0; k < s->dim; k++) y[k] = (float)(x[k] - mean);
    if (!s->normalize_variance) continue;
    double var = 0;
    for (int64_t k = 0; k < s->dim; k++) var += (double)y[k] * y[k];
    s->sd[r] = (float)sqrt(var / (double)s->dim) + s->eps;
    for (int64_t k = 0; k < s->dim; k++) y[k] /= s->sd[r];
  }
  return NS_OK;
}

static ns_status mvn_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const mvn_state *s = l->priv;
  if (!down[0] || !s->dim) return NS_OK;
  const float *y = l->top[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  for (int64_t r = 0; r < s->rows; r++, y += s->dim, dy += s->dim, dx += s->dim) {
    double sum_dy = 0, sum_ydy = 0;
    for (int64_t k = 0; k < s->dim; k++) {
      sum_dy += dy[k];
      sum_ydy += (double)y[k] * dy[k];
    }
    double mean_dy = sum_dy / (double)s->dim, mean_ydy = sum_ydy / (double)s->dim;
    for (int64_t k = 0; k < s->dim; k++) {
      if (s->normalize_variance) /* in place dx is dy: element k is read before written */
        dx[k] = (float)((dy[k] - mean_dy - y[k] * mean_ydy) / s->sd[r]);
      else
        dx[k] = (float)(dy[k] - mean_dy);
    }
  }
  return NS_OK;
}

/* Each top cell depends on its whole plane (the row's statistics). */
static void mvn_geometry(const ns_layer *l, ns_layer_geometry *g) {
  ns_layer_geometry_pointwise(l, g);
  g->grid = NS_GRID_GLOBAL;
}

const ns_layer_ops ns_mvn_ops = {
    .type = "MVN",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = mvn_setup,
    .reshape = mvn_reshape,
    .forward = mvn_forward,
    .backward = mvn_backward,
    .destroy = mvn_destroy,
    .geometry = mvn_geometry,
    .export_onnx = ns_onnx_export_mvn,
};
