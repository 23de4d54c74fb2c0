/* Confidence heatmaps: a float map (e.g. the max probability per location
 * of the 8x8 classification map) normalised to [0, 1], coloured, scaled
 * to the output size and written as PNG, alone or beside the input image
 * as the seed shows them, optionally with a labelled colour bar. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/glyphs.h"
#include "io/png_write.h"

/* Anchor colours at t = 0, 1/8, ..., 1, linearly interpolated: close to
 * matplotlib's viridis (monotonic lightness, readable in grey). */
static const unsigned char viridis_anchors[9][3] = {{68, 1, 84},    {72, 36, 117},  {59, 82, 139},
                                                    {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                                    {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};

static unsigned char to_byte(double v) {
  v = v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
  return (unsigned char)(v + 0.5);
}

static void colour(ns_colormap map, double t, unsigned char *rgb) {
  if (!(t >= 0.0)) t = 0.0; /* NaN shows as the lowest value */
  if (t > 1.0) t = 1.0;
  if (map == NS_COLORMAP_HOT) { /* black -> red -> yellow -> white */
    double r = 3.0 * t, g = 3.0 * t - 1.0, b = 3.0 * t - 2.0;
    rgb[0] = to_byte(255.0 * (r > 1.0 ? 1.0 : r));
    rgb[1] = to_byte(255.0 * (g < 0.0 ? 0.0 : g > 1.0 ? 1.0 : g));
    rgb[2] = to_byte(255.0 * (b < 0.0 ? 0.0 : b));
  } else if (map == NS_COLORMAP_GREY) {
    rgb[0] = rgb[1] = rgb[2] = to_byte(255.0 * t);
  } else {
    double pos = t * 8.0;
    int i = pos >= 8.0 ? 7 : (int)pos;
    double f = pos - i;
    for (int c = 0; c < 3; c++)
      rgb[c] =
          to_byte(viridis_anchors[i][c] + f * (viridis_anchors[i + 1][c] - viridis_anchors[i][c]));
  }
}

void ns_heatmap_opts_init(ns_heatmap_opts *o) {
  memset(o, 0, sizeof *o);
  o->colormap = NS_COLORMAP_VIRIDIS;
  o->gap = 8;
}

/* The value range mapped to [0, 1]: fixed, or the map's finite min..max. */
static void value_range(const float *map, int64_t n, const ns_heatmap_opts *o, double *lo,
                        double *hi) {
  if (o->fixed_range) {
    *lo = o->lo;
    *hi = o->hi;
    return;
  }
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(map[i])) {
      if (map[i] < *lo) *lo = map[i];
      if (map[i] > *hi) *hi = map[i];
    }
  if (*lo > *hi) *lo = *hi = 0.0; /* no finite value */
}

/* Map value at output pixel (y, x): nearest cell, or bilinear between
 * cell centres (clamped at the edges). */
static double sample(const float *map, int mh, int mw, int oh, int ow, int bilinear, int y, int x) {
  double sy = (y + 0.5) * mh / oh, sx = (x + 0.5) * mw / ow;
  if (!bilinear) {
    int iy = (int)sy, ix = (int)sx;
    if (iy >= mh) iy = mh - 1;
    if (ix >= mw) ix = mw - 1;
    return map[(int64_t)iy * mw + ix];
  }
  sy -= 0.5;
  sx -= 0.5;
  sy = sy < 0.0 ? 0.0 : sy > mh - 1 ? mh - 1 : sy;
  sx = sx < 0.0 ? 0.0 : sx > mw - 1 ? mw - 1 : sx;
  int y0 = (int)sy, x0 = (int)sx;
  int y1 = y0 + 1 < mh ? y0 + 1 : y0, x1 = x0 + 1 < mw ? x0 + 1 : x0;
  double fy = sy - y0, fx = sx - x0;
  double top = map[(int64_t)y0 * mw + x0] * (1 - fx) + map[(int64_t)y0 * mw + x1] * fx;
  double bottom = map[(int64_t)y1 * mw + x0] * (1 - fx) + map[(int64_t)y1 * mw + x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

static void render(const float *map, int mh, int mw, const ns_heatmap_opts *o, int oh, int ow,
                   unsigned char *rgb, int64_t row_stride) {
  double lo, hi;
  value_range(map, (int64_t)mh * mw, o, &lo, &hi);
  double scale = hi > lo ? 1.0 / (hi - lo) : 0.0;
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++) {
      double v = sample(map, mh, mw, oh, ow, o->bilinear, y, x);
      colour(o->colormap, (v - lo) * scale, rgb + y * row_stride + (int64_t)x * 3);
    }
}

static ns_status check_map(ns_ctx *ctx, const float *map, int mh, int mw) {
  if (!map || mh < 1 || mw < 1 || mh > NS_PNG_MAX_DIM || mw > NS_PNG_MAX_DIM)
    return ns_fail(ctx, NS_ERR_USAGE, "heatmap: bad map (%dx%d)", mw, mh);
  return NS_OK;
}

ns_status ns_heatmap_render(ns_ctx *ctx, const float *map, int map_h, int map_w,
                            const ns_heatmap_opts *opts, int out_h, int out_w, unsigned char *rgb) {
  ns_heatmap_opts defaults;
  if (!opts) {
    ns_heatmap_opts_init(&defaults);
    opts = &defaults;
  }
  if (check_map(ctx, map, map_h, map_w) != NS_OK ||
      ns_png_check_size(ctx, "heatmap", out_h, out_w) != NS_OK)
    return ctx->status;
  render(map, map_h, map_w, opts, out_h, out_w, rgb, (int64_t)out_w * 3);
  return NS_OK;
}

ns_status ns_heatmap_save_png(ns_ctx *ctx, const char *path, const float *map, int map_h, int map_w,
                              const ns_heatmap_opts *opts) {
  ns_heatmap_opts defaults;
  if (!opts) {
    ns_heatmap_opts_init(&defaults);
    opts = &defaults;
  }
  int oh = opts->height > 0 ? opts->height : map_h, ow = opts->width > 0 ? opts->width : map_w;
  if (check_map(ctx, map, map_h, map_w) != NS_OK || ns_png_check_size(ctx, path, oh, ow) != NS_OK)
    return ctx->status;
  unsigned char *rgb = ns_alloc(ctx, (size_t)oh * (size_t)ow * 3);
  if (!rgb) return ctx->status;
  render(map, map_h, map_w, opts, oh, ow, rgb, (int64_t)ow * 3);
  ns_status st = ns_png_save_rgb8(ctx, path, oh, ow, rgb);
  ns_free(ctx, rgb);
  return st;
}

/* Draws a [0, 1] float image (1, 3 or more channels; grey replicated,
 * extra channels ignored) at (0, 0) of an RGB canvas. */
static void draw_image(const ns_image *im, unsigned char *canvas, int64_t row_stride) {
  int c = im->channels;
  for (int y = 0; y < im->height; y++)
    for (int x = 0; x < im->width; x++) {
      const float *p = im->data + ((int64_t)y * im->width + x) * c;
      unsigned char *d = canvas + y * row_stride + (int64_t)x * 3;
      for (int k = 0; k < 3; k++) {
        float v = p[c >= 3 ? k : 0];
        d[k] = to_byte(isnan(v) ? 0.0 : 255.0 * v);
      }
    }
}

enum { BAR_W = 24, LABEL_W = 90, TEXT_SCALE = 2 };

static void label(unsigned char *rgb, int h, int w, int y, int x, double v) {
  char text[32];
  snprintf(text, sizeof text, fabs(v) >= 1e-3 || v == 0 ? "%.3f" : "%.1e", v);
  ns_draw_text(rgb, h, w, y, x, TEXT_SCALE, text);
}

/* The colour bar at column x: hi at the top row `top`, lo at the bottom,
 * in the map's colours, with the range's ends and middle written beside
 * it and the caption above. */
static void colour_bar(const float *map, int mh, int mw, const ns_heatmap_opts *o,
                       unsigned char *rgb, int h, int w, int x, int top) {
  double lo, hi;
  value_range(map, (int64_t)mh * mw, o, &lo, &hi);
  int bar_h = h - top;
  for (int i = 0; i < bar_h; i++) {
    double t = bar_h > 1 ? 1.0 - (double)i / (bar_h - 1) : 1.0;
    unsigned char c[3];
    colour(o->colormap, t, c);
    for (int j = 0; j < BAR_W; j++) memcpy(rgb + ((int64_t)(top + i) * w + x + j) * 3, c, 3);
  }
  if (o->caption) ns_draw_text(rgb, h, w, 0, x, TEXT_SCALE, o->caption);
  int lx = x + BAR_W + 6, text_h = NS_GLYPH_HEIGHT * TEXT_SCALE;
  label(rgb, h, w, top, lx, hi);
  label(rgb, h, w, top + (bar_h - text_h) / 2, lx, (lo + hi) / 2);
  label(rgb, h, w, top + bar_h - text_h, lx, lo);
}

ns_status ns_heatmap_save_side_by_side(ns_ctx *ctx, const char *path, const ns_image *image,
                                       const float *map, int map_h, int map_w,
                                       const ns_heatmap_opts *opts) {
  ns_heatmap_opts defaults;
  if (!opts) {
    ns_heatmap_opts_init(&defaults);
    opts = &defaults;
  }
  if (!image || !image->data || image->height < 1 || image->width < 1 || image->channels < 1)
    return ns_fail(ctx, NS_ERR_USAGE, "%s: no input image to draw", path);
  int hh = opts->height > 0 ? opts->height : image->height;
  int hw = opts->width > 0 ? opts->width : image->width;
  int gap = opts->gap > 0 ? opts->gap : 0;
  int bar_top = NS_GLYPH_HEIGHT * TEXT_SCALE + 4; /* room for the caption */
  int64_t total_w = (int64_t)image->width + gap + hw;
  int64_t total_h = image->height > hh ? image->height : hh;
  if (opts->colour_bar) {
    total_w += gap + BAR_W + 6 + LABEL_W;
    if (total_h < 2 * bar_top) total_h = 2 * bar_top;
  }
  if (check_map(ctx, map, map_h, map_w) != NS_OK || ns_png_check_size(ctx, path, hh, hw) != NS_OK ||
      ns_png_check_size(ctx, path, total_h, total_w) != NS_OK)
    return ctx->status;
  unsigned char *rgb = ns_alloc(ctx, (size_t)total_h * (size_t)total_w * 3);
  if (!rgb) return ctx->status;
  memset(rgb, 255, (size_t)total_h * (size_t)total_w * 3); /* white background */
  int64_t stride = total_w * 3;
  draw_image(image, rgb, stride);
  render(map, map_h, map_w, opts, hh, hw, rgb + ((int64_t)image->width + gap) * 3, stride);
  if (opts->colour_bar)
    colour_bar(map, map_h, map_w, opts, rgb, (int)total_h, (int)total_w,
               image->width + gap + hw + gap, bar_top);
  ns_status st = ns_png_save_rgb8(ctx, path, (int)total_h, (int)total_w, rgb);
  ns_free(ctx, rgb);
  return st;
}
