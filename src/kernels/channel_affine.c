#include "kernels/channel_affine.h"

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

/* Eight floats in a GCC vector: GCC's -O2 does not vectorise a loop
 * whose length is unknown, so the body is written eight wide. */
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) void one_plane(int64_t n, float a, float b, int relu,
                                                            float *y) {
  const v8 va = {a, a, a, a, a, a, a, a}, vb = {b, b, b, b, b, b, b, b}, zero = {0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    v8 v;
    __builtin_memcpy(&v, y + j, sizeof v);
    v = v * va + vb;
    if (relu) v = (v8)((v8i)v & ~(v < zero)); /* NaN compares false: passes */
    __builtin_memcpy(y + j, &v, sizeof v);
  }
  for (; j < n; j++) {
    float v = y[j] * a + b;
    y[j] = relu && v < 0.0f ? 0.0f : v;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define NS_AVX2 __attribute__((target("avx2,fma")))
#else
#define NS_AVX2
#endif

#define PLANES_FUNC(SUFFIX, ATTR)                                                           \
  ATTR static void planes##SUFFIX(int64_t num, int64_t channels, int64_t plane,            \
                                  const float *a, const float *b, int relu, float *y,      \
                                  int nt) {                                                 \
    int64_t planes = num * channels;                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1 && planes > 1)")  \
    for (int64_t p = 0; p < planes; p++) {                                                  \
      int64_t c = p % channels;                                                             \
      one_plane(plane, a[c], b[c], relu, y + p * plane);                                    \
    }                                                                                       \
  }
PLANES_FUNC(_c, )
PLANES_FUNC(_avx2, NS_AVX2)

void ns_channel_affine(int64_t num, int64_t channels, int64_t plane, const float *a,
                       const float *b, int relu, float *y, int threads) {
  int nt = ns_kernel_threads(threads);
  if (ns_gemm_avx2())
    planes_avx2(num, channels, plane, a, b, relu, y, nt);
  else
    planes_c(num, channels, plane, a, b, relu, y, nt);
}
