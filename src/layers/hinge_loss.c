/* HingeLoss, as Caffe's HingeLossLayer: one-vs-all hinge over the scores
 * x (N, dim...) and labels l (N values, integers in [0, dim)):
 *   t[n, k] = max(0, 1 + d[n, k] x[n, k]),  d = -1 at k = l[n], else +1
 *   L1 (default):  loss = sum t / N        L2:  loss = sum t^2 / N
 * (hinge_loss_param.norm).  A scalar top.  Backward into the scores:
 *   L1: d sign(t) w / N,   L2: 2 d t w / N     (w: the top's diff)
 * Caffe keeps t in the bottom's diff between forward and backward; we
 * keep it in the layer.  A label out of range is an error (Caffe reads
 * out of bounds). */
#include "core/layer.h"

typedef struct hinge_state {
  int l2;
  int64_t num, dim;
  float *t;
  int64_t t_cap;
} hinge_state;

static ns_status hinge_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__HingeLossParameter *p = l->param->hinge_loss_param;
  hinge_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  Caffe__HingeLossParameter__Norm norm =
      p && p->has_norm ? p->norm : CAFFE__HINGE_LOSS_PARAMETER__NORM__L1;
  if (norm != CAFFE__HINGE_LOSS_PARAMETER__NORM__L1 && norm != CAFFE__HINGE_LOSS_PARAMETER__NORM__L2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "hinge_loss_param.norm %d is unknown", (int)norm);
  s->l2 = norm == CAFFE__HINGE_LOSS_PARAMETER__NORM__L2;
  return NS_OK;
}

static void hinge_destroy(ns_ctx *ctx, ns_layer *l) {
  hinge_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->t);
}

static ns_status hinge_reshape(ns_ctx *ctx, ns_layer *l) {
  hinge_state *s = l->priv;
  const ns_blob *x = l->bottom[0], *label = l->bottom[1];
  s->num = x->num_axes ? x->shape[0] : 1;
  if ((label->num_axes ? label->shape[0] : 1) != s->num || label->count != s->num)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "needs one label per item: %lld labels for %lld items",
                         (long long)label->count, (long long)s->num);
  s->dim = s->num ? x->count / s->num : 0;
  if (x->count > s->t_cap) {
    float *p = ns_floats_alloc(ctx, x->count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, s->t);
    s->t = p;
    s->t_cap = x->count;
  }
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (HingeLoss): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Item n's label, checked to be in [0, dim). */
static ns_status hinge_label(ns_ctx *ctx, const ns_layer *l, int64_t n, int64_t *out) {
  const hinge_state *s = l->priv;
  float v = l->bottom[1]->data[n];
  if (!(v > -1 && v < (float)s->dim))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "label %g of item %lld is out of range [0, %lld)",
                         (double)v, (long long)n, (long long)s->dim);
  *out = (int64_t)v; /* truncation, as Caffe's static_cast<int> */
  return NS_OK;
}

static ns_status hinge_forward(ns_ctx *ctx, ns_layer *l) {
  hinge_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  double loss = 0;
  for (int64_t n = 0; n < s->num; n++) {
    int64_t label = 0;
    if (hinge_label(ctx, l, n, &label) != NS_OK) return ctx->status;
    for (int64_t k = 0; k < s->dim; k++) {
      int64_t i = n * s->dim + k;
      float m = 1 + (k == label ? -x[i] : x[i]);
      s->t[i] = m > 0 ? m : 0;
      loss += s->l2 ? (double)s->t[i] * s->t[i] : s->t[i];
    }
  }
  l->top[0]->data[0] = (float)(loss / (double)(s->num ? s->num : 1));
  return NS_OK;
}

static ns_status hinge_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const hinge_state *s = l->priv;
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to label inputs");
  if (!down[0] || !s->num) return NS_OK;
  float w = l->top[0]->diff ? l->top[0]->diff[0] : 1.0f;
  float scale = (s->l2 ? 2 * w : w) / (float)s->num;
  float *dx = l->bottom[0]->diff;
  for (int64_t n = 0; n < s->num; n++) {
    int64_t label = 0;
    if (hinge_label(ctx, l, n, &label) != NS_OK) return ctx->status;
    for (int64_t k = 0; k < s->dim; k++) {
      int64_t i = n * s->dim + k;
      float g = s->l2 ? s->t[i] : (float)(s->t[i] > 0);
      dx[i] = (k == label ? -g : g) * scale;
    }
  }
  return NS_OK;
}

const ns_layer_ops ns_hinge_loss_ops = {
    .type = "HingeLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = hinge_setup,
    .reshape = hinge_reshape,
    .forward = hinge_forward,
    .backward = hinge_backward,
    .destroy = hinge_destroy,
    .is_loss = 1,
};
