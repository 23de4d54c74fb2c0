/* WindowData, as BVLC's WindowDataLayer (src/caffe/layers/
 * window_data_layer.cpp): R-CNN's fine-tuning input.  Reads the window
 * file of window_data.h; every forward draws batch_size windows, first
 * batch_size - (int)(batch_size * fg_fraction) background windows (label
 * 0), then the foreground ones (their class), each uniformly from its
 * list with the net's seeded generator (Caffe's PrefetchRand), mirrored
 * with probability 1/2 when mirror is set.  Each window, widened by
 * context_pad pixels of crop_size around it (and made square around its
 * centre with crop_mode "square"), is cut from the image as cv::imread
 * gives it (BGR, 0..255), its part outside the image left as zeros,
 * resized bilinearly (cv::resize INTER_LINEAR) to fill crop_size x
 * crop_size, then (pixel - mean) * window_data_param.scale, the mean from
 * transform_param's mean_file (centred on it) or mean_value.  Tops: data
 * (batch, 3, crop, crop), label (batch).  crop_size, mirror and mean_file
 * come from transform_param, or from window_data_param's legacy fields
 * when transform_param lacks them (Caffe's upgrade moves them).  Where it
 * differs from Caffe: images are decoded again at every use
 * (cache_images only saves time in Caffe); a window file that Caffe would
 * crash on (a window outside its image, indices out of order, a
 * one-channel image that imread makes three) is an error naming the line;
 * reading happens in forward, not on a prefetch thread. */
#include <math.h>
#include <string.h>

#include "io/datum.h"
#include "layers/data_xform.h"
#include "layers/window_data.h"

typedef struct wd_state {
  ns_xform x; /* crop, mirror, mean_file / mean_value */
  ns_window_file file;
  ns_rng rng;
  int64_t batch;
  int n_fg, context_pad, square;
  float scale;
} wd_state;

/* Where a window's pixels go in its crop_size square (Caffe's load_batch
 * arithmetic, in float as Caffe's Dtype). */
typedef struct wd_geometry {
  int x1, y1, x2, y2; /* the image region, clipped */
  int out_w, out_h;   /* its size after the resize */
  int pad_w, pad_h;   /* where it starts in the square */
} wd_geometry;

static void window_geometry(const wd_state *s, const ns_window *w, int img_h, int img_w,
                            int mirror, wd_geometry *g) {
  const int crop = s->x.crop;
  *g = (wd_geometry){w->x1, w->y1, w->x2, w->y2, crop, crop, 0, 0};
  if (s->context_pad == 0 && !s->square) return;
  float context_scale = (float)crop / (float)(crop - 2 * s->context_pad);
  float half_h = (float)(w->y2 - w->y1 + 1) / 2.0f, half_w = (float)(w->x2 - w->x1 + 1) / 2.0f;
  float cx = (float)w->x1 + half_w, cy = (float)w->y1 + half_h;
  if (s->square) half_w = half_h = half_h > half_w ? half_h : half_w;
  int x1 = (int)roundf(cx - half_w * context_scale), x2 = (int)roundf(cx + half_w * context_scale);
  int y1 = (int)roundf(cy - half_h * context_scale), y2 = (int)roundf(cy + half_h * context_scale);
  int unclipped_h = y2 - y1 + 1, unclipped_w = x2 - x1 + 1;
  int pad_x1 = x1 < 0 ? -x1 : 0, pad_y1 = y1 < 0 ? -y1 : 0;
  int pad_x2 = x2 - img_w + 1 > 0 ? x2 - img_w + 1 : 0;
  int pad_y2 = y2 - img_h + 1 > 0 ? y2 - img_h + 1 : 0;
  g->x1 = x1 + pad_x1, g->x2 = x2 - pad_x2, g->y1 = y1 + pad_y1, g->y2 = y2 - pad_y2;
  float scale_x = (float)crop / (float)unclipped_w, scale_y = (float)crop / (float)unclipped_h;
  g->out_w = (int)roundf((float)(g->x2 - g->x1 + 1) * scale_x);
  g->out_h = (int)roundf((float)(g->y2 - g->y1 + 1) * scale_y);
  g->pad_h = (int)roundf((float)pad_y1 * scale_y);
  g->pad_w = (int)roundf((float)(mirror ? pad_x2 : pad_x1) * scale_x);
  if (g->pad_h + g->out_h > crop) g->out_h = crop - g->pad_h;
  if (g->pad_w + g->out_w > crop) g->out_w = crop - g->pad_w;
}

static void wd_destroy(ns_ctx *ctx, ns_layer *l) {
  wd_state *s = l->priv;
  if (!s) return;
  ns_ndarray_free(ctx, &s->x.mean);
  ns_window_file_free(ctx, &s->file);
}

/* transform_param's crop_size, mirror and mean_file, or the legacy
 * window_data_param ones. */
static ns_status read_transform(ns_ctx *ctx, ns_layer *l, wd_state *s) {
  const Caffe__WindowDataParameter *wp = l->param->window_data_param;
  if (ns_xform_setup(ctx, l, &s->x) != NS_OK) return ctx->status;
  if (!s->x.crop && wp->has_crop_size) s->x.crop = (int)wp->crop_size;
  if (!s->x.mirror) s->x.mirror = wp->has_mirror && wp->mirror;
  if (!s->x.mean.count && !s->x.n_mean && wp->mean_file && wp->mean_file[0] &&
      ns_mean_load(ctx, wp->mean_file, &s->x.mean) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s': ", l->name);
    return ctx->status;
  }
  if (s->x.crop <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "transform_param.crop_size must be positive");
  if (s->x.n_mean > 1 && s->x.n_mean != 3)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "give 1 or 3 mean_value (images are BGR)");
  const ns_ndarray *m = &s->x.mean;
  if (m->count) {
    int64_t off = m->num_axes == 3 ? (m->shape[2] - s->x.crop) / 2 : -1;
    if (m->num_axes != 3 || m->shape[0] != 3 || off < 0 || off + s->x.crop > m->shape[1])
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "the mean_file must be 3 x H x W with a %d x %d centre (H, W large "
                           "enough)",
                           s->x.crop, s->x.crop);
  }
  return NS_OK;
}

static ns_status read_params(ns_ctx *ctx, ns_layer *l, wd_state *s) {
  const Caffe__WindowDataParameter *wp = l->param->window_data_param;
  s->batch = wp->batch_size;
  if (s->batch < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "batch_size must be positive");
  if (read_transform(ctx, l, s) != NS_OK) return ctx->status;
  s->scale = wp->has_scale ? wp->scale : 1.0f;
  s->context_pad = wp->has_context_pad ? (int)wp->context_pad : 0;
  if (2 * (int64_t)s->context_pad >= s->x.crop)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "context_pad %d leaves nothing of crop_size %d",
                         s->context_pad, s->x.crop);
  const char *mode = wp->crop_mode ? wp->crop_mode : "warp";
  if (strcmp(mode, "warp") && strcmp(mode, "square"))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "crop_mode is \"warp\" or \"square\", not \"%s\"",
                         mode);
  s->square = !strcmp(mode, "square");
  float fg_fraction = wp->has_fg_fraction ? wp->fg_fraction : 0.25f;
  if (!(fg_fraction >= 0 && fg_fraction <= 1))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "fg_fraction must be in [0, 1]");
  s->n_fg = (int)((float)s->batch * fg_fraction);
  return NS_OK;
}

static ns_status wd_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__WindowDataParameter *wp = l->param->window_data_param;
  if (!wp || !wp->source || !wp->source[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "window_data_param { source } is required");
  wd_state *s = l->priv = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  if (read_params(ctx, l, s) != NS_OK) return ctx->status;
  float fg_t = wp->has_fg_threshold ? wp->fg_threshold : 0.5f;
  float bg_t = wp->has_bg_threshold ? wp->bg_threshold : 0.5f;
  if (ns_window_file_read(ctx, wp->source, wp->root_folder ? wp->root_folder : "", fg_t, bg_t,
                          &s->file) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (WindowData): ", l->name);
    return ctx->status;
  }
  if ((s->n_fg > 0 && !s->file.n_fg) || (s->batch > s->n_fg && !s->file.n_bg))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                         "%s has %d foreground and %d background windows; a batch takes %d and "
                         "%lld",
                         wp->source, s->file.n_fg, s->file.n_bg, s->n_fg,
                         (long long)(s->batch - s->n_fg));
  ns_rng_seed(&s->rng, ns_rng_next(l->rng));
  const int64_t shape[4] = {s->batch, 3, s->x.crop, s->x.crop};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK ||
      ns_blob_reshape(ctx, l->top[1], 1, shape) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status wd_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

/* The image of window w as cv::imread gives it: *chw (3, h, w) floats. */
static ns_status load_image(ns_ctx *ctx, const ns_layer *l, const ns_window_image *im, int *h,
                            int *w, float **chw) {
  ns_image img;
  if (ns_image_load(ctx, im->path, 0, &img) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (WindowData): ", l->name);
    return ctx->status;
  }
  ns_status st = ns_caffe_image(ctx, &img, 1, 0, 0, h, w, chw);
  ns_image_free(ctx, &img);
  return st;
}

/* The clipped region of the (3, h, w) image, resized to g's size. */
static float *cut_and_resize(ns_ctx *ctx, const float *chw, int h, int w, const wd_geometry *g) {
  const int rw = g->x2 - g->x1 + 1, rh = g->y2 - g->y1 + 1;
  float *cut = ns_floats_alloc(ctx, (int64_t)rw * rh * 3);
  float *out = cut ? ns_floats_alloc(ctx, (int64_t)g->out_w * g->out_h * 3) : NULL;
  if (out) {
    for (int y = 0; y < rh; y++)
      for (int x = 0; x < rw; x++)
        for (int c = 0; c < 3; c++)
          cut[((int64_t)y * rw + x) * 3 + c] = chw[((int64_t)c * h + g->y1 + y) * w + g->x1 + x];
    ns_cv_resize_linear(cut, rh, rw, 3, out, g->out_h, g->out_w);
  }
  ns_floats_free(ctx, cut);
  return out;
}

/* Writes the resized region into item `item` of the top, mean and scale. */
static void place(const wd_state *s, const float *px, const wd_geometry *g, int mirror,
                  float *item) {
  const int crop = s->x.crop;
  const ns_ndarray *m = &s->x.mean;
  const int64_t mh = m->count ? m->shape[1] : 0, mw = m->count ? m->shape[2] : 0;
  const int64_t off = m->count ? (mw - crop) / 2 : 0;
  for (int y = 0; y < g->out_h; y++)
    for (int x = 0; x < g->out_w; x++)
      for (int c = 0; c < 3; c++) {
        const int sx = mirror ? g->out_w - 1 - x : x;
        float v = px[((int64_t)y * g->out_w + sx) * 3 + c];
        const int64_t ty = y + g->pad_h, tx = x + g->pad_w;
        if (m->count) v -= m->data[(c * mh + ty + off) * mw + tx + off];
        else if (s->x.n_mean) v -= s->x.mean_values[s->x.n_mean > 1 ? c : 0];
        item[((int64_t)c * crop + ty) * crop + tx] = v * s->scale;
      }
}

static ns_status one_window(ns_ctx *ctx, ns_layer *l, const ns_window *w, int mirror,
                            float *item) {
  wd_state *s = l->priv;
  const ns_window_image *im = &s->file.images[w->image];
  int h, wd;
  float *chw;
  if (load_image(ctx, l, im, &h, &wd, &chw) != NS_OK) return ctx->status;
  wd_geometry g;
  window_geometry(s, w, h, wd, mirror, &g);
  ns_status st = NS_OK;
  if (g.x2 >= wd || g.y2 >= h || g.out_w < 1 || g.out_h < 1)
    st = ns_layer_fail(ctx, l, NS_ERR_INPUT,
                       "window (%d, %d)-(%d, %d) of %s does not fit the image's %d x %d pixels "
                       "(or leaves nothing to resize)",
                       w->x1, w->y1, w->x2, w->y2, im->path, wd, h);
  float *px = st == NS_OK ? cut_and_resize(ctx, chw, h, wd, &g) : NULL;
  if (px) place(s, px, &g, mirror, item);
  else if (st == NS_OK) st = ctx->status;
  ns_floats_free(ctx, px);
  ns_floats_free(ctx, chw);
  return st;
}

static ns_status wd_forward(ns_ctx *ctx, ns_layer *l) {
  wd_state *s = l->priv;
  float *data = l->top[0]->data, *label = l->top[1]->data;
  const int64_t per = 3 * (int64_t)s->x.crop * s->x.crop;
  memset(data, 0, (size_t)l->top[0]->count * sizeof *data);
  int64_t item = 0;
  for (int is_fg = 0; is_fg < 2; is_fg++) {
    const ns_window *list = is_fg ? s->file.fg : s->file.bg;
    const int64_t n = is_fg ? s->file.n_fg : s->file.n_bg;
    const int64_t count = is_fg ? s->n_fg : s->batch - s->n_fg;
    for (int64_t k = 0; k < count; k++, item++) {
      const ns_window *w = &list[ns_rng_next(&s->rng) % (uint64_t)n];
      int mirror = s->x.mirror && ns_rng_next(&s->rng) % 2;
      if (one_window(ctx, l, w, mirror, data + item * per) != NS_OK) return ctx->status;
      label[item] = (float)w->label;
    }
  }
  return NS_OK;
}

const ns_layer_ops ns_window_data_ops = {
    .type = "WindowData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 2,
    .max_tops = 2,
    .setup = wd_setup,
    .reshape = wd_reshape,
    .forward = wd_forward,
    .destroy = wd_destroy,
};
