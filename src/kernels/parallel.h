/* Thread count for the OpenMP loops of the kernels: the caller's request
 * (the context's thread setting), or every available thread when 0.
 * Every kernel splits work so that results do not depend on it. */
#ifndef NS_KERNELS_PARALLEL_H
#define NS_KERNELS_PARALLEL_H

#include <omp.h>

static inline int ns_kernel_threads(int requested) {
  return requested > 0 ? requested : omp_get_max_threads();
}

#endif
