/* 2-D convolution of one item, as Caffe's BaseConvolutionLayer:
 * x [channels, height, width] -> y [num_output, out_h, out_w], weights
 * [num_output, channels / group, kernel_h, kernel_w], optional bias
 * [num_output].  Forward: im2col + one GEMM per group (a 1x1 kernel with
 * stride 1 and no padding is a GEMM straight on the input).  Backward,
 * beside it: the weights' gradient (Caffe's weight_cpu_gemm), the data's
 * (backward_cpu_gemm: W^T dy, then col2im) and the bias's
 * (backward_cpu_bias).  Deconvolution runs them the other way round: its
 * forward is the backward-data kernel, its backward the forward one. */
#ifndef NS_KERNELS_CONV2D_H
#define NS_KERNELS_CONV2D_H

#include <stdint.h>

#include "kernels/col2im.h"
#include "kernels/im2col.h"
#include "kernels/pgemm.h"

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

/* What a convolution's forward does to its sums, per output channel c:
 * y = sum scale[c] + bias[c] (scale NULL: 1, bias NULL: 0), + residual
 * (an array shaped as y, or NULL), each step rounded apart, then max(0, y)
 * when relu (a following in-place ReLU, fused).  scale carries a folded
 * BatchNorm and Scale, residual a folded Eltwise sum (core/net.c), in the
 * kernels' registers instead of passes over y.  A NULL epilogue is all
 * absent. */
typedef struct ns_conv_epi {
  const float *scale, *bias, *residual;
  int relu;
} ns_conv_epi;

/* The GEMM epilogue of the output channels from `channel` on (a group's),
 * the residual moved to `at` floats into the output; epi may be NULL. */
ns_gemm_epi ns_conv2d_group_epi(const ns_conv_epi *epi, int64_t channel, int64_t at);

/* col: ns_conv2d_scratch_count floats, 64-byte aligned; epi may be
 * NULL; threads: 0 = all. */
void ns_conv2d(const ns_conv2d_shape *s, const float *w, const ns_conv_epi *epi, const float *x,
               float *y, float *col, int threads);

/* ns_conv2d in two steps, for callers that use the columns twice (the
 * weights' gradient and Deconvolution's backward): the GEMM operand of x
 * (its columns, written to col, or x itself on the 1x1 path), then
 * y = W cols per group, then the epilogue.  pack: ns_gemm_scratch_floats
 * (threads) floats, 64-byte aligned. */
const float *ns_conv2d_columns(const ns_conv2d_shape *s, const float *x, float *col, int threads);
void ns_conv2d_from_columns(const ns_conv2d_shape *s, const float *w, const ns_conv_epi *epi,
                            const float *cols, float *y, float *pack, int threads);

/* Backward of one item.  dw += dy cols^T per group, cols from
 * ns_conv2d_columns of the item's x. */
void ns_conv2d_backward_weights(const ns_conv2d_shape *s, const float *cols, const float *dy,
                                float *dw);
/* dx = the transpose of the convolution applied to dy (overwritten):
 * W^T dy per group into dcol (col_count floats; unused on the 1x1 path,
 * where it goes straight to dx), then col2im. */
void ns_conv2d_backward_data(const ns_conv2d_shape *s, const float *w, const float *dy, float *dx,
                             float *dcol, int threads);
/* The bias over num items of [channels, plane]: y[n][c][j] += bias[c]
 * (forward), and db[c] += the sum of dy[n][c][j] over n and j, summed in
 * double (backward).  InnerProduct's bias is the case plane = 1. */
void ns_conv2d_bias_forward(int64_t num, int64_t channels, int64_t plane, const float *bias,
                            float *y);
void ns_conv2d_bias_backward(int64_t num, int64_t channels, int64_t plane, const float *dy,
                             float *db);

/* num items in a row, as a plan made for them (kernels/conv_plan.h)
 * runs them: Winograd where it applies and pays, else ns_conv2d per item.
 * wino_u: the weights as ns_winograd_weights transforms them, or NULL.
 * scratch: ns_conv2d_batch_scratch_count floats (have_u: wino_u will be
 * given). */
int64_t ns_conv2d_batch_scratch_count(const ns_conv2d_shape *s, int64_t num, int have_u,
                                      int threads);
void ns_conv2d_batch(const ns_conv2d_shape *s, int64_t num, const float *w, const float *wino_u,
                     const ns_conv_epi *epi, const float *x, float *y, float *scratch,
                     int threads);

#endif
