/* `make bench-probe`: the machine figures and the Winograd accuracy that
 * bench/TRIED.md and the performance notes quote.
 *   - memory read bandwidth: an AVX2 sum over 234 MB (CaffeNet's fc
 *     weights) on 2 threads, best of 5;
 *   - FMA peak: 12 independent AVX2 FMA chains per thread, 1 and 2
 *     threads, best of 3;
 *   - Winograd's largest error over sum |w| |x| (the convolution of the
 *     absolute values), against the double-precision reference, on
 *     64-channel 3x3 and 5x5 layers and a conv1-like strided one.
 * The first two run outside netsurg's kernels; the machine is shared, so
 * read them as of one run. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/conv2d.h"
#include "kernels/reference.h"
#include "kernels/winograd.h"

#define NS_AVX2 __attribute__((target("avx2,fma")))

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

NS_AVX2 static float sum_floats(const float *a, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
  }
  float v[8];
  _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return v[0];
}

static void bandwidth(void) {
  size_t n = 58500000; /* 234 MB of floats */
  float *a = aligned_alloc(1 << 21, n * sizeof *a);
  if (!a) return;
  memset(a, 0, n * sizeof *a);
  double best = 1e9;
  float sink = 0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
#pragma omp parallel num_threads(2) reduction(+ : sink)
    {
      size_t per = n / 2 / 32 * 32;
      sink += sum_floats(a + (size_t)omp_get_thread_num() * per, per);
    }
    double t = now() - t0;
    if (t < best) best = t;
  }
  printf("memory read, 2 threads: %.1f GB/s (234 MB in %.2f ms, best of 5)%s\n",
         (double)n * sizeof *a / best / 1e9, best * 1e3, sink != 0 ? " " : "");
  free(a);
}

NS_AVX2 static float fma_chains(long iters) {
  __m256 acc[12], x = _mm256_set1_ps(1.0001f), y = _mm256_set1_ps(0.9999f);
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
  __m256 s = acc[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0];
}

static void fma_peak(void) {
  long iters = 50000000;
  for (int nt = 1; nt <= 2; nt++) {
    double best = 1e9;
    float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
      double t0 = now();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
      sink += fma_chains(iters);
      double t = now() - t0;
      if (t < best) best = t;
    }
    printf("FMA peak, %d thread%s: %.0f GFLOP/s%s\n", nt, nt > 1 ? "s" : "",
           (double)nt * iters * 12 * 16 / best / 1e9, sink != 0 ? "" : " ");
  }
}

static float frand(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)(*s >> 8) / (float)(1 << 24) * 2 - 1;
}

/* Largest |winograd - reference| / sum |w| |x| over the outputs. */
static double wino_error(int c, int hw, int k, int pad, int stride, int out_c) {
  ns_conv2d_shape s = {c, hw, hw, out_c, 1, k, k, pad, pad, stride, stride, 1, 1, 0, 0};
  s.out_h = s.out_w = (hw + 2 * pad - k) / stride + 1;
  long wc = (long)out_c * c * k * k, xc = (long)c * hw * hw, yc = (long)out_c * s.out_h * s.out_w;
  float *w = malloc(wc * 4), *aw = malloc(wc * 4), *x = malloc(xc * 4), *ax = malloc(xc * 4);
  float *y = malloc(yc * 4), *ref = malloc(yc * 4), *absum = malloc(yc * 4);
  float *sc = aligned_alloc(64, (ns_winograd_scratch_count(&s, 1, 2) * 4 + 63) / 64 * 64);
  unsigned seed = 1;
  for (long i = 0; i < wc; i++) w[i] = frand(&seed), aw[i] = fabsf(w[i]);
  for (long i = 0; i < xc; i++) x[i] = frand(&seed), ax[i] = fabsf(x[i]);
  ns_winograd_conv(&s, 1, w, NULL, NULL, x, y, sc, 2);
  ns_ref_conv2d(&s, w, NULL, x, ref);
  ns_ref_conv2d(&s, aw, NULL, ax, absum);
  double worst = 0;
  for (long i = 0; i < yc; i++) {
    double e = fabs((double)y[i] - ref[i]) / absum[i];
    if (e > worst) worst = e;
  }
  free(w), free(aw), free(x), free(ax), free(y), free(ref), free(absum), free(sc);
  return worst;
}

int main(void) {
  bandwidth();
  fma_peak();
  printf("Winograd error / sum |w x|: 3x3 F(4x4, 3x3) %.2g, 5x5 F(2x2, 5x5) %.2g, "
         "11x11 stride 4 (space-to-depth, F(4x4, 3x3)) %.2g\n",
         wino_error(64, 30, 3, 1, 1, 64), wino_error(64, 29, 5, 2, 1, 64),
         wino_error(3, 227, 11, 0, 4, 96));
  return 0;
}
