/* Detections drawn on their image: each box a 2-pixel outline in a
 * colour of its label, with "label score" in the 5x7 glyph font on a
 * filled tag of the same colour just above the box (inside it when the
 * box touches the top edge).  Boxes are clipped to the image. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ctx.h"
#include "io/glyphs.h"
#include "netsurg.h"

enum { LINE = 2, TEXT_SCALE = 2, PAD = 2 };

/* Light, well separated colours, so that the black text reads on them. */
static const unsigned char palette[8][3] = {{255, 80, 80},  {80, 220, 80},  {90, 160, 255},
                                            {255, 200, 40}, {230, 90, 230}, {60, 220, 220},
                                            {255, 140, 60}, {180, 180, 180}};

typedef struct canvas {
  unsigned char *rgb;
  int height, width;
} canvas;

static int clampi(double v, int lo, int hi) {
  if (!(v >= lo)) return lo; /* NaN too */
  return v > hi ? hi : (int)v;
}

static void fill(canvas *c, int y0, int x0, int y1, int x1, const unsigned char *colour) {
  y0 = clampi(y0, 0, c->height), y1 = clampi(y1, 0, c->height);
  x0 = clampi(x0, 0, c->width), x1 = clampi(x1, 0, c->width);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) memcpy(c->rgb + ((size_t)y * c->width + x) * 3, colour, 3);
}

static void draw_box(canvas *c, const ns_detection *d) {
  const unsigned char *colour = palette[(unsigned)d->label % 8];
  int x0 = clampi(floor(d->xmin), 0, c->width - 1), x1 = clampi(floor(d->xmax), 0, c->width - 1);
  int y0 = clampi(floor(d->ymin), 0, c->height - 1), y1 = clampi(floor(d->ymax), 0, c->height - 1);
  fill(c, y0, x0, y0 + LINE, x1 + 1, colour);
  fill(c, y1 + 1 - LINE, x0, y1 + 1, x1 + 1, colour);
  fill(c, y0, x0, y1 + 1, x0 + LINE, colour);
  fill(c, y0, x1 + 1 - LINE, y1 + 1, x1 + 1, colour);
  char tag[32];
  snprintf(tag, sizeof tag, "%d %.2f", d->label, (double)d->score);
  int tag_h = NS_GLYPH_HEIGHT * TEXT_SCALE + 2 * PAD;
  int tag_w = (int)strlen(tag) * NS_GLYPH_ADVANCE * TEXT_SCALE + 2 * PAD;
  int top = y0 >= tag_h ? y0 - tag_h : y0;
  fill(c, top, x0, top + tag_h, x0 + tag_w, colour);
  ns_draw_text(c->rgb, c->height, c->width, top + PAD, x0 + PAD, TEXT_SCALE, tag);
}

ns_status ns_detections_save_png(ns_ctx *ctx, const char *path, const ns_image *im,
                                 const ns_detections *d) {
  if (im->channels != 1 && im->channels != 3)
    return ns_fail(ctx, NS_ERR_USAGE, "%s: an image of 1 or 3 channels is needed, not %d", path,
                   im->channels);
  canvas c = {ns_calloc(ctx, (size_t)im->height * (size_t)im->width, 3), im->height, im->width};
  if (!c.rgb) return ctx->status;
  for (int64_t i = 0; i < (int64_t)im->height * im->width; i++)
    for (int k = 0; k < 3; k++) {
      float v = im->data[i * im->channels + (im->channels == 3 ? k : 0)];
      c.rgb[i * 3 + k] = (unsigned char)clampi(v * 255.0f + 0.5f, 0, 255);
    }
  for (int i = 0; i < d->count; i++) draw_box(&c, &d->boxes[i]);
  ns_status st = ns_png_save_rgb8(ctx, path, c.height, c.width, c.rgb);
  ns_free(ctx, c.rgb);
  return st;
}
