#include "kernels/gemm.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>

#include "netsurg.h"

/* OpenBLAS blocks K itself, and its single- and multi-threaded drivers cut
 * a K between GEMM_Q and 2 GEMM_Q at different points (0.3.21: conv1's
 * K = 363 came out different in the last bits on 1 and 2 threads).  We
 * feed K in slices no larger than any x86 target's GEMM_Q, so OpenBLAS
 * never cuts it and the sums run in the same order on any thread count. */
enum { K_SLICE = 256 };

int ns_gemm_fits(int64_t m, int64_t n, int64_t k) {
  return m >= 0 && n >= 0 && k >= 0 && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX;
}

void ns_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc) {
  if (m == 0 || n == 0) return;
  enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  int64_t k0 = 0;
  do {
    int64_t kc = k - k0 < K_SLICE ? k - k0 : K_SLICE;
    /* Slice k0..k0+kc of op(A)'s columns and op(B)'s rows. */
    const float *as = trans_a ? a + k0 * lda : a + k0;
    const float *bs = trans_b ? b + k0 : b + k0 * ldb;
    cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)kc, alpha, as, (int)lda, bs, (int)ldb,
                k0 == 0 ? beta : 1.0f, c, (int)ldc);
    k0 += kc;
  } while (k0 < k);
}

void ns_blas_set_threads(int threads) {
  openblas_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
}
