#include "kernels/conv2d.h"

#include "core/ctx.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/parallel.h"
#include "kernels/pgemm.h"
#include "kernels/winograd.h"

int ns_conv2d_is_1x1(const ns_conv2d_shape *s) {
  return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
         s->pad_h == 0 && s->pad_w == 0;
}

int64_t ns_conv2d_col_count(const ns_conv2d_shape *s) {
  if (ns_conv2d_is_1x1(s)) return 0;
  int64_t taps, rows, spatial, total;
  if (!ns_mul_i64(s->kernel_h, s->kernel_w, &taps) || !ns_mul_i64(taps, s->channels, &rows) ||
      !ns_mul_i64(s->out_h, s->out_w, &spatial) || !ns_mul_i64(rows, spatial, &total))
    return -1;
  return total;
}

int ns_conv2d_fits(const ns_conv2d_shape *s) {
  int64_t kdim, spatial;
  if (!ns_mul_i64(s->channels / s->group, (int64_t)s->kernel_h * s->kernel_w, &kdim) ||
      !ns_mul_i64(s->out_h, s->out_w, &spatial))
    return 0;
  return ns_gemm_fits(s->num_output / s->group, spatial, kdim);
}

int64_t ns_conv2d_scratch_count(const ns_conv2d_shape *s, int threads) {
  int64_t col = ns_conv2d_col_count(s);
  if (col < 0) return -1;
  return (col + 15) / 16 * 16 + ns_gemm_scratch_floats(threads);
}

ns_im2col_geom ns_conv2d_im2col_geom(const ns_conv2d_shape *s) {
  ns_im2col_geom g = {s->channels,   s->height, s->width,    s->kernel_h, s->kernel_w,
                      s->pad_h,      s->pad_w,  s->stride_h, s->stride_w, s->dilation_h,
                      s->dilation_w, s->out_h,  s->out_w};
  return g;
}

ns_col2im_geom ns_conv2d_col2im_geom(const ns_conv2d_shape *s) {
  ns_col2im_geom g = {s->channels, s->height,     s->width,     s->kernel_h,
                      s->kernel_w, s->pad_h,      s->pad_w,     s->stride_h,
                      s->stride_w, s->dilation_h, s->dilation_w};
  return g;
}

void ns_conv2d(const ns_conv2d_shape *s, const float *w, const float *bias, const float *x,
               float *y, float *col, int relu, int threads) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t kdim = cg * s->kernel_h * s->kernel_w, spatial = s->out_h * s->out_w;
  const float *src = x;
  float *pack = col + (ns_conv2d_col_count(s) + 15) / 16 * 16;
  if (!ns_conv2d_is_1x1(s)) {
    ns_im2col_geom g = ns_conv2d_im2col_geom(s);
    ns_im2col(&g, x, col, threads);
    src = col;
  }
  for (int64_t g = 0; g < s->group; g++) {
    /* Bias (as Caffe, after the sum) and a fused ReLU in the epilogue. */
    ns_gemm_epi epi = {bias ? bias + g * og : NULL, NULL, relu};
    ns_gemm(og, spatial, kdim, w + g * og * kdim, kdim, src + g * kdim * spatial, spatial, 0,
            y + g * og * spatial, spatial, &epi, pack, threads);
  }
}

/* Several items on several threads: each thread convolves whole items
 * on its own (its own column buffer), so the threads meet once per layer
 * instead of twice per item: on a busy machine every meeting can wait a
 * time slice for a descheduled thread. */
static int by_item(int64_t num, int threads) {
  int nt = ns_kernel_threads(threads);
  return nt > 1 && num >= nt;
}

int64_t ns_conv2d_batch_scratch_count(const ns_conv2d_shape *s, int64_t num, int have_u,
                                      int threads) {
  if (ns_winograd_worth(s, num, have_u)) return ns_winograd_scratch_count(s, num, threads);
  if (!by_item(num, threads)) return ns_conv2d_scratch_count(s, threads);
  int64_t one = ns_conv2d_scratch_count(s, 1);
  return one < 0 ? -1 : one * ns_kernel_threads(threads);
}

void ns_conv2d_batch(const ns_conv2d_shape *s, int64_t num, const float *w, const float *wino_u,
                     const float *bias, const float *x, float *y, float *scratch, int relu,
                     int threads) {
  if (ns_winograd_worth(s, num, wino_u != NULL)) {
    ns_winograd_conv(s, num, w, wino_u, bias, x, y, scratch, relu, threads);
    return;
  }
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w;
  if (!by_item(num, threads)) {
    for (int64_t n = 0; n < num; n++)
      ns_conv2d(s, w, bias, x + n * in_item, y + n * out_item, scratch, relu, threads);
    return;
  }
  int64_t one = ns_conv2d_scratch_count(s, 1);
#pragma omp parallel num_threads(ns_kernel_threads(threads))
  {
    float *mine = scratch + (int64_t)omp_get_thread_num() * one;
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < num; n++)
      ns_conv2d(s, w, bias, x + n * in_item, y + n * out_item, mine, relu, 1);
  }
}
