/* Writes a synthetic photo-like PNG for demos and tests that must not
 * depend on downloaded images:
 *
 *   synth_image OUT.png [WIDTH HEIGHT]
 *
 * A sky gradient, a ground plane, and a furry orange-grey animal-ish blob
 * (ellipse body, round head, two triangular ears) with a little texture:
 * something with edges and colours for a classifier and the designer
 * filters to respond to.  Deterministic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "netsurg.h"

static unsigned char clamp_byte(double v) {
  return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
}

/* Inside the triangle (ax, ay), (bx, by), (cx, cy)? */
static int in_triangle(double x, double y, const double *t) {
  double d1 = (x - t[2]) * (t[1] - t[3]) - (t[0] - t[2]) * (y - t[3]);
  double d2 = (x - t[4]) * (t[3] - t[5]) - (t[2] - t[4]) * (y - t[5]);
  double d3 = (x - t[0]) * (t[5] - t[1]) - (t[4] - t[0]) * (y - t[1]);
  int neg = d1 < 0 || d2 < 0 || d3 < 0, pos = d1 > 0 || d2 > 0 || d3 > 0;
  return !(neg && pos);
}

static void pixel(int x, int y, int w, int h, unsigned char *rgb) {
  double u = (double)x / w, v = (double)y / h;
  double r = 120 + 60 * v, g = 160 + 50 * v, b = 230 - 30 * v; /* sky */
  if (v > 0.72) { /* ground */
    r = 90 + 40 * sin(u * 40) * 0.2;
    g = 120 + 20 * (v - 0.72) * 10;
    b = 60;
  }
  double bx = (u - 0.5) / 0.28, by = (v - 0.62) / 0.17;  /* body */
  double hx = (u - 0.68) / 0.12, hy = (v - 0.40) / 0.15; /* head */
  double ear1[6] = {0.58 * w, 0.32 * h, 0.62 * w, 0.16 * h, 0.67 * w, 0.29 * h};
  double ear2[6] = {0.69 * w, 0.29 * h, 0.75 * w, 0.15 * h, 0.78 * w, 0.33 * h};
  int animal = bx * bx + by * by < 1 || hx * hx + hy * hy < 1 || in_triangle(x, y, ear1) ||
               in_triangle(x, y, ear2);
  if (animal) {
    double fur = 20 * sin(x * 0.9 + 3 * sin(y * 0.3)) + 15 * sin(y * 1.7); /* stripes */
    r = 190 + fur;
    g = 130 + fur * 0.8;
    b = 80 + fur * 0.5;
    double ex = (u - 0.64) * w, ey = (v - 0.38) * h, fx = (u - 0.73) * w;
    if (ex * ex + ey * ey < 30 || fx * fx + ey * ey < 30) r = g = b = 20; /* eyes */
  }
  rgb[0] = clamp_byte(r);
  rgb[1] = clamp_byte(g);
  rgb[2] = clamp_byte(b);
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: synth_image OUT.png [WIDTH HEIGHT]\n");
    return 1;
  }
  int w = argc == 4 ? atoi(argv[2]) : 500, h = argc == 4 ? atoi(argv[3]) : 375;
  if (w < 8 || h < 8 || w > 8192 || h > 8192) {
    fprintf(stderr, "synth_image: size 8..8192\n");
    return 1;
  }
  unsigned char *rgb = malloc((size_t)w * h * 3);
  if (!rgb) return 5;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) pixel(x, y, w, h, rgb + ((size_t)y * w + x) * 3);
  ns_ctx *ctx = ns_ctx_create();
  int rc = 0;
  if (ns_png_save_rgb8(ctx, argv[1], h, w, rgb) != NS_OK) {
    fprintf(stderr, "synth_image: %s\n", ns_ctx_error(ctx));
    rc = (int)ns_ctx_status(ctx);
  }
  ns_ctx_destroy(ctx);
  free(rgb);
  return rc;
}
