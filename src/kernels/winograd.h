/* Convolution by Winograd's minimal filtering: F(4x4, 3x3) and
 * F(2x2, 5x5) (an m x m output tile from an (m + r - 1)^2 input tile
 * with (m + r - 1)^2 multiplies per channel pair instead of m^2 r^2), and
 * strided kernels through space-to-depth (CaffeNet's conv1, 11x11 stride
 * 4, as a 3x3 convolution of 48 channels).  Work is shared out in tasks
 * of 16-64 tiles: each packs its transformed input, multiplies it with the
 * transformed weights at every tile position (the GEMM micro-kernel over
 * all input channels at once) and transforms the products back, all in
 * its own cache-sized scratch, so that nothing but the input, the weights
 * and the output goes through memory (when a layer has few tiles the
 * threads pack them together, then share out the output channels).  The
 * tile size depends on the kernel alone, never on the map, the batch or
 * the threads.  The transformed weights may come from the caller (who
 * keeps them while the weights do not change) or are made per call. */
#ifndef NS_KERNELS_WINOGRAD_H
#define NS_KERNELS_WINOGRAD_H

#include <stdint.h>

#include "kernels/conv2d.h"

/* 1 when s is a convolution this path computes: no dilation, square
 * kernel, stride and pad (pad below the kernel size), and a kernel of 3 or
 * 5 once divided by the stride (rounded up). */
int ns_winograd_applies(const ns_conv2d_shape *s);
/* 1 when it is also worth it for `num` items (enough tiles); have_u: the
 * transformed weights are at hand (ns_winograd_weights). */
int ns_winograd_worth(const ns_conv2d_shape *s, int64_t num, int have_u);
/* m of the F(m x m, r x r) that computes s: 4 (F(4x4, 3x3)) or 2
 * (F(2x2, 5x5)); s must be one ns_winograd_applies to. */
int ns_winograd_tile(const ns_conv2d_shape *s);
/* Floats of the transformed weights of every group, and the transform. */
int64_t ns_winograd_weights_count(const ns_conv2d_shape *s);
void ns_winograd_weights(const ns_conv2d_shape *s, const float *w, float *u, int threads);
/* Floats of scratch ns_winograd_conv needs for `num` items. */
int64_t ns_winograd_scratch_count(const ns_conv2d_shape *s, int64_t num, int threads);

/* num items x [channels, height, width] -> y [num_output, out_h, out_w]
 * each, then the epilogue (may be NULL).  u_ready: w transformed by
 * ns_winograd_weights, or NULL to transform here.  scratch 64-byte
 * aligned. */
void ns_winograd_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *u_ready,
                      const ns_conv_epi *epi, const float *x, float *y, float *scratch,
                      int threads);

#endif
