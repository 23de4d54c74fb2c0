/* Depthwise convolution: group == channels == num_output, so every
 * channel is convolved with its own kernel_h x kernel_w filter
 * (MobileNet's 3x3 layers, stride 1 and 2).  As a grouped GEMM each
 * group is a 1 x (kh kw) by (kh kw) x plane product, all packing and no
 * arithmetic; here each output row is summed straight from the input
 * rows, the window's columns in registers, the row in L1.
 *
 * Each output is bias (or 0) plus the taps in order (ky, kx), so results
 * do not depend on the thread count (planes are shared out whole). */
#ifndef NS_KERNELS_DEPTHWISE_H
#define NS_KERNELS_DEPTHWISE_H

#include <stdint.h>

#include "kernels/conv2d.h"

/* 1 when s is depthwise (and more than one channel: one channel is a
 * plain convolution). */
int ns_depthwise_applies(const ns_conv2d_shape *s);

/* Floats of scratch the padded path needs on `threads` threads (3-wide
 * kernels at stride 1 or 2: each thread's copy of a plane inside a zero
 * border); 0 when s takes the in-place path. */
int64_t ns_depthwise_scratch_count(const ns_conv2d_shape *s, int threads);

/* num items x [channels, height, width] -> y [channels, out_h, out_w];
 * w [channels, kh, kw]; bias [channels] or NULL; relu: max(0, .) after;
 * scratch: ns_depthwise_scratch_count floats, 64-byte aligned; threads:
 * 0 = all. */
void ns_depthwise_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *bias,
                       const float *x, float *y, int relu, float *scratch, int threads);

#endif
