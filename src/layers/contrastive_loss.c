/* ContrastiveLoss, as Caffe's ContrastiveLossLayer: bottoms a and b (N,
 * C, 1, 1) and the similarity y (N, 1, 1, 1); d2 = ||a_n - b_n||^2.
 *   y_n != 0 (similar):  d2
 *   dissimilar, current:  max(margin - sqrt(d2), 0)^2
 *   dissimilar, legacy_version:  max(margin - d2, 0)
 *   loss = sum of those / (2 N)       (margin default 1; a scalar top)
 * y is read as Caffe's static_cast<int>, so 0.5 counts as dissimilar.
 * Backward into a (and the negative into b), w the top's diff, diff = a - b:
 *   similar: w diff / N;  dissimilar, where the hinge is active:
 *   legacy: -w diff / N;  current: -w (margin - d) / (d + 1e-4) diff / N
 * (Caffe's 1e-4 keeps d = 0 finite).  Both a and b get gradients. */
#include <math.h>

#include "core/layer.h"

typedef struct contrastive_state {
  float margin;
  int legacy;
  int64_t num, channels;
  float *diff, *dist_sq; /* a - b (N, C) and d2 (N), from the last forward */
  int64_t diff_cap, dist_cap;
} contrastive_state;

static ns_status contrastive_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ContrastiveLossParameter *p = l->param->contrastive_loss_param;
  contrastive_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->margin = p && p->has_margin ? p->margin : 1.0f;
  s->legacy = p && p->has_legacy_version ? p->legacy_version : 0;
  return NS_OK;
}

static void contrastive_destroy(ns_ctx *ctx, ns_layer *l) {
  contrastive_state *s = l->priv;
  if (!s) return;
  ns_floats_free(ctx, s->diff);
  ns_floats_free(ctx, s->dist_sq);
}

/* Caffe's LegacyShape: axis i of a blob of at most 4 axes, 1 past its end. */
static int64_t legacy_dim(const ns_blob *b, int i) { return i < b->num_axes ? b->shape[i] : 1; }

static ns_status grow(ns_ctx *ctx, float **buf, int64_t *cap, int64_t count) {
  if (count <= *cap) return NS_OK;
  float *p = ns_floats_alloc(ctx, count);
  if (!p) return ctx->status;
  ns_floats_free(ctx, *buf);
  *buf = p;
  *cap = count;
  return NS_OK;
}

static ns_status contrastive_reshape(ns_ctx *ctx, ns_layer *l) {
  contrastive_state *s = l->priv;
  const ns_blob *a = l->bottom[0], *b = l->bottom[1], *y = l->bottom[2];
  for (int i = 0; i < 3; i++)
    if (l->bottom[i]->num_axes > 4)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom %d has %d axes; at most 4", i,
                           l->bottom[i]->num_axes);
  s->num = legacy_dim(a, 0);
  s->channels = legacy_dim(a, 1);
  if (legacy_dim(b, 1) != s->channels || legacy_dim(a, 2) != 1 || legacy_dim(a, 3) != 1 ||
      legacy_dim(b, 2) != 1 || legacy_dim(b, 3) != 1 || b->count != a->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "the two inputs must both be (N, C, 1, 1): %lld and %lld values",
                         (long long)a->count, (long long)b->count);
  if (legacy_dim(y, 0) != s->num || y->count != s->num)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "the similarity input must be (N, 1, 1, 1): %lld values for %lld pairs",
                         (long long)y->count, (long long)s->num);
  if (grow(ctx, &s->diff, &s->diff_cap, a->count) != NS_OK ||
      grow(ctx, &s->dist_sq, &s->dist_cap, s->num) != NS_OK)
    return ctx->status;
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (ContrastiveLoss): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* static_cast<int>(y) != 0, without undefined behaviour for huge or NaN y
 * (those count as similar: nonzero). */
static int is_similar(float y) { return !(y > -1 && y < 1); }

static ns_status contrastive_forward(ns_ctx *ctx, ns_layer *l) {
  contrastive_state *s = l->priv;
  const float *a = l->bottom[0]->data, *b = l->bottom[1]->data, *y = l->bottom[2]->data;
  double loss = 0;
  for (int64_t n = 0; n < s->num; n++) {
    double d2 = 0;
    for (int64_t c = 0; c < s->channels; c++) {
      int64_t i = n * s->channels + c;
      s->diff[i] = a[i] - b[i];
      d2 += (double)s->diff[i] * s->diff[i];
    }
    s->dist_sq[n] = (float)d2;
    if (is_similar(y[n])) {
      loss += s->dist_sq[n];
    } else if (s->legacy) {
      loss += fmax(s->margin - s->dist_sq[n], 0.0);
    } else {
      double m = fmax(s->margin - sqrt(s->dist_sq[n]), 0.0);
      loss += m * m;
    }
  }
  l->top[0]->data[0] = (float)(loss / (double)(s->num ? s->num : 1) / 2);
  return NS_OK;
}

/* The factor of diff in pair n's gradient into a, before the 1 / N. */
static float pair_factor(const contrastive_state *s, int64_t n, float similar_y, float w) {
  if (is_similar(similar_y)) return w;
  if (s->legacy) return s->margin - s->dist_sq[n] > 0 ? -w : 0;
  float d = sqrtf(s->dist_sq[n]), mdist = s->margin - d;
  return mdist > 0 ? -w * mdist / (d + 1e-4f) : 0;
}

static ns_status contrastive_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const contrastive_state *s = l->priv;
  if (down[2])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the similarity input");
  float w = l->top[0]->diff ? l->top[0]->diff[0] : 1.0f;
  const float *y = l->bottom[2]->data;
  for (int i = 0; i < 2; i++) {
    if (!down[i]) continue;
    float sign_over_n = (i == 0 ? 1.0f : -1.0f) / (float)(s->num ? s->num : 1);
    float *dx = l->bottom[i]->diff;
    for (int64_t n = 0; n < s->num; n++) {
      float f = pair_factor(s, n, y[n], w) * sign_over_n;
      for (int64_t c = 0; c < s->channels; c++)
        dx[n * s->channels + c] = f * s->diff[n * s->channels + c];
    }
  }
  return NS_OK;
}

const ns_layer_ops ns_contrastive_loss_ops = {
    .type = "ContrastiveLoss",
    .min_bottoms = 3,
    .max_bottoms = 3,
    .min_tops = 1,
    .max_tops = 1,
    .setup = contrastive_setup,
    .reshape = contrastive_reshape,
    .forward = contrastive_forward,
    .backward = contrastive_backward,
    .destroy = contrastive_destroy,
    .is_loss = 1,
};
