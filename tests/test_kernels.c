/* The fast kernels (im2col + GEMM convolution, pooling, LRN, softmax)
 * against the naive reference kernels of src/kernels/reference.c on random
 * shapes: odd sizes, groups, padding, strides, dilation, the 1x1 path.
 * Tolerance: |got - want| <= ABS_TOL + REL_TOL |want| (the reference
 * accumulates in double; float GEMM sums of up to ~300 terms of [-1, 1]
 * values stay well inside it).  Every kernel also gives bit-identical
 * results on 1 and 3 threads; the GEMM and convolution are checked on both
 * kernel paths (AVX2+FMA where the CPU has it, and portable C).
 * Winograd's transforms add rounding in proportion to the terms rather than
 * to their sum, so its tests also allow WINO_TOL times sum |w| |x| (the
 * reference convolution of the absolute values): measured on 64-channel
 * layers, F(4x4, 3x3) errs by at most 1e-6 of it and F(2x2, 5x5) by 3e-7
 * on these uniform random inputs (next to wide padding the bound needs the
 * whole tile's sum: see fuzz/fuzz_conv.c); a wrong transform entry errs by
 * far more than 1e-2 of it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cblas.h>

#include "kernels/conv2d.h"
#include "kernels/conv_plan.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/lrn_kernel.h"
#include "kernels/pgemm.h"
#include "kernels/pool2d.h"
#include "kernels/reference.h"
#include "kernels/softmax_kernel.h"
#include "kernels/winograd.h"

#define ABS_TOL 1e-5
#define REL_TOL 1e-4
#define WINO_TOL 1e-6

/* ---- helpers --------------------------------------------------------- */

typedef struct rnd {
  uint64_t s;
} rnd;

static uint32_t rnd_u32(rnd *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 32);
}
/* Uniform integer in [lo, hi]. */
static int rnd_int(rnd *r, int lo, int hi) {
  return lo + (int)(rnd_u32(r) % (uint32_t)(hi - lo + 1));
}
static float rnd_float(rnd *r, float lo, float hi) {
  return lo + (hi - lo) * (float)(rnd_u32(r) >> 8) / 16777216.0f;
}

static float *rnd_array(rnd *r, int64_t n, float lo, float hi) {
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) v[i] = rnd_float(r, lo, hi);
  return v;
}

static float *zeros(int64_t n) {
  float *v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
  assert_non_null(v);
  return v;
}

/* 64-byte aligned, as the kernels' scratch from the net. */
static float *scratch(int64_t n) {
  void *p = NULL;
  assert_int_equal(posix_memalign(&p, 64, (size_t)(n > 0 ? n : 1) * sizeof(float)), 0);
  memset(p, 0, (size_t)(n > 0 ? n : 1) * sizeof(float));
  return p;
}
static void free_scratch(float *p) { free(p); }

static void expect_close(const float *got, const float *want, int64_t n, const char *what) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    if (!(err <= ABS_TOL + REL_TOL * fabs((double)want[i])))
      fail_msg("%s: element %lld is %.9g, reference %.9g", what, (long long)i, got[i], want[i]);
  }
}

/* Winograd's tolerance: absum is the convolution of |w| and |x|. */
static void expect_close_wino(const float *got, const float *want, const float *absum, int64_t n,
                              const char *what) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    if (!(err <= ABS_TOL + REL_TOL * fabs((double)want[i]) + WINO_TOL * absum[i]))
      fail_msg("%s: element %lld is %.9g, reference %.9g (sum |w x| %.6g)", what, (long long)i,
               got[i], want[i], absum[i]);
  }
}

/* The reference convolution of |w| and |x| (no bias), for expect_close_wino. */
static float *abs_conv(const ns_conv2d_shape *s, int64_t num, const float *w, int64_t wcount,
                       const float *x) {
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w;
  float *aw = malloc((size_t)wcount * sizeof *aw), *ax = malloc((size_t)(num * in_item) * sizeof *ax);
  float *y = malloc((size_t)(num * out_item) * sizeof *y);
  assert_non_null(aw), assert_non_null(ax), assert_non_null(y);
  for (int64_t i = 0; i < wcount; i++) aw[i] = fabsf(w[i]);
  for (int64_t i = 0; i < num * in_item; i++) ax[i] = fabsf(x[i]);
  for (int64_t n = 0; n < num; n++) ns_ref_conv2d(s, aw, NULL, ax + n * in_item, y + n * out_item);
  free(aw), free(ax);
  return y;
}

static void expect_same_bits(const float *a, const float *b, int64_t n, const char *what) {
  if (memcmp(a, b, (size_t)n * sizeof(float)) != 0)
    fail_msg("%s: results differ between thread counts", what);
}

/* ---- GEMM and im2col ------------------------------------------------- */

static void test_gemm_transposes(void **state) {
  rnd r = {0x1234567u};
  for (int t = 0; t < 48; t++) {
    /* The last 8 have K over the wrapper's 256-wide K slices. */
    int m = rnd_int(&r, 1, 33), n = rnd_int(&r, 1, 47);
    int k = t < 40 ? rnd_int(&r, 1, 29) : rnd_int(&r, 257, 700);
    int ta = t & 1, tb = (t >> 1) & 1;
    float *a = rnd_array(&r, (int64_t)m * k, -1, 1), *b = rnd_array(&r, (int64_t)k * n, -1, 1);
    float *c = zeros((int64_t)m * n), *ref = zeros((int64_t)m * n);
    ns_sgemm(ta, tb, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, 0.0f, c, n);
    ns_ref_gemm(ta, tb, m, n, k, a, b, ref);
    expect_close(c, ref, (int64_t)m * n, "gemm");
    free(a), free(b), free(c), free(ref);
  }
}

/* The kernel paths to test: portable C always, AVX2+FMA where the CPU
 * has it (NETSURG_PORTABLE forces the portable one). */
static int set_path(int avx2) {
  if (avx2) {
    unsetenv("NETSURG_PORTABLE");
    return ns_gemm_avx2();
  }
  setenv("NETSURG_PORTABLE", "1", 1);
  assert_int_equal(ns_gemm_avx2(), 0);
  return 1;
}

/* ref [m, n] + bias, then ReLU: what the epilogue must give. */
static void apply_epi(float *ref, int64_t m, int64_t n, const float *rs, const float *rb,
                      const float *cb, int relu) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      float v = ref[i * n + j] * (rs ? rs[i] : 1.0f) + (rb ? rb[i] : 0.0f) + (cb ? cb[j] : 0.0f);
      ref[i * n + j] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* A convolution's epilogue on num reference items of [channels, plane]:
 * scale, bias, the residual (shaped as ref), ReLU, in that order. */
static void apply_conv_epi(float *ref, int64_t num, int64_t channels, int64_t plane,
                           const ns_conv_epi *epi) {
  for (int64_t n = 0; n < num; n++)
    for (int64_t c = 0; c < channels; c++)
      for (int64_t j = 0; j < plane; j++) {
        int64_t i = (n * channels + c) * plane + j;
        float v = ref[i] * (epi->scale ? epi->scale[c] : 1.0f);
        v += epi->bias ? epi->bias[c] : 0.0f;
        v += epi->residual ? epi->residual[i] : 0.0f;
        ref[i] = epi->relu && v < 0.0f ? 0.0f : v;
      }
}

/* Our packed GEMM on random odd shapes (edges of the 6 x 16 tiles, K over
 * the 512- and 1024-wide slices, N over the 128-wide blocks, one column,
 * padded leading dimensions), with each epilogue (row scale, biases, a
 * residual laid out as C, ReLU), on both paths; 1 and 3 threads agree
 * bit for bit. */
static void test_pgemm_random(void **state) {
  rnd r = {0x5eed1u};
  for (int path = 0; path < 2; path++) {
    if (!set_path(path)) continue;
    for (int t = 0; t < 40; t++) {
      int m = rnd_int(&r, 1, 40), n = rnd_int(&r, 1, t < 30 ? 70 : 300);
      if (t % 8 == 3) n = 1; /* the one-column path */
      int k = t % 10 == 9 ? 0
              : t < 20  ? rnd_int(&r, 1, 40)
              : t < 25  ? rnd_int(&r, 1030, 1400) /* over 1024-wide slices (n <= 64) */
                        : rnd_int(&r, 200, 600);
      int tb = rnd_int(&r, 0, 1), relu = rnd_int(&r, 0, 1), bias = rnd_int(&r, 0, 2);
      /* The row scale from a stream of its own: the shapes stay as drawn. */
      rnd rsr = {r.s ^ 0x5ca1eu};
      int scaled = rnd_int(&rsr, 0, 1);
      int lda = k + rnd_int(&r, 0, 3), ldb = (tb ? k : n) + rnd_int(&r, 0, 3);
      int ldc = n + rnd_int(&r, 0, 3);
      float *a = rnd_array(&r, (int64_t)m * lda, -1, 1);
      float *b = rnd_array(&r, (int64_t)(tb ? n : k) * ldb, -1, 1);
      float *rb = rnd_array(&r, m, -1, 1), *cb = rnd_array(&r, n, -1, 1);
      float *rs = rnd_array(&rsr, m, -1, 1); /* |scale| <= 1: the sums' rounding not magnified */
      float *ad = zeros((int64_t)m * k), *bd = zeros((int64_t)k * n);
      for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++) ad[i * k + p] = a[i * lda + p];
      for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) bd[p * n + j] = tb ? b[j * ldb + p] : b[p * ldb + j];
      float *ref = zeros((int64_t)m * n), *c1 = zeros((int64_t)m * ldc);
      float *c3 = zeros((int64_t)m * ldc), *got = zeros((int64_t)m * n);
      float *sc = scratch(ns_gemm_scratch_floats(3));
      float *res = rnd_array(&rsr, (int64_t)m * ldc, -1, 1); /* laid out as C */
      ns_gemm_epi epi = {bias == 1 ? rb : NULL, bias == 2 ? cb : NULL, relu, scaled ? rs : NULL,
                         rnd_int(&rsr, 0, 1) ? res : NULL};
      ns_gemm(m, n, k, a, lda, b, ldb, tb, c1, ldc, &epi, sc, 1);
      ns_gemm(m, n, k, a, lda, b, ldb, tb, c3, ldc, &epi, sc, 3);
      ns_ref_gemm(0, 0, m, n, k, ad, bd, ref);
      apply_epi(ref, m, n, epi.row_scale, epi.row_bias, epi.col_bias, 0);
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          float v = ref[i * n + j] + (epi.residual ? res[i * ldc + j] : 0.0f);
          ref[i * n + j] = relu && v < 0.0f ? 0.0f : v;
        }
      for (int i = 0; i < m; i++) memcpy(got + i * n, c1 + i * ldc, (size_t)n * sizeof(float));
      expect_close(got, ref, (int64_t)m * n, path ? "pgemm avx2" : "pgemm portable");
      expect_same_bits(c1, c3, (int64_t)m * ldc, "pgemm");
      free(a), free(b), free(rb), free(cb), free(rs), free(res), free(ad), free(bd), free(ref);
      free(c1), free(c3), free(got), free_scratch(sc);
    }
  }
  unsetenv("NETSURG_PORTABLE");
}

/* The few-row dot-product path: Y = X W^T + bias, ReLU. */
static void test_pgemm_rows_random(void **state) {
  rnd r = {0x5eed2u};
  for (int path = 0; path < 2; path++) {
    if (!set_path(path)) continue;
    for (int t = 0; t < 30; t++) {
      int m = rnd_int(&r, 1, 13), n = rnd_int(&r, 1, 45), k = rnd_int(&r, 0, 600);
      int relu = rnd_int(&r, 0, 1), bias = rnd_int(&r, 0, 1);
      int ldx = k + rnd_int(&r, 0, 3), ldw = k + rnd_int(&r, 0, 3), ldy = n + rnd_int(&r, 0, 3);
      float *x = rnd_array(&r, (int64_t)m * ldx, -1, 1), *w = rnd_array(&r, (int64_t)n * ldw, -1, 1);
      float *cb = rnd_array(&r, n, -1, 1);
      float *xd = zeros((int64_t)m * k), *wd = zeros((int64_t)n * k);
      for (int i = 0; i < m; i++) memcpy(xd + i * k, x + i * ldx, (size_t)k * sizeof(float));
      for (int j = 0; j < n; j++) memcpy(wd + j * k, w + j * ldw, (size_t)k * sizeof(float));
      float *ref = zeros((int64_t)m * n), *y1 = zeros((int64_t)m * ldy);
      float *y3 = zeros((int64_t)m * ldy), *got = zeros((int64_t)m * n);
      ns_gemm_rows(m, n, k, x, ldx, w, ldw, y1, ldy, bias ? cb : NULL, relu, 1);
      ns_gemm_rows(m, n, k, x, ldx, w, ldw, y3, ldy, bias ? cb : NULL, relu, 3);
      ns_ref_gemm(0, 1, m, n, k, xd, wd, ref);
      apply_epi(ref, m, n, NULL, NULL, bias ? cb : NULL, relu);
      for (int i = 0; i < m; i++) memcpy(got + i * n, y1 + i * ldy, (size_t)n * sizeof(float));
      expect_close(got, ref, (int64_t)m * n, path ? "gemm rows avx2" : "gemm rows portable");
      expect_same_bits(y1, y3, (int64_t)m * ldy, "gemm rows");
      free(x), free(w), free(cb), free(xd), free(wd), free(ref), free(y1), free(y3), free(got);
    }
  }
  unsetenv("NETSURG_PORTABLE");
}

/* im2col against its definition: column (c, ki, kj) x (oh, ow) holds the
 * pixel at (oh s - p + ki d, ow s - p + kj d), 0 outside. */
static void test_im2col_definition(void **state) {
  rnd r = {0xabcdefu};
  for (int t = 0; t < 60; t++) {
    ns_im2col_geom g = {rnd_int(&r, 1, 4),
                        rnd_int(&r, 1, 9),
                        rnd_int(&r, 1, 9),
                        rnd_int(&r, 1, 4),
                        rnd_int(&r, 1, 4),
                        rnd_int(&r, 0, 3),
                        rnd_int(&r, 0, 3),
                        rnd_int(&r, 1, 3),
                        rnd_int(&r, 1, 3),
                        rnd_int(&r, 1, 3),
                        rnd_int(&r, 1, 3),
                        0,
                        0};
    g.out_h = ns_conv_out_size(g.height, g.kernel_h, g.pad_h, g.stride_h, g.dilation_h);
    g.out_w = ns_conv_out_size(g.width, g.kernel_w, g.pad_w, g.stride_w, g.dilation_w);
    if (g.out_h <= 0 || g.out_w <= 0) continue;
    int64_t cols = g.out_h * g.out_w, rows = g.channels * g.kernel_h * g.kernel_w;
    float *im = rnd_array(&r, g.channels * g.height * g.width, -1, 1);
    float *col = zeros(rows * cols);
    ns_im2col(&g, im, col, 2);
    for (int64_t c = 0; c < g.channels; c++)
      for (int ki = 0; ki < g.kernel_h; ki++)
        for (int kj = 0; kj < g.kernel_w; kj++)
          for (int64_t oh = 0; oh < g.out_h; oh++)
            for (int64_t ow = 0; ow < g.out_w; ow++) {
              int64_t h = oh * g.stride_h - g.pad_h + (int64_t)ki * g.dilation_h;
              int64_t w = ow * g.stride_w - g.pad_w + (int64_t)kj * g.dilation_w;
              float want = (h >= 0 && h < g.height && w >= 0 && w < g.width)
                               ? im[(c * g.height + h) * g.width + w]
                               : 0.0f;
              int64_t row = (c * g.kernel_h + ki) * g.kernel_w + kj;
              assert_true(col[row * cols + oh * g.out_w + ow] == want);
            }
    free(im), free(col);
  }
}

/* ---- convolution ------------------------------------------------------ */

static void run_conv_case(const ns_conv2d_shape *s, rnd *r, const char *what) {
  int64_t wcount = s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  int64_t xcount = s->channels * s->height * s->width, ycount = s->num_output * s->out_h * s->out_w;
  float *w = rnd_array(r, wcount, -1, 1), *bias = rnd_array(r, s->num_output, -1, 1);
  float *scale = rnd_array(r, s->num_output, -1, 1), *x = rnd_array(r, xcount, -1, 1);
  float *y1 = zeros(ycount), *y3 = zeros(ycount), *ref = zeros(ycount);
  float *col = scratch(ns_conv2d_scratch_count(s, 3));
  int with_bias = rnd_int(r, 0, 3) != 0, relu = rnd_int(r, 0, 1), scaled = rnd_int(r, 0, 1);
  float *res = rnd_array(r, ycount, -1, 1);
  ns_conv_epi epi = {scaled ? scale : NULL, with_bias ? bias : NULL,
                     rnd_int(r, 0, 1) ? res : NULL, relu};
  ns_ref_conv2d(s, w, NULL, x, ref);
  apply_conv_epi(ref, 1, s->num_output, s->out_h * s->out_w, &epi);
  for (int path = 0; path < 2; path++) {
    if (!set_path(path)) continue;
    ns_conv2d(s, w, &epi, x, y1, col, 1);
    ns_conv2d(s, w, &epi, x, y3, col, 3);
    expect_close(y1, ref, ycount, what);
    expect_same_bits(y1, y3, ycount, what);
  }
  unsetenv("NETSURG_PORTABLE");
  free(w), free(bias), free(scale), free(res), free(x), free(y1), free(y3), free(ref);
  free_scratch(col);
}

static void set_out(ns_conv2d_shape *s) {
  s->out_h = ns_conv_out_size(s->height, s->kernel_h, s->pad_h, s->stride_h, s->dilation_h);
  s->out_w = ns_conv_out_size(s->width, s->kernel_w, s->pad_w, s->stride_w, s->dilation_w);
}

static void test_conv_random_shapes(void **state) {
  rnd r = {0x9e3779b97f4a7c15ull};
  int ran = 0;
  for (int t = 0; t < 300; t++) {
    int group = rnd_int(&r, 1, 3);
    ns_conv2d_shape s = {group * rnd_int(&r, 1, 4),
                         rnd_int(&r, 1, 15),
                         rnd_int(&r, 1, 15),
                         group * rnd_int(&r, 1, 5),
                         group,
                         rnd_int(&r, 1, 5),
                         rnd_int(&r, 1, 5),
                         rnd_int(&r, 0, 3),
                         rnd_int(&r, 0, 3),
                         rnd_int(&r, 1, 4),
                         rnd_int(&r, 1, 4),
                         rnd_int(&r, 1, 3),
                         rnd_int(&r, 1, 3),
                         0,
                         0};
    set_out(&s);
    if (s.out_h <= 0 || s.out_w <= 0) continue;
    run_conv_case(&s, &r, "conv (random)");
    ran++;
  }
  assert_true(ran > 150);
}

/* The 1x1 path (no im2col) with groups, and a 1x1 kernel with stride or
 * padding, which must take the im2col path. */
/* One Winograd case: random weights, bias and input (then ReLU or not,
 * when draw_relu), computed on both kernel paths with 1 and 3 threads
 * (bit-identical) against the reference, and again from weights
 * transformed beforehand (the same bits).  direct: ns_winograd_conv
 * itself, else the batch entry point (which must take Winograd). */
static void run_wino_case(const ns_conv2d_shape *s, int64_t num, rnd *r, int draw_relu,
                          int direct, const char *what) {
  int64_t wcount = s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w, ycount = num * out_item;
  /* The scale from a stream of its own: the callers' shapes stay as drawn. */
  rnd rs = {r->s ^ 0x5ca1eu};
  float *w = rnd_array(r, wcount, -1, 1), *bias = rnd_array(r, s->num_output, -1, 1);
  float *scale = rnd_array(&rs, s->num_output, -1, 1), *x = rnd_array(r, num * in_item, -1, 1);
  float *y1 = zeros(ycount), *y3 = zeros(ycount), *ref = zeros(ycount);
  float *sc = scratch(direct ? ns_winograd_scratch_count(s, num, 3)
                             : ns_conv2d_batch_scratch_count(s, num, 0, 3));
  float *u = scratch(ns_winograd_weights_count(s));
  int relu = draw_relu ? rnd_int(r, 0, 1) : 0;
  float *res = rnd_array(&rs, ycount, -1, 1); /* the residual pass after Winograd */
  int with_res = rnd_int(&rs, 0, 1) && !direct; /* the residual is the plan's, not Winograd's */
  ns_conv_epi epi = {rnd_int(&rs, 0, 1) ? scale : NULL, bias, with_res ? res : NULL, relu};
  for (int64_t n = 0; n < num; n++) ns_ref_conv2d(s, w, NULL, x + n * in_item, ref + n * out_item);
  apply_conv_epi(ref, num, s->num_output, s->out_h * s->out_w, &epi);
  float *absum = abs_conv(s, num, w, wcount, x);
  for (int path = 0; path < 2; path++) {
    if (!set_path(path)) continue;
    for (int t = 0; t < 2; t++) {
      float *y = t ? y3 : y1;
      if (direct)
        ns_winograd_conv(s, num, w, NULL, &epi, x, y, sc, t ? 3 : 1);
      else
        ns_conv2d_batch(s, num, w, NULL, &epi, x, y, sc, t ? 3 : 1);
    }
    expect_close_wino(y1, ref, absum, ycount, what);
    expect_same_bits(y1, y3, ycount, what);
    /* with the weights transformed beforehand: the same bits */
    ns_winograd_weights(s, w, u, 2);
    if (direct)
      ns_winograd_conv(s, num, w, u, &epi, x, y3, sc, 3);
    else
      ns_conv2d_batch(s, num, w, u, &epi, x, y3, sc, 3);
    expect_same_bits(y1, y3, ycount, what);
  }
  unsetenv("NETSURG_PORTABLE");
  free(w), free(bias), free(scale), free(res), free(x), free(y1), free(y3), free(ref), free(absum),
      free_scratch(sc), free_scratch(u);
}

/* The batch entry point on shapes where Winograd runs (F(4x4, 3x3) and
 * F(2x2, 5x5): stride 1, pad below the kernel size, enough tiles): odd
 * sizes (partial tiles), groups, several items, fused ReLU, and in the
 * last case a 70 x 70 map of 3 items (many tasks); both kernel paths, 1
 * and 3 threads bit-identical (with 1 thread, few-tile layers take the
 * shared packing, with 3 the per-task one, or both the same). */
static void test_conv_winograd(void **state) {
  rnd r = {0x3a3a3u};
  for (int t = 0; t < 14; t++) {
    int last = t == 13, k = last || t % 2 ? 3 : 5, group = last ? 1 : rnd_int(&r, 1, 2);
    int hw = last ? 70 : rnd_int(&r, 27, 37);
    ns_conv2d_shape s = {group * rnd_int(&r, 16, 40), hw, hw + rnd_int(&r, 0, 3), 0, group,
                         k, k, 0, 0, 1, 1, 1, 1, 0, 0};
    s.num_output = group * rnd_int(&r, 16, 40);
    if (last) s.channels = s.num_output = 40;
    s.pad_h = s.pad_w = rnd_int(&r, 0, k - 1);
    s.out_h = ns_conv_out_size(s.height, k, s.pad_h, 1, 1);
    s.out_w = ns_conv_out_size(s.width, k, s.pad_w, 1, 1);
    int64_t num = last ? 3 : rnd_int(&r, 1, 3);
    assert_true(ns_winograd_worth(&s, num, 0));
    run_wino_case(&s, num, &r, 1, 0, "winograd");
  }
}

/* Strided convolutions that Winograd takes through space-to-depth (the
 * kernel ceil(k / stride) = 3 or 5 on stride^2 times the channels), as
 * CaffeNet's conv1 (11 x 11, stride 4): strides 2-4, kernels from
 * 2 stride + 1 to 3 stride (taps past k are zero), pads, groups, several
 * items; both kernel paths, 1 and 3 threads bit-identical. */
static void test_conv_winograd_strided(void **state) {
  rnd r = {0x3c3c3u};
  for (int t = 0; t < 12; t++) {
    int st = rnd_int(&r, 2, 4), k = rnd_int(&r, 2 * st + 1, 3 * st), group = rnd_int(&r, 1, 2);
    if (t == 0) st = 4, k = 11, group = 1; /* conv1's geometry */
    /* at least 16 channels per group after space-to-depth, 600 outputs */
    int cmin = (16 + st * st - 1) / (st * st), pad = rnd_int(&r, 0, k / 2);
    int hw = rnd_int(&r, 25 * st, 30 * st);
    ns_conv2d_shape s = {group * rnd_int(&r, cmin, cmin + 2), hw, hw + rnd_int(&r, 0, 5),
                         group * rnd_int(&r, 16, 24), group, k, k, pad, pad, st, st, 1, 1, 0, 0};
    if (t == 0) s.channels = 3;
    s.out_h = ns_conv_out_size(s.height, k, pad, st, 1);
    s.out_w = ns_conv_out_size(s.width, k, pad, st, 1);
    int64_t num = rnd_int(&r, 1, 3);
    assert_true(ns_winograd_worth(&s, num, 0));
    run_wino_case(&s, num, &r, 0, 0, "winograd strided");
  }
}

/* The Winograd kernel called directly on small maps and channel counts,
 * which the batch entry point leaves to im2col: fewer than 8 tiles per
 * row (partial transform groups), 1 x 1 to 12 x 12 outputs, 1-3 items,
 * 3 x 3 and 5 x 5 kernels with every padding they allow. */
static void test_winograd_small(void **state) {
  rnd r = {0x3b3b3u};
  for (int t = 0; t < 60; t++) {
    int k = t % 2 ? 3 : 5, group = rnd_int(&r, 1, 2), pad = rnd_int(&r, 0, k - 1);
    int lo = k - 2 * pad < 1 ? 1 : k - 2 * pad;
    ns_conv2d_shape s = {group * rnd_int(&r, 1, 9), rnd_int(&r, lo, 12),
                         rnd_int(&r, lo, 12),       group * rnd_int(&r, 1, 9),
                         group,                     k,
                         k,                         pad,
                         pad,                       1,
                         1,                         1,
                         1,                         0,
                         0};
    s.out_h = ns_conv_out_size(s.height, k, pad, 1, 1);
    s.out_w = ns_conv_out_size(s.width, k, pad, 1, 1);
    assert_true(ns_winograd_applies(&s));
    run_wino_case(&s, rnd_int(&r, 1, 3), &r, 0, 1, "winograd small");
  }
}

/* The batch entry point off the Winograd path: several items (shared out
 * by item on several threads), against the reference per item, 1 vs 3
 * threads bit-identical. */
static void test_conv_batch_items(void **state) {
  rnd r = {0x4c4c4u};
  for (int t = 0; t < 12; t++) {
    int group = rnd_int(&r, 1, 2), k = rnd_int(&r, 1, 5) | 1;
    ns_conv2d_shape s = {group * rnd_int(&r, 1, 6), rnd_int(&r, k, 17), rnd_int(&r, k, 17),
                         group * rnd_int(&r, 1, 7), group, k, k, rnd_int(&r, 0, k / 2),
                         rnd_int(&r, 0, k / 2), rnd_int(&r, 1, 3), rnd_int(&r, 1, 2), 1, 1, 0, 0};
    set_out(&s);
    int64_t num = rnd_int(&r, 1, 7);
    int64_t wcount = s.num_output * (s.channels / group) * k * k;
    int64_t in_item = s.channels * s.height * s.width, out_item = s.num_output * s.out_h * s.out_w;
    float *w = rnd_array(&r, wcount, -1, 1), *bias = rnd_array(&r, s.num_output, -1, 1);
    float *x = rnd_array(&r, num * in_item, -1, 1);
    float *y1 = zeros(num * out_item), *y3 = zeros(num * out_item), *ref = zeros(num * out_item);
    float *sc = scratch(ns_conv2d_batch_scratch_count(&s, num, 0, 3));
    for (int64_t n = 0; n < num; n++) ns_ref_conv2d(&s, w, bias, x + n * in_item, ref + n * out_item);
    ns_conv_epi epi = {NULL, bias, NULL, 0};
    ns_conv2d_batch(&s, num, w, NULL, &epi, x, y1, sc, 1);
    ns_conv2d_batch(&s, num, w, NULL, &epi, x, y3, sc, 3);
    expect_close(y1, ref, num * out_item, "conv batch");
    expect_same_bits(y1, y3, num * out_item, "conv batch");
    free(w), free(bias), free(x), free(y1), free(y3), free(ref), free_scratch(sc);
  }
}

static void test_conv_1x1(void **state) {
  rnd r = {42};
  ns_conv2d_shape plain = {6, 7, 5, 9, 3, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0};
  set_out(&plain);
  assert_true(ns_conv2d_is_1x1(&plain));
  assert_int_equal(ns_conv2d_col_count(&plain), 0);
  run_conv_case(&plain, &r, "conv 1x1");
  ns_conv2d_shape strided = {4, 7, 6, 5, 1, 1, 1, 0, 0, 2, 2, 1, 1, 0, 0};
  set_out(&strided);
  assert_false(ns_conv2d_is_1x1(&strided));
  run_conv_case(&strided, &r, "conv 1x1 stride 2");
  ns_conv2d_shape padded = {4, 5, 5, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  set_out(&padded);
  assert_int_equal(padded.out_h, 7);
  run_conv_case(&padded, &r, "conv 1x1 pad 1");
}

/* CaffeNet's conv1 geometry (k11 s4) and conv2 (pad 2, group 2), scaled
 * down, then conv1 at full size. */
static void test_conv_caffenet_geometry(void **state) {
  rnd r = {7};
  ns_conv2d_shape conv1 = {3, 59, 59, 8, 1, 11, 11, 0, 0, 4, 4, 1, 1, 0, 0};
  set_out(&conv1);
  assert_int_equal(conv1.out_h, 13);
  run_conv_case(&conv1, &r, "conv1-like");
  ns_conv2d_shape conv2 = {8, 13, 13, 6, 2, 5, 5, 2, 2, 1, 1, 1, 1, 0, 0};
  set_out(&conv2);
  assert_int_equal(conv2.out_h, 13);
  run_conv_case(&conv2, &r, "conv2-like");
  /* Full-size conv1: big enough for OpenBLAS to split the GEMM across
   * threads, which must not change a bit. */
  ns_conv2d_shape full = {3, 227, 227, 96, 1, 11, 11, 0, 0, 4, 4, 1, 1, 0, 0};
  set_out(&full);
  assert_int_equal(full.out_h, 55);
  run_conv_case(&full, &r, "conv1");
}

/* ---- convolution backward and plan ------------------------------------ */

/* |got - want| within the conv tolerance plus GRAD_TOL times the sum of
 * the absolute terms (abssum): a gradient sums up to out_h * out_w
 * products, more than the forward's kdim, and cancels more. */
#define GRAD_TOL 1e-6
static void expect_close_sum(const float *got, const float *want, const float *abssum, int64_t n,
                             const char *what) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    if (!(err <= ABS_TOL + REL_TOL * fabs((double)want[i]) + GRAD_TOL * abssum[i]))
      fail_msg("%s: element %lld is %.9g, reference %.9g", what, (long long)i, got[i], want[i]);
  }
}

static float *abs_copy(const float *v, int64_t n) {
  float *a = zeros(n);
  for (int64_t i = 0; i < n; i++) a[i] = fabsf(v[i]);
  return a;
}

/* The backward kernels of one item against the reference's scattered
 * derivatives: dW accumulates onto what is there (Caffe's +=), dX is
 * overwritten (and the same bits on 1 and 3 threads). */
static void run_conv_backward_case(const ns_conv2d_shape *s, rnd *r, const char *what) {
  int64_t wcount = s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  int64_t xcount = s->channels * s->height * s->width, ycount = s->num_output * s->out_h * s->out_w;
  float *w = rnd_array(r, wcount, -1, 1), *x = rnd_array(r, xcount, -1, 1);
  float *dy = rnd_array(r, ycount, -1, 1), *dw0 = rnd_array(r, wcount, -1, 1);
  float *dx_ref = zeros(xcount), *dw_ref = zeros(wcount), *dx_abs = zeros(xcount);
  float *dw_abs = zeros(wcount);
  float *aw = abs_copy(w, wcount), *ax = abs_copy(x, xcount), *ady = abs_copy(dy, ycount);
  ns_ref_conv2d_backward(s, w, x, dy, dx_ref, dw_ref);
  ns_ref_conv2d_backward(s, aw, ax, ady, dx_abs, dw_abs);
  for (int64_t i = 0; i < wcount; i++) dw_ref[i] += dw0[i], dw_abs[i] += fabsf(dw0[i]);
  int64_t col_count = ns_conv2d_col_count(s);
  float *col = scratch(col_count), *dcol = scratch(col_count);
  float *dx1 = rnd_array(r, xcount, -1, 1), *dx3 = zeros(xcount), *dw = zeros(wcount);
  memcpy(dw, dw0, (size_t)wcount * sizeof *dw);
  ns_conv2d_backward_weights(s, ns_conv2d_columns(s, x, col, 2), dy, dw);
  expect_close_sum(dw, dw_ref, dw_abs, wcount, what);
  ns_conv2d_backward_data(s, w, dy, dx1, dcol, 1);
  ns_conv2d_backward_data(s, w, dy, dx3, dcol, 3);
  expect_close_sum(dx1, dx_ref, dx_abs, xcount, what);
  expect_same_bits(dx1, dx3, xcount, what);
  free(w), free(x), free(dy), free(dw0), free(dx_ref), free(dw_ref), free(dx_abs), free(dw_abs);
  free(aw), free(ax), free(ady), free(dx1), free(dx3), free(dw);
  free_scratch(col), free_scratch(dcol);
}

static void test_conv_backward_random_shapes(void **state) {
  rnd r = {0x5bd1e995ull};
  int ran = 0;
  for (int t = 0; t < 150; t++) {
    int group = rnd_int(&r, 1, 3), k = rnd_int(&r, 1, 4);
    ns_conv2d_shape s = {group * rnd_int(&r, 1, 4), rnd_int(&r, 1, 13), rnd_int(&r, 1, 13),
                         group * rnd_int(&r, 1, 4), group, k, rnd_int(&r, 1, 4),
                         rnd_int(&r, 0, 2), rnd_int(&r, 0, 2), rnd_int(&r, 1, 3),
                         rnd_int(&r, 1, 3), rnd_int(&r, 1, 2), rnd_int(&r, 1, 2), 0, 0};
    if (t % 5 == 0) /* the 1x1 path: no columns */
      s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = 1, s.pad_h = s.pad_w = 0;
    set_out(&s);
    if (s.out_h <= 0 || s.out_w <= 0) continue;
    run_conv_backward_case(&s, &r, ns_conv2d_is_1x1(&s) ? "conv backward (1x1)" : "conv backward");
    ran++;
  }
  assert_true(ran > 80);
}

/* Bias: forward adds bias[c] to each of the plane's values; backward adds
 * the sum over items and plane to db (InnerProduct: plane 1). */
static void test_conv_bias_kernels(void **state) {
  const float bias[3] = {0.5f, -2.0f, 4.0f};
  float y[2 * 3 * 2] = {0};
  ns_conv2d_bias_forward(2, 3, 2, bias, y);
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 3; c++)
      for (int j = 0; j < 2; j++) assert_true(y[(n * 3 + c) * 2 + j] == bias[c]);
  const float dy[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};
  float db[3] = {100, 200, 300};
  ns_conv2d_bias_backward(2, 3, 2, dy, db);
  assert_true(db[0] == 100 + 1 + 2 + 10 + 20);
  assert_true(db[1] == 200 + 3 + 4 + 30 + 40);
  assert_true(db[2] == 300 + 5 + 6 + 50 + 60);
}

static const char *plan_name(const ns_conv2d_shape *s, int64_t num, int threads, int cache,
                             char *buf) {
  ns_conv_plan p;
  memset(&p, 0, sizeof p);
  ns_conv_plan_choose(&p, s, num, threads, cache);
  assert_true(p.scratch_count > 0);
  assert_int_equal(p.scratch_count, ns_conv2d_batch_scratch_count(s, num, cache, threads));
  return ns_conv_plan_name(&p, buf, 64);
}

/* The plans CaffeNet gets (README, kernels/winograd.h): conv1 (11x11
 * stride 4) by space-to-depth as a 3x3, conv2 (5x5, group 2)
 * F(2x2, 5x5), conv3 F(4x4, 3x3) from 128 outputs when the weights are
 * kept but only from 600 when transformed per call (else bands of rows:
 * its columns pass 1 MiB); 3 input channels stay GEMM; a batch of at
 * least as many items as threads goes whole items per thread. */
static void test_conv_plan_caffenet(void **state) {
  char buf[64];
  ns_conv2d_shape conv1 = {3, 227, 227, 96, 1, 11, 11, 0, 0, 4, 4, 1, 1, 55, 55};
  ns_conv2d_shape conv2 = {96, 27, 27, 256, 2, 5, 5, 2, 2, 1, 1, 1, 1, 27, 27};
  ns_conv2d_shape conv3 = {256, 13, 13, 384, 1, 3, 3, 1, 1, 1, 1, 1, 1, 13, 13};
  ns_conv2d_shape rgb = {3, 32, 32, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 32, 32};
  assert_string_equal(plan_name(&conv1, 1, 2, 1, buf), "Winograd F(4x4, 3x3), space-to-depth");
  assert_string_equal(plan_name(&conv2, 1, 2, 1, buf), "Winograd F(2x2, 5x5)");
  assert_string_equal(plan_name(&conv3, 1, 2, 1, buf), "Winograd F(4x4, 3x3)");
  assert_string_equal(plan_name(&conv3, 1, 2, 0, buf), "GEMM by rows"); /* 389K floats of columns */
  assert_string_equal(plan_name(&conv3, 4, 2, 0, buf), "Winograd F(4x4, 3x3)");
  assert_string_equal(plan_name(&rgb, 1, 2, 1, buf), "GEMM");
  assert_string_equal(plan_name(&rgb, 4, 2, 1, buf), "GEMM by item");
  assert_string_equal(plan_name(&rgb, 4, 1, 1, buf), "GEMM");
}

/* Columns past 1 MiB an item go by bands of output rows (ResNet's and the
 * SSD's conv1: 7x7 stride 2 over 3 channels), whatever the batch and the
 * threads; against the reference with each epilogue, and bit-identical
 * to the whole item's im2col + GEMM (ns_conv2d) and across thread counts:
 * a band keeps the GEMM's cut of k (here 800 > 512 with groups). */
static void test_conv_by_rows(void **state) {
  rnd r = {0xba4du};
  char buf[64];
  ns_conv2d_shape shapes[] = {{3, 120, 100, 8, 1, 7, 7, 3, 3, 2, 2, 1, 1, 0, 0},
                              {64, 40, 41, 16, 2, 5, 5, 2, 2, 1, 1, 1, 1, 0, 0},
                              {3, 500, 9, 5, 1, 7, 7, 0, 3, 1, 2, 1, 1, 0, 0}};
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
    ns_conv2d_shape *s = &shapes[t];
    set_out(s);
    for (int num = 1; num <= 3; num += 2)
      for (int th = 1; th <= 2; th++)
        assert_string_equal(plan_name(s, num, th, 1, buf), "GEMM by rows");
    int64_t num = 2, wcount = s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
    int64_t in_item = s->channels * s->height * s->width, out_item = s->num_output * s->out_h * s->out_w;
    float *w = rnd_array(&r, wcount, -1, 1), *bias = rnd_array(&r, s->num_output, -1, 1);
    float *scale = rnd_array(&r, s->num_output, -1, 1), *x = rnd_array(&r, num * in_item, -1, 1);
    float *y1 = zeros(num * out_item), *y3 = zeros(num * out_item), *ref = zeros(num * out_item);
    float *whole = zeros(num * out_item);
    float *sc = scratch(ns_conv2d_batch_scratch_count(s, num, 0, 3));
    float *col = scratch(ns_conv2d_scratch_count(s, 1));
    float *res = rnd_array(&r, num * out_item, -1, 1);
    ns_conv_epi epi = {t == 1 ? scale : NULL, bias, t != 1 ? res : NULL, (int)t % 2};
    for (int64_t n = 0; n < num; n++) ns_ref_conv2d(s, w, NULL, x + n * in_item, ref + n * out_item);
    apply_conv_epi(ref, num, s->num_output, s->out_h * s->out_w, &epi);
    for (int path = 0; path < 2; path++) {
      if (!set_path(path)) continue;
      ns_conv2d_batch(s, num, w, NULL, &epi, x, y1, sc, 1);
      ns_conv2d_batch(s, num, w, NULL, &epi, x, y3, sc, 3);
      for (int64_t n = 0; n < num; n++) {
        ns_conv_epi item = epi;
        if (item.residual) item.residual += n * out_item;
        ns_conv2d(s, w, &item, x + n * in_item, whole + n * out_item, col, 1);
      }
      expect_close(y1, ref, num * out_item, path ? "by rows avx2" : "by rows portable");
      expect_same_bits(y1, y3, num * out_item, "by rows threads");
      expect_same_bits(y1, whole, num * out_item, "by rows against the whole item");
    }
    unsetenv("NETSURG_PORTABLE");
    free(w), free(bias), free(scale), free(res), free(x), free(y1), free(y3), free(ref);
    free(whole), free_scratch(sc), free_scratch(col);
  }
}

/* Depthwise convolutions (group = channels = num_output) through the
 * batch entry point, which must take the depthwise kernel: MobileNet's
 * 3x3 at stride 1 and 2 with pad 1 on odd and even maps, then random
 * kernels 1-5 wide, strides 1-3, pads, dilations and maps down to one
 * column (every edge case of the inner-column range); several items,
 * bias or none, ReLU or none; both kernel paths against the reference,
 * 1 and 3 threads bit-identical. */
static void test_conv_depthwise(void **state) {
  rnd r = {0xd3d3du};
  char buf[64];
  for (int t = 0; t < 80; t++) {
    int c = rnd_int(&r, 2, 9), kh = rnd_int(&r, 1, 5), kw = rnd_int(&r, 1, 5);
    ns_conv2d_shape s = {c, rnd_int(&r, 1, 19), rnd_int(&r, 1, 19), c, c, kh, kw,
                         rnd_int(&r, 0, 3), rnd_int(&r, 0, 3), rnd_int(&r, 1, 3), rnd_int(&r, 1, 3),
                         rnd_int(&r, 1, 2), rnd_int(&r, 1, 2), 0, 0};
    if (t < 4) { /* MobileNet's */
      s.kernel_h = s.kernel_w = 3, s.pad_h = s.pad_w = 1, s.dilation_h = s.dilation_w = 1;
      s.stride_h = s.stride_w = 1 + t % 2;
      s.height = 17 + 13 * (t / 2), s.width = 30 - 13 * (t / 2);
    }
    set_out(&s);
    if (s.out_h <= 0 || s.out_w <= 0) continue;
    assert_string_equal(plan_name(&s, 1, 2, 1, buf), "depthwise");
    int64_t num = rnd_int(&r, 1, 3), wcount = c * s.kernel_h * s.kernel_w;
    int64_t in_item = c * s.height * s.width, out_item = c * s.out_h * s.out_w;
    float *w = rnd_array(&r, wcount, -1, 1), *bias = rnd_array(&r, c, -1, 1);
    float *x = rnd_array(&r, num * in_item, -1, 1);
    float *y1 = zeros(num * out_item), *y3 = zeros(num * out_item), *ref = zeros(num * out_item);
    float *sc = scratch(ns_conv2d_batch_scratch_count(&s, num, 0, 3));
    int with_bias = rnd_int(&r, 0, 1), relu = rnd_int(&r, 0, 1);
    for (int64_t n = 0; n < num; n++)
      ns_ref_conv2d(&s, w, with_bias ? bias : NULL, x + n * in_item, ref + n * out_item);
    float *res = rnd_array(&r, num * out_item, -1, 1); /* the residual pass after depthwise */
    ns_conv_epi epi = {NULL, with_bias ? bias : NULL, t % 3 == 0 ? res : NULL, relu};
    for (int64_t i = 0; epi.residual && i < num * out_item; i++) ref[i] += res[i];
    if (relu) apply_epi(ref, 1, num * out_item, NULL, NULL, NULL, 1);
    for (int path = 0; path < 2; path++) {
      if (!set_path(path)) continue;
      ns_conv2d_batch(&s, num, w, NULL, &epi, x, y1, sc, 1);
      ns_conv2d_batch(&s, num, w, NULL, &epi, x, y3, sc, 3);
      expect_close(y1, ref, num * out_item, path ? "depthwise avx2" : "depthwise portable");
      expect_same_bits(y1, y3, num * out_item, "depthwise threads");
    }
    unsetenv("NETSURG_PORTABLE");
    free(w), free(bias), free(res), free(x), free(y1), free(y3), free(ref), free_scratch(sc);
  }
  /* one channel, or a channel multiplier, is not depthwise */
  ns_conv2d_shape one = {1, 8, 8, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8};
  ns_conv2d_shape twice = {4, 8, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8};
  assert_string_not_equal(plan_name(&one, 1, 2, 1, buf), "depthwise");
  assert_string_not_equal(plan_name(&twice, 1, 2, 1, buf), "depthwise");
}

/* ---- pooling ----------------------------------------------------------- */

/* Caffe's size rule, written with integer ceil division. */
static int64_t pool_size_int(int64_t in, int k, int p, int s, int any_pad) {
  int64_t span = in + 2 * p - k;
  int64_t out = (span >= 0 ? (span + s - 1) / s : -((-span) / s)) + 1;
  if (any_pad && (out - 1) * s >= in + p) out--;
  return out;
}

static void test_pool_out_size(void **state) {
  for (int in = 1; in < 40; in++)
    for (int k = 1; k < 8; k++)
      for (int p = 0; p < k; p++)
        for (int s = 1; s < 5; s++)
          for (int any = 0; any < 2; any++)
            assert_int_equal(ns_pool_out_size(in, k, p, s, any || p, 0),
                             pool_size_int(in, k, p, s, any || p));
  /* FLOOR: plain floor division. */
  assert_int_equal(ns_pool_out_size(6, 3, 0, 2, 0, 1), 2);
  assert_int_equal(ns_pool_out_size(6, 3, 0, 2, 0, 0), 3);
  /* CaffeNet: 55 -> 27 -> 13 -> 6 with k3 s2. */
  assert_int_equal(ns_pool_out_size(55, 3, 0, 2, 0, 0), 27);
  assert_int_equal(ns_pool_out_size(13, 3, 0, 2, 0, 0), 6);
}

static void run_pool_case(const ns_pool2d_shape *s, ns_pool_method m, rnd *r) {
  int64_t xc = s->planes * s->height * s->width, yc = s->planes * s->out_h * s->out_w;
  /* Stochastic pooling runs on non-negative inputs (after a ReLU). */
  float *x = rnd_array(r, xc, m == NS_POOL_STOCHASTIC ? 0.0f : -1.0f, 1.0f);
  float *y1 = zeros(yc), *y3 = zeros(yc), *ref = zeros(yc), *mask = zeros(yc);
  ns_pool2d(s, m, x, y1, m == NS_POOL_MAX ? mask : NULL, 1);
  ns_ref_pool2d(s, m, x, ref);
  expect_close(y1, ref, yc, m == NS_POOL_MAX ? "max pool" : m == NS_POOL_AVE ? "ave pool" : "sto");
  for (int path = 0; path < 2; path++) { /* without a mask: MAX by rows, SSE or AVX2 */
    if (!set_path(path)) continue;
    ns_pool2d(s, m, x, y3, NULL, 3);
    expect_same_bits(y1, y3, yc, "pool");
  }
  unsetenv("NETSURG_PORTABLE");
  if (m == NS_POOL_MAX) /* the mask points at the maximum */
    for (int64_t i = 0; i < yc; i++) {
      int64_t p = i / (s->out_h * s->out_w), idx = (int64_t)mask[i];
      assert_true(idx >= 0 && idx < s->height * s->width);
      assert_true(x[p * s->height * s->width + idx] == y1[i]);
    }
  free(x), free(y1), free(y3), free(ref), free(mask);
}

static void test_pool_random_shapes(void **state) {
  rnd r = {0xfeedu};
  for (int t = 0; t < 300; t++) {
    ns_pool_method m = (ns_pool_method)(t % 3);
    ns_pool2d_shape s = {rnd_int(&r, 1, 5),
                         rnd_int(&r, 1, 14),
                         rnd_int(&r, 1, 14),
                         rnd_int(&r, 1, 5),
                         rnd_int(&r, 1, 5),
                         0,
                         0,
                         rnd_int(&r, 1, 4),
                         rnd_int(&r, 1, 4),
                         0,
                         0};
    if (m != NS_POOL_STOCHASTIC) {
      s.pad_h = rnd_int(&r, 0, s.kernel_h - 1);
      s.pad_w = rnd_int(&r, 0, s.kernel_w - 1);
    }
    int any = s.pad_h || s.pad_w;
    s.out_h = ns_pool_out_size(s.height, s.kernel_h, s.pad_h, s.stride_h, any, 0);
    s.out_w = ns_pool_out_size(s.width, s.kernel_w, s.pad_w, s.stride_w, any, 0);
    /* Shapes Caffe refuses (a window starting past the padded input). */
    if (s.out_h <= 0 || s.out_w <= 0 || (s.out_h - 1) * s.stride_h >= s.height + s.pad_h ||
        (s.out_w - 1) * s.stride_w >= s.width + s.pad_w)
      continue;
    run_pool_case(&s, m, &r);
  }
}

/* AVE over the whole plane (global pooling: a sum in four lanes) against
 * the reference's window sum, plane sizes around the vectors' width. */
static void test_pool_ave_global(void **state) {
  rnd r = {0x61ba1u};
  for (int t = 0; t < 40; t++) {
    int h = rnd_int(&r, 1, 15), w = rnd_int(&r, 1, 15);
    ns_pool2d_shape s = {rnd_int(&r, 1, 5), h, w, h, w, 0, 0, 1, 1, 1, 1};
    run_pool_case(&s, NS_POOL_AVE, &r);
  }
}

/* MAX without a mask (the by-rows vector path) against the masked
 * generic path on inputs with NaN (never chosen, as Caffe's v > max) and
 * many zeros of both signs: equal values at strides 1-3 and widths around
 * the 4-wide vectors.  Not the same bits: where -0 and +0 tie for the
 * maximum, Caffe (and the generic path) keeps the first in row order,
 * the by-rows path the first column's. */
static void test_pool_max_nan_ties(void **state) {
  rnd r = {0x7a7au};
  for (int t = 0; t < 60; t++) {
    int k = rnd_int(&r, 1, 4), st = 1 + t % 3, hw = rnd_int(&r, k, 30);
    ns_pool2d_shape s = {2, hw, hw + rnd_int(&r, 0, 9), k, k, 0, 0, st, st, 0, 0};
    s.out_h = ns_pool_out_size(s.height, k, 0, st, 0, 0);
    s.out_w = ns_pool_out_size(s.width, k, 0, st, 0, 0);
    if ((s.out_h - 1) * st >= s.height || (s.out_w - 1) * st >= s.width) continue;
    int64_t xc = 2 * s.height * s.width, yc = 2 * s.out_h * s.out_w;
    float *x = rnd_array(&r, xc, -1, 1), *y1 = zeros(yc), *y2 = zeros(yc), *mask = zeros(yc);
    for (int64_t i = 0; i < xc; i++) {
      int pick = rnd_int(&r, 0, 9);
      if (pick == 0) x[i] = NAN;
      else if (pick == 1) x[i] = -0.0f;
      else if (pick == 2) x[i] = 0.0f;
      else if (pick < 6) x[i] = -fabsf(x[i]); /* so that zeros are often the maximum */
    }
    ns_pool2d(&s, NS_POOL_MAX, x, y1, mask, 1);
    for (int path = 0; path < 2; path++) {
      if (!set_path(path)) continue;
      ns_pool2d(&s, NS_POOL_MAX, x, y2, NULL, 1);
      for (int64_t i = 0; i < yc; i++)
        if (!(y1[i] == y2[i])) /* NaN fails too */
          fail_msg("max pool with NaN and zeros (%s): element %lld is %g, masked path %g",
                   path ? "avx2" : "sse", (long long)i, y2[i], y1[i]);
    }
    unsetenv("NETSURG_PORTABLE");
    free(x), free(y1), free(y2), free(mask);
  }
}

/* ---- LRN -------------------------------------------------------------- */

static void test_lrn_across_random(void **state) {
  rnd r = {0x5eedu};
  for (int t = 0; t < 60; t++) {
    int64_t num = rnd_int(&r, 1, 3), c = rnd_int(&r, 1, 12), sp = rnd_int(&r, 1, 700);
    int64_t count = num * c * sp;
    int size = 2 * rnd_int(&r, 0, 4) + 1;
    float alpha = rnd_float(&r, 0.0001f, 2.0f), beta = rnd_float(&r, 0.1f, 1.0f);
    if (t % 2) beta = 0.75f; /* the square-root path (AVX2 only) */
    float k = rnd_float(&r, 0.5f, 2.0f);
    float *x = rnd_array(&r, count, -2, 2), *y1 = zeros(count), *y3 = zeros(count);
    float *ref = zeros(count), *sc = zeros(ns_lrn_across_scratch(c, 3));
    ns_lrn_across(num, c, sp, size, alpha, beta, k, x, y1, sc, 1);
    ns_lrn_across(num, c, sp, size, alpha, beta, k, x, y3, sc, 3);
    for (int64_t n = 0; n < num; n++)
      ns_ref_lrn_across(c, sp, size, alpha, beta, k, x + n * c * sp, ref + n * c * sp);
    expect_close(y1, ref, count, "lrn across");
    expect_same_bits(y1, y3, count, "lrn across");
    ns_lrn_across(num, c, sp, size, alpha, beta, k, x, x, sc, 2); /* in place */
    expect_same_bits(x, y1, count, "lrn across in place");
    free(x), free(y1), free(y3), free(ref), free(sc);
  }
}

static void test_lrn_within_random(void **state) {
  rnd r = {0xbeefu};
  for (int t = 0; t < 60; t++) {
    int64_t planes = rnd_int(&r, 1, 6), h = rnd_int(&r, 1, 13), w = rnd_int(&r, 1, 13);
    int size = 2 * rnd_int(&r, 0, 3) + 1;
    float alpha = rnd_float(&r, 0.0001f, 2.0f), beta = rnd_float(&r, 0.1f, 1.0f);
    int64_t n = planes * h * w;
    float *x = rnd_array(&r, n, -2, 2), *y1 = zeros(n), *y3 = zeros(n), *ref = zeros(n);
    float *scratch = zeros(2 * n);
    ns_lrn_within(planes, h, w, size, alpha, beta, x, y1, scratch, 1);
    ns_lrn_within(planes, h, w, size, alpha, beta, x, y3, scratch, 3);
    ns_ref_lrn_within(planes, h, w, size, alpha, beta, x, ref);
    expect_close(y1, ref, n, "lrn within");
    expect_same_bits(y1, y3, n, "lrn within");
    ns_lrn_within(planes, h, w, size, alpha, beta, x, x, scratch, 2);
    expect_same_bits(x, y1, n, "lrn within in place");
    free(x), free(y1), free(y3), free(ref), free(scratch);
  }
}

/* ---- softmax ---------------------------------------------------------- */

static void test_softmax_random(void **state) {
  rnd r = {0xc0ffeeu};
  for (int t = 0; t < 60; t++) {
    int64_t outer = rnd_int(&r, 1, 5), ch = rnd_int(&r, 1, 20), inner = rnd_int(&r, 1, 300);
    int64_t n = outer * ch * inner;
    /* Large offsets: exp would overflow without the max subtracted. */
    float shift = (t % 3 == 0) ? 1000.0f : 0.0f, spread = (t % 3 == 0) ? 100.0f : 10.0f;
    float *x = rnd_array(&r, n, shift - spread, shift + spread);
    float *y1 = zeros(n), *y3 = zeros(n), *ref = zeros(n);
    ns_softmax(outer, ch, inner, x, y1, 1);
    ns_softmax(outer, ch, inner, x, y3, 3);
    ns_ref_softmax(outer, ch, inner, x, ref);
    expect_close(y1, ref, n, "softmax");
    expect_same_bits(y1, y3, n, "softmax");
    ns_softmax(outer, ch, inner, x, x, 2);
    expect_same_bits(x, y1, n, "softmax in place");
    free(x), free(y1), free(y3), free(ref);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_transposes),        cmocka_unit_test(test_pgemm_random),
      cmocka_unit_test(test_pgemm_rows_random),      cmocka_unit_test(test_im2col_definition),
      cmocka_unit_test(test_conv_random_shapes),     cmocka_unit_test(test_conv_winograd),
      cmocka_unit_test(test_conv_winograd_strided),
      cmocka_unit_test(test_winograd_small),     cmocka_unit_test(test_conv_batch_items),
      cmocka_unit_test(test_conv_1x1),
      cmocka_unit_test(test_conv_caffenet_geometry), cmocka_unit_test(test_conv_backward_random_shapes),
      cmocka_unit_test(test_conv_bias_kernels),      cmocka_unit_test(test_conv_plan_caffenet),
      cmocka_unit_test(test_conv_depthwise), cmocka_unit_test(test_conv_by_rows),
      cmocka_unit_test(test_pool_out_size),
      cmocka_unit_test(test_pool_random_shapes), cmocka_unit_test(test_pool_max_nan_ties),
      cmocka_unit_test(test_pool_ave_global),     cmocka_unit_test(test_lrn_across_random),
      cmocka_unit_test(test_lrn_within_random),      cmocka_unit_test(test_softmax_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
