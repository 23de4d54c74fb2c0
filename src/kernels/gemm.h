/* Single-precision GEMM over row-major matrices, through OpenBLAS:
 * C = alpha op(A) op(B) + beta C, op(A) [m, k], op(B) [k, n], C [m, n]. */
#ifndef NS_KERNELS_GEMM_H
#define NS_KERNELS_GEMM_H

#include <stdint.h>

/* 1 when m, n, k and the leading dimensions fit BLAS's int. */
int ns_gemm_fits(int64_t m, int64_t n, int64_t k);

/* trans_a / trans_b: nonzero to use the transpose of A / B as stored.
 * Dimensions must satisfy ns_gemm_fits (callers check in reshape). */
void ns_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc);

#endif
