/* col2im: the transpose of im2col.  Scatter-adds a column buffer of
 * [channels * kernel_h * kernel_w] rows by [out_h * out_w] columns (the
 * output grid of a convolution over the image) back into an image of
 * [channels, height, width], which is zeroed first.  Used by
 * Deconvolution, whose forward pass is a convolution's backward pass. */
#ifndef NS_KERNELS_COL2IM_H
#define NS_KERNELS_COL2IM_H

#include <stdint.h>

typedef struct ns_col2im_geom {
  int64_t channels, height, width; /* the image */
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
} ns_col2im_geom;

/* Convolution output size along one axis: (in + 2 pad - extent) / stride + 1. */
int64_t ns_col2im_out_size(int64_t in, int kernel, int pad, int stride, int dilation);

/* threads: OpenMP threads over channels (0 = the default); the result
 * does not depend on it. */
void ns_col2im(const ns_col2im_geom *g, const float *col, float *im, int threads);

#endif
