/* Naive reference kernels, written straight from the definitions (double
 * accumulation, no im2col, no rolling sums) for tests to check the fast
 * kernels against.  Not used by the layers. */
#ifndef NS_KERNELS_REFERENCE_H
#define NS_KERNELS_REFERENCE_H

#include <stdint.h>

#include "kernels/conv2d.h"
#include "kernels/pool2d.h"

/* C [m, n] = op(A) op(B), row-major. */
void ns_ref_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                 const float *b, float *c);
/* One item, direct 7-loop convolution. */
void ns_ref_conv2d(const ns_conv2d_shape *s, const float *w, const float *bias, const float *x,
                   float *y);
/* One item's gradients by the definition: dx (of x) and dw (of w) from
 * dy, both overwritten. */
void ns_ref_conv2d_backward(const ns_conv2d_shape *s, const float *w, const float *x,
                            const float *dy, float *dx, float *dw);
/* Every window by its definition in padded coordinates. */
void ns_ref_pool2d(const ns_pool2d_shape *s, ns_pool_method m, const float *x, float *y);
void ns_ref_lrn_across(int64_t channels, int64_t spatial, int size, float alpha, float beta,
                       float k, const float *x, float *y);
void ns_ref_lrn_within(int64_t planes, int64_t height, int64_t width, int size, float alpha,
                       float beta, const float *x, float *y);
void ns_ref_softmax(int64_t outer, int64_t channels, int64_t inner, const float *x, float *y);

#endif
