#include "kernels/softmax_kernel.h"

#include <math.h>

#include "kernels/parallel.h"

enum { SOFTMAX_CHUNK = 64 }; /* inner positions per task */

/* Positions j0..j0+n of one outer slice; x and y point at its channel 0. */
static void softmax_chunk(int64_t channels, int64_t inner, const float *x, float *y, int64_t n) {
  float mx[SOFTMAX_CHUNK], sum[SOFTMAX_CHUNK];
  for (int64_t j = 0; j < n; j++) mx[j] = x[j], sum[j] = 0.0f;
  for (int64_t c = 1; c < channels; c++)
    for (int64_t j = 0; j < n; j++)
      if (mx[j] < x[c * inner + j]) mx[j] = x[c * inner + j];
  for (int64_t c = 0; c < channels; c++)
    for (int64_t j = 0; j < n; j++) {
      float e = expf(x[c * inner + j] - mx[j]);
      y[c * inner + j] = e;
      sum[j] += e;
    }
  for (int64_t c = 0; c < channels; c++)
    for (int64_t j = 0; j < n; j++) y[c * inner + j] /= sum[j];
}

void ns_softmax(int64_t outer, int64_t channels, int64_t inner, const float *x, float *y,
                int threads) {
  if (channels <= 0 || inner <= 0) return;
  int64_t chunks = (inner + SOFTMAX_CHUNK - 1) / SOFTMAX_CHUNK, tasks = outer * chunks;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) \
    num_threads(nt) if (tasks > 1 && outer * channels * inner > 16384)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t o = t / chunks, j0 = (t % chunks) * SOFTMAX_CHUNK;
    int64_t n = inner - j0 < SOFTMAX_CHUNK ? inner - j0 : SOFTMAX_CHUNK;
    int64_t off = o * channels * inner + j0;
    softmax_chunk(channels, inner, x + off, y + off, n);
  }
}
