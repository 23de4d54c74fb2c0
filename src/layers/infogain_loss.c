/* InfogainLoss, as Caffe's InfogainLossLayer (the post-1.0 form with
 * `axis`, which applies its own softmax): scores x, labels l, and the
 * infogain matrix H (K x K, K = the scores' size on axis) from a third
 * bottom or else the BlobProto file infogain_loss_param.source.
 * With p = softmax(x) over infogain_loss_param.axis (default 1):
 *   loss = -sum over positions of sum_k H[l, k] log(max(p_k, 1e-20)) / norm
 * over the positions whose label is not loss_param.ignore_label; norm by
 * loss_param.normalization (default VALID; the legacy `normalize` is
 * refused, as Caffe does).  Optional second top: p.  Backward:
 *   dx_k = (p_k sum_j H[l, j] - H[l, k]) w / norm   (0 at ignored labels).
 * A label outside [0, K) is an error (Caffe only DCHECKs). */
#include <math.h>
#include <string.h>

#include "core/fileio.h"
#include "core/layer.h"
#include "kernels/softmax_kernel.h"

#define LOG_THRESHOLD 1e-20f          /* Caffe's kLOG_THRESHOLD */
#define INFOGAIN_MAX_FILE (1u << 30) /* bytes of the source BlobProto */

typedef Caffe__LossParameter__NormalizationMode norm_mode;

typedef struct infogain_state {
  int axis_param, has_ignore, ignore_label;
  norm_mode mode;
  int64_t outer, labels, inner;
  float *H; /* from `source`, labels^2 values once checked (NULL: bottom 2) */
  int64_t h_count;
  float *prob, *row_sum;
  int64_t prob_cap, row_cap;
  double norm; /* of the last forward */
} infogain_state;

/* Reads H from a binary BlobProto (float data, or double_data). */
static ns_status read_source(ns_ctx *ctx, ns_layer *l, infogain_state *s, const char *path) {
  unsigned char *bytes = NULL;
  size_t size = 0;
  if (ns_io_read_file(ctx, path, INFOGAIN_MAX_FILE, &bytes, &size) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (InfogainLoss): infogain_loss_param.source: ", l->name);
    return ctx->status;
  }
  Caffe__BlobProto *b = caffe__blob_proto__unpack(&ctx->pb_alloc, size, bytes);
  ns_free(ctx, bytes);
  if (!b)
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "infogain_loss_param.source '%s' is not a BlobProto",
                         path);
  int dbl = b->n_data == 0 && b->n_double_data > 0;
  s->h_count = (int64_t)(dbl ? b->n_double_data : b->n_data);
  s->H = ns_floats_alloc(ctx, s->h_count ? s->h_count : 1);
  if (s->H)
    for (int64_t i = 0; i < s->h_count; i++) s->H[i] = dbl ? (float)b->double_data[i] : b->data[i];
  caffe__blob_proto__free_unpacked(b, &ctx->pb_alloc);
  return s->H ? NS_OK : ctx->status;
}

static ns_status infogain_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__InfogainLossParameter *p = l->param->infogain_loss_param;
  const Caffe__LossParameter *lp = l->param->loss_param;
  infogain_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->axis_param = p && p->has_axis ? p->axis : 1;
  s->has_ignore = lp && lp->has_ignore_label;
  s->ignore_label = s->has_ignore ? lp->ignore_label : 0;
  if (lp && lp->has_normalize)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "loss_param.normalize is deprecated here; use loss_param.normalization");
  s->mode = lp && lp->has_normalization ? lp->normalization
                                        : CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID;
  if (l->n_bottom >= 3) return NS_OK;
  if (!p || !p->source || !*p->source)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "infogain matrix: infogain_loss_param.source or a third bottom is required");
  return read_source(ctx, l, s, p->source);
}

static void infogain_destroy(ns_ctx *ctx, ns_layer *l) {
  infogain_state *s = l->priv;
  if (!s) return;
  ns_floats_free(ctx, s->H);
  ns_floats_free(ctx, s->prob);
  ns_floats_free(ctx, s->row_sum);
}

static ns_status grow(ns_ctx *ctx, float **buf, int64_t *cap, int64_t count) {
  if (count <= *cap) return NS_OK;
  float *p = ns_floats_alloc(ctx, count);
  if (!p) return ctx->status;
  ns_floats_free(ctx, *buf);
  *buf = p;
  *cap = count;
  return NS_OK;
}

static ns_status infogain_reshape(ns_ctx *ctx, ns_layer *l) {
  infogain_state *s = l->priv;
  const ns_blob *x = l->bottom[0];
  int axis = 0;
  if (ns_blob_axis(ctx, x, s->axis_param, "infogain_loss_param.axis", &axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (InfogainLoss): ", l->name);
    return ctx->status;
  }
  s->outer = ns_blob_count_range(x, 0, axis);
  s->labels = x->shape[axis];
  s->inner = ns_blob_count_range(x, axis + 1, x->num_axes);
  if (s->outer * s->inner != l->bottom[1]->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "number of labels must match number of predictions: %lld labels for "
                         "%lld x %lld positions",
                         (long long)l->bottom[1]->count, (long long)s->outer, (long long)s->inner);
  int64_t h_count = l->n_bottom >= 3 ? l->bottom[2]->count : s->h_count;
  if (s->labels > 3037000499LL || h_count != s->labels * s->labels)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the infogain matrix has %lld values; needs %lld x %lld",
                         (long long)h_count, (long long)s->labels, (long long)s->labels);
  if (grow(ctx, &s->prob, &s->prob_cap, x->count) != NS_OK ||
      grow(ctx, &s->row_sum, &s->row_cap, s->labels) != NS_OK)
    return ctx->status;
  if (ns_blob_reshape(ctx, l->top[0], 0, NULL) != NS_OK ||
      (l->n_top > 1 && ns_blob_reshape_like(ctx, l->top[1], x) != NS_OK)) {
    ns_error_prefix(ctx, "layer '%s' (InfogainLoss): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static const float *infogain_matrix(const ns_layer *l) {
  const infogain_state *s = l->priv;
  return l->n_bottom >= 3 ? l->bottom[2]->data : s->H;
}

/* The label at position (i, j): -1 when ignored, else checked in [0, K). */
static ns_status label_at(ns_ctx *ctx, const ns_layer *l, int64_t pos, int64_t *out) {
  const infogain_state *s = l->priv;
  float v = l->bottom[1]->data[pos];
  if (s->has_ignore && v > -2147483649.0f && v < 2147483648.0f && (int)v == s->ignore_label) {
    *out = -1;
    return NS_OK;
  }
  if (!(v > -1 && v < (float)s->labels))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "label %g out of range [0, %lld)", (double)v,
                         (long long)s->labels);
  *out = (int64_t)v;
  return NS_OK;
}

/* LossLayer's normalizer, never below 1; valid < 0: every position. */
static double normalizer(const infogain_state *s, int64_t valid) {
  double n;
  switch (s->mode) {
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL:
      n = (double)(s->outer * s->inner);
      break;
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID:
      n = (double)valid;
      break;
    case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE:
      n = (double)s->outer;
      break;
    default:
      n = 1;
  }
  return n < 1 ? 1 : n;
}

static ns_status infogain_forward(ns_ctx *ctx, ns_layer *l) {
  infogain_state *s = l->priv;
  const float *H = infogain_matrix(l);
  ns_softmax(s->outer, s->labels, s->inner, l->bottom[0]->data, s->prob, ns_ctx_threads(ctx));
  double loss = 0;
  int64_t valid = 0, dim = s->labels * s->inner;
  for (int64_t i = 0; i < s->outer; i++)
    for (int64_t j = 0; j < s->inner; j++) {
      int64_t label = 0;
      if (label_at(ctx, l, i * s->inner + j, &label) != NS_OK) return ctx->status;
      if (label < 0) continue;
      for (int64_t k = 0; k < s->labels; k++) {
        float p = s->prob[i * dim + k * s->inner + j];
        loss -= (double)H[label * s->labels + k] * log(p > LOG_THRESHOLD ? p : LOG_THRESHOLD);
      }
      valid++;
    }
  s->norm = normalizer(s, valid);
  l->top[0]->data[0] = (float)(loss / s->norm);
  if (l->n_top > 1 && l->bottom[0]->count)
    memcpy(l->top[1]->data, s->prob, (size_t)l->bottom[0]->count * sizeof(float));
  return NS_OK;
}

static ns_status infogain_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  infogain_state *s = l->priv;
  if (down[1]) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to label inputs");
  if (l->n_bottom > 2 && down[2])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the infogain matrix");
  if (!down[0]) return NS_OK;
  const float *H = infogain_matrix(l);
  for (int64_t r = 0; r < s->labels; r++) {
    double sum = 0;
    for (int64_t k = 0; k < s->labels; k++) sum += H[r * s->labels + k];
    s->row_sum[r] = (float)sum;
  }
  float *dx = l->bottom[0]->diff;
  int64_t dim = s->labels * s->inner;
  for (int64_t i = 0; i < s->outer; i++)
    for (int64_t j = 0; j < s->inner; j++) {
      int64_t label = 0;
      if (label_at(ctx, l, i * s->inner + j, &label) != NS_OK) return ctx->status;
      for (int64_t k = 0; k < s->labels; k++) {
        int64_t at = i * dim + k * s->inner + j;
        dx[at] = label < 0 ? 0 : s->prob[at] * s->row_sum[label] - H[label * s->labels + k];
      }
    }
  /* The same count of valid positions as the forward, so its normalizer. */
  float scale = (float)((l->top[0]->diff ? l->top[0]->diff[0] : 1.0f) / s->norm);
  for (int64_t i = 0; i < l->bottom[0]->count; i++) dx[i] *= scale;
  return NS_OK;
}

const ns_layer_ops ns_infogain_loss_ops = {
    .type = "InfogainLoss",
    .min_bottoms = 2,
    .max_bottoms = 3,
    .min_tops = 1,
    .max_tops = 2,
    .setup = infogain_setup,
    .reshape = infogain_reshape,
    .forward = infogain_forward,
    .backward = infogain_backward,
    .destroy = infogain_destroy,
    .is_loss = 1,
};
