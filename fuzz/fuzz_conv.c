/* libFuzzer target: the convolution kernels on shapes read from the
 * input (items, groups, channels, kernel, stride, pad, map size, threads):
 * Winograd wherever it applies (F(4x4, 3x3), F(2x2, 5x5), strided kernels
 * through space-to-depth), called directly so that small layers reach it
 * too, and the batch path (im2col + GEMM, or the depthwise kernel when
 * bit 2 of byte 1 makes every channel its own group), both against the
 * naive reference in double, with a Winograd tolerance of 1e-5 + 1e-4 |y| + 1e-6 times
 * the tile's sum |w| |x| (see block_max).  The values come from a generator
 * seeded by the rest of the input.  Shapes are kept small: the reference
 * is slow. */
#include <math.h>

#include "fuzz_common.h"
#include "kernels/conv2d.h"
#include "kernels/reference.h"
#include "kernels/winograd.h"

#define WINO_TOL 1e-6

static uint64_t next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static float *values(int64_t n, uint64_t *s, int absolute) {
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v) abort();
  for (int64_t i = 0; i < n; i++) {
    float x = (float)(next(s) >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
    v[i] = absolute ? fabsf(x) : x;
  }
  return v;
}

static float *aligned(int64_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, (size_t)(n > 0 ? n : 1) * sizeof(float)) != 0) abort();
  return p;
}

/* Winograd's rounding follows the magnitudes of a whole tile (up to
 * 4 x 4 outputs, tiles aligned at multiples of their size), not of one
 * output: next to wide padding an output's own sum |w| |x| can be 50 times
 * smaller than its tile's, and its error then reached 3e-5 of its own sum
 * (the first inputs this target found) but at most 5.5e-7 of the largest
 * sum of the aligned 4 x 4 block around it, which the bound takes. */
static double block_max(const float *absum, int64_t oh, int64_t ow, int64_t i) {
  int64_t plane = oh * ow, p = i / plane, r = i % plane / ow, c = i % ow;
  const float *a = absum + p * plane;
  double m = 0;
  for (int64_t y = r / 4 * 4; y < r / 4 * 4 + 4 && y < oh; y++)
    for (int64_t x = c / 4 * 4; x < c / 4 * 4 + 4 && x < ow; x++)
      if (a[y * ow + x] > m) m = a[y * ow + x];
  return m;
}

static void check(const char *what, const float *got, const float *ref, const float *absum,
                  int64_t n, int64_t oh, int64_t ow) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)ref[i]), bm = block_max(absum, oh, ow, i);
    if (!(err <= 1e-5 + 1e-4 * fabs((double)ref[i]) + WINO_TOL * bm)) {
      fprintf(stderr, "%s: element %lld is %.9g, reference %.9g (sum |w x| %.6g, block %.6g)\n",
              what, (long long)i, got[i], ref[i], absum[i], bm);
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 12) return 0;
  const uint8_t *b = data;
  int group = 1 + b[1] % 2, k = 1 + b[4] % 12, st = 1 + b[5] % 4;
  ns_conv2d_shape s = {group * (1 + b[2] % 12), 1 + b[7] % 28, 1 + b[8] % 28,
                       group * (1 + b[3] % 12), group, k, k, b[6] % k, b[6] % k, st, st, 1, 1,
                       0, 0};
  if (b[1] & 4) group = (int)(s.group = s.num_output = s.channels); /* depthwise */
  int64_t num = 1 + b[0] % 3;
  int threads = 1 + b[9] % 3, relu = b[10] & 1;
  s.out_h = ns_conv_out_size(s.height, k, s.pad_h, st, 1);
  s.out_w = ns_conv_out_size(s.width, k, s.pad_w, st, 1);
  if (s.out_h <= 0 || s.out_w <= 0) return 0;
  uint64_t seed = 0x5eed;
  for (size_t i = 11; i < size; i++) seed = seed * 1099511628211u ^ data[i];

  int64_t cg = s.channels / group, wcount = s.num_output * cg * k * k;
  int64_t in_item = s.channels * s.height * s.width, out_item = s.num_output * s.out_h * s.out_w;
  int64_t xcount = num * in_item, ycount = num * out_item;
  float *w = values(wcount, &seed, 0), *x = values(xcount, &seed, 0);
  float *bias = values(s.num_output, &seed, 0);
  float *aw = malloc((size_t)wcount * sizeof *aw), *ax = malloc((size_t)xcount * sizeof *ax);
  float *ref = aligned(ycount), *absum = aligned(ycount), *y = aligned(ycount);
  if (!aw || !ax) abort();
  for (int64_t i = 0; i < wcount; i++) aw[i] = fabsf(w[i]);
  for (int64_t i = 0; i < xcount; i++) ax[i] = fabsf(x[i]);
  for (int64_t n = 0; n < num; n++) {
    ns_ref_conv2d(&s, w, bias, x + n * in_item, ref + n * out_item);
    ns_ref_conv2d(&s, aw, NULL, ax + n * in_item, absum + n * out_item);
  }
  if (relu)
    for (int64_t i = 0; i < ycount; i++) ref[i] = ref[i] < 0.0f ? 0.0f : ref[i];

  ns_conv_epi epi = {NULL, bias, NULL, relu};
  if (ns_winograd_applies(&s)) {
    float *sc = aligned(ns_winograd_scratch_count(&s, num, threads));
    float *u = aligned(ns_winograd_weights_count(&s));
    ns_winograd_conv(&s, num, w, NULL, &epi, x, y, sc, threads);
    check("winograd", y, ref, absum, ycount, s.out_h, s.out_w);
    ns_winograd_weights(&s, w, u, threads);
    ns_winograd_conv(&s, num, w, u, &epi, x, y, sc, threads);
    check("winograd, weights given", y, ref, absum, ycount, s.out_h, s.out_w);
    free(sc), free(u);
  }
  int64_t need = ns_conv2d_batch_scratch_count(&s, num, 0, threads);
  if (need >= 0) {
    float *sc = aligned(need);
    ns_conv2d_batch(&s, num, w, NULL, &epi, x, y, sc, threads);
    check("conv batch", y, ref, absum, ycount, s.out_h, s.out_w);
    free(sc);
  }
  free(w), free(x), free(bias), free(aw), free(ax), free(ref), free(absum), free(y);
  return 0;
}
