/* 2-D pooling over planes [planes, height, width], as Caffe's Pooling
 * forward.  Window (ph, pw) starts at (ph stride_h - pad_h, ...).
 *   MAX: the largest value inside the image (padding ignored); the first
 *        one wins ties; mask (optional) gets its index h * width + w.
 *   AVE: sum inside the image / the window's size clipped to the padded
 *        image [-pad, size + pad), as Caffe's CPU code.
 *   STOCHASTIC: Caffe's test-time rule (its GPU code; the CPU one has
 *        none): sum x^2 / sum x over the unpadded window. */
#ifndef NS_KERNELS_POOL2D_H
#define NS_KERNELS_POOL2D_H

#include <stdint.h>

typedef enum ns_pool_method { NS_POOL_MAX, NS_POOL_AVE, NS_POOL_STOCHASTIC } ns_pool_method;

typedef struct ns_pool2d_shape {
  int64_t planes, height, width;
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w;
  int64_t out_h, out_w;
} ns_pool2d_shape;

/* Caffe's output size along one axis: ceil (or floor) of
 * (in + 2 pad - kernel) / stride in float, + 1; then, when the layer has
 * any padding (any_pad), one less if the last window starts in the
 * padding.  May be <= 0 for impossible shapes.  Arguments must fit int. */
int64_t ns_pool_out_size(int64_t in, int kernel, int pad, int stride, int any_pad, int floor_mode);

/* mask: NULL, or [planes, out_h, out_w] for MAX.  threads: 0 = all. */
void ns_pool2d(const ns_pool2d_shape *s, ns_pool_method m, const float *x, float *y, float *mask,
               int threads);

/* Backward, as Caffe's, for MAX and AVE: dx [planes, height, width] is
 * overwritten with the gradient from dy [planes, out_h, out_w].  MAX
 * routes each output's gradient to its window's maximum in x, found again
 * as forward finds it (first of equals wins, padding ignored); AVE
 * spreads it evenly over the window's image part, divided by the same
 * pool size as forward.  threads: 0 = all. */
void ns_pool2d_backward(const ns_pool2d_shape *s, ns_pool_method m, const float *x, const float *dy,
                        float *dx, int threads);

#endif
