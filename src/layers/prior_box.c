/* PriorBox, as the SSD fork's PriorBoxLayer (weiliu89/caffe, branch ssd,
 * src/caffe/layers/prior_box_layer.cpp): the default boxes of one SSD
 * feature map.  Bottom 0 is the map (its H, W), bottom 1 the image (its
 * H, W, unless img_size or img_h/img_w give them).  Top (1, 2, H*W*P*4):
 * channel 0 the boxes (xmin, ymin, xmax, ymax) / image size, channel 1
 * their variances (one value for all four, or four).  For cell (h, w):
 *   centre = ((w + offset) * step_w, (h + offset) * step_h)
 * with step = image / map unless step or step_h/step_w are given, and
 * for each min_size s (truncated to an integer, as the fork's `int
 * min_size_ = min_sizes_[s]`), in this order:
 *   an s x s box; if max_size m: a sqrt(s*m) square (m truncated too);
 *   for each aspect ratio r other than 1 (duplicates dropped, 1/r added
 *   after r when flip): an s*sqrt(r) x s/sqrt(r) box.
 * clip clamps channel 0 to [0, 1].  The fork computes sqrt(s*m) in int
 * and overflows past 46340; we multiply in double.
 * OpenCV's extension (opencv-caffe.proto): width/height list explicit box
 * sizes instead of min/max sizes and ratios, and offset_h/offset_w list
 * several cell offsets; each box is then repeated at every offset pair. */
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

#define PRIOR_MAX_SIDE 1e7f /* pixels: past this a size is not an image's */

typedef struct prior_box_state {
  float *widths, *heights; /* one per box of a cell and offset */
  int n_boxes;
  float *offsets_x, *offsets_y;
  int n_offsets;
  int clip;
  float variance[4];
  int n_variance;
  float img_h, img_w, step_h, step_w; /* 0: from the bottoms */
} prior_box_state;

static void prior_box_destroy(ns_ctx *ctx, ns_layer *l) {
  prior_box_state *s = l->priv;
  if (!s) return;
  ns_free(ctx, s->widths);
  ns_free(ctx, s->heights);
  ns_free(ctx, s->offsets_x);
  ns_free(ctx, s->offsets_y);
}

static int sane_side(float v) { return v > 0.0f && v <= PRIOR_MAX_SIDE; }

static void add_box(prior_box_state *s, double w, double h) {
  s->widths[s->n_boxes] = (float)w;
  s->heights[s->n_boxes++] = (float)h;
}

/* The fork's box list: per min size, the square, the max square, the
 * ratios. */
static ns_status fork_boxes(ns_ctx *ctx, ns_layer *l, const Caffe__PriorBoxParameter *p) {
  prior_box_state *s = l->priv;
  if (p->n_min_size == 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param.min_size is required");
  if (p->n_max_size && p->n_max_size != p->n_min_size)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param has %zu max_size for %zu min_size",
                         p->n_max_size, p->n_min_size);
  float *ratios = ns_calloc(ctx, 2 * p->n_aspect_ratio + 1, sizeof *ratios);
  if (!ratios) return ctx->status;
  size_t n_ratios = 0;
  for (size_t i = 0; i < p->n_aspect_ratio; i++) {
    float r = p->aspect_ratio[i];
    int seen = fabsf(r - 1.0f) < 1e-6f;
    for (size_t j = 0; j < n_ratios && !seen; j++) seen = fabsf(r - ratios[j]) < 1e-6f;
    if (seen) continue;
    if (!(r > 0.0f) || isinf(r) || (1.0f / r) == 0.0f) {
      ns_free(ctx, ratios);
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "prior_box_param.aspect_ratio %g must be positive and finite", r);
    }
    ratios[n_ratios++] = r;
    if (p->has_flip ? p->flip : 1) ratios[n_ratios++] = 1.0f / r;
  }
  size_t per_size = 1 + (p->n_max_size ? 1 : 0) + n_ratios;
  s->widths = ns_calloc(ctx, per_size * p->n_min_size, sizeof *s->widths);
  s->heights = ns_calloc(ctx, per_size * p->n_min_size, sizeof *s->heights);
  if (!s->widths || !s->heights || per_size * p->n_min_size > INT32_MAX) {
    ns_free(ctx, ratios);
    return ctx->status ? ctx->status : ns_layer_fail(ctx, l, NS_ERR_NET, "too many prior boxes");
  }
  for (size_t k = 0; k < p->n_min_size; k++) {
    if (!sane_side(p->min_size[k]) || (p->n_max_size && !sane_side(p->max_size[k]))) {
      ns_free(ctx, ratios);
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "prior_box_param min_size/max_size #%zu must be in (0, %g] pixels", k,
                           (double)PRIOR_MAX_SIDE);
    }
    double side = (double)(int)p->min_size[k];
    add_box(s, side, side);
    if (p->n_max_size) {
      if (!(p->max_size[k] > p->min_size[k])) {
        ns_free(ctx, ratios);
        return ns_layer_fail(ctx, l, NS_ERR_NET,
                             "prior_box_param.max_size %g must be greater than min_size %g",
                             p->max_size[k], p->min_size[k]);
      }
      double big = sqrt(side * (double)(int)p->max_size[k]);
      add_box(s, big, big);
    }
    for (size_t r = 0; r < n_ratios; r++)
      add_box(s, side * sqrt(ratios[r]), side / sqrt(ratios[r]));
  }
  ns_free(ctx, ratios);
  return NS_OK;
}

/* OpenCV's explicit width/height list. */
static ns_status explicit_boxes(ns_ctx *ctx, ns_layer *l, const Caffe__PriorBoxParameter *p) {
  prior_box_state *s = l->priv;
  if (p->n_width != p->n_height)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param has %zu width for %zu height",
                         p->n_width, p->n_height);
  if (p->n_min_size || p->n_max_size || p->n_aspect_ratio)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "prior_box_param: width/height exclude min_size, max_size, aspect_ratio");
  s->widths = ns_calloc(ctx, p->n_width, sizeof *s->widths);
  s->heights = ns_calloc(ctx, p->n_width, sizeof *s->heights);
  if (!s->widths || !s->heights) return ctx->status;
  for (size_t k = 0; k < p->n_width; k++) {
    if (!sane_side(p->width[k]) || !sane_side(p->height[k]))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param width/height #%zu out of (0, %g]",
                           k, (double)PRIOR_MAX_SIDE);
    add_box(s, p->width[k], p->height[k]);
  }
  return NS_OK;
}

static ns_status read_offsets(ns_ctx *ctx, ns_layer *l, const Caffe__PriorBoxParameter *p) {
  prior_box_state *s = l->priv;
  int listed = p->n_offset_h || p->n_offset_w;
  if (listed && (p->n_offset_h != p->n_offset_w || p->has_offset))
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "prior_box_param: offset_h and offset_w come in pairs, without offset");
  size_t n = listed ? p->n_offset_h : 1;
  s->offsets_x = ns_calloc(ctx, n, sizeof *s->offsets_x);
  s->offsets_y = ns_calloc(ctx, n, sizeof *s->offsets_y);
  if (!s->offsets_x || !s->offsets_y) return ctx->status;
  for (size_t k = 0; k < n; k++) {
    s->offsets_x[k] = listed ? p->offset_w[k] : p->has_offset ? p->offset : 0.5f;
    s->offsets_y[k] = listed ? p->offset_h[k] : p->has_offset ? p->offset : 0.5f;
    if (!isfinite(s->offsets_x[k]) || !isfinite(s->offsets_y[k]))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param offsets must be finite");
  }
  s->n_offsets = (int)n;
  return NS_OK;
}

static ns_status read_geometry(ns_ctx *ctx, ns_layer *l, const Caffe__PriorBoxParameter *p) {
  prior_box_state *s = l->priv;
  if (p->has_img_h || p->has_img_w) {
    if (p->has_img_size)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param: img_size or img_h/img_w, not both");
    if (!sane_side((float)p->img_h) || !sane_side((float)p->img_w))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param img_h and img_w must be > 0");
    s->img_h = (float)p->img_h;
    s->img_w = (float)p->img_w;
  } else if (p->has_img_size) {
    if (!sane_side((float)p->img_size))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param.img_size must be > 0");
    s->img_h = s->img_w = (float)p->img_size;
  }
  if (p->has_step_h || p->has_step_w) {
    if (p->has_step)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param: step or step_h/step_w, not both");
    if (!sane_side(p->step_h) || !sane_side(p->step_w))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param step_h and step_w must be > 0");
    s->step_h = p->step_h;
    s->step_w = p->step_w;
  } else if (p->has_step) {
    if (!sane_side(p->step))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param.step must be > 0");
    s->step_h = s->step_w = p->step;
  }
  return NS_OK;
}

static ns_status read_variance(ns_ctx *ctx, ns_layer *l, const Caffe__PriorBoxParameter *p) {
  prior_box_state *s = l->priv;
  if (p->n_variance > 1 && p->n_variance != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param.variance: one value or four, not %zu",
                         p->n_variance);
  s->n_variance = p->n_variance ? (int)p->n_variance : 1;
  s->variance[0] = 0.1f; /* the fork's default */
  for (size_t k = 0; k < p->n_variance; k++) {
    if (!(p->variance[k] > 0.0f))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param.variance must be positive");
    s->variance[k] = p->variance[k];
  }
  return NS_OK;
}

static ns_status prior_box_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__PriorBoxParameter *p = l->param->prior_box_param;
  if (!p) return ns_layer_fail(ctx, l, NS_ERR_NET, "prior_box_param { min_size ... } is required");
  prior_box_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->clip = p->has_clip ? p->clip : 0;
  if ((p->n_width ? explicit_boxes(ctx, l, p) : fork_boxes(ctx, l, p)) != NS_OK ||
      read_offsets(ctx, l, p) != NS_OK || read_geometry(ctx, l, p) != NS_OK ||
      read_variance(ctx, l, p) != NS_OK)
    return ctx->status;
  if ((s->img_h == 0.0f) && l->n_bottom < 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "needs the image as bottom 1, or prior_box_param img_size / img_h, img_w");
  return NS_OK;
}

static ns_status spatial(ns_ctx *ctx, const ns_layer *l, const ns_blob *b, int64_t *h,
                         int64_t *w) {
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must have 4 axes (N, C, H, W), not %d",
                         b->name, b->num_axes);
  *h = b->shape[2];
  *w = b->shape[3];
  return NS_OK;
}

static ns_status prior_box_reshape(ns_ctx *ctx, ns_layer *l) {
  const prior_box_state *s = l->priv;
  int64_t h = 0, w = 0, cells = 0, boxes = 0, dim = 0;
  if (spatial(ctx, l, l->bottom[0], &h, &w) != NS_OK) return ctx->status;
  if (l->n_bottom > 1 && spatial(ctx, l, l->bottom[1], &cells, &boxes) != NS_OK)
    return ctx->status;
  if (!ns_mul_i64(h, w, &cells) || !ns_mul_i64(cells, (int64_t)s->n_boxes * s->n_offsets, &boxes) ||
      !ns_mul_i64(boxes, 4, &dim) || dim <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%lld x %lld cells of %d boxes: no or too many boxes",
                         (long long)h, (long long)w, s->n_boxes * s->n_offsets);
  int64_t shape[3] = {1, 2, dim};
  if (ns_blob_reshape(ctx, l->top[0], 3, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (PriorBox): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status prior_box_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  const prior_box_state *s = l->priv;
  int64_t layer_h = l->bottom[0]->shape[2], layer_w = l->bottom[0]->shape[3];
  float img_h = s->img_h, img_w = s->img_w;
  if (img_h == 0.0f || img_w == 0.0f) {
    img_h = (float)l->bottom[1]->shape[2];
    img_w = (float)l->bottom[1]->shape[3];
  }
  float step_h = s->step_h, step_w = s->step_w;
  if (step_h == 0.0f || step_w == 0.0f) {
    step_h = img_h / (float)layer_h;
    step_w = img_w / (float)layer_w;
  }
  float *out = l->top[0]->data;
  int64_t dim = l->top[0]->count / 2, k = 0;
  for (int64_t h = 0; h < layer_h; h++)
    for (int64_t w = 0; w < layer_w; w++)
      for (int b = 0; b < s->n_boxes; b++)
        for (int o = 0; o < s->n_offsets; o++) {
          float cx = ((float)w + s->offsets_x[o]) * step_w;
          float cy = ((float)h + s->offsets_y[o]) * step_h;
          out[k++] = (cx - s->widths[b] / 2.0f) / img_w;
          out[k++] = (cy - s->heights[b] / 2.0f) / img_h;
          out[k++] = (cx + s->widths[b] / 2.0f) / img_w;
          out[k++] = (cy + s->heights[b] / 2.0f) / img_h;
        }
  if (s->clip)
    for (int64_t i = 0; i < dim; i++) out[i] = out[i] < 0.0f ? 0.0f : out[i] > 1.0f ? 1.0f : out[i];
  for (int64_t i = 0; i < dim; i++) out[dim + i] = s->variance[s->n_variance == 4 ? i % 4 : 0];
  return NS_OK;
}

const ns_layer_ops ns_prior_box_ops = {
    .type = "PriorBox",
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = prior_box_setup,
    .reshape = prior_box_reshape,
    .forward = prior_box_forward,
    .destroy = prior_box_destroy,
    .export_onnx = ns_onnx_export_prior_box,
};
