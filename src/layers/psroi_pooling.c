/* PSROIPooling, R-FCN's position-sensitive ROI pooling
 * (daijifeng001/caffe-rfcn, src/caffe/layers/psroi_pooling_layer.cu,
 * PSROIPoolingForward; the fork has no CPU forward).  Bottoms: scores
 * (N, output_dim * group_size^2, H, W) and rois (R, 5): (batch index, x1,
 * y1, x2, y2) in image pixels.  Top: (R, output_dim, group_size,
 * group_size).  The fork's formula, in float:
 *   x1' = round(x1) * spatial_scale, x2' = (round(x2) + 1) * spatial_scale
 *   roi_w = max(x2' - x1', 0.1), bin_w = roi_w / group_size  (rows alike)
 *   bin (ph, pw): rows [floor(ph * bin_h + y1'), ceil((ph + 1) * bin_h + y1'))
 *   clamped to [0, H], columns likewise;
 *   top[r][c][ph][pw] = mean of bottom channel (c * group_size + ph) *
 *   group_size + pw over the bin, 0 when the bin is empty.
 * The fork's three fields are `required`; here they are checked in setup.
 * A batch index out of range is an error (the fork reads out of bounds).
 * No backward. */
#include <math.h>

#include "core/layer.h"

typedef struct psroi_state {
  float spatial_scale;
  int output_dim, group_size;
} psroi_state;

static ns_status psroi_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__PSROIPoolingParameter *p = l->param->psroi_pooling_param;
  if (!p || !p->has_spatial_scale || !p->has_output_dim || !p->has_group_size)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "psroi_pooling_param { spatial_scale output_dim group_size } are "
                         "required (R-FCN declares all three `required`)");
  if (p->output_dim <= 0 || p->group_size <= 0 || p->group_size > 4096)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "psroi_pooling_param: output_dim (%d) and group_size (%d) must be > 0",
                         (int)p->output_dim, (int)p->group_size);
  if (!isfinite(p->spatial_scale))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "psroi_pooling_param: spatial_scale is not finite");
  psroi_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->spatial_scale = p->spatial_scale;
  s->output_dim = (int)p->output_dim;
  s->group_size = (int)p->group_size;
  return NS_OK;
}

static ns_status psroi_reshape(ns_ctx *ctx, ns_layer *l) {
  const psroi_state *s = l->priv;
  const ns_blob *x = l->bottom[0], *rois = l->bottom[1];
  int64_t want = (int64_t)s->output_dim * s->group_size * s->group_size;
  if (x->num_axes != 4 || x->shape[1] != want)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom 0 must be (N, output_dim * group_size^2 = %lld, H, W)",
                         (long long)want);
  if (rois->num_axes < 1 || ns_blob_count_range(rois, 1, rois->num_axes) != 5)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom 1 (rois) must be (R, 5): batch index, x1, y1, x2, y2");
  const int64_t shape[4] = {rois->shape[0], s->output_dim, s->group_size, s->group_size};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (PSROIPooling): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* floor or ceil of a bin edge, clamped to [0, hi] before the cast (the
 * fork clamps after; the same for every edge that fits an int). */
static int64_t edge(float v, int64_t hi) {
  if (!(v > 0)) return 0;
  return v >= (float)hi ? hi : (int64_t)v;
}

/* The mean of one bin of one plane; 0 when empty. */
static float bin_mean(const float *plane, int64_t width, int64_t h0, int64_t h1, int64_t w0,
                      int64_t w1) {
  if (h1 <= h0 || w1 <= w0) return 0.0f;
  float sum = 0.0f;
  for (int64_t h = h0; h < h1; h++)
    for (int64_t w = w0; w < w1; w++) sum += plane[h * width + w];
  return sum / (float)((h1 - h0) * (w1 - w0));
}

/* Top plane of ROI r (corners already scaled: x1, y1, x2, y2). */
static void psroi_roi(const psroi_state *s, const ns_blob *x, int64_t n, const float *corner,
                      float *top) {
  int64_t height = x->shape[2], width = x->shape[3], g = s->group_size;
  float roi_w = fmaxf(corner[2] - corner[0], 0.1f), roi_h = fmaxf(corner[3] - corner[1], 0.1f);
  float bin_w = roi_w / (float)g, bin_h = roi_h / (float)g;
  for (int64_t c = 0; c < s->output_dim; c++)
    for (int64_t ph = 0; ph < g; ph++) {
      int64_t h0 = edge(floorf((float)ph * bin_h + corner[1]), height);
      int64_t h1 = edge(ceilf((float)(ph + 1) * bin_h + corner[1]), height);
      for (int64_t pw = 0; pw < g; pw++) {
        int64_t w0 = edge(floorf((float)pw * bin_w + corner[0]), width);
        int64_t w1 = edge(ceilf((float)(pw + 1) * bin_w + corner[0]), width);
        int64_t channel = (c * g + ph) * g + pw;
        const float *plane = x->data + (n * x->shape[1] + channel) * height * width;
        top[(c * g + ph) * g + pw] = bin_mean(plane, width, h0, h1, w0, w1);
      }
    }
}

static ns_status psroi_forward(ns_ctx *ctx, ns_layer *l) {
  const psroi_state *s = l->priv;
  const ns_blob *x = l->bottom[0], *rois = l->bottom[1];
  int64_t out = (int64_t)s->output_dim * s->group_size * s->group_size;
  for (int64_t r = 0; r < rois->shape[0]; r++) {
    const float *roi = rois->data + r * 5;
    if (!(roi[0] >= 0) || roi[0] >= (float)x->shape[0])
      return ns_layer_fail(ctx, l, NS_ERR_INPUT, "roi %lld: batch index %g is outside [0, %lld)",
                           (long long)r, (double)roi[0], (long long)x->shape[0]);
    const float corner[4] = {roundf(roi[1]) * s->spatial_scale, roundf(roi[2]) * s->spatial_scale,
                             (roundf(roi[3]) + 1.0f) * s->spatial_scale,
                             (roundf(roi[4]) + 1.0f) * s->spatial_scale};
    psroi_roi(s, x, (int64_t)roi[0], corner, l->top[0]->data + r * out);
  }
  return NS_OK;
}

const ns_layer_ops ns_psroi_pooling_ops = {
    .type = "PSROIPooling",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = psroi_setup,
    .reshape = psroi_reshape,
    .forward = psroi_forward,
    .backward = NULL,
    .destroy = NULL,
};
