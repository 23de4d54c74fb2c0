/* Softmax over the middle axis of x [outer, channels, inner], for every
 * (outer, inner) position: y = exp(x - max) / sum exp(x - max), as
 * Caffe's.  y may equal x (in place). */
#ifndef NS_KERNELS_SOFTMAX_KERNEL_H
#define NS_KERNELS_SOFTMAX_KERNEL_H

#include <stdint.h>

void ns_softmax(int64_t outer, int64_t channels, int64_t inner, const float *x, float *y,
                int threads);

#endif
