/* AVX2+FMA micro-kernels of pgemm.c, compiled with function-level target
 * attributes so that the default build still runs on any x86-64; pgemm.c
 * calls them only when the CPU has both. */
#include "kernels/pgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define NS_AVX2 __attribute__((target("avx2,fma")))

/* The 6 x 16 tile's sums acc[r] += A[r][p] b[p][0..16) over p < kc, row r
 * of A at a[r] with elements `step` apart (1: rows in place, 6: packed);
 * always inlined with a constant step, so acc lives in 12 registers. */
#define INLINE_AVX2 NS_AVX2 static inline __attribute__((always_inline))
INLINE_AVX2 void tile_sums(int64_t kc, const float *const *a, int step, const float *b,
                           __m256 acc[6][2]) {
  const float *row[6];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) row[r] = a[r];
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b + 16 * p), b1 = _mm256_load_ps(b + 16 * p + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
      __m256 x = _mm256_broadcast_ss(row[r] + step * p);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]), acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
}

INLINE_AVX2 void tile_store(float *c, int64_t ldc, __m256 acc[6][2]) {
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++)
    _mm256_storeu_ps(c + r * ldc, acc[r][0]), _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
}

NS_AVX2 void ns_gemm_ukernel_avx2(int64_t kc, const float *const *a, const float *b, float *c,
                                  int64_t ldc, int load_c, const ns_gemm_tile_epi *e) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) {
    acc[r][0] = load_c ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    acc[r][1] = load_c ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  tile_sums(kc, a, 1, b, acc);
  if (e) {
    __m256 z = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
#pragma GCC unroll 2
      for (int j = 0; j < 2; j++) {
        if (e->rs) acc[r][j] = _mm256_mul_ps(acc[r][j], _mm256_broadcast_ss(e->rs + r));
        if (e->rb) acc[r][j] = _mm256_add_ps(acc[r][j], _mm256_broadcast_ss(e->rb + r));
        if (e->cb) acc[r][j] = _mm256_add_ps(acc[r][j], _mm256_loadu_ps(e->cb + 8 * j));
        if (e->res) acc[r][j] = _mm256_add_ps(acc[r][j], _mm256_loadu_ps(e->res + r * ldc + 8 * j));
        /* max(0, v) returns v when v is NaN, and -0 for -0, as Caffe's. */
        if (e->relu) acc[r][j] = _mm256_max_ps(z, acc[r][j]);
      }
  }
  tile_store(c, ldc, acc);
}

/* The left half of the tile, 6 x 8 (b still packed 16 wide), for the
 * last panel of a product whose width leaves at most 8 columns there
 * (ResNet's 7 x 7 maps: 49 = 3 x 16 + 1): half the multiplies of a full
 * tile.  Each column's sum is the full kernel's, bit for bit. */
NS_AVX2 void ns_gemm_ukernel_half_avx2(int64_t kc, const float *const *a, const float *b, float *c,
                                       int64_t ldc, int load_c, const ns_gemm_tile_epi *e) {
  const float *row[6];
  __m256 acc[6];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) {
    row[r] = a[r];
    acc[r] = load_c ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b + 16 * p);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(row[r] + p), b0, acc[r]);
  }
  __m256 z = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) {
    if (e && e->rs) acc[r] = _mm256_mul_ps(acc[r], _mm256_broadcast_ss(e->rs + r));
    if (e && e->rb) acc[r] = _mm256_add_ps(acc[r], _mm256_broadcast_ss(e->rb + r));
    if (e && e->cb) acc[r] = _mm256_add_ps(acc[r], _mm256_loadu_ps(e->cb));
    if (e && e->res) acc[r] = _mm256_add_ps(acc[r], _mm256_loadu_ps(e->res + r * ldc));
    if (e && e->relu) acc[r] = _mm256_max_ps(z, acc[r]);
    _mm256_storeu_ps(c + r * ldc, acc[r]);
  }
}

/* The 6 x 16 tile from A packed [kc][6] (one stream), sum from 0, no
 * epilogue: for callers that keep their A packed (Winograd's weights). */
NS_AVX2 void ns_gemm_ukernel_packed_avx2(int64_t kc, const float *a, const float *b, float *c,
                                         int64_t ldc) {
  const float *rows[6] = {a, a + 1, a + 2, a + 3, a + 4, a + 5};
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  tile_sums(kc, rows, 6, b, acc);
  tile_store(c, ldc, acc);
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
                          int load_c, const ns_gemm_tile_epi *epi) {}
void ns_gemm_ukernel_packed_avx2(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc) {}
void ns_gemm_ukernel_half_avx2(int64_t kc, const float *const *a, const float *b, float *c,
                               int64_t ldc, int load_c, const ns_gemm_tile_epi *epi) {}
void ns_gemm_dot_avx2(int64_t k, const float *const *w, const float *const *x, float *out) {}
void ns_pow_m075_mul_avx2(int64_t n, const float *s, const float *x, float *y) {}
#endif
