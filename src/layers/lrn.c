/* LRN, as Caffe's, on a [num, channels, height, width] bottom:
 *   ACROSS_CHANNELS: y = x (k + alpha/n sum x^2)^-beta over the n
 *     channels centred on each one (zero padded);
 *   WITHIN_CHANNEL:  y = x (1 + alpha avg x^2)^-beta over the n x n
 *     window centred on each pixel (zero padded; k unused, as in Caffe).
 * local_size n must be odd.  In place works. */
#include <limits.h>
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/lrn_kernel.h"

typedef struct lrn_state {
  int within, size;
  float alpha, beta, k;
} lrn_state;

static ns_status lrn_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__LRNParameter defaults = CAFFE__LRNPARAMETER__INIT;
  const Caffe__LRNParameter *p = l->param->lrn_param;
  if (!p) p = &defaults;
  lrn_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  uint32_t size = p->has_local_size ? p->local_size : 5;
  s->alpha = p->has_alpha ? p->alpha : 1.0f;
  s->beta = p->has_beta ? p->beta : 0.75f;
  s->k = p->has_k ? p->k : 1.0f;
  int region = p->has_norm_region ? (int)p->norm_region : 0;
  if (region != CAFFE__LRNPARAMETER__NORM_REGION__ACROSS_CHANNELS &&
      region != CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "lrn_param.norm_region %d is unknown", region);
  s->within = region == CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL;
  if (size % 2 != 1 || size > INT_MAX / 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "lrn_param.local_size %u must be odd", size);
  s->size = (int)size;
  return NS_OK;
}

static ns_status lrn_reshape(ns_ctx *ctx, ns_layer *l) {
  const lrn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  char buf[128];
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s must have 4 axes (num, channels, height, width)", b->name,
                         ns_shape_str(b->shape, b->num_axes, buf, sizeof buf));
  /* Scratch: the scale of one item, or x^2 and its average for all. */
  int64_t scratch;
  if (!ns_mul_i64(s->within ? b->count : b->count / (b->shape[0] ? b->shape[0] : 1),
                  s->within ? 2 : 1, &scratch) ||
      ns_check_tensor_size(ctx, scratch, "LRN scratch") != NS_OK) {
    if (ctx->status == NS_OK) ns_fail(ctx, NS_ERR_NOMEM, "LRN scratch is too large");
    ns_error_prefix(ctx, "layer '%s' (LRN): ", l->name);
    return ctx->status;
  }
  if (l->top[0] != b && ns_blob_reshape_like(ctx, l->top[0], b) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (LRN): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status lrn_forward(ns_ctx *ctx, ns_layer *l) {
  const lrn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int64_t num = b->shape[0], channels = b->shape[1], h = b->shape[2], w = b->shape[3];
  int threads = ns_ctx_threads(ctx);
  if (b->count == 0) return NS_OK;
  if (s->within) {
    float *scratch = ns_layer_scratch(ctx, l, 2 * b->count);
    if (!scratch) return ctx->status;
    ns_lrn_within(num * channels, h, w, s->size, s->alpha, s->beta, b->data, l->top[0]->data,
                  scratch, threads);
    return NS_OK;
  }
  float *scratch = ns_layer_scratch(ctx, l, ns_lrn_across_scratch(channels, threads));
  if (!scratch) return ctx->status;
  ns_lrn_across(num, channels, h * w, s->size, s->alpha, s->beta, s->k, b->data,
                l->top[0]->data, scratch, threads);
  return NS_OK;
}

/* Backward, as Caffe's LRN (both regions have the same form):
 *   scale_j = k + alpha / N sum_{i in win(j)} x_i^2   (N = n, or n^2 within)
 *   dx_j = dy_j scale_j^-beta
 *          - 2 alpha beta / N x_j sum_{i: j in win(i)} dy_i y_i / scale_i
 * (windows are centred, so j in win(i) iff i in win(j)).  It needs the
 * bottom, so in place has no backward. */
static ns_status lrn_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const lrn_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (!down[0] || b->count == 0) return NS_OK;
  if (l->top[0] == b)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "no backward in place (it needs the input)");
  int64_t num = b->shape[0], channels = b->shape[1], h = b->shape[2], w = b->shape[3];
  int64_t plane = h * w, half = s->size / 2;
  double n_win = s->within ? (double)s->size * s->size : (double)s->size;
  double k = s->within ? 1.0 : s->k, a = s->alpha / n_win;
  float *scale = ns_layer_scratch(ctx, l, 2 * b->count);
  if (!scale) return ctx->status;
  float *ratio = scale + b->count; /* dy y / scale */
  const float *x = b->data, *y = l->top[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  /* window sums of q over the region around element (n, c, i, j) */
  /* window sums of q around element (n, c, i, j), clipped to the blob
   * (a huge local_size costs no more than the blob's extent) */
#define LRN_WINDOW_SUM(q, n, c, i, j, out)                                                  \
  do {                                                                                      \
    double acc_ = 0;                                                                        \
    if (!s->within) {                                                                       \
      int64_t c0_ = c - half > 0 ? c - half : 0;                                            \
      int64_t c1_ = c + half < channels - 1 ? c + half : channels - 1;                      \
      for (int64_t cc = c0_; cc <= c1_; cc++)                                               \
        acc_ += (q)[((n)*channels + cc) * plane + (i)*w + (j)];                             \
    } else {                                                                                \
      int64_t i0_ = i - half > 0 ? i - half : 0, i1_ = i + half < h - 1 ? i + half : h - 1; \
      int64_t j0_ = j - half > 0 ? j - half : 0, j1_ = j + half < w - 1 ? j + half : w - 1; \
      for (int64_t ii = i0_; ii <= i1_; ii++)                                               \
        for (int64_t jj = j0_; jj <= j1_; jj++)                                             \
          acc_ += (q)[((n)*channels + c) * plane + ii * w + jj];                            \
    }                                                                                       \
    out = acc_;                                                                             \
  } while (0)
  float *sq = dx; /* x^2 first, then overwritten by the result */
  for (int64_t i = 0; i < b->count; i++) sq[i] = x[i] * x[i];
  for (int64_t n = 0; n < num; n++)
    for (int64_t c = 0; c < channels; c++)
      for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
          double sum;
          LRN_WINDOW_SUM(sq, n, c, i, j, sum);
          int64_t idx = (n * channels + c) * plane + i * w + j;
          scale[idx] = (float)(k + a * sum);
        }
  for (int64_t i = 0; i < b->count; i++) ratio[i] = dy[i] * y[i] / scale[i];
  for (int64_t n = 0; n < num; n++)
    for (int64_t c = 0; c < channels; c++)
      for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
          double sum;
          LRN_WINDOW_SUM(ratio, n, c, i, j, sum);
          int64_t idx = (n * channels + c) * plane + i * w + j;
          dx[idx] = (float)(dy[idx] * pow(scale[idx], -s->beta) - 2.0 * a * s->beta * x[idx] * sum);
        }
#undef LRN_WINDOW_SUM
  return NS_OK;
}

/* WITHIN_CHANNEL averages a centred local_size window; ACROSS_CHANNELS
 * keeps every cell in place. */
static void lrn_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const lrn_state *s = l->priv;
  ns_layer_geometry_pointwise(l, g);
  if (!s->within) return;
  g->grid = NS_GRID_WINDOW;
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = s->size;
    g->pad[a] = (s->size - 1) / 2;
  }
}

const ns_layer_ops ns_lrn_ops = {
    .type = "LRN",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = lrn_setup,
    .reshape = lrn_reshape,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .geometry = lrn_geometry,
    .export_onnx = ns_onnx_export_lrn,
};
