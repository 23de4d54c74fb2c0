/* y = a[c] y + b[c] per channel, then max(0, .) if asked, in place over
 * num items of [channels, plane]: a convolution's epilogue when the
 * BatchNorm and Scale after it are folded into it (core/net.c), one pass
 * over the top instead of one per layer. */
#ifndef NS_KERNELS_CHANNEL_AFFINE_H
#define NS_KERNELS_CHANNEL_AFFINE_H

#include <stdint.h>

/* threads: 0 = all; planes are shared out whole, so the result does not
 * depend on the thread count. */
void ns_channel_affine(int64_t num, int64_t channels, int64_t plane, const float *a,
                       const float *b, int relu, float *y, int threads);

#endif
