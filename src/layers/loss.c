/* Loss layers, as Caffe's: SoftmaxWithLoss, EuclideanLoss and
 * SigmoidCrossEntropyLoss.  Each writes a scalar top (0 axes); backward
 * scales its gradient by that top's diff (the loss weight the net put
 * there), divided by the same normalizer as the forward. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/layer.h"
#include "kernels/softmax_kernel.h"

typedef Caffe__LossParameter__NormalizationMode norm_mode;

/* LossLayer::GetNormalizer: never below 1.  valid < 0: count every item. */
static double normalizer(norm_mode mode, int64_t outer, int64_t inner, int64_t valid) {
  double n;
  switch (mode) {
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL:
      n = (double)(outer * inner);
      break;
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID:
      n = valid < 0 ? (double)(outer * inner) : (double)valid;
      break;
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE:
      n = (double)outer;
      break;
    default:
      n = 1;
  }
  return n < 1 ? 1 : n;
}

/* normalization, else the legacy `normalize` (true: VALID, false:
 * BATCH_SIZE), else the layer's default. */
static norm_mode loss_normalization(const ns_layer *l, norm_mode dflt) {
  const Caffe__LossParameter *p = l->param->loss_param;
  if (p && p->has_normalization) return p->normalization;
  if (p && p->has_normalize)
    return p->normalize ? CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID
                        : CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE;
  return dflt;
}

static ns_status scalar_top(ns_ctx *ctx, ns_layer *l) {
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
    return ctx->status;
  }
  return NS_OK;
}

/* Caffe's static_cast<int>(label), without the undefined behaviour of a
 * NaN or huge value (those are no label). */
static int as_label(float v, int *out) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return 0;
  *out = (int)v;
  return 1;
}

static int is_ignored(int has_ignore, int ignore_label, float v) {
  int c;
  return has_ignore && as_label(v, &c) && c == ignore_label;
}

static float top_weight(const ns_layer *l) { return l->top[0]->diff ? l->top[0]->diff[0] : 1.0f; }

/* ---- SoftmaxWithLoss -------------------------------------------------- */

typedef struct softmax_loss {
  int axis_param, axis;
  int has_ignore;
  int ignore_label;
  norm_mode mode;
  int64_t outer, channels, inner;
  float *prob;
  int64_t prob_cap;
  double norm; /* of the last forward */
} softmax_loss;

static ns_status swl_setup(ns_ctx *ctx, ns_layer *l) {
  softmax_loss *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const Caffe__SoftmaxParameter *sp = l->param->softmax_param;
  const Caffe__LossParameter *lp = l->param->loss_param;
  s->axis_param = sp && sp->has_axis ? sp->axis : 1;
  s->has_ignore = lp && lp->has_ignore_label;
  s->ignore_label = s->has_ignore ? lp->ignore_label : 0;
  s->mode = loss_normalization(l, CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID);
  return NS_OK;
}

static void swl_destroy(ns_ctx *ctx, ns_layer *l) {
  softmax_loss *s = l->priv;
  if (s) ns_floats_free(ctx, s->prob);
}

static ns_status swl_reshape(ns_ctx *ctx, ns_layer *l) {
  softmax_loss *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (ns_blob_axis(ctx, b, s->axis_param, "softmax_param.axis", &s->axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (SoftmaxWithLoss): ", l->name);
    return ctx->status;
  }
  s->outer = ns_blob_count_range(b, 0, s->axis);
  s->channels = b->shape[s->axis];
  s->inner = ns_blob_count_range(b, s->axis + 1, b->num_axes);
  if (s->outer * s->inner != l->bottom[1]->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "number of labels must match number of predictions: %lld labels for "
                         "%lld x %lld positions",
                         (long long)l->bottom[1]->count, (long long)s->outer, (long long)s->inner);
  if (b->count > s->prob_cap) {
    float *p = ns_floats_alloc(ctx, b->count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, s->prob);
    s->prob = p;
    s->prob_cap = b->count;
  }
  if (scalar_top(ctx, l) != NS_OK) return ctx->status;
  if (l->n_top > 1 && ns_blob_reshape_like(ctx, l->top[1], b) != NS_OK) return ctx->status;
  return NS_OK;
}

static ns_status label_at(ns_ctx *ctx, const ns_layer *l, float v, int64_t channels, int *out) {
  int label = -1;
  if (!as_label(v, &label) || label < 0 || label >= channels)
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "label %g out of range [0, %lld)", (double)v,
                         (long long)channels);
  *out = label;
  return NS_OK;
}

static ns_status swl_forward(ns_ctx *ctx, ns_layer *l) {
  softmax_loss *s = l->priv;
  const float *label = l->bottom[1]->data;
  ns_softmax(s->outer, s->channels, s->inner, l->bottom[0]->data, s->prob, ns_ctx_threads(ctx));
  double loss = 0;
  int64_t valid = 0, dim = s->channels * s->inner;
  for (int64_t i = 0; i < s->outer; i++)
    for (int64_t j = 0; j < s->inner; j++) {
      float v = label[i * s->inner + j];
      if (is_ignored(s->has_ignore, s->ignore_label, v)) continue;
      int c = 0;
      if (label_at(ctx, l, v, s->channels, &c) != NS_OK) return ctx->status;
      float p = s->prob[i * dim + c * s->inner + j];
      loss -= log(p > FLT_MIN ? p : FLT_MIN);
      valid++;
    }
  s->norm = normalizer(s->mode, s->outer, s->inner, valid);
  l->top[0]->data[0] = (float)(loss / s->norm);
  /* (no prob buffer for an empty batch: nothing to copy) */
  if (l->n_top > 1 && l->bottom[0]->count)
    memcpy(l->top[1]->data, s->prob, (size_t)l->bottom[0]->count * sizeof(float));
  return NS_OK;
}

static ns_status swl_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  softmax_loss *s = l->priv;
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to label inputs");
  if (!down[0]) return NS_OK;
  float *d = l->bottom[0]->diff;
  const float *label = l->bottom[1]->data;
  int64_t dim = s->channels * s->inner;
  if (l->bottom[0]->count) memcpy(d, s->prob, (size_t)l->bottom[0]->count * sizeof(float));
  for (int64_t i = 0; i < s->outer; i++)
    for (int64_t j = 0; j < s->inner; j++) {
      float v = label[i * s->inner + j];
      if (is_ignored(s->has_ignore, s->ignore_label, v)) {
        for (int64_t c = 0; c < s->channels; c++) d[i * dim + c * s->inner + j] = 0;
        continue;
      }
      int c = 0;
      if (label_at(ctx, l, v, s->channels, &c) != NS_OK) return ctx->status;
      d[i * dim + c * s->inner + j] -= 1;
    }
  float scale = (float)(top_weight(l) / s->norm);
  for (int64_t k = 0; k < l->bottom[0]->count; k++) d[k] *= scale;
  return NS_OK;
}

const ns_layer_ops ns_softmax_loss_ops = {
    .type = "SoftmaxWithLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 2,
    .setup = swl_setup,
    .reshape = swl_reshape,
    .forward = swl_forward,
    .backward = swl_backward,
    .destroy = swl_destroy,
    .is_loss = 1,
};

/* ---- EuclideanLoss: sum (a - b)^2 / (2 N), N = the first axis --------- */

typedef struct euclid {
  float *diff;
  int64_t cap;
} euclid;

static ns_status euclid_setup(ns_ctx *ctx, ns_layer *l) {
  l->priv = ns_calloc(ctx, 1, sizeof(euclid));
  return l->priv ? NS_OK : ctx->status;
}

static void euclid_destroy(ns_ctx *ctx, ns_layer *l) {
  euclid *e = l->priv;
  if (e) ns_floats_free(ctx, e->diff);
}

static int64_t first_dim(const ns_blob *b) { return b->num_axes > 0 ? b->shape[0] : 1; }

static ns_status euclid_reshape(ns_ctx *ctx, ns_layer *l) {
  euclid *e = l->priv;
  const ns_blob *a = l->bottom[0], *b = l->bottom[1];
  if (ns_blob_count_range(a, 1, a->num_axes) != ns_blob_count_range(b, 1, b->num_axes) ||
      a->count != b->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "inputs must have the same dimension (%lld and %lld)",
                         (long long)a->count, (long long)b->count);
  if (a->count > e->cap) {
    float *p = ns_floats_alloc(ctx, a->count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, e->diff);
    e->diff = p;
    e->cap = a->count;
  }
  return scalar_top(ctx, l);
}

static ns_status euclid_forward(ns_ctx *ctx, ns_layer *l) {
  euclid *e = l->priv;
  const ns_blob *a = l->bottom[0], *b = l->bottom[1];
  double sum = 0;
  for (int64_t i = 0; i < a->count; i++) {
    e->diff[i] = a->data[i] - b->data[i];
    sum += (double)e->diff[i] * e->diff[i];
  }
  int64_t n = first_dim(a);
  l->top[0]->data[0] = (float)(sum / (n > 0 ? (double)n : 1.0) / 2);
  return NS_OK;
}

static ns_status euclid_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  euclid *e = l->priv;
  int64_t n = first_dim(l->bottom[0]);
  for (int i = 0; i < 2; i++) {
    if (!down[i]) continue;
    float alpha = (i == 0 ? 1.0f : -1.0f) * top_weight(l) / (float)(n > 0 ? n : 1);
    float *d = l->bottom[i]->diff;
    for (int64_t k = 0; k < l->bottom[i]->count; k++) d[k] = alpha * e->diff[k];
  }
  return NS_OK;
}

const ns_layer_ops ns_euclidean_loss_ops = {
    .type = "EuclideanLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = euclid_setup,
    .reshape = euclid_reshape,
    .forward = euclid_forward,
    .backward = euclid_backward,
    .destroy = euclid_destroy,
    .is_loss = 1,
};

/* ---- SigmoidCrossEntropyLoss ----------------------------------------- */

typedef struct sce {
  int has_ignore, ignore_label;
  norm_mode mode;
  double norm;
} sce;

static ns_status sce_setup(ns_ctx *ctx, ns_layer *l) {
  sce *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const Caffe__LossParameter *lp = l->param->loss_param;
  s->has_ignore = lp && lp->has_ignore_label;
  s->ignore_label = s->has_ignore ? lp->ignore_label : 0;
  s->mode = loss_normalization(l, CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE);
  return NS_OK;
}

static ns_status sce_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->bottom[0]->count != l->bottom[1]->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "inputs must have the same count (%lld and %lld)",
                         (long long)l->bottom[0]->count, (long long)l->bottom[1]->count);
  return scalar_top(ctx, l);
}

static ns_status sce_forward(ns_ctx *ctx, ns_layer *l) {
  sce *s = l->priv;
  const ns_blob *in = l->bottom[0];
  const float *x = in->data, *t = l->bottom[1]->data;
  double loss = 0;
  int64_t valid = 0;
  for (int64_t i = 0; i < in->count; i++) {
    if (is_ignored(s->has_ignore, s->ignore_label, t[i])) continue;
    /* Caffe's stable form of -(t log p + (1 - t) log (1 - p)). */
    double xi = x[i], pos = xi >= 0;
    loss -= xi * (t[i] - pos) - log(1 + exp(xi - 2 * xi * pos));
    valid++;
  }
  int64_t outer = first_dim(in);
  s->norm = normalizer(s->mode, outer, outer ? in->count / outer : 0, valid);
  l->top[0]->data[0] = (float)(loss / s->norm);
  return NS_OK;
}

static ns_status sce_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  sce *s = l->priv;
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to label inputs");
  if (!down[0]) return NS_OK;
  const ns_blob *in = l->bottom[0];
  const float *x = in->data, *t = l->bottom[1]->data;
  float *d = l->bottom[0]->diff;
  float scale = (float)(top_weight(l) / s->norm);
  for (int64_t i = 0; i < in->count; i++) {
    if (is_ignored(s->has_ignore, s->ignore_label, t[i])) {
      d[i] = 0;
      continue;
    }
    d[i] = scale * (float)(1.0 / (1.0 + exp(-(double)x[i])) - t[i]);
  }
  return NS_OK;
}

const ns_layer_ops ns_sigmoid_ce_loss_ops = {
    .type = "SigmoidCrossEntropyLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = sce_setup,
    .reshape = sce_reshape,
    .forward = sce_forward,
    .backward = sce_backward,
    .is_loss = 1,
};
