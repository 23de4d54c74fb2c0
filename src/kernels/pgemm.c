#include "kernels/pgemm.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/parallel.h"

enum { MR = NS_GEMM_MR, NR = NS_GEMM_NR, KC = NS_GEMM_KC, NC = NS_GEMM_NC };
/* Products with at most 64 columns (the full-conv classifier) take k in
 * slices of 1024, in the same packing space: A (the weights) then
 * streams from memory in longer runs per row, and C is reloaded half as
 * often; fc6-conv 56.3-57.5 -> 50.4-51.0 ms on 1 thread. */
enum { KC_NARROW = KC * NC / (NC / 2) };

/* ns_gemm's work as tasks: column blocks of NC times row parts. */
typedef struct gemm_plan {
  int64_t m, n, k, lda, ldb, ldc;
  const float *a, *b;
  float *c;
  int trans_b;
  ns_gemm_epi epi;
  ns_gemm_ukernel kern, half; /* half: 6 x 8 for an edge of <= 8 columns, or NULL */
  int64_t kc_max;                    /* slice length */
  int64_t row_blocks, parts, tasks; /* tasks = column blocks x row parts */
} gemm_plan;

int ns_gemm_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char *e = getenv("NETSURG_PORTABLE");
  if (e && *e && strcmp(e, "0") != 0) return 0;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* Portable micro-kernels: the same tiles and order of sums (without FMA).
 * Row r of A at a[r], elements `step` apart (1: in place, MR: packed). */
static void tile_c(int64_t kc, const float *const *a, int64_t step, const float *b, float *c,
                   int64_t ldc, int load_c, const ns_gemm_tile_epi *e) {
  float acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) acc[r][j] = load_c ? c[r * ldc + j] : 0.0f;
  for (int64_t p = 0; p < kc; p++)
    for (int r = 0; r < MR; r++) {
      float x = a[r][p * step];
      for (int j = 0; j < NR; j++) acc[r][j] += x * b[p * NR + j];
    }
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) {
      float v = acc[r][j];
      if (e && e->rs) v *= e->rs[r];
      if (e && e->rb) v += e->rb[r];
      if (e && e->cb) v += e->cb[j];
      if (e && e->res) v += e->res[r * ldc + j];
      if (e && e->relu) v = v < 0.0f ? 0.0f : v;
      c[r * ldc + j] = v;
    }
}

static void ukernel_c(int64_t kc, const float *const *a, const float *b, float *c, int64_t ldc,
                      int load_c, const ns_gemm_tile_epi *epi) {
  tile_c(kc, a, 1, b, c, ldc, load_c, epi);
}

static void ukernel_packed_c(int64_t kc, const float *a, const float *b, float *c, int64_t ldc) {
  const float *rows[MR] = {a, a + 1, a + 2, a + 3, a + 4, a + 5};
  tile_c(kc, rows, MR, b, c, ldc, 0, NULL);
}

ns_gemm_packed_kernel ns_gemm_packed_micro_kernel(void) {
  return ns_gemm_avx2() ? ns_gemm_ukernel_packed_avx2 : ukernel_packed_c;
}

static void dot_c(int64_t k, const float *const *w, const float *const *x, float *out) {
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 2; i++) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; p++) s += w[r][p] * x[i][p];
      out[2 * r + i] = s;
    }
}

int64_t ns_gemm_scratch_floats(int threads) {
  return (int64_t)ns_kernel_threads(threads) * KC * NC;
}

/* op(B) rows p0..p0+kc, columns j0..j0+nc into panels of NR columns
 * [panel][p][NR], zero beyond n. */
static void pack_b(const float *b, int64_t ldb, int trans_b, int64_t p0, int64_t kc, int64_t j0,
                   int64_t nc, float *dst) {
  int64_t panels = (nc + NR - 1) / NR;
  for (int64_t q = 0; q < panels; q++) {
    float *d = dst + q * kc * NR;
    int64_t jq = j0 + q * NR, w = nc - q * NR < NR ? nc - q * NR : NR;
    if (!trans_b && w == NR) {
      /* A constant size, so the compiler copies inline: a call per 64
       * bytes had cost 10-15% of conv2's GEMM. */
      const float *s = b + p0 * ldb + jq;
      for (int64_t p = 0; p < kc; p++) memcpy(d + p * NR, s + p * ldb, NR * sizeof(float));
    } else if (!trans_b) {
      for (int64_t p = 0; p < kc; p++) {
        const float *s = b + (p0 + p) * ldb + jq;
        memcpy(d + p * NR, s, (size_t)w * sizeof(float));
        for (int64_t j = w; j < NR; j++) d[p * NR + j] = 0.0f;
      }
    } else {
      for (int64_t j = 0; j < w; j++) {
        const float *s = b + (jq + j) * ldb + p0;
        for (int64_t p = 0; p < kc; p++) d[p * NR + j] = s[p];
      }
      for (int64_t j = w; j < NR; j++)
        for (int64_t p = 0; p < kc; p++) d[p * NR + j] = 0.0f;
    }
  }
}


/* Rows i0..i1 (multiples of MR, but for m) by columns j0..j0+nc. */
static void gemm_task(const gemm_plan *g, int64_t i0, int64_t i1, int64_t j0, int64_t nc,
                      float *pack) {
  int64_t panels = (nc + NR - 1) / NR, p0 = 0;
  do {
    int64_t kc = g->k - p0 < g->kc_max ? g->k - p0 : g->kc_max;
    int last = p0 + kc >= g->k;
    pack_b(g->b, g->ldb, g->trans_b, p0, kc, j0, nc, pack);
    for (int64_t i = i0; i < i1; i += MR) {
      int64_t rows = i1 - i < MR ? i1 - i : MR;
      const float *ap[MR];
      float rs[MR], rb[MR];
      for (int r = 0; r < MR; r++) {
        int64_t ri = i + (r < rows ? r : 0); /* a spare row repeats row i */
        ap[r] = g->a + ri * g->lda + p0;
        rs[r] = g->epi.row_scale ? g->epi.row_scale[ri] : 1.0f;
        rb[r] = g->epi.row_bias ? g->epi.row_bias[ri] : 0.0f;
      }
      for (int64_t q = 0; q < panels; q++) {
        int64_t j = j0 + q * NR, cols = nc - q * NR < NR ? nc - q * NR : NR;
        const float *bp = pack + q * kc * NR;
        float *c = g->c + i * g->ldc + j;
        ns_gemm_tile_epi e = {g->epi.row_scale ? rs : NULL, g->epi.row_bias ? rb : NULL,
                              g->epi.col_bias ? g->epi.col_bias + j : NULL,
                              g->epi.residual ? g->epi.residual + i * g->ldc + j : NULL,
                              g->epi.relu};
        const ns_gemm_tile_epi *ep = last ? &e : NULL;
        if (rows == MR && cols == NR) {
          g->kern(kc, ap, bp, c, g->ldc, p0 > 0, ep);
          continue;
        }
        /* Edge tile through a full one (its column bias and residual too). */
        float t[MR * NR], cb[NR], res[MR * NR];
        memset(t, 0, sizeof t);
        if (p0 > 0)
          for (int64_t r = 0; r < rows; r++) memcpy(t + r * NR, c + r * g->ldc, (size_t)cols * 4);
        if (last && e.cb) {
          memset(cb, 0, sizeof cb);
          memcpy(cb, e.cb, (size_t)cols * sizeof(float));
          e.cb = cb;
        }
        if (last && e.res) {
          memset(res, 0, sizeof res);
          for (int64_t r = 0; r < rows; r++)
            memcpy(res + r * NR, e.res + r * g->ldc, (size_t)cols * sizeof(float));
          e.res = res;
        }
        ns_gemm_ukernel kern = cols <= NR / 2 && g->half ? g->half : g->kern;
        kern(kc, ap, bp, t, NR, p0 > 0, ep);
        for (int64_t r = 0; r < rows; r++) memcpy(c + r * g->ldc, t + r * NR, (size_t)cols * 4);
      }
    }
    p0 += kc;
  } while (p0 < g->k);
}

static void gemm_plan_init(gemm_plan *g, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, int trans_b, float *c,
                       int64_t ldc, const ns_gemm_epi *epi, int threads) {
  gemm_plan p = {m, n, k, lda, ldb, ldc, a, b, c, trans_b, {NULL, NULL, 0, NULL, NULL}, ukernel_c,
                 NULL, n <= NC / 2 ? KC_NARROW : KC, 0, 0, 0};
  if (ns_gemm_avx2()) p.kern = ns_gemm_ukernel_avx2, p.half = ns_gemm_ukernel_half_avx2;
  if (epi) p.epi = *epi;
  if (m > 0 && n > 0) {
    /* Tasks: column blocks of NC times row parts; enough of them for the
     * threads to share out dynamically (a busy core then costs less). */
    int nt = ns_kernel_threads(threads);
    p.row_blocks = (m + MR - 1) / MR;
    int64_t nb = (n + NC - 1) / NC;
    p.parts = nb >= 2 * nt ? 1 : (2 * nt + nb - 1) / nb;
    if (p.parts > p.row_blocks) p.parts = p.row_blocks;
    p.tasks = nb * p.parts;
  }
  *g = p;
}

static void gemm_plan_run(const gemm_plan *g, int64_t t, float *pack) {
  int64_t jb = t / g->parts, part = t % g->parts;
  int64_t i0 = g->row_blocks * part / g->parts * MR;
  int64_t i1 = g->row_blocks * (part + 1) / g->parts * MR;
  if (i1 > g->m) i1 = g->m;
  int64_t j0 = jb * NC, nc = g->n - j0 < NC ? g->n - j0 : NC;
  if (i0 < i1) gemm_task(g, i0, i1, j0, nc, pack);
}

/* One column (a convolution over a 1x1 map, a classifier cast to
 * convolution): row i of C is the dot product of row i of A with the
 * column, 4 rows at a time, then the epilogue.  Through the tiles the
 * column would be packed 16 wide and computed 16 times. */
static void gemm_column(int64_t m, int64_t k, const float *a, int64_t lda, const float *b,
                        float *c, int64_t ldc, const ns_gemm_epi *epi, int threads) {
  ns_gemm_dot_kernel dot = ns_gemm_avx2() ? ns_gemm_dot_avx2 : dot_c;
  int64_t blocks = (m + 3) / 4;
  int nt = ns_kernel_threads(threads);
  if ((double)m * k < 2e5) nt = 1;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t ib = 0; ib < blocks; ib++) {
    int64_t i0 = ib * 4, rows = m - i0 < 4 ? m - i0 : 4;
    const float *ap[4], *xp[2] = {b, b};
    for (int r = 0; r < 4; r++) ap[r] = a + (i0 + (r < rows ? r : 0)) * lda;
    float out[8];
    dot(k, ap, xp, out);
    for (int64_t r = 0; r < rows; r++) {
      int64_t i = i0 + r;
      float v = out[2 * r];
      if (epi && epi->row_scale) v *= epi->row_scale[i];
      if (epi && epi->row_bias) v += epi->row_bias[i];
      if (epi && epi->col_bias) v += epi->col_bias[0];
      if (epi && epi->residual) v += epi->residual[i * ldc];
      if (epi && epi->relu) v = v < 0.0f ? 0.0f : v;
      c[i * ldc] = v;
    }
  }
}

void ns_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
             int64_t ldb, int trans_b, float *c, int64_t ldc, const ns_gemm_epi *epi,
             float *scratch, int threads) {
  if (n == 1 && (trans_b || ldb == 1) && m > 0) { /* the column is contiguous */
    gemm_column(m, k, a, lda, b, c, ldc, epi, threads);
    return;
  }
  gemm_plan g;
  gemm_plan_init(&g, m, n, k, a, lda, b, ldb, trans_b, c, ldc, epi, threads);
  if (g.tasks == 0) return;
  int nt = ns_kernel_threads(threads);
  /* Small jobs are not worth waking threads for. */
  if ((double)m * n * k < 2e5) nt = 1;
  if (nt > g.tasks) nt = (int)g.tasks;
#pragma omp parallel num_threads(nt)
  {
    float *pack = scratch + (int64_t)omp_get_thread_num() * KC * NC;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < g.tasks; t++) gemm_plan_run(&g, t, pack);
  }
}

void ns_gemm_rows(int64_t m, int64_t n, int64_t k, const float *x, int64_t ldx, const float *w,
                  int64_t ldw, float *y, int64_t ldy, const float *col_bias, int relu,
                  int threads) {
  if (m <= 0 || n <= 0) return;
  ns_gemm_dot_kernel dot = ns_gemm_avx2() ? ns_gemm_dot_avx2 : dot_c;
  int64_t blocks = (n + 3) / 4;
  int nt = ns_kernel_threads(threads);
  if ((double)m * n * k < 2e5) nt = 1;
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
  for (int64_t jb = 0; jb < blocks; jb++) {
    int64_t j0 = jb * 4, cols = n - j0 < 4 ? n - j0 : 4;
    const float *wp[4];
    for (int r = 0; r < 4; r++) wp[r] = w + (j0 + (r < cols ? r : 0)) * ldw;
    for (int64_t i = 0; i < m; i += 2) {
      const float *xp[2] = {x + i * ldx, x + (i + 1 < m ? i + 1 : i) * ldx};
      float out[8];
      dot(k, wp, xp, out);
      for (int64_t r = 0; r < cols; r++)
        for (int64_t ii = 0; ii < 2 && i + ii < m; ii++) {
          float v = out[2 * r + ii];
          if (col_bias) v += col_bias[j0 + r];
          if (relu) v = v < 0.0f ? 0.0f : v;
          y[(i + ii) * ldy + j0 + r] = v;
        }
    }
  }
}
