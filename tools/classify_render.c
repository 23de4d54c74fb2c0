/* Heatmap figure: [input | gap | map | gap | colour bar + labels].  The
 * map panel and the bar come from the library's renderer; the labels are
 * drawn with a 5x7 pixel font of the few characters numbers need. */
#include "tools/classify_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAP 12
#define BAR_W 24
#define LABEL_W 90
#define SCALE 2 /* font pixels per glyph pixel */

typedef struct glyph {
  char c;
  unsigned char rows[7]; /* 5 bits each, MSB = leftmost */
} glyph;

static const glyph font[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
    {' ', {0, 0, 0, 0, 0, 0, 0}},
};

typedef struct canvas {
  unsigned char *rgb;
  int height, width;
} canvas;

static const glyph *find_glyph(char c) {
  for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
    if (font[i].c == c) return &font[i];
  return NULL;
}

/* Black text with its top-left corner at (y, x); clipped to the canvas. */
static void draw_text(canvas *cv, int y, int x, const char *text) {
  for (; *text; text++, x += 6 * SCALE) {
    const glyph *g = find_glyph(*text);
    if (!g) continue;
    for (int r = 0; r < 7 * SCALE; r++)
      for (int c = 0; c < 5 * SCALE; c++) {
        int py = y + r, px = x + c;
        if (py < 0 || px < 0 || py >= cv->height || px >= cv->width) continue;
        if (!(g->rows[r / SCALE] & (0x10 >> (c / SCALE)))) continue;
        memset(cv->rgb + ((size_t)py * cv->width + px) * 3, 0, 3);
      }
  }
}

static void blit(canvas *cv, int y, int x, const unsigned char *rgb, int h, int w) {
  for (int r = 0; r < h && y + r < cv->height; r++)
    memcpy(cv->rgb + ((size_t)(y + r) * cv->width + x) * 3, rgb + (size_t)r * w * 3, (size_t)w * 3);
}

static void draw_image(canvas *cv, const ns_image *im) {
  for (int y = 0; y < im->height; y++)
    for (int x = 0; x < im->width; x++) {
      const float *p = im->data + ((size_t)y * im->width + x) * im->channels;
      unsigned char *d = cv->rgb + ((size_t)y * cv->width + x) * 3;
      for (int k = 0; k < 3; k++) {
        float v = p[im->channels >= 3 ? k : 0];
        v = isnan(v) ? 0.0f : v < 0 ? 0 : v > 1 ? 1 : v;
        d[k] = (unsigned char)(v * 255.0f + 0.5f);
      }
    }
}

static void map_range(const float *map, int n, float *lo, float *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int i = 0; i < n; i++)
    if (isfinite(map[i])) {
      if (map[i] < *lo) *lo = map[i];
      if (map[i] > *hi) *hi = map[i];
    }
  if (*lo > *hi) *lo = *hi = 0;
}

/* The bar: a column of values from hi (top) to lo, in the map's colours. */
static ns_status draw_bar(ns_ctx *ctx, canvas *cv, int x, int top, int h, float lo, float hi) {
  float *ramp = malloc((size_t)h * sizeof *ramp);
  unsigned char *rgb = malloc((size_t)h * BAR_W * 3);
  ns_status st = NS_ERR_NOMEM;
  if (ramp && rgb) {
    for (int i = 0; i < h; i++) ramp[i] = h > 1 ? hi - (hi - lo) * i / (float)(h - 1) : hi;
    ns_heatmap_opts o;
    ns_heatmap_opts_init(&o);
    o.fixed_range = 1;
    o.lo = lo;
    o.hi = hi > lo ? hi : lo + 1;
    st = ns_heatmap_render(ctx, ramp, h, 1, &o, h, BAR_W, rgb);
    if (st == NS_OK) blit(cv, top, x, rgb, h, BAR_W);
  }
  free(ramp);
  free(rgb);
  return st;
}

static void label(canvas *cv, int y, int x, float v) {
  char text[32];
  snprintf(text, sizeof text, fabsf(v) >= 1e-3f || v == 0 ? "%.3f" : "%.1e", (double)v);
  draw_text(cv, y, x, text);
}

ns_status cli_save_heatmap_figure(ns_ctx *ctx, const char *path, const ns_image *image,
                                  const float *map, int map_h, int map_w, const char *caption) {
  int h = image->height, w = image->width;
  int top = 9 * SCALE + 4; /* room for the caption above the bar */
  canvas cv = {NULL, h > 2 * top ? h : 2 * top, w + GAP + w + GAP + BAR_W + 8 + LABEL_W};
  size_t bytes = (size_t)cv.height * cv.width * 3;
  unsigned char *panel = malloc((size_t)h * w * 3);
  cv.rgb = malloc(bytes);
  ns_status st = NS_ERR_NOMEM;
  if (!panel || !cv.rgb) goto done;
  memset(cv.rgb, 255, bytes);
  draw_image(&cv, image);
  ns_heatmap_opts o;
  ns_heatmap_opts_init(&o);
  if ((st = ns_heatmap_render(ctx, map, map_h, map_w, &o, h, w, panel)) != NS_OK) goto done;
  blit(&cv, 0, w + GAP, panel, h, w);
  float lo, hi;
  map_range(map, map_h * map_w, &lo, &hi);
  int bar_x = 2 * w + 2 * GAP, bar_h = cv.height - top;
  if ((st = draw_bar(ctx, &cv, bar_x, top, bar_h, lo, hi)) != NS_OK) goto done;
  draw_text(&cv, 0, bar_x, caption);
  label(&cv, top, bar_x + BAR_W + 6, hi);
  label(&cv, top + (bar_h - 7 * SCALE) / 2, bar_x + BAR_W + 6, (lo + hi) / 2);
  label(&cv, top + bar_h - 7 * SCALE, bar_x + BAR_W + 6, lo);
  st = ns_png_save_rgb8(ctx, path, cv.height, cv.width, cv.rgb);
done:
  free(panel);
  free(cv.rgb);
  return st;
}
