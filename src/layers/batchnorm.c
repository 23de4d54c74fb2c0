/* BatchNorm: y = (x - mean[c]) / sqrt(var[c] + eps) per channel (axis 1).
 * Params, as Caffe stores them: [C] mean sum, [C] variance sum, [1] scale
 * factor; the statistics are the sums divided by the factor (0 when the
 * factor is 0).  use_global_stats defaults to true in TEST and false in
 * TRAIN, as Caffe's.  With batch statistics in TRAIN, each forward also
 * does Caffe's moving-average update: factor = maf factor + 1, mean sum =
 * maf mean sum + mean, variance sum = maf variance sum + m / (m - 1) var
 * (m values per channel; maf = moving_average_fraction, default 0.999).
 * The params never learn (the net gives them lr_mult 0, as Caffe does). */
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct batchnorm_state {
  int use_global_stats;
  float eps, maf;
  int64_t channels;
  float *inv_std; /* [channels], of the last forward, for backward */
} batchnorm_state;

static int64_t bn_channels(const ns_blob *b) { return b->num_axes <= 1 ? 1 : b->shape[1]; }

static ns_status batchnorm_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__BatchNormParameter *p = l->param->batch_norm_param;
  batchnorm_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->use_global_stats =
      p && p->has_use_global_stats ? p->use_global_stats : !ns_layer_phase_train(l);
  s->eps = p && p->has_eps ? p->eps : 1e-5f;
  s->maf = p && p->has_moving_average_fraction ? p->moving_average_fraction : 0.999f;
  if (l->bottom[0]->num_axes < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has no axes", l->bottom[0]->name);
  s->channels = bn_channels(l->bottom[0]);
  if (!(s->inv_std = ns_calloc(ctx, (size_t)s->channels + 1, sizeof *s->inv_std)))
    return ctx->status;
  const int64_t vec[1] = {s->channels}, one[1] = {1};
  if (ns_layer_add_param(ctx, l, 1, vec) != NS_OK || ns_layer_add_param(ctx, l, 1, vec) != NS_OK ||
      ns_layer_add_param(ctx, l, 1, one) != NS_OK)
    return ctx->status;
  return NS_OK; /* params are zero-filled, as Caffe's */
}

static ns_status batchnorm_reshape(ns_ctx *ctx, ns_layer *l) {
  const batchnorm_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 1 || bn_channels(b) != s->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %lld channels, expected %lld",
                         b->name, (long long)(b->num_axes < 1 ? 0 : bn_channels(b)),
                         (long long)s->channels);
  for (int i = 0; i < 2; i++)
    if (l->params[i]->count != s->channels)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "param %d has %lld values for %lld channels", i,
                           (long long)l->params[i]->count, (long long)s->channels);
  if (l->params[2]->count < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "param 2 (scale factor) is empty");
  if (l->top[0] != b && ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (BatchNorm): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Mean and variance of each channel over the batch and spatial dims. */
static void batch_stats(const float *x, int64_t num, int64_t c, int64_t spatial, float *mean,
                        float *var) {
  double n = (double)num * (double)spatial;
  for (int64_t k = 0; k < c; k++) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < num; i++)
      for (int64_t j = 0; j < spatial; j++) sum += x[(i * c + k) * spatial + j];
    double m = n > 0 ? sum / n : 0;
    for (int64_t i = 0; i < num; i++)
      for (int64_t j = 0; j < spatial; j++) {
        double d = x[(i * c + k) * spatial + j] - m;
        sq += d * d;
      }
    mean[k] = (float)m;
    var[k] = (float)(n > 0 ? sq / n : 0);
  }
}

static void batchnorm_affine_compose(const ns_layer *l, float *a, float *b);

/* Four floats in a GCC vector (an SSE register in any x86-64 build). */
typedef float v4 __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* With global statistics as the host of the in-place affine layers after
 * it and a ReLU (a pre-activation block: BatchNorm, Scale, ReLU before a
 * convolution): one pass y = a x + b, then max(0, .), a and b composed
 * from all of them (ns_layer_fused_affine) instead of a pass each. */
static ns_status batchnorm_forward_hosted(ns_ctx *ctx, ns_layer *l, int64_t num, int64_t c,
                                          int64_t spatial) {
  float *a = ns_layer_scratch(ctx, l, 2 * c + 1), *b = a ? a + c : NULL;
  if (!a) return ctx->status;
  for (int64_t k = 0; k < c; k++) a[k] = 1.0f, b[k] = 0.0f;
  batchnorm_affine_compose(l, a, b);
  ns_layer_fused_affine(l, a, b);
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  int relu = l->relu_fused;
  for (int64_t i = 0; i < num; i++)
    for (int64_t k = 0; k < c; k++) {
      const float *xr = x + (i * c + k) * spatial;
      float *yr = y + (i * c + k) * spatial, ak = a[k], bk = b[k];
      const v4 va = {ak, ak, ak, ak}, vb = {bk, bk, bk, bk}, zero = {0};
      int64_t j = 0;
      for (; j + 4 <= spatial; j += 4) { /* four at a time: -O2 leaves the loop scalar */
        v4 v;
        __builtin_memcpy(&v, xr + j, sizeof v);
        v = v * va + vb;
        if (relu) v = (v4)((v4i)v & ~(v < zero)); /* NaN compares false: passes */
        __builtin_memcpy(yr + j, &v, sizeof v);
      }
      for (; j < spatial; j++) {
        float v = xr[j] * ak + bk;
        yr[j] = relu && v < 0.0f ? 0.0f : v; /* NaN passes, as Caffe's ReLU */
      }
    }
  return NS_OK;
}

static ns_status batchnorm_forward(ns_ctx *ctx, ns_layer *l) {
  batchnorm_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int64_t c = s->channels, num = b->num_axes > 0 ? b->shape[0] : 1;
  int64_t spatial = num * c != 0 ? b->count / (num * c) : 0;
  if (l->affine_fused || (l->relu_fused && s->use_global_stats))
    return batchnorm_forward_hosted(ctx, l, num, c, spatial);
  float *stats = ns_calloc(ctx, (size_t)(2 * c + 1), sizeof *stats);
  if (!stats) return ctx->status;
  float *mean = stats, *var = stats + c;
  if (s->use_global_stats) {
    float factor = l->params[2]->data[0];
    float scale = factor == 0.0f ? 0.0f : 1.0f / factor;
    for (int64_t k = 0; k < c; k++) {
      mean[k] = scale * l->params[0]->data[k];
      var[k] = scale * l->params[1]->data[k];
    }
  } else {
    batch_stats(b->data, num, c, spatial, mean, var);
    if (ns_layer_phase_train(l)) {
      double m = (double)num * (double)spatial;
      float correction = m > 1 ? (float)(m / (m - 1)) : 1.0f;
      l->params[2]->data[0] = l->params[2]->data[0] * s->maf + 1.0f;
      for (int64_t k = 0; k < c; k++) {
        l->params[0]->data[k] = mean[k] + s->maf * l->params[0]->data[k];
        l->params[1]->data[k] = correction * var[k] + s->maf * l->params[1]->data[k];
      }
    }
  }
  const float *x = b->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < num; i++)
    for (int64_t k = 0; k < c; k++) {
      float m = mean[k], sd = sqrtf(var[k] + s->eps);
      s->inv_std[k] = 1.0f / sd;
      int64_t base = (i * c + k) * spatial;
      for (int64_t j = 0; j < spatial; j++) y[base + j] = (x[base + j] - m) / sd;
    }
  ns_free(ctx, stats);
  if (l->relu_fused) /* a ReLU after batch statistics (training) */
    for (int64_t i = 0; i < l->top[0]->count; i++) y[i] = y[i] < 0.0f ? 0.0f : y[i];
  return NS_OK;
}

static void batchnorm_destroy(ns_ctx *ctx, ns_layer *l) {
  batchnorm_state *s = l->priv;
  if (s) ns_free(ctx, s->inv_std);
}

/* Global statistics: dx = dy / sd.  Batch statistics (Caffe's formula,
 * y the normalised top, means over batch and space per channel):
 * dx = (dy - mean(dy) - y mean(dy y)) / sd.  In place works: y is the top. */
static ns_status batchnorm_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const batchnorm_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  if (!down[0]) return NS_OK;
  int64_t c = s->channels, num = b->num_axes > 0 ? b->shape[0] : 1;
  int64_t spatial = num * c != 0 ? b->count / (num * c) : 0;
  const float *y = l->top[0]->data, *dy = l->top[0]->diff;
  float *dx = b->diff;
  double m = (double)num * (double)spatial;
  for (int64_t k = 0; k < c; k++) {
    double mdy = 0, mdyy = 0;
    if (!s->use_global_stats && m > 0) {
      for (int64_t i = 0; i < num; i++)
        for (int64_t j = 0; j < spatial; j++) {
          int64_t idx = (i * c + k) * spatial + j;
          mdy += dy[idx];
          mdyy += (double)dy[idx] * y[idx];
        }
      mdy /= m;
      mdyy /= m;
    }
    for (int64_t i = 0; i < num; i++)
      for (int64_t j = 0; j < spatial; j++) {
        int64_t idx = (i * c + k) * spatial + j;
        dx[idx] = (float)((dy[idx] - mdy - y[idx] * mdyy) * s->inv_std[k]);
      }
  }
  return NS_OK;
}

/* Global statistics in place on a 4-D (N, C, ...) blob: an affine map
 * per channel, which a convolution before it can apply. */
static int batchnorm_fuses_as_affine(const ns_layer *l) {
  const batchnorm_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  return s->use_global_stats && l->top[0] == b && b->num_axes >= 2 && b->shape[1] == s->channels;
}

/* (x - mean) / sd = x inv - mean inv, inv = 1 / sd; inv_std kept as the
 * forward keeps it. */
static void batchnorm_affine_compose(const ns_layer *l, float *a, float *b) {
  batchnorm_state *s = l->priv;
  float factor = l->params[2]->data[0];
  float scale = factor == 0.0f ? 0.0f : 1.0f / factor;
  for (int64_t k = 0; k < s->channels; k++) {
    float mean = scale * l->params[0]->data[k], var = scale * l->params[1]->data[k];
    float inv = 1.0f / sqrtf(var + s->eps);
    s->inv_std[k] = inv;
    a[k] *= inv;
    b[k] = b[k] * inv - mean * inv;
  }
}

/* Host of the affine layers after it: global statistics, channels on
 * axis 1, and no backward (which would read the top as its own). */
static int batchnorm_can_host(const ns_layer *l) {
  const batchnorm_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  return s->use_global_stats && !l->need_backward && l->n_top == 1 && b->num_axes >= 2 &&
         b->shape[1] == s->channels;
}

const ns_layer_ops ns_batchnorm_ops = {
    .type = "BatchNorm",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = batchnorm_setup,
    .reshape = batchnorm_reshape,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .destroy = batchnorm_destroy,
    .params_are_statistics = 1,
    .can_fuse_relu = 1,
    .can_fuse_affine = batchnorm_can_host,
    .fuses_as_affine = batchnorm_fuses_as_affine,
    .affine_compose = batchnorm_affine_compose,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_batchnorm,
};
