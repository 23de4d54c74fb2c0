#include "kernels/pool2d.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

int64_t ns_pool_out_size(int64_t in, int kernel, int pad, int stride, int any_pad, int floor_mode) {
  /* Float arithmetic on purpose: Caffe rounds static_cast<float>(...) / stride. */
  float q = (float)(in + 2 * (int64_t)pad - kernel) / (float)stride;
  int64_t out = (int64_t)(floor_mode ? floorf(q) : ceilf(q)) + 1;
  if (any_pad && (out - 1) * stride >= in + pad) out--;
  return out;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void max_plane(const ns_pool2d_shape *s, const float *x, float *y, float *mask) {
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs = ph * s->stride_h - s->pad_h, he = min64(hs + s->kernel_h, s->height);
    hs = max64(hs, 0);
    for (int64_t pw = 0; pw < s->out_w; pw++) {
      int64_t ws = pw * s->stride_w - s->pad_w, we = min64(ws + s->kernel_w, s->width);
      ws = max64(ws, 0);
      float best = -FLT_MAX;
      int64_t arg = -1;
      for (int64_t h = hs; h < he; h++)
        for (int64_t w = ws; w < we; w++)
          if (x[h * s->width + w] > best) {
            best = x[h * s->width + w];
            arg = h * s->width + w;
          }
      y[ph * s->out_w + pw] = best;
      if (mask) mask[ph * s->out_w + pw] = (float)arg;
    }
  }
}

/* MAX without a mask by rows: each output row's window rows reduced
 * into one row first (rowmax, in padded coordinates: a column of the
 * padding is -FLT_MAX, as a clipped window has no such cell), then the
 * kernel's columns.  The same maximum as max_plane (comparisons that
 * skip NaN alike), with the window loops' bounds checks gone; only where
 * -0 and +0 tie for it may the sign differ (max_plane keeps the first in
 * row order, this the first column's). */
enum { MAX_ROW = 4096 };

/* Four floats in a GCC vector, an SSE register in any x86-64 build (-O2
 * leaves these loops scalar; wider vectors would be split without AVX). */
typedef float v4 __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* m = v > m ? v : m, lane by lane (a NaN in v is skipped, as in
 * max_plane): SSE's maxps(v, m) is exactly that (its second operand when
 * they compare false, NaN included), one instruction for four. */
#if defined(__SSE__)
#define MAX4(m, v) ((m) = __builtin_ia32_maxps((v), (m)))
#else
#define MAX4(m, v)                                               \
  do {                                                           \
    v4i gt_ = (v) > (m);                                         \
    (m) = (v4)(((v4i)(v) & gt_) | ((v4i)(m) & ~gt_));            \
  } while (0)
#endif
#define LOAD4(dst, p) __builtin_memcpy(&(dst), (p), sizeof(v4))

static int max_by_rows(const ns_pool2d_shape *s) {
  return s->out_h > 0 && s->out_w > 0 &&
         (s->out_w - 1) * s->stride_w + s->kernel_w <= MAX_ROW;
}

/* The scalar ends of both by-rows paths: rowmax[w] for columns [w, hi)
 * over rows [hs, he), and the outputs from column pw on. */
static void rows_max_tail(const ns_pool2d_shape *s, const float *x, int64_t hs, int64_t he,
                          int64_t w, int64_t hi, float *rowmax) {
  for (; w < hi; w++) {
    float m = -FLT_MAX;
    for (int64_t h = hs; h < he; h++) {
      float v = x[h * s->width + w - s->pad_w];
      m = v > m ? v : m;
    }
    rowmax[w] = m;
  }
}

static void row_out_tail(const ns_pool2d_shape *s, const float *rowmax, int64_t pw, float *yr) {
  for (; pw < s->out_w; pw++) {
    const float *v = rowmax + pw * s->stride_w;
    float best = -FLT_MAX;
    for (int64_t k = 0; k < s->kernel_w; k++) best = v[k] > best ? v[k] : best;
    yr[pw] = best;
  }
}

static void max_plane_rows(const ns_pool2d_shape *s, const float *x, float *y) {
  /* 8 floats of slack: the stride-2 vectors load one float past the
   * last column they use */
  float rowmax[MAX_ROW + 8];
  int64_t width = (s->out_w - 1) * s->stride_w + s->kernel_w; /* padded columns read */
  int64_t lo = min64(s->pad_w, width), hi = min64(s->pad_w + s->width, width);
  for (int64_t w = 0; w < lo; w++) rowmax[w] = -FLT_MAX;
  for (int64_t w = hi; w < width + 8; w++) rowmax[w] = -FLT_MAX;
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs = ph * s->stride_h - s->pad_h, he = min64(hs + s->kernel_h, s->height);
    hs = max64(hs, 0);
    /* the window's rows, four columns at a time through all of them */
    int64_t w = lo;
    for (; w + 4 <= hi; w += 4) {
      v4 m = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
      for (int64_t h = hs; h < he; h++) {
        v4 v;
        LOAD4(v, x + h * s->width + w - s->pad_w);
        MAX4(m, v);
      }
      __builtin_memcpy(rowmax + w, &m, sizeof m);
    }
    rows_max_tail(s, x, hs, he, w, hi, rowmax);
    float *yr = y + ph * s->out_w;
    int64_t pw = 0;
    if (s->stride_w == 1) /* four outputs: the kernel's columns as shifted rows */
      for (; pw + 4 <= s->out_w; pw += 4) {
        v4 best = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
        for (int64_t k = 0; k < s->kernel_w; k++) {
          v4 v;
          LOAD4(v, rowmax + pw + k);
          MAX4(best, v);
        }
        __builtin_memcpy(yr + pw, &best, sizeof best);
      }
    else if (s->stride_w == 2) /* four outputs: every other column of two loads */
      for (; pw + 4 <= s->out_w; pw += 4) {
        v4 best = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
        for (int64_t k = 0; k < s->kernel_w; k++) {
          v4 a, b;
          LOAD4(a, rowmax + 2 * pw + k), LOAD4(b, rowmax + 2 * pw + k + 4);
          v4 v = __builtin_shufflevector(a, b, 0, 2, 4, 6);
          MAX4(best, v);
        }
        __builtin_memcpy(yr + pw, &best, sizeof best);
      }
    row_out_tail(s, rowmax, pw, yr);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* max_plane_rows eight columns at a time, for AVX2 (chosen at run time, as
 * the GEMM kernels): the same comparisons in the same order (maxps(v, m)
 * is v > m ? v : m), so the same bits. */
__attribute__((target("avx2"))) static void max_plane_rows_avx2(const ns_pool2d_shape *s,
                                                                const float *x, float *y) {
  float rowmax[MAX_ROW + 16]; /* slack: the stride-2 vectors read past the last column */
  int64_t width = (s->out_w - 1) * s->stride_w + s->kernel_w; /* padded columns read */
  int64_t lo = min64(s->pad_w, width), hi = min64(s->pad_w + s->width, width);
  const __m256 none = _mm256_set1_ps(-FLT_MAX);
  for (int64_t w = 0; w < lo; w++) rowmax[w] = -FLT_MAX;
  for (int64_t w = hi; w < width + 16; w++) rowmax[w] = -FLT_MAX;
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs = ph * s->stride_h - s->pad_h, he = min64(hs + s->kernel_h, s->height);
    hs = max64(hs, 0);
    int64_t w = lo;
    for (; w + 8 <= hi; w += 8) {
      __m256 m = none;
      for (int64_t h = hs; h < he; h++)
        m = _mm256_max_ps(_mm256_loadu_ps(x + h * s->width + w - s->pad_w), m);
      _mm256_storeu_ps(rowmax + w, m);
    }
    rows_max_tail(s, x, hs, he, w, hi, rowmax);
    float *yr = y + ph * s->out_w;
    int64_t pw = 0;
    if (s->stride_w == 1)
      for (; pw + 8 <= s->out_w; pw += 8) {
        __m256 best = none;
        for (int64_t k = 0; k < s->kernel_w; k++)
          best = _mm256_max_ps(_mm256_loadu_ps(rowmax + pw + k), best);
        _mm256_storeu_ps(yr + pw, best);
      }
    else if (s->stride_w == 2) /* the even floats of sixteen */
      for (; pw + 8 <= s->out_w; pw += 8) {
        __m256 best = none;
        for (int64_t k = 0; k < s->kernel_w; k++) {
          __m256 a = _mm256_loadu_ps(rowmax + 2 * pw + k), b = _mm256_loadu_ps(rowmax + 2 * pw + k + 8);
          __m256 even = _mm256_castpd_ps(
              _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
          best = _mm256_max_ps(even, best);
        }
        _mm256_storeu_ps(yr + pw, best);
      }
    row_out_tail(s, rowmax, pw, yr);
  }
}
#else
#define max_plane_rows_avx2 max_plane_rows
#endif

/* A global window (the whole plane, no padding: SqueezeNet's pool10) as
 * one sum in four lanes (added in a fixed order, so the result does not
 * depend on anything but the plane), then divided. */
static int ave_global(const ns_pool2d_shape *s) {
  return s->out_h == 1 && s->out_w == 1 && s->pad_h == 0 && s->pad_w == 0 &&
         s->kernel_h == s->height && s->kernel_w == s->width;
}

static float plane_mean(int64_t n, const float *x) {
  v4 acc = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v4 v;
    LOAD4(v, x + i);
    acc += v;
  }
  float sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; i < n; i++) sum += x[i];
  return sum / (float)n;
}

static void ave_plane(const ns_pool2d_shape *s, const float *x, float *y) {
  if (ave_global(s)) {
    y[0] = plane_mean(s->height * s->width, x);
    return;
  }
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs = ph * s->stride_h - s->pad_h;
    int64_t he = min64(hs + s->kernel_h, s->height + s->pad_h);
    int64_t rows = he - hs;
    hs = max64(hs, 0);
    he = min64(he, s->height);
    for (int64_t pw = 0; pw < s->out_w; pw++) {
      int64_t ws = pw * s->stride_w - s->pad_w;
      int64_t we = min64(ws + s->kernel_w, s->width + s->pad_w);
      int64_t pool_size = rows * (we - ws);
      ws = max64(ws, 0);
      we = min64(we, s->width);
      float sum = 0.0f;
      for (int64_t h = hs; h < he; h++)
        for (int64_t w = ws; w < we; w++) sum += x[h * s->width + w];
      y[ph * s->out_w + pw] = sum / (float)pool_size;
    }
  }
}

static void stochastic_plane(const ns_pool2d_shape *s, const float *x, float *y) {
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs = ph * s->stride_h, he = min64(hs + s->kernel_h, s->height);
    for (int64_t pw = 0; pw < s->out_w; pw++) {
      int64_t ws = pw * s->stride_w, we = min64(ws + s->kernel_w, s->width);
      /* FLT_MIN keeps an all-zero window at 0 instead of 0/0. */
      float cumsum = FLT_MIN, cumvalues = 0.0f;
      for (int64_t h = hs; h < he; h++)
        for (int64_t w = ws; w < we; w++) {
          float v = x[h * s->width + w];
          cumsum += v;
          cumvalues += v * v;
        }
      y[ph * s->out_w + pw] = cumvalues / cumsum;
    }
  }
}

void ns_pool2d(const ns_pool2d_shape *s, ns_pool_method m, const float *x, float *y, float *mask,
               int threads) {
  int64_t in_plane = s->height * s->width, out_plane = s->out_h * s->out_w;
  int nt = ns_kernel_threads(threads), avx2 = ns_gemm_avx2();
#pragma omp parallel for schedule(static) \
    num_threads(nt) if (s->planes > 1 && s->planes * out_plane > 4096)
  for (int64_t p = 0; p < s->planes; p++) {
    const float *xp = x + p * in_plane;
    float *yp = y + p * out_plane;
    if (m == NS_POOL_MAX && !mask && max_by_rows(s))
      (avx2 ? max_plane_rows_avx2 : max_plane_rows)(s, xp, yp);
    else if (m == NS_POOL_MAX)
      max_plane(s, xp, yp, mask ? mask + p * out_plane : NULL);
    else if (m == NS_POOL_AVE)
      ave_plane(s, xp, yp);
    else
      stochastic_plane(s, xp, yp);
  }
}

/* One plane's backward, dx zeroed. */
static void backward_plane(const ns_pool2d_shape *s, ns_pool_method m, const float *x,
                           const float *dy, float *dx) {
  for (int64_t ph = 0; ph < s->out_h; ph++) {
    int64_t hs0 = ph * s->stride_h - s->pad_h;
    int64_t he0 = min64(hs0 + s->kernel_h, s->height + s->pad_h);
    int64_t hs = max64(hs0, 0), he = min64(he0, s->height);
    for (int64_t pw = 0; pw < s->out_w; pw++) {
      int64_t ws0 = pw * s->stride_w - s->pad_w;
      int64_t we0 = min64(ws0 + s->kernel_w, s->width + s->pad_w);
      int64_t ws = max64(ws0, 0), we = min64(we0, s->width);
      float g = dy[ph * s->out_w + pw];
      if (m == NS_POOL_MAX) {
        float best = -FLT_MAX;
        int64_t arg = -1;
        for (int64_t h = hs; h < he; h++)
          for (int64_t w = ws; w < we; w++)
            if (x[h * s->width + w] > best) {
              best = x[h * s->width + w];
              arg = h * s->width + w;
            }
        if (arg >= 0) dx[arg] += g;
      } else {
        float share = g / (float)((he0 - hs0) * (we0 - ws0));
        for (int64_t h = hs; h < he; h++)
          for (int64_t w = ws; w < we; w++) dx[h * s->width + w] += share;
      }
    }
  }
}

void ns_pool2d_backward(const ns_pool2d_shape *s, ns_pool_method m, const float *x, const float *dy,
                        float *dx, int threads) {
  int64_t in_plane = s->height * s->width, out_plane = s->out_h * s->out_w;
  memset(dx, 0, (size_t)(s->planes * in_plane) * sizeof(float));
  int nt = ns_kernel_threads(threads); /* planes are independent */
#pragma omp parallel for schedule(static) \
    num_threads(nt) if (s->planes > 1 && s->planes * out_plane > 4096)
  for (int64_t p = 0; p < s->planes; p++)
    backward_plane(s, m, x + p * in_plane, dy + p * out_plane, dx + p * in_plane);
}
