/* ROIPooling, as Fast R-CNN's fork (rbgirshick/caffe-fast-rcnn,
 * src/caffe/layers/roi_pooling_layer.cpp, ROIPoolingLayer::Forward_cpu).
 * Bottoms: features (N, C, H, W) and rois (R, 5): (batch index, x1, y1,
 * x2, y2) in image pixels.  Top: (R, C, pooled_h, pooled_w).  For each
 * ROI the corners are scaled and rounded, the fork's
 *   x1' = round(x1 * spatial_scale), ... (C's round: halves away from 0)
 *   roi_w = max(x2' - x1' + 1, 1), bin_w = roi_w / pooled_w (float)
 *   bin (ph, pw): rows [floor(ph * bin_h), ceil((ph + 1) * bin_h)) + y1',
 *   clamped to [0, H], columns likewise,
 * and the top is the max over the bin; an empty bin gives 0.
 * Where the fork CHECKs (batch index out of range) we return an error;
 * corners are clamped to +-2^30 (NaN to 0) before the cast to int (the
 * fork's cast of a huge float is undefined).  Backward, as the fork's GPU kernel (its
 * CPU backward is NOT_IMPLEMENTED): each top's diff goes to the bottom
 * cell that gave its max; the rois get no gradient. */
#include <float.h>
#include <math.h>

#include "core/layer.h"

typedef struct roi_pool_state {
  int pooled_h, pooled_w;
  float spatial_scale;
  int64_t *argmax; /* per top cell: index in its bottom plane, -1 if empty */
  int64_t argmax_cap;
} roi_pool_state;

#define ROI_COORD_LIMIT 1073741824.0 /* 2^30: far beyond any feature map */

static ns_status roi_pool_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ROIPoolingParameter *p = l->param->roi_pooling_param;
  if (!p || p->pooled_h == 0 || p->pooled_w == 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "roi_pooling_param { pooled_h pooled_w } must both be > 0");
  if (p->pooled_h > 65536 || p->pooled_w > 65536)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "roi_pooling_param: pooled size %ux%u is absurd",
                         p->pooled_h, p->pooled_w);
  if (!isfinite(p->spatial_scale))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "roi_pooling_param: spatial_scale is not finite");
  roi_pool_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->pooled_h = (int)p->pooled_h;
  s->pooled_w = (int)p->pooled_w;
  s->spatial_scale = p->spatial_scale;
  return NS_OK;
}

static void roi_pool_destroy(ns_ctx *ctx, ns_layer *l) {
  roi_pool_state *s = l->priv;
  if (s) ns_free(ctx, s->argmax);
}

static ns_status roi_pool_reshape(ns_ctx *ctx, ns_layer *l) {
  roi_pool_state *s = l->priv;
  const ns_blob *x = l->bottom[0], *rois = l->bottom[1];
  if (x->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom 0 must be (N, C, H, W)");
  if (rois->num_axes < 1 || ns_blob_count_range(rois, 1, rois->num_axes) != 5)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom 1 (rois) must be (R, 5): batch index, x1, y1, x2, y2");
  const int64_t shape[4] = {rois->shape[0], x->shape[1], s->pooled_h, s->pooled_w};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (ROIPooling): ", l->name);
    return ctx->status;
  }
  if (l->top[0]->count > s->argmax_cap) {
    int64_t *a = ns_realloc_array(ctx, s->argmax, (size_t)l->top[0]->count, sizeof *a);
    if (!a) return ctx->status;
    s->argmax = a;
    s->argmax_cap = l->top[0]->count;
  }
  return NS_OK;
}

/* The fork's round(v * spatial_scale) into an int, kept finite (NaN: 0,
 * where the fork's cast is undefined). */
static int scaled_corner(float v, float scale) {
  double d = round((double)(v * scale));
  if (isnan(d)) return 0;
  if (d > ROI_COORD_LIMIT) d = ROI_COORD_LIMIT;
  if (d < -ROI_COORD_LIMIT) d = -ROI_COORD_LIMIT;
  return (int)d;
}

static int64_t clamp_i64(int64_t v, int64_t hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* The batch index of ROI r, checked as the fork CHECKs it. */
static ns_status roi_batch(ns_ctx *ctx, const ns_layer *l, int64_t r, int64_t *n) {
  float b = l->bottom[1]->data[r * 5];
  if (!(b >= 0) || b >= (float)l->bottom[0]->shape[0])
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "roi %lld: batch index %g is outside [0, %lld)",
                         (long long)r, (double)b, (long long)l->bottom[0]->shape[0]);
  *n = (int64_t)b;
  return NS_OK;
}

/* One channel plane of one ROI: top[ph][pw] and its argmax. */
static void roi_pool_plane(const roi_pool_state *s, const float *plane, int64_t height,
                           int64_t width, const int *corner, float *top, int64_t *argmax) {
  int roi_h = corner[3] - corner[1] + 1, roi_w = corner[2] - corner[0] + 1;
  float bin_h = (float)(roi_h > 1 ? roi_h : 1) / (float)s->pooled_h;
  float bin_w = (float)(roi_w > 1 ? roi_w : 1) / (float)s->pooled_w;
  for (int ph = 0; ph < s->pooled_h; ph++) {
    int64_t h0 = clamp_i64((int64_t)floorf((float)ph * bin_h) + corner[1], height);
    int64_t h1 = clamp_i64((int64_t)ceilf((float)(ph + 1) * bin_h) + corner[1], height);
    for (int pw = 0; pw < s->pooled_w; pw++) {
      int64_t w0 = clamp_i64((int64_t)floorf((float)pw * bin_w) + corner[0], width);
      int64_t w1 = clamp_i64((int64_t)ceilf((float)(pw + 1) * bin_w) + corner[0], width);
      int64_t at = (int64_t)ph * s->pooled_w + pw;
      int empty = h1 <= h0 || w1 <= w0;
      float best = empty ? 0.0f : -FLT_MAX;
      int64_t best_at = -1;
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++)
          if (plane[h * width + w] > best) {
            best = plane[h * width + w];
            best_at = h * width + w;
          }
      top[at] = best;
      argmax[at] = best_at;
    }
  }
}

static ns_status roi_pool_forward(ns_ctx *ctx, ns_layer *l) {
  const roi_pool_state *s = l->priv;
  const ns_blob *x = l->bottom[0], *rois = l->bottom[1];
  int64_t channels = x->shape[1], height = x->shape[2], width = x->shape[3];
  int64_t plane = height * width, out_plane = (int64_t)s->pooled_h * s->pooled_w;
  for (int64_t r = 0; r < rois->shape[0]; r++) {
    int64_t n;
    if (roi_batch(ctx, l, r, &n) != NS_OK) return ctx->status;
    int corner[4];
    for (int k = 0; k < 4; k++) corner[k] = scaled_corner(rois->data[r * 5 + 1 + k], s->spatial_scale);
    for (int64_t c = 0; c < channels; c++) {
      int64_t out = (r * channels + c) * out_plane;
      roi_pool_plane(s, x->data + (n * channels + c) * plane, height, width, corner,
                     l->top[0]->data + out, s->argmax + out);
    }
  }
  return NS_OK;
}

/* dx[argmax] += dy for every top cell; the rois' diff is 0. */
static ns_status roi_pool_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const roi_pool_state *s = l->priv;
  ns_blob *x = l->bottom[0];
  if (down[1])
    for (int64_t i = 0; i < l->bottom[1]->count; i++) l->bottom[1]->diff[i] = 0.0f;
  if (!down[0]) return NS_OK;
  for (int64_t i = 0; i < x->count; i++) x->diff[i] = 0.0f;
  int64_t channels = x->shape[1], plane = x->shape[2] * x->shape[3];
  int64_t out_plane = (int64_t)s->pooled_h * s->pooled_w;
  const float *dy = l->top[0]->diff;
  for (int64_t r = 0; r < l->bottom[1]->shape[0]; r++) {
    int64_t n;
    if (roi_batch(ctx, l, r, &n) != NS_OK) return ctx->status;
    for (int64_t c = 0; c < channels; c++) {
      int64_t out = (r * channels + c) * out_plane;
      float *dx = x->diff + (n * channels + c) * plane;
      for (int64_t i = 0; i < out_plane; i++)
        if (s->argmax[out + i] >= 0) dx[s->argmax[out + i]] += dy[out + i];
    }
  }
  return NS_OK;
}

const ns_layer_ops ns_roi_pooling_ops = {
    .type = "ROIPooling",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = roi_pool_setup,
    .reshape = roi_pool_reshape,
    .forward = roi_pool_forward,
    .backward = roi_pool_backward,
    .destroy = roi_pool_destroy,
};
