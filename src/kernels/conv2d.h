/* 2-D convolution of one item, as Caffe's Convolution forward:
 * x [channels, height, width] -> y [num_output, out_h, out_w], weights
 * [num_output, channels / group, kernel_h, kernel_w], optional bias
 * [num_output].  im2col + one GEMM per group; a 1x1 kernel with stride 1
 * and no padding is a GEMM straight on the input. */
#ifndef NS_KERNELS_CONV2D_H
#define NS_KERNELS_CONV2D_H

#include <stdint.h>

#include "kernels/col2im.h"
#include "kernels/im2col.h"

typedef struct ns_conv2d_shape {
  int64_t channels, height, width, num_output, group;
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_h, out_w;
} ns_conv2d_shape;

/* 1 when the convolution needs no im2col. */
int ns_conv2d_is_1x1(const ns_conv2d_shape *s);
/* Floats of column buffer ns_conv2d needs (0 on the 1x1 path); -1 on
 * overflow.  GEMM sizes: see ns_conv2d_fits. */
int64_t ns_conv2d_col_count(const ns_conv2d_shape *s);
/* 1 when every GEMM dimension fits BLAS's int. */
int ns_conv2d_fits(const ns_conv2d_shape *s);
/* The im2col / col2im geometry of the convolution's input. */
ns_im2col_geom ns_conv2d_im2col_geom(const ns_conv2d_shape *s);
ns_col2im_geom ns_conv2d_col2im_geom(const ns_conv2d_shape *s);

/* Floats of scratch ns_conv2d needs on `threads` threads: the column
 * buffer and the GEMM's packing space; -1 on overflow. */
int64_t ns_conv2d_scratch_count(const ns_conv2d_shape *s, int threads);

/* col: ns_conv2d_scratch_count floats, 64-byte aligned; bias may be NULL;
 * relu: apply max(0, .) to the result (a following in-place ReLU, fused);
 * threads: 0 = all. */
void ns_conv2d(const ns_conv2d_shape *s, const float *w, const float *bias, const float *x,
               float *y, float *col, int relu, int threads);

/* num items in a row: Winograd (F(4x4, 3x3) or F(2x2, 5x5), strided
 * kernels through space-to-depth) where it applies and pays
 * (kernels/winograd.h), else ns_conv2d per item.  wino_u: the weights as
 * ns_winograd_weights transforms them, or NULL.  scratch:
 * ns_conv2d_batch_scratch_count floats (have_u: wino_u will be given). */
int64_t ns_conv2d_batch_scratch_count(const ns_conv2d_shape *s, int64_t num, int have_u,
                                      int threads);
void ns_conv2d_batch(const ns_conv2d_shape *s, int64_t num, const float *w, const float *wino_u,
                     const float *bias, const float *x, float *y, float *scratch, int relu,
                     int threads);

#endif
