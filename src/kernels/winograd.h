/* 3x3 and 5x5 stride-1 convolution by Winograd's F(2x2, 3x3) and
 * F(2x2, 5x5): each 2x2 output tile from a 4x4 (6x6) input tile with 16
 * (36) multiplies per channel pair instead of 36 (100).  Work is shared
 * out in tasks of 16 tiles: each packs its transformed input, multiplies
 * it with the transformed weights at every position (the GEMM
 * micro-kernel over all input channels at once) and transforms the
 * products back, all in its own cache-sized scratch, so that nothing but
 * the input, the weights and the output goes through memory, and the
 * threads meet once per layer.  The transformed weights may come from the
 * caller (who keeps them while the weights do not change) or are made per
 * call. */
#ifndef NS_KERNELS_WINOGRAD_H
#define NS_KERNELS_WINOGRAD_H

#include <stdint.h>

#include "kernels/conv2d.h"

/* 1 when s is a convolution this path computes: 3x3 or 5x5, stride 1, no
 * dilation, the same pad on both axes, below the kernel size. */
int ns_winograd_applies(const ns_conv2d_shape *s);
/* 1 when it is also worth it for `num` items (enough tiles); have_u: the
 * transformed weights are at hand (ns_winograd_weights). */
int ns_winograd_worth(const ns_conv2d_shape *s, int64_t num, int have_u);
/* Floats of the transformed weights of every group, and the transform. */
int64_t ns_winograd_weights_count(const ns_conv2d_shape *s);
void ns_winograd_weights(const ns_conv2d_shape *s, const float *w, float *u, int threads);
/* Floats of scratch ns_winograd_conv needs for `num` items. */
int64_t ns_winograd_scratch_count(const ns_conv2d_shape *s, int64_t num, int threads);

/* num items x [channels, height, width] -> y [num_output, out_h, out_w]
 * each, + bias (may be NULL), ReLU when relu.  u_ready: w transformed by
 * ns_winograd_weights, or NULL to transform here.  scratch 64-byte
 * aligned. */
void ns_winograd_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *u_ready,
                      const float *bias, const float *x, float *y, float *scratch, int relu,
                      int threads);

#endif
