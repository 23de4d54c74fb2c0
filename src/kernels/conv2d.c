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
  ns_col2im_geom g = {s->channels, s->height,   s->width,    s->kernel_h,   s->kernel_w,  s->pad_h,
                      s->pad_w,    s->stride_h, s->stride_w, s->dilation_h, s->dilation_w};
  return g;
}

const float *ns_conv2d_columns(const ns_conv2d_shape *s, const float *x, float *col, int threads) {
  if (ns_conv2d_is_1x1(s)) return x;
  ns_im2col_geom g = ns_conv2d_im2col_geom(s);
  ns_im2col(&g, x, col, threads);
  return col;
}

ns_gemm_epi ns_conv2d_group_epi(const ns_conv_epi *epi, int64_t channel, int64_t at) {
  /* Scale, bias (as Caffe, after the sum), residual and ReLU in the
   * GEMM's epilogue. */
  ns_gemm_epi ge = {NULL, NULL, 0, NULL, NULL};
  if (!epi) return ge;
  ge.row_bias = epi->bias ? epi->bias + channel : NULL;
  ge.relu = epi->relu;
  ge.row_scale = epi->scale ? epi->scale + channel : NULL;
  ge.residual = epi->residual ? epi->residual + at : NULL;
  return ge;
}

void ns_conv2d_from_columns(const ns_conv2d_shape *s, const float *w, const ns_conv_epi *epi,
                            const float *cols, float *y, float *pack, int threads) {
  int64_t og = s->num_output / s->group;
  int64_t kdim = s->channels / s->group * s->kernel_h * s->kernel_w, spatial = s->out_h * s->out_w;
  for (int64_t g = 0; g < s->group; g++) {
    ns_gemm_epi ge = ns_conv2d_group_epi(epi, g * og, g * og * spatial);
    ns_gemm(og, spatial, kdim, w + g * og * kdim, kdim, cols + g * kdim * spatial, spatial, 0,
            y + g * og * spatial, spatial, &ge, pack, threads);
  }
}

void ns_conv2d(const ns_conv2d_shape *s, const float *w, const ns_conv_epi *epi, const float *x,
               float *y, float *col, int threads) {
  float *pack = col + (ns_conv2d_col_count(s) + 15) / 16 * 16;
  const float *cols = ns_conv2d_columns(s, x, col, threads);
  ns_conv2d_from_columns(s, w, epi, cols, y, pack, threads);
}

void ns_conv2d_backward_weights(const ns_conv2d_shape *s, const float *cols, const float *dy,
                                float *dw) {
  int64_t og = s->num_output / s->group;
  int64_t kdim = s->channels / s->group * s->kernel_h * s->kernel_w, spatial = s->out_h * s->out_w;
  for (int64_t g = 0; g < s->group; g++)
    ns_sgemm(0, 1, og, kdim, spatial, 1.0f, dy + g * og * spatial, spatial,
             cols + g * kdim * spatial, spatial, 1.0f, dw + g * og * kdim, kdim);
}

void ns_conv2d_backward_data(const ns_conv2d_shape *s, const float *w, const float *dy, float *dx,
                             float *dcol, int threads) {
  int64_t og = s->num_output / s->group;
  int64_t kdim = s->channels / s->group * s->kernel_h * s->kernel_w, spatial = s->out_h * s->out_w;
  int is_1x1 = ns_conv2d_is_1x1(s);
  float *dst = is_1x1 ? dx : dcol;
  for (int64_t g = 0; g < s->group; g++)
    ns_sgemm(1, 0, kdim, spatial, og, 1.0f, w + g * og * kdim, kdim, dy + g * og * spatial, spatial,
             0.0f, dst + g * kdim * spatial, spatial);
  if (is_1x1) return;
  ns_col2im_geom g = ns_conv2d_col2im_geom(s);
  ns_col2im(&g, dcol, dx, threads);
}

void ns_conv2d_bias_forward(int64_t num, int64_t channels, int64_t plane, const float *bias,
                            float *y) {
  for (int64_t n = 0; n < num; n++)
    for (int64_t c = 0; c < channels; c++) {
      float *row = y + (n * channels + c) * plane;
      for (int64_t j = 0; j < plane; j++) row[j] += bias[c];
    }
}

void ns_conv2d_bias_backward(int64_t num, int64_t channels, int64_t plane, const float *dy,
                             float *db) {
  for (int64_t c = 0; c < channels; c++) {
    double sum = 0;
    for (int64_t n = 0; n < num; n++) {
      const float *row = dy + (n * channels + c) * plane;
      for (int64_t j = 0; j < plane; j++) sum += row[j];
    }
    db[c] += (float)sum;
  }
}
