#include "kernels/lrn_kernel.h"

#include <math.h>
#include <stddef.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"
#include "kernels/pool2d.h"

enum { LRN_CHUNK = 256 }; /* spatial positions per task */

/* scale[c, j0..j0+n) for every channel. */
static void across_scale(int64_t channels, int64_t spatial, int size, float aos, float k,
                         const float *x, float *scale, int64_t j0, int64_t n) {
  int64_t pre = (size - 1) / 2;
  float *s0 = scale + j0;
  for (int64_t j = 0; j < n; j++) s0[j] = k;
  for (int64_t c = 0; c <= pre && c < channels; c++) {
    const float *xc = x + c * spatial + j0;
    for (int64_t j = 0; j < n; j++) s0[j] += aos * (xc[j] * xc[j]);
  }
  for (int64_t c = 1; c < channels; c++) {
    float *sc = scale + c * spatial + j0;
    const float *prev = sc - spatial;
    for (int64_t j = 0; j < n; j++) sc[j] = prev[j];
    if (c + pre < channels) {
      const float *head = x + (c + pre) * spatial + j0;
      for (int64_t j = 0; j < n; j++) sc[j] += aos * (head[j] * head[j]);
    }
    if (c - 1 - pre >= 0) {
      const float *tail = x + (c - 1 - pre) * spatial + j0;
      for (int64_t j = 0; j < n; j++) sc[j] += -aos * (tail[j] * tail[j]);
    }
  }
}

void ns_lrn_across(int64_t channels, int64_t spatial, int size, float alpha, float beta, float k,
                   const float *x, float *y, float *scale, int threads) {
  float aos = alpha / (float)size;
  int64_t chunks = (spatial + LRN_CHUNK - 1) / LRN_CHUNK;
  int nt = ns_kernel_threads(threads);
  /* beta 0.75 (AlexNet, CaffeNet, GoogLeNet) through two square roots:
   * within a few ulp of powf and several times faster. */
  int fast = beta == 0.75f && ns_gemm_avx2();
#pragma omp parallel for schedule(static) num_threads(nt) if (chunks > 1)
  for (int64_t t = 0; t < chunks; t++) {
    int64_t j0 = t * LRN_CHUNK, n = spatial - j0 < LRN_CHUNK ? spatial - j0 : LRN_CHUNK;
    across_scale(channels, spatial, size, aos, k, x, scale, j0, n);
    /* Only after every scale of the chunk is known: y may alias x. */
    for (int64_t c = 0; c < channels; c++) {
      const float *sc = scale + c * spatial + j0, *xc = x + c * spatial + j0;
      float *yc = y + c * spatial + j0;
      if (fast)
        ns_pow_m075_mul_avx2(n, sc, xc, yc);
      else
        for (int64_t j = 0; j < n; j++) yc[j] = powf(sc[j], -beta) * xc[j];
    }
  }
}

void ns_lrn_within(int64_t planes, int64_t height, int64_t width, int size, float alpha, float beta,
                   const float *x, float *y, float *scratch, int threads) {
  int64_t count = planes * height * width;
  float *sq = scratch, *avg = scratch + count;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (count > 65536)
  for (int64_t i = 0; i < count; i++) sq[i] = x[i] * x[i];
  int pad = (size - 1) / 2;
  /* Stride 1 and pad (size-1)/2 keep the size and every window inside
   * [-pad, size + pad), so AVE divides by size^2 everywhere. */
  ns_pool2d_shape ps = {planes, height, width, size, size, pad, pad, 1, 1, height, width};
  ns_pool2d(&ps, NS_POOL_AVE, sq, avg, NULL, threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (count > 65536)
  for (int64_t i = 0; i < count; i++) y[i] = x[i] * powf(avg[i] * alpha + 1.0f, -beta);
}
