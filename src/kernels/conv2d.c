#include "kernels/conv2d.h"

#include "core/ctx.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/parallel.h"

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

/* y[o, :] += bias[o]: Caffe adds it with a rank-1 GEMM; same sums. */
static void add_bias(int64_t outputs, int64_t spatial, const float *bias, float *y, int threads) {
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (outputs * spatial > 65536)
  for (int64_t o = 0; o < outputs; o++) {
    float *row = y + o * spatial;
    for (int64_t j = 0; j < spatial; j++) row[j] += bias[o];
  }
}

void ns_conv2d(const ns_conv2d_shape *s, const float *w, const float *bias, const float *x,
               float *y, float *col, int threads) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t kdim = cg * s->kernel_h * s->kernel_w, spatial = s->out_h * s->out_w;
  const float *src = x;
  if (!ns_conv2d_is_1x1(s)) {
    ns_im2col_geom g = {s->channels,   s->height, s->width,    s->kernel_h, s->kernel_w,
                        s->pad_h,      s->pad_w,  s->stride_h, s->stride_w, s->dilation_h,
                        s->dilation_w, s->out_h,  s->out_w};
    ns_im2col(&g, x, col, threads);
    src = col;
  }
  for (int64_t g = 0; g < s->group; g++)
    ns_sgemm(0, 0, og, spatial, kdim, 1.0f, w + g * og * kdim, kdim, src + g * kdim * spatial,
             spatial, 0.0f, y + g * og * spatial, spatial);
  if (bias) add_bias(s->num_output, spatial, bias, y, threads);
}
