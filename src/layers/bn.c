/* BN, the forks' scale-shift batch normalisation, two forms under one
 * type name, told apart by their bn_param fields.
 *
 * PSPNet's (hszhao/PSPNet src/caffe/layers/bn_layer.cpp; bn_param's
 * slope_filler, bias_filler, momentum 0.9, eps 1e-5, frozen): four params
 * (1, C, 1, 1): slope, bias, mean, variance (the variance starts at 1 when
 * frozen, else 0).  y = slope (x - mean) (var + eps)^-1/2 + bias per
 * channel.  In TEST, or when frozen, mean and var are the stored ones;
 * otherwise the batch's (over N, H, W; the variance biased), and each
 * forward moves the stored ones: stored = (1 - momentum) batch +
 * momentum stored.
 *
 * SegNet's (alexgkendall/caffe-segnet bn_layer.cpp; bn_param's
 * scale_filler, shift_filler, bn_mode, or segnet_bn_param from a binary
 * file): two params (1, C, 1, 1), scale and shift.  bn_mode INFERENCE:
 * y = scale x + shift (statistics folded in).  LEARN (the default, also
 * in TEST): the batch's mean and E[x^2] - mean^2 with eps 1e-9, y =
 * scale (x - mean) / sqrt(var + eps) + shift.
 *
 * Forward only: training through BN is refused (no backward).  In place
 * allowed: each value is read once before it is written. */
#include <math.h>

#include "core/filler.h"
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct bn_state {
  int segnet, segnet_inference, frozen;
  float momentum, eps;
  int64_t channels;
  float *mean, *inv_std; /* [channels], this forward's */
} bn_state;

static void bn_destroy(ns_ctx *ctx, ns_layer *l) {
  bn_state *s = l->priv;
  if (s) ns_free(ctx, s->mean);
}

static int is_segnet(const Caffe__LayerParameter *lp) {
  const Caffe__BNParameter *p = lp->bn_param;
  return lp->segnet_bn_param || (p && (p->scale_filler || p->shift_filler || p->has_bn_mode));
}

static ns_status add_filled(ns_ctx *ctx, ns_layer *l, const Caffe__FillerParameter *f,
                            float value) {
  const int64_t shape[4] = {1, ((bn_state *)l->priv)->channels, 1, 1};
  if (ns_layer_add_param(ctx, l, 4, shape) != NS_OK) return ctx->status;
  ns_blob *b = l->params[l->n_params - 1];
  if (f) return ns_filler_fill(ctx, b, f, l->rng);
  for (int64_t i = 0; i < b->count; i++) b->data[i] = value;
  return NS_OK;
}

static ns_status bn_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__BNParameter defaults = CAFFE__BNPARAMETER__INIT;
  const Caffe__BNParameter *p = l->param->bn_param ? l->param->bn_param : &defaults;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2 || b->shape[1] < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must be (N, C, ...) with C >= 1",
                         b->name);
  bn_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->channels = b->shape[1];
  if (!(s->mean = ns_calloc(ctx, 2 * (size_t)s->channels, sizeof(float)))) return ctx->status;
  s->inv_std = s->mean + s->channels;
  s->segnet = is_segnet(l->param);
  if (s->segnet) {
    const Caffe__SegNetBNParameter *q = l->param->segnet_bn_param;
    Caffe__BNParameter__BNMode mode = q ? q->bn_mode : p->bn_mode;
    s->segnet_inference = mode == CAFFE__BNPARAMETER__BNMODE__INFERENCE;
    s->eps = 1e-9f;
    /* An absent filler is Caffe's default: constant 0. */
    if (add_filled(ctx, l, q ? q->scale_filler : p->scale_filler, 0) != NS_OK ||
        add_filled(ctx, l, q ? q->shift_filler : p->shift_filler, 0) != NS_OK)
      return ctx->status;
    return NS_OK;
  }
  s->frozen = p->frozen;
  s->momentum = p->momentum;
  s->eps = p->eps;
  if (add_filled(ctx, l, p->slope_filler, 0) != NS_OK ||
      add_filled(ctx, l, p->bias_filler, 0) != NS_OK || add_filled(ctx, l, NULL, 0) != NS_OK ||
      add_filled(ctx, l, NULL, s->frozen ? 1.0f : 0.0f) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status bn_reshape(ns_ctx *ctx, ns_layer *l) {
  const bn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2 || b->shape[1] != s->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must keep its %lld channels", b->name,
                         (long long)s->channels);
  if (l->top[0] == b) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (BN): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* The batch's per-channel mean and variance over (N, spatial): PSPNet's
 * E[(x - mean)^2], or SegNet's E[x^2] - mean^2. */
static void batch_stats(const ns_blob *b, int64_t channels, int segnet, float *mean, float *var) {
  const int64_t items = b->shape[0], plane = b->count / (items * channels);
  const double m = (double)items * (double)plane;
  for (int64_t c = 0; c < channels; c++) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < items; n++)
      for (const float *x = b->data + (n * channels + c) * plane, *e = x + plane; x < e; x++)
        sum += *x;
    mean[c] = (float)(sum / m);
    for (int64_t n = 0; n < items; n++)
      for (const float *x = b->data + (n * channels + c) * plane, *e = x + plane; x < e; x++)
        sq += segnet ? (double)*x * *x : ((double)*x - mean[c]) * ((double)*x - mean[c]);
    var[c] = segnet ? (float)(sq / m - (double)mean[c] * mean[c]) : (float)(sq / m);
  }
}

static ns_status bn_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  bn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  const float *scale = l->params[0]->data, *shift = l->params[1]->data;
  const int64_t C = s->channels, items = b->shape[0];
  const int64_t plane = items ? b->count / (items * C) : 0;
  if (!b->count) return NS_OK;
  if (s->segnet_inference) {
    for (int64_t c = 0; c < C; c++) s->mean[c] = 0, s->inv_std[c] = 1;
  } else if (s->segnet || (!s->frozen && ns_layer_phase_train(l))) {
    batch_stats(b, C, s->segnet, s->mean, s->inv_std);
    if (!s->segnet) /* PSPNet's moving averages, before eps is added */
      for (int64_t c = 0; c < C; c++) {
        float *m = l->params[2]->data, *v = l->params[3]->data;
        m[c] = (1 - s->momentum) * s->mean[c] + s->momentum * m[c];
        v[c] = (1 - s->momentum) * s->inv_std[c] + s->momentum * v[c];
      }
    for (int64_t c = 0; c < C; c++) s->inv_std[c] = powf(s->inv_std[c] + s->eps, -0.5f);
  } else {
    for (int64_t c = 0; c < C; c++) {
      s->mean[c] = l->params[2]->data[c];
      s->inv_std[c] = powf(l->params[3]->data[c] + s->eps, -0.5f);
    }
  }
  for (int64_t n = 0; n < items; n++)
    for (int64_t c = 0; c < C; c++) {
      const float *x = b->data + (n * C + c) * plane;
      float *y = l->top[0]->data + (n * C + c) * plane;
      for (int64_t k = 0; k < plane; k++)
        y[k] = (x[k] - s->mean[c]) * s->inv_std[c] * scale[c] + shift[c];
    }
  return NS_OK;
}

/* A pointwise affine map per channel: 2 flops per value. */
static double bn_flops(const ns_layer *l) { return 2.0 * (double)l->top[0]->count; }

const ns_layer_ops ns_bn_ops = {
    .type = "BN",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = bn_setup,
    .reshape = bn_reshape,
    .forward = bn_forward,
    .destroy = bn_destroy,
    .flops = bn_flops,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_bn,
};
