/* The Fashion-MNIST half of the demo.
 *
 *   fmnist_tiles make IMAGES LABELS CLASSES OUT.png TRUTH.txt [GRID] [FIRST]
 *     tiles GRID x GRID test items (default 4 x 4, items FIRST.. in file
 *     order, default 0) into one (28 GRID)^2 grey PNG, and writes their true
 *     classes, one row of the grid per line, to TRUTH.txt.
 *   fmnist_tiles check PROB.npy TRUTH.txt CLASSES
 *     reads the dense class map of the FCN-cast LeNet on that image
 *     ((1, 10, H, W) probabilities from `netsurg forward`), takes the cell
 *     whose window is exactly each tile (cell = tile * 28 / stride), and
 *     prints the grid of predicted names against the truth and the count
 *     of right cells.  Exit status 0 when at least half are right.
 *
 * IMAGES and LABELS are IDX files (Debian's dataset-fashion-mnist ships
 * them gzipped); CLASSES a labels file ("0 T-shirt/top" per line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsurg.h"

#define TILE 28

static int fail(ns_ctx *ctx) {
  fprintf(stderr, "fmnist_tiles: %s\n", ns_ctx_error(ctx));
  int st = ns_ctx_status(ctx);
  ns_ctx_destroy(ctx);
  return st ? st : 1;
}

static int make(ns_ctx *ctx, int argc, char **argv) {
  int grid = argc > 7 ? atoi(argv[7]) : 4, first = argc > 8 ? atoi(argv[8]) : 0;
  if (grid < 1 || grid > 64 || first < 0) {
    fprintf(stderr, "fmnist_tiles: GRID 1..64, FIRST >= 0\n");
    return 1;
  }
  ns_ndarray img, lab;
  ns_labels names;
  if (ns_idx_load(ctx, argv[2], &img) != NS_OK || ns_idx_load(ctx, argv[3], &lab) != NS_OK ||
      ns_labels_load(ctx, argv[4], &names) != NS_OK)
    return fail(ctx);
  if (img.num_axes != 3 || img.shape[1] != TILE || img.shape[2] != TILE ||
      lab.count != img.shape[0] || first + grid * grid > img.shape[0]) {
    fprintf(stderr, "fmnist_tiles: expected N x 28 x 28 images, N labels, N >= FIRST + GRID^2\n");
    return 2;
  }
  int side = grid * TILE;
  unsigned char *rgb = calloc((size_t)side * side * 3, 1);
  FILE *truth = fopen(argv[6], "w");
  if (!rgb || !truth) {
    fprintf(stderr, "fmnist_tiles: cannot write %s\n", argv[6]);
    return 4;
  }
  printf("%dx%d Fashion-MNIST test items %d..%d (the truth):\n", grid, grid, first,
         first + grid * grid - 1);
  for (int r = 0; r < grid; r++) {
    for (int c = 0; c < grid; c++) {
      int item = first + r * grid + c, k = (int)lab.data[item];
      for (int y = 0; y < TILE; y++)
        for (int x = 0; x < TILE; x++) {
          unsigned char v = (unsigned char)img.data[((size_t)item * TILE + y) * TILE + x];
          unsigned char *p = rgb + (((size_t)r * TILE + y) * side + c * TILE + x) * 3;
          p[0] = p[1] = p[2] = v;
        }
      fprintf(truth, c ? " %d" : "%d", k);
      printf("  %-12s", k >= 0 && k < names.count ? names.names[k] : "?");
    }
    fprintf(truth, "\n");
    printf("\n");
  }
  fclose(truth);
  ns_status st = ns_png_save_rgb8(ctx, argv[5], side, side, rgb);
  free(rgb);
  ns_ndarray_free(ctx, &img);
  ns_ndarray_free(ctx, &lab);
  ns_labels_free(ctx, &names);
  if (st != NS_OK) return fail(ctx);
  printf("wrote %s (%dx%d) and %s\n", argv[5], side, side, argv[6]);
  ns_ctx_destroy(ctx);
  return 0;
}

static int check(ns_ctx *ctx, char **argv) {
  ns_ndarray prob;
  ns_labels names;
  if (ns_npy_load(ctx, argv[2], &prob) != NS_OK || ns_labels_load(ctx, argv[4], &names) != NS_OK)
    return fail(ctx);
  FILE *f = fopen(argv[3], "r");
  if (!f || prob.num_axes != 4 || prob.shape[0] != 1) {
    fprintf(stderr, "fmnist_tiles: need %s and a (1, K, H, W) map\n", argv[3]);
    return 2;
  }
  int truth[64 * 64], n = 0;
  while (n < 64 * 64 && fscanf(f, "%d", &truth[n]) == 1) n++;
  fclose(f);
  int grid = 1;
  while (grid * grid < n) grid++;
  int64_t k = prob.shape[1], mh = prob.shape[2], mw = prob.shape[3];
  if (grid * grid != n || mh != mw || mh < grid) {
    fprintf(stderr, "fmnist_tiles: %d truth labels for a %lldx%lld map\n", n, (long long)mh,
            (long long)mw);
    return 2;
  }
  /* input = 28 grid = 28 + (map - 1) stride */
  int64_t stride = grid > 1 ? (TILE * (grid - 1)) / (mh - 1) : 1;
  if (grid > 1 && stride * (mh - 1) != TILE * (grid - 1)) {
    fprintf(stderr, "fmnist_tiles: the map does not tile the image exactly\n");
    return 2;
  }
  printf(
      "the FCN's class at the cell whose window is exactly each tile (stride %lld px, cell = tile "
      "* %lld):\n",
      (long long)stride, (long long)(TILE / stride));
  int right = 0;
  for (int r = 0; r < grid; r++) {
    for (int c = 0; c < grid; c++) {
      int64_t y = r * TILE / stride, x = c * TILE / stride, best = 0;
      for (int64_t j = 1; j < k; j++)
        if (prob.data[(j * mh + y) * mw + x] > prob.data[(best * mh + y) * mw + x]) best = j;
      int ok = best == truth[r * grid + c];
      right += ok;
      char cell[64];
      snprintf(cell, sizeof cell, "%s%s", best < names.count ? names.names[best] : "?",
               ok ? "" : "(x)");
      printf("  %-15s", cell);
    }
    printf("\n");
  }
  printf("%d of %d tiles classified right ((x): wrong)\n", right, n);
  ns_ndarray_free(ctx, &prob);
  ns_labels_free(ctx, &names);
  ns_ctx_destroy(ctx);
  return 2 * right >= n ? 0 : 1;
}

int main(int argc, char **argv) {
  ns_ctx *ctx = ns_ctx_create();
  if (!ctx) return 5;
  if (argc >= 7 && !strcmp(argv[1], "make")) return make(ctx, argc, argv);
  if (argc == 5 && !strcmp(argv[1], "check")) return check(ctx, argv);
  fprintf(stderr,
          "usage: fmnist_tiles make IMAGES LABELS CLASSES OUT.png TRUTH.txt [GRID] [FIRST]\n"
          "       fmnist_tiles check PROB.npy TRUTH.txt CLASSES\n");
  ns_ctx_destroy(ctx);
  return 1;
}
