/* Our own single-precision GEMM for the forward paths: register-blocked
 * micro-kernels (AVX2+FMA, chosen at run time, or portable C), B packed
 * per call into the caller's scratch, A read in place (weights are used
 * as stored: no packed copy, so no extra memory and nothing to invalidate
 * when params change), bias and ReLU applied in the epilogue.
 *
 * Every C element is one sum over k in increasing order, cut into slices
 * whose length depends on the shape alone (KC, or 2 KC when n <= NC / 2);
 * threads only share out tiles, so results do not depend on their count. */
#ifndef NS_KERNELS_PGEMM_H
#define NS_KERNELS_PGEMM_H

#include <stdint.h>

/* Tile 6 x 16; k in slices of 512 (fewer C reloads: 12-15% faster than
 * 256 on the fc-as-conv shapes, 5-10% on conv3-5) and column blocks of
 * 128, so that a packed B block (256 KiB) sits in L2 (1 MiB per core here). */
enum { NS_GEMM_MR = 6, NS_GEMM_NR = 16, NS_GEMM_KC = 512, NS_GEMM_NC = 128 };

typedef struct ns_gemm_epi {
  const float *row_bias;  /* [m]: added to row i, or NULL */
  const float *col_bias;  /* [n]: added to column j, or NULL */
  int relu;               /* then max(0, .) (NaN passes, as Caffe's ReLU) */
  const float *row_scale; /* [m]: row i times it before the biases, or NULL */
  const float *residual;  /* [m][ldc] as C: added after the biases, before the ReLU, or NULL */
} ns_gemm_epi;

/* 1 when the AVX2+FMA kernels are in use: the CPU has them and the
 * environment variable NETSURG_PORTABLE is unset or "0". */
int ns_gemm_avx2(void);

/* Floats of scratch ns_gemm needs on `threads` threads (0 = all). */
int64_t ns_gemm_scratch_floats(int threads);

/* C [m, n] = A [m, k] op(B) (+ bias) (ReLU), row-major; op(B) is B [k, n]
 * (ldb) or, with trans_b, the transpose of B stored [n, k].  epi may be
 * NULL.  scratch: ns_gemm_scratch_floats(threads) floats, 64-byte
 * aligned. */
void ns_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
             int64_t ldb, int trans_b, float *c, int64_t ldc, const ns_gemm_epi *epi,
             float *scratch, int threads);

/* Y [m, n] = X [m, k] W [n, k]^T (+ col_bias [n]) (ReLU) as dot products
 * along rows: for the few-row (batch 1-4) fully connected case, where the
 * weights stream through once and nothing is packed. */
void ns_gemm_rows(int64_t m, int64_t n, int64_t k, const float *x, int64_t ldx, const float *w,
                  int64_t ldw, float *y, int64_t ldy, const float *col_bias, int relu,
                  int threads);

/* A tile's epilogue, on the last slice of k: the rows times rs [6], then
 * rb [6], cb [16] and the residual tile (rows ldc apart, as C) added, each
 * rounded apart (each may be NULL), then max(0, .) when relu. */
typedef struct ns_gemm_tile_epi {
  const float *rs, *rb, *cb, *res;
  int relu;
} ns_gemm_tile_epi;

/* Micro-kernels, shared between pgemm.c and pgemm_avx2.c.  A 6 x 16 tile
 * of C += sum over kc of a[r][p] * b[p][0..16) (b packed 16 wide); with
 * load_c 0 the sum starts from 0; then epi (NULL: none). */
typedef void (*ns_gemm_ukernel)(int64_t kc, const float *const *a, const float *b, float *c,
                                int64_t ldc, int load_c, const ns_gemm_tile_epi *epi);
/* C [6][16] (rows ldc apart) = A B from A packed [kc][6] and B packed
 * [kc][16] (32-byte aligned): for callers that keep both packed
 * (Winograd), so that each streams in one run. */
typedef void (*ns_gemm_packed_kernel)(int64_t kc, const float *a, const float *b, float *c,
                                      int64_t ldc);
/* The one in use (AVX2+FMA or portable, as ns_gemm_avx2). */
ns_gemm_packed_kernel ns_gemm_packed_micro_kernel(void);
/* out[r * 2 + i] = dot(w[r], x[i]) over k, r < 4, i < 2. */
typedef void (*ns_gemm_dot_kernel)(int64_t k, const float *const *w, const float *const *x,
                                   float *out);
void ns_gemm_ukernel_avx2(int64_t kc, const float *const *a, const float *b, float *c, int64_t ldc,
                          int load_c, const ns_gemm_tile_epi *epi);
void ns_gemm_ukernel_packed_avx2(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc);
/* The left 6 x 8 of the tile (b packed 16 wide), for an edge panel of at
 * most 8 columns: each column's sum as the full kernel's. */
void ns_gemm_ukernel_half_avx2(int64_t kc, const float *const *a, const float *b, float *c,
                               int64_t ldc, int load_c, const ns_gemm_tile_epi *epi);
void ns_gemm_dot_avx2(int64_t k, const float *const *w, const float *const *x, float *out);
/* y[i] = x[i] s[i]^-0.75 as x / (sqrt(s) sqrt(sqrt(s))): LRN's common beta
 * (ns_gemm_avx2() chooses the path for the other kernels too). */
void ns_pow_m075_mul_avx2(int64_t n, const float *s, const float *x, float *y);

#endif
