/* Local response normalisation, as Caffe's LRN forward.
 *   across channels: scale = k + alpha/size * sum of x^2 over the size
 *     channels centred on c (zero padded); y = x scale^-beta.  The sum
 *     rolls from channel to channel (add the head, subtract the tail) in
 *     Caffe's order.
 *   within channel: y = x (1 + alpha avg(x^2))^-beta, avg over the
 *     size x size window centred on each pixel with zero padding; as
 *     Caffe's split + power + AVE pooling + power + product, k unused.
 * size must be odd.  y may equal x (in place). */
#ifndef NS_KERNELS_LRN_KERNEL_H
#define NS_KERNELS_LRN_KERNEL_H

#include <stdint.h>

/* num items x [channels, spatial]; scratch: ns_lrn_across_scratch floats. */
int64_t ns_lrn_across_scratch(int64_t channels, int threads);
void ns_lrn_across(int64_t num, int64_t channels, int64_t spatial, int size, float alpha,
                   float beta, float k, const float *x, float *y, float *scratch, int threads);

/* x [planes, height, width]; scratch: 2 * planes * height * width floats. */
void ns_lrn_within(int64_t planes, int64_t height, int64_t width, int size, float alpha, float beta,
                   const float *x, float *y, float *scratch, int threads);

#endif
