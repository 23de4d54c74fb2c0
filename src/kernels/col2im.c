#include "kernels/col2im.h"

#include <string.h>

#include "kernels/parallel.h"

int64_t ns_col2im_out_size(int64_t in, int kernel, int pad, int stride, int dilation) {
  int64_t extent = (int64_t)dilation * (kernel - 1) + 1;
  return (in + 2 * (int64_t)pad - extent) / stride + 1;
}

/* Adds one column-buffer row (tap (ki, kj) of channel c) into the image. */
static void add_tap(const ns_col2im_geom *g, int64_t out_h, int64_t out_w, int ki, int kj,
                    const float *col_row, float *plane) {
  int64_t row0 = (int64_t)ki * g->dilation_h - g->pad_h;
  int64_t col0 = (int64_t)kj * g->dilation_w - g->pad_w;
  for (int64_t y = 0; y < out_h; y++) {
    int64_t r = row0 + y * g->stride_h;
    if (r < 0 || r >= g->height) continue;
    float *dst = plane + r * g->width;
    const float *src = col_row + y * out_w;
    for (int64_t x = 0; x < out_w; x++) {
      int64_t c = col0 + x * g->stride_w;
      if (c >= 0 && c < g->width) dst[c] += src[x];
    }
  }
}

void ns_col2im(const ns_col2im_geom *g, const float *col, float *im, int threads) {
  int64_t out_h = ns_col2im_out_size(g->height, g->kernel_h, g->pad_h, g->stride_h, g->dilation_h);
  int64_t out_w = ns_col2im_out_size(g->width, g->kernel_w, g->pad_w, g->stride_w, g->dilation_w);
  int64_t plane = g->height * g->width, cols = out_h * out_w;
  if (plane == 0) return;
  memset(im, 0, (size_t)(g->channels * plane) * sizeof(float));
  if (out_h <= 0 || out_w <= 0) return;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (g->channels > 1 && plane > 4096)
  for (int64_t c = 0; c < g->channels; c++)
    for (int ki = 0; ki < g->kernel_h; ki++)
      for (int kj = 0; kj < g->kernel_w; kj++) {
        int64_t row = (c * g->kernel_h + ki) * g->kernel_w + kj;
        add_tap(g, out_h, out_w, ki, kj, col + row * cols, im + c * plane);
      }
}
