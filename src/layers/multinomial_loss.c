/* MultinomialLogisticLoss, as Caffe's MultinomialLogisticLossLayer: the
 * bottom holds probabilities p (N, dim...), the labels (N, 1, 1, 1 or
 * just N) integers in [0, dim):
 *   loss = -sum_n log(max(p[n, l_n], 1e-20)) / N        (a scalar top)
 * Backward: dp[n, l_n] = -w / (N max(p[n, l_n], 1e-20)), 0 elsewhere (w:
 * the top's diff).  A label out of range is an error (Caffe reads out of
 * bounds). */
#include <math.h>

#include "core/layer.h"

#define LOG_THRESHOLD 1e-20f /* Caffe's kLOG_THRESHOLD */

typedef struct mll_state {
  int64_t num, dim;
} mll_state;

static ns_status mll_setup(ns_ctx *ctx, ns_layer *l) {
  l->priv = ns_calloc(ctx, 1, sizeof(mll_state));
  return l->priv ? NS_OK : ctx->status;
}

static ns_status mll_reshape(ns_ctx *ctx, ns_layer *l) {
  mll_state *s = l->priv;
  const ns_blob *p = l->bottom[0], *label = l->bottom[1];
  s->num = p->num_axes ? p->shape[0] : 1;
  /* Caffe: the same first axis, and channels = height = width = 1. */
  if ((label->num_axes ? label->shape[0] : 1) != s->num || label->count != s->num ||
      label->num_axes > 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "needs one label per item: %lld labels for %lld items",
                         (long long)label->count, (long long)s->num);
  s->dim = s->num ? p->count / s->num : 0;
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (MultinomialLogisticLoss): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* The clamped probability of item n's label (its index in *at). */
static ns_status mll_prob(ns_ctx *ctx, const ns_layer *l, int64_t n, int64_t *at, float *prob) {
  const mll_state *s = l->priv;
  float v = l->bottom[1]->data[n];
  if (!(v > -1 && v < (float)s->dim))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "label %g of item %lld is out of range [0, %lld)",
                         (double)v, (long long)n, (long long)s->dim);
  *at = n * s->dim + (int64_t)v;
  float p = l->bottom[0]->data[*at];
  *prob = p > LOG_THRESHOLD ? p : LOG_THRESHOLD; /* std::max: a NaN stays NaN */
  if (p != p) *prob = p;
  return NS_OK;
}

static ns_status mll_forward(ns_ctx *ctx, ns_layer *l) {
  const mll_state *s = l->priv;
  double loss = 0;
  for (int64_t n = 0; n < s->num; n++) {
    int64_t at = 0;
    float p = 0;
    if (mll_prob(ctx, l, n, &at, &p) != NS_OK) return ctx->status;
    loss -= log(p);
  }
  l->top[0]->data[0] = (float)(loss / (double)(s->num ? s->num : 1));
  return NS_OK;
}

static ns_status mll_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const mll_state *s = l->priv;
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to label inputs");
  if (!down[0] || !s->num) return NS_OK;
  float *dp = l->bottom[0]->diff;
  for (int64_t i = 0; i < l->bottom[0]->count; i++) dp[i] = 0;
  float scale = -(l->top[0]->diff ? l->top[0]->diff[0] : 1.0f) / (float)s->num;
  for (int64_t n = 0; n < s->num; n++) {
    int64_t at = 0;
    float p = 0;
    if (mll_prob(ctx, l, n, &at, &p) != NS_OK) return ctx->status;
    dp[at] = scale / p;
  }
  return NS_OK;
}

const ns_layer_ops ns_multinomial_loss_ops = {
    .type = "MultinomialLogisticLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = mll_setup,
    .reshape = mll_reshape,
    .forward = mll_forward,
    .backward = mll_backward,
    .is_loss = 1,
};
