/* Accuracy, as Caffe's: the fraction of positions whose label is among
 * the top_k scores along `axis` (ties count against: the label's score
 * must beat all but top_k - 1 others, as Caffe counts >=); labels equal
 * to ignore_label are skipped.  An optional second top gives the accuracy
 * per class.  No gradient. */
#include <string.h>

#include "core/layer.h"

typedef struct accuracy {
  int top_k, axis_param, axis;
  int has_ignore, ignore_label;
  int64_t outer, channels, inner;
  int64_t *per_class; /* labels seen per class */
  int64_t per_class_cap;
} accuracy;

static ns_status acc_setup(ns_ctx *ctx, ns_layer *l) {
  accuracy *a = ns_calloc(ctx, 1, sizeof *a);
  if (!a) return ctx->status;
  l->priv = a;
  const Caffe__AccuracyParameter *p = l->param->accuracy_param;
  a->top_k = p && p->has_top_k ? (int)p->top_k : 1;
  a->axis_param = p && p->has_axis ? p->axis : 1;
  a->has_ignore = p && p->has_ignore_label;
  a->ignore_label = a->has_ignore ? p->ignore_label : 0;
  if (a->top_k < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "top_k must be at least 1");
  return NS_OK;
}

static void acc_destroy(ns_ctx *ctx, ns_layer *l) {
  accuracy *a = l->priv;
  if (a) ns_free(ctx, a->per_class);
}

static ns_status acc_reshape(ns_ctx *ctx, ns_layer *l) {
  accuracy *a = l->priv;
  const ns_blob *b = l->bottom[0];
  if (ns_blob_axis(ctx, b, a->axis_param, "accuracy_param.axis", &a->axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Accuracy): ", l->name);
    return ctx->status;
  }
  a->outer = ns_blob_count_range(b, 0, a->axis);
  a->channels = b->shape[a->axis];
  a->inner = ns_blob_count_range(b, a->axis + 1, b->num_axes);
  if (a->top_k > a->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "top_k %d exceeds the %lld classes", a->top_k,
                         (long long)a->channels);
  if (a->outer * a->inner != l->bottom[1]->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "number of labels must match number of predictions: %lld labels for "
                         "%lld x %lld positions",
                         (long long)l->bottom[1]->count, (long long)a->outer, (long long)a->inner);
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK) return ctx->status;
  if (l->n_top > 1) {
    int64_t shape[1] = {a->channels};
    if (ns_blob_reshape(ctx, l->top[1], 1, shape) != NS_OK) return ctx->status;
    if (a->channels > a->per_class_cap) {
      int64_t *pc = ns_calloc(ctx, (size_t)a->channels, sizeof *pc);
      if (!pc) return ctx->status;
      ns_free(ctx, a->per_class);
      a->per_class = pc;
      a->per_class_cap = a->channels;
    }
  }
  return NS_OK;
}

static ns_status acc_forward(ns_ctx *ctx, ns_layer *l) {
  accuracy *a = l->priv;
  const float *x = l->bottom[0]->data, *label = l->bottom[1]->data;
  float *per = l->n_top > 1 ? l->top[1]->data : NULL;
  if (per) {
    memset(per, 0, (size_t)a->channels * sizeof *per);
    memset(a->per_class, 0, (size_t)a->channels * sizeof *a->per_class);
  }
  int64_t dim = a->channels * a->inner, hits = 0, count = 0;
  for (int64_t i = 0; i < a->outer; i++)
    for (int64_t j = 0; j < a->inner; j++) {
      float v = label[i * a->inner + j];
      /* (int) of a NaN or huge value is undefined: those are no label */
      int valid = v > -2147483648.0f && v < 2147483648.0f;
      int c = valid ? (int)v : -1;
      if (valid && a->has_ignore && c == a->ignore_label) continue;
      if (!valid || c < 0 || c >= a->channels)
        return ns_layer_fail(ctx, l, NS_ERR_INPUT, "label %g out of range [0, %lld)", (double)v,
                             (long long)a->channels);
      if (per) a->per_class[c]++;
      float truth = x[i * dim + c * a->inner + j];
      int better = -1; /* the true class counts itself */
      for (int64_t k = 0; k < a->channels && better < a->top_k; k++)
        better += x[i * dim + k * a->inner + j] >= truth;
      if (better < a->top_k) {
        hits++;
        if (per) per[c] += 1;
      }
      count++;
    }
  l->top[0]->data[0] = count ? (float)((double)hits / (double)count) : 0.0f;
  if (per)
    for (int64_t c = 0; c < a->channels; c++)
      per[c] = a->per_class[c] ? per[c] / (float)a->per_class[c] : 0.0f;
  return NS_OK;
}

const ns_layer_ops ns_accuracy_ops = {
    .type = "Accuracy",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 2,
    .setup = acc_setup,
    .reshape = acc_reshape,
    .forward = acc_forward,
    .destroy = acc_destroy,
};
