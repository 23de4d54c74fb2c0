/* im2col, as Caffe's: unrolls every convolution window of an image
 * [channels, height, width] into a column buffer of
 * [channels * kernel_h * kernel_w] rows by [out_h * out_w] columns, so a
 * convolution becomes one GEMM.  Taps that fall in the padding are 0. */
#ifndef NS_KERNELS_IM2COL_H
#define NS_KERNELS_IM2COL_H

#include <stdint.h>

typedef struct ns_im2col_geom {
  int64_t channels, height, width; /* the image */
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_h, out_w; /* the convolution's output grid */
} ns_im2col_geom;

/* Floor-rounded convolution output size along one axis:
 * (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1; may be <= 0
 * when the dilated kernel is larger than the padded input. */
int64_t ns_conv_out_size(int64_t in, int kernel, int pad, int stride, int dilation);

/* threads: OpenMP threads over channels (0 = all). */
void ns_im2col(const ns_im2col_geom *g, const float *im, float *col, int threads);
/* The columns of output rows [y0, y1) only, on the calling thread: col
 * [channels * kernel_h * kernel_w][(y1 - y0) * out_w]. */
void ns_im2col_rows(const ns_im2col_geom *g, const float *im, int64_t y0, int64_t y1,
                    float *col);

#endif
