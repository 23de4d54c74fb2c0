/* AVX2+FMA micro-kernels of pgemm.c, compiled with function-level target
 * attributes so that the default build still runs on any x86-64; pgemm.c
 * calls them only when the CPU has both. */
#include "kernels/pgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define NS_AVX2 __attribute__((target("avx2,fma")))

NS_AVX2 void ns_gemm_ukernel_avx2(int64_t kc, const float *const *a, const float *b, float *c,
                                  int64_t ldc, int load_c, const float *rb, const float *cb,
                                  int relu) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (load_c) {
    c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
    c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  }
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b + 16 * p), b1 = _mm256_load_ps(b + 16 * p + 8), x;
    x = _mm256_broadcast_ss(a0 + p);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + p);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + p);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + p);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + p);
    c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + p);
    c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  if (rb) {
    __m256 v = _mm256_broadcast_ss(rb);
    c00 = _mm256_add_ps(c00, v), c01 = _mm256_add_ps(c01, v);
    v = _mm256_broadcast_ss(rb + 1);
    c10 = _mm256_add_ps(c10, v), c11 = _mm256_add_ps(c11, v);
    v = _mm256_broadcast_ss(rb + 2);
    c20 = _mm256_add_ps(c20, v), c21 = _mm256_add_ps(c21, v);
    v = _mm256_broadcast_ss(rb + 3);
    c30 = _mm256_add_ps(c30, v), c31 = _mm256_add_ps(c31, v);
    v = _mm256_broadcast_ss(rb + 4);
    c40 = _mm256_add_ps(c40, v), c41 = _mm256_add_ps(c41, v);
    v = _mm256_broadcast_ss(rb + 5);
    c50 = _mm256_add_ps(c50, v), c51 = _mm256_add_ps(c51, v);
  }
  if (cb) {
    __m256 v0 = _mm256_loadu_ps(cb), v1 = _mm256_loadu_ps(cb + 8);
    c00 = _mm256_add_ps(c00, v0), c01 = _mm256_add_ps(c01, v1);
    c10 = _mm256_add_ps(c10, v0), c11 = _mm256_add_ps(c11, v1);
    c20 = _mm256_add_ps(c20, v0), c21 = _mm256_add_ps(c21, v1);
    c30 = _mm256_add_ps(c30, v0), c31 = _mm256_add_ps(c31, v1);
    c40 = _mm256_add_ps(c40, v0), c41 = _mm256_add_ps(c41, v1);
    c50 = _mm256_add_ps(c50, v0), c51 = _mm256_add_ps(c51, v1);
  }
  if (relu) {
    /* max(0, v) returns v when v is NaN, and -0 for -0, as Caffe's. */
    __m256 z = _mm256_setzero_ps();
    c00 = _mm256_max_ps(z, c00), c01 = _mm256_max_ps(z, c01);
    c10 = _mm256_max_ps(z, c10), c11 = _mm256_max_ps(z, c11);
    c20 = _mm256_max_ps(z, c20), c21 = _mm256_max_ps(z, c21);
    c30 = _mm256_max_ps(z, c30), c31 = _mm256_max_ps(z, c31);
    c40 = _mm256_max_ps(z, c40), c41 = _mm256_max_ps(z, c41);
    c50 = _mm256_max_ps(z, c50), c51 = _mm256_max_ps(z, c51);
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

/* The 6 x 16 tile from A packed [kc][6] (one stream), sum from 0, no
 * epilogue: for callers that keep their A packed (Winograd's weights). */
NS_AVX2 void ns_gemm_ukernel_packed_avx2(int64_t kc, const float *a, const float *b, float *c,
                                         int64_t ldc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b + 16 * p), b1 = _mm256_load_ps(b + 16 * p + 8), x;
    const float *ap = a + 6 * p;
    x = _mm256_broadcast_ss(ap);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(ap + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(ap + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(ap + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(ap + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(ap + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

/* Horizontal sum in a fixed order. */
NS_AVX2 static float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

NS_AVX2 void ns_gemm_dot_avx2(int64_t k, const float *const *w, const float *const *x, float *out) {
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3], *x0 = x[0], *x1 = x[1];
  __m256 s00 = _mm256_setzero_ps(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00,
         s30 = s00, s31 = s00;
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 u0 = _mm256_loadu_ps(x0 + p), u1 = _mm256_loadu_ps(x1 + p), v;
    v = _mm256_loadu_ps(w0 + p);
    s00 = _mm256_fmadd_ps(v, u0, s00), s01 = _mm256_fmadd_ps(v, u1, s01);
    v = _mm256_loadu_ps(w1 + p);
    s10 = _mm256_fmadd_ps(v, u0, s10), s11 = _mm256_fmadd_ps(v, u1, s11);
    v = _mm256_loadu_ps(w2 + p);
    s20 = _mm256_fmadd_ps(v, u0, s20), s21 = _mm256_fmadd_ps(v, u1, s21);
    v = _mm256_loadu_ps(w3 + p);
    s30 = _mm256_fmadd_ps(v, u0, s30), s31 = _mm256_fmadd_ps(v, u1, s31);
  }
  out[0] = hsum(s00), out[1] = hsum(s01), out[2] = hsum(s10), out[3] = hsum(s11);
  out[4] = hsum(s20), out[5] = hsum(s21), out[6] = hsum(s30), out[7] = hsum(s31);
  for (; p < k; p++)
    for (int r = 0; r < 4; r++) {
      out[2 * r] += w[r][p] * x0[p];
      out[2 * r + 1] += w[r][p] * x1[p];
    }
}

NS_AVX2 void ns_pow_m075_mul_avx2(int64_t n, const float *s, const float *x, float *y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 r = _mm256_sqrt_ps(_mm256_loadu_ps(s + i));
    __m256 d = _mm256_mul_ps(r, _mm256_sqrt_ps(r));
    _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), d));
  }
  for (; i < n; i++) {
    float r = __builtin_sqrtf(s[i]);
    y[i] = x[i] / (r * __builtin_sqrtf(r));
  }
}

#else
/* Not reached: ns_gemm_avx2() is 0 off x86-64. */
void ns_gemm_ukernel_avx2(int64_t kc, const float *const *a, const float *b, float *c, int64_t ldc,
                          int load_c, const float *rb, const float *cb, int relu) {}
void ns_gemm_ukernel_packed_avx2(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc) {}
void ns_gemm_dot_avx2(int64_t k, const float *const *w, const float *const *x, float *out) {}
void ns_pow_m075_mul_avx2(int64_t n, const float *s, const float *x, float *y) {}
#endif
