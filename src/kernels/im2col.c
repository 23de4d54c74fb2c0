#include "kernels/im2col.h"

#include <string.h>

#include "kernels/parallel.h"

int64_t ns_conv_out_size(int64_t in, int kernel, int pad, int stride, int dilation) {
  int64_t extent = (int64_t)dilation * (kernel - 1) + 1;
  int64_t span = in + 2 * (int64_t)pad - extent;
  if (span < 0) return 0;
  return span / stride + 1;
}

typedef float v4 __attribute__((vector_size(16)));

/* One output row of one tap: out_w values sampled from an image row
 * starting at column col0 with the given step; outside [0, width) is 0.
 * The in-image run [lo, hi) is found first so the copy has no branch. */
static void sample_row(const float *row, int64_t width, int64_t col0, int stride, int64_t out_w,
                       float *dst) {
  int64_t lo = col0 < 0 ? (-col0 + stride - 1) / stride : 0;
  int64_t hi = col0 >= width ? 0 : (width - 1 - col0) / stride + 1;
  if (lo > out_w) lo = out_w;
  if (hi > out_w) hi = out_w;
  if (hi < lo) hi = lo;
  memset(dst, 0, (size_t)lo * sizeof(float));
  if (stride == 1) {
    if (hi > lo) memcpy(dst + lo, row + col0 + lo, (size_t)(hi - lo) * sizeof(float));
  } else {
    const float *src = row + col0;
    int64_t x = lo;
    if (stride == 2) /* four at a time: the even floats of eight (inside the row) */
      for (; x + 4 <= hi && col0 + 2 * x + 8 <= width; x += 4) {
        v4 a, b;
        __builtin_memcpy(&a, src + 2 * x, sizeof a);
        __builtin_memcpy(&b, src + 2 * x + 4, sizeof b);
        v4 e = __builtin_shufflevector(a, b, 0, 2, 4, 6);
        __builtin_memcpy(dst + x, &e, sizeof e);
      }
    for (; x < hi; x++) dst[x] = src[x * stride];
  }
  memset(dst + hi, 0, (size_t)(out_w - hi) * sizeof(float));
}

/* The kernel_w rows of kernel row ki of one channel, for output rows
 * [y0, y1): rows of (y1 - y0) out_w columns. */
static void kernel_row(const ns_im2col_geom *g, const float *plane, int ki, int64_t y0, int64_t y1,
                       float *col) {
  int64_t cols = (y1 - y0) * g->out_w;
  for (int kj = 0; kj < g->kernel_w; kj++) {
    float *dst = col + ((int64_t)ki * g->kernel_w + kj) * cols;
    int64_t row0 = (int64_t)ki * g->dilation_h - g->pad_h;
    int64_t col0 = (int64_t)kj * g->dilation_w - g->pad_w;
    for (int64_t y = y0; y < y1; y++, dst += g->out_w) {
      int64_t r = row0 + y * g->stride_h;
      if (r < 0 || r >= g->height)
        memset(dst, 0, (size_t)g->out_w * sizeof(float));
      else
        sample_row(plane + r * g->width, g->width, col0, g->stride_w, g->out_w, dst);
    }
  }
}

void ns_im2col(const ns_im2col_geom *g, const float *im, float *col, int threads) {
  int64_t plane = g->height * g->width;
  int64_t rows_per_channel = (int64_t)g->kernel_h * g->kernel_w * g->out_h * g->out_w;
  /* Tasks of one kernel row of one channel: conv1's 3 channels alone
   * would leave one of 2 threads idle a third of the time. */
  int64_t tasks = g->channels * g->kernel_h;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) \
    num_threads(nt) if (tasks > 1 && g->channels * rows_per_channel > 4096)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t c = t / g->kernel_h;
    kernel_row(g, im + c * plane, (int)(t % g->kernel_h), 0, g->out_h, col + c * rows_per_channel);
  }
}

void ns_im2col_rows(const ns_im2col_geom *g, const float *im, int64_t y0, int64_t y1,
                    float *col) {
  int64_t plane = g->height * g->width;
  int64_t rows_per_channel = (int64_t)g->kernel_h * g->kernel_w * (y1 - y0) * g->out_w;
  for (int64_t c = 0; c < g->channels; c++)
    for (int ki = 0; ki < g->kernel_h; ki++)
      kernel_row(g, im + c * plane, ki, y0, y1, col + c * rows_per_channel);
}
