#include "kernels/lrn_kernel.h"

#include <math.h>
#include <stddef.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"
#include "kernels/pool2d.h"

enum { LRN_CHUNK = 256 }; /* spatial positions per task */

int64_t ns_lrn_across_scratch(int64_t channels, int threads) {
  return (int64_t)ns_kernel_threads(threads) * channels * LRN_CHUNK;
}

/* scale [c][LRN_CHUNK] for positions j0..j0+n of every channel. */
static void across_scale(int64_t channels, int64_t spatial, int size, float aos, float k,
                         const float *x, float *scale, int64_t j0, int64_t n) {
  int64_t pre = (size - 1) / 2;
  float *s0 = scale;
  for (int64_t j = 0; j < n; j++) s0[j] = k;
  for (int64_t c = 0; c <= pre && c < channels; c++) {
    const float *xc = x + c * spatial + j0;
    for (int64_t j = 0; j < n; j++) s0[j] += aos * (xc[j] * xc[j]);
  }
  for (int64_t c = 1; c < channels; c++) {
    float *sc = scale + c * LRN_CHUNK;
    const float *prev = sc - LRN_CHUNK;
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

void ns_lrn_across(int64_t num, int64_t channels, int64_t spatial, int size, float alpha,
                   float beta, float k, const float *x, float *y, float *scratch, int threads) {
  float aos = alpha / (float)size;
  int64_t chunks = (spatial + LRN_CHUNK - 1) / LRN_CHUNK, item = channels * spatial;
  int nt = ns_kernel_threads(threads);
  /* beta 0.75 (AlexNet, CaffeNet, GoogLeNet) through two square roots:
   * within a few ulp of powf and several times faster. */
  int fast = beta == 0.75f && ns_gemm_avx2();
  /* One region for every item and chunk (a batch of 10 had met the
   * threads 10 times per layer), each thread's scale in its own small
   * buffer. */
#pragma omp parallel num_threads(nt) if (num * chunks > 1)
  {
    float *scale = scratch + (int64_t)omp_get_thread_num() * channels * LRN_CHUNK;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < num * chunks; t++) {
      int64_t n = t / chunks, j0 = t % chunks * LRN_CHUNK;
      int64_t len = spatial - j0 < LRN_CHUNK ? spatial - j0 : LRN_CHUNK;
      const float *xn = x + n * item;
      float *yn = y + n * item;
      across_scale(channels, spatial, size, aos, k, xn, scale, j0, len);
      /* Only after every scale of the chunk is known: y may alias x. */
      for (int64_t c = 0; c < channels; c++) {
        const float *sc = scale + c * LRN_CHUNK, *xc = xn + c * spatial + j0;
        float *yc = yn + c * spatial + j0;
        if (fast)
          ns_pow_m075_mul_avx2(len, sc, xc, yc);
        else
          for (int64_t j = 0; j < len; j++) yc[j] = powf(sc[j], -beta) * xc[j];
      }
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
