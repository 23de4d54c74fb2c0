#include "kernels/conv_plan.h"

#include <stdio.h>
#include <string.h>

#include "core/blob.h"
#include "kernels/depthwise.h"
#include "kernels/im2col.h"
#include "kernels/parallel.h"
#include "kernels/pgemm.h"
#include "kernels/winograd.h"

/* Several items on several threads: each thread convolves whole items
 * on its own (its own column buffer), so the threads meet once per layer
 * instead of twice per item: on a busy machine every meeting can wait a
 * time slice for a descheduled thread. */
static int by_item(int64_t num, int threads) {
  int nt = ns_kernel_threads(threads);
  return nt > 1 && num >= nt;
}

/* Output rows per band when an item's columns would pass BAND_FLOATS (1
 * MiB): conv1 of ResNet or the SSD (7x7 stride 2 over 3 channels) has
 * 3.3 M floats of columns, written and read back through memory; a band
 * of them stays in L2 between its im2col and its GEMM, and the bands
 * share out over the threads in one parallel region.  A band keeps more
 * than NC / 2 columns when the item has (so the GEMM cuts k as it would
 * for the whole item: the same bits).  The choice depends on the shape
 * alone.  0: no bands. */
enum { BAND_FLOATS = 1 << 18 };

static int64_t band_rows(const ns_conv2d_shape *s) {
  int64_t col = ns_conv2d_col_count(s);
  if (ns_conv2d_is_1x1(s) || col <= BAND_FLOATS || s->out_h <= 0 || s->out_w <= 0) return 0;
  int64_t k = col / (s->out_h * s->out_w);
  int64_t rows = BAND_FLOATS / (k * s->out_w);
  if (rows < 1) rows = 1;
  int64_t min_cols = NS_GEMM_NC / 2 + 1;
  if (rows * s->out_w < min_cols) rows = (min_cols + s->out_w - 1) / s->out_w;
  return rows < s->out_h ? rows : 0;
}

static int64_t band_scratch(const ns_conv_plan *p) {
  int64_t k = ns_conv2d_col_count(&p->shape) / (p->shape.out_h * p->shape.out_w);
  int64_t one = (k * p->band_rows * p->shape.out_w + 15) / 16 * 16 + ns_gemm_scratch_floats(1);
  return one * ns_kernel_threads(p->threads);
}

static int64_t gemm_scratch(const ns_conv_plan *p) {
  if (p->algo == NS_CONV_GEMM) return ns_conv2d_scratch_count(&p->shape, p->threads);
  int64_t one = ns_conv2d_scratch_count(&p->shape, 1);
  return one < 0 ? -1 : one * ns_kernel_threads(p->threads);
}

void ns_conv_plan_choose(ns_conv_plan *p, const ns_conv2d_shape *s, int64_t num, int threads,
                         int cache) {
  p->shape = *s;
  p->num = num;
  p->threads = threads;
  p->cached = 0;
  p->wino_tile = p->space_to_depth = 0;
  p->band_rows = 0;
  if (ns_depthwise_applies(s)) { /* no columns, no packing: at most a padded plane */
    p->algo = NS_CONV_DEPTHWISE;
    p->scratch_count = ns_depthwise_scratch_count(s, threads) + 16;
    return;
  }
  /* With the weights transformed beforehand Winograd pays from fewer
   * outputs (ns_winograd_worth). */
  if (ns_winograd_worth(s, num, cache)) {
    p->algo = NS_CONV_WINOGRAD;
    p->cached = cache;
    p->wino_tile = ns_winograd_tile(s);
    p->space_to_depth = s->stride_h > 1 || s->stride_w > 1;
    p->scratch_count = ns_winograd_scratch_count(s, num, threads);
    return;
  }
  if ((p->band_rows = band_rows(s)) > 0) {
    p->algo = NS_CONV_GEMM_BY_ROWS;
    p->scratch_count = band_scratch(p);
    return;
  }
  p->algo = by_item(num, threads) ? NS_CONV_GEMM_BY_ITEM : NS_CONV_GEMM;
  p->scratch_count = gemm_scratch(p);
}

ns_conv_plan ns_conv_plan_uncached(const ns_conv_plan *p) {
  ns_conv_plan q;
  memset(&q, 0, sizeof q);
  ns_conv_plan_choose(&q, &p->shape, p->num, p->threads, 0);
  return q;
}

/* The cache's buffers; 0 when memory ran short (the error is cleared:
 * the forward runs without them). */
static int cache_buffers(ns_ctx *ctx, ns_conv_plan *p, int64_t w_count, int exposed) {
  ns_conv_weight_cache *c = &p->cache;
  if (!c->u && !(c->u = ns_floats_alloc(ctx, ns_winograd_weights_count(&p->shape)))) {
    ns_ctx_clear_error(ctx);
    return 0;
  }
  if (exposed && !c->w_copy) {
    if (!(c->w_copy = ns_floats_alloc(ctx, w_count))) {
      ns_ctx_clear_error(ctx);
      return 0;
    }
    c->copied = 0;
  }
  return 1;
}

const float *ns_conv_plan_weights(ns_ctx *ctx, ns_conv_plan *p, const float *w, int64_t w_count,
                                  uint64_t epoch, int exposed) {
  ns_conv_weight_cache *c = &p->cache;
  if (!p->cached || !cache_buffers(ctx, p, w_count, exposed)) return NULL;
  size_t bytes = (size_t)w_count * sizeof(float);
  int stale = !c->valid || c->epoch != epoch ||
              (exposed && (!c->copied || memcmp(c->w_copy, w, bytes) != 0));
  if (stale) {
    ns_winograd_weights(&p->shape, w, c->u, p->threads);
    if (exposed) {
      memcpy(c->w_copy, w, bytes);
      c->copied = 1;
    }
    c->epoch = epoch;
    c->valid = 1;
  }
  return c->u;
}

/* epi for item n: its residual moved to the item (NULL stays NULL). */
static ns_conv_epi item_epi(const ns_conv_epi *epi, int64_t n, int64_t out_item) {
  ns_conv_epi e = {NULL, NULL, NULL, 0};
  if (epi) e = *epi;
  if (e.residual) e.residual += n * out_item;
  return e;
}

static void run_by_item(const ns_conv_plan *p, const float *w, const ns_conv_epi *epi,
                        const float *x, float *y, float *scratch) {
  const ns_conv2d_shape *s = &p->shape;
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w;
  int64_t one = ns_conv2d_scratch_count(s, 1);
#pragma omp parallel num_threads(ns_kernel_threads(p->threads))
  {
    float *mine = scratch + (int64_t)omp_get_thread_num() * one;
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p->num; n++) {
      ns_conv_epi e = item_epi(epi, n, out_item);
      ns_conv2d(s, w, &e, x + n * in_item, y + n * out_item, mine, 1);
    }
  }
}

/* Bands of output rows as tasks over the items: each thread writes the
 * columns of its band into its own buffer and multiplies them on its own
 * (ns_conv2d_from_columns on a band: the same per-group products). */
static void run_by_rows(const ns_conv_plan *p, const float *w, const ns_conv_epi *epi,
                        const float *x, float *y, float *scratch) {
  const ns_conv2d_shape *s = &p->shape;
  ns_im2col_geom g = ns_conv2d_im2col_geom(s);
  int64_t in_item = s->channels * s->height * s->width, spatial = s->out_h * s->out_w;
  int64_t out_item = s->num_output * spatial, og = s->num_output / s->group;
  int64_t kdim = s->channels / s->group * s->kernel_h * s->kernel_w;
  int64_t bands = (s->out_h + p->band_rows - 1) / p->band_rows, tasks = p->num * bands;
  int64_t col_floats = (kdim * s->group * p->band_rows * s->out_w + 15) / 16 * 16;
  int64_t one = col_floats + ns_gemm_scratch_floats(1);
  int nt = ns_kernel_threads(p->threads);
  if (nt > tasks) nt = (int)tasks;
#pragma omp parallel num_threads(nt)
  {
    float *col = scratch + (int64_t)omp_get_thread_num() * one, *pack = col + col_floats;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      int64_t n = t / bands, y0 = t % bands * p->band_rows;
      int64_t y1 = y0 + p->band_rows < s->out_h ? y0 + p->band_rows : s->out_h;
      int64_t cols = (y1 - y0) * s->out_w;
      ns_im2col_rows(&g, x + n * in_item, y0, y1, col);
      for (int64_t gr = 0; gr < s->group; gr++) {
        int64_t at = n * out_item + gr * og * spatial + y0 * s->out_w;
        ns_gemm_epi ge = ns_conv2d_group_epi(epi, gr * og, at);
        ns_gemm(og, cols, kdim, w + gr * og * kdim, kdim, col + gr * kdim * cols, cols, 0, y + at,
                spatial, &ge, pack, 1);
      }
    }
  }
}

/* y += r, then max(0, .) when relu (NaN passes), over n floats in
 * blocks shared out among the threads: the residual of the kernels whose
 * epilogue has none (Winograd, depthwise). */
static void add_residual(float *y, const float *r, int64_t n, int relu, int threads) {
  enum { BLOCK = 4096 };
  int64_t blocks = (n + BLOCK - 1) / BLOCK;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && blocks > 1)
  for (int64_t k = 0; k < blocks; k++)
    for (int64_t j = k * BLOCK; j < n && j < (k + 1) * BLOCK; j++) {
      float v = y[j] + r[j];
      y[j] = relu && v < 0.0f ? 0.0f : v;
    }
}

void ns_conv_plan_run(const ns_conv_plan *p, const float *w, const float *u,
                      const ns_conv_epi *epi, const float *x, float *y, float *scratch) {
  const ns_conv2d_shape *s = &p->shape;
  if (epi && epi->residual && (p->algo == NS_CONV_DEPTHWISE || p->algo == NS_CONV_WINOGRAD)) {
    ns_conv_epi first = *epi; /* the residual, then the ReLU, after the kernel */
    first.residual = NULL, first.relu = 0;
    ns_conv_plan_run(p, w, u, &first, x, y, scratch);
    add_residual(y, epi->residual, p->num * s->num_output * s->out_h * s->out_w, epi->relu,
                 p->threads);
    return;
  }
  if (p->algo == NS_CONV_DEPTHWISE) {
    ns_depthwise_conv(s, p->num, w, epi ? epi->bias : NULL, x, y, epi && epi->relu, scratch,
                      p->threads);
  } else if (p->algo == NS_CONV_WINOGRAD) {
    ns_winograd_conv(s, p->num, w, u, epi, x, y, scratch, p->threads);
  } else if (p->algo == NS_CONV_GEMM_BY_ITEM) {
    run_by_item(p, w, epi, x, y, scratch);
  } else if (p->algo == NS_CONV_GEMM_BY_ROWS) {
    run_by_rows(p, w, epi, x, y, scratch);
  } else {
    int64_t in_item = s->channels * s->height * s->width;
    int64_t out_item = s->num_output * s->out_h * s->out_w;
    for (int64_t n = 0; n < p->num; n++)
      {
        ns_conv_epi e = item_epi(epi, n, out_item);
        ns_conv2d(s, w, &e, x + n * in_item, y + n * out_item, scratch, p->threads);
      }
  }
}

const char *ns_conv_plan_name(const ns_conv_plan *p, char *buf, size_t size) {
  if (p->algo == NS_CONV_GEMM) {
    snprintf(buf, size, "GEMM");
  } else if (p->algo == NS_CONV_GEMM_BY_ITEM) {
    snprintf(buf, size, "GEMM by item");
  } else if (p->algo == NS_CONV_GEMM_BY_ROWS) {
    snprintf(buf, size, "GEMM by rows");
  } else if (p->algo == NS_CONV_DEPTHWISE) {
    snprintf(buf, size, "depthwise");
  } else {
    int m = p->wino_tile, r = m == 4 ? 3 : 5;
    snprintf(buf, size, "Winograd F(%dx%d, %dx%d)%s", m, m, r, r,
             p->space_to_depth ? ", space-to-depth" : "");
  }
  return buf;
}

void ns_conv_plan_free(ns_ctx *ctx, ns_conv_plan *p) {
  ns_floats_free(ctx, p->cache.u);
  ns_floats_free(ctx, p->cache.w_copy);
  p->cache.u = p->cache.w_copy = NULL;
}

/* The plain kernels' batch entry: a plan without kept weights, unless
 * the caller brings them. */
int64_t ns_conv2d_batch_scratch_count(const ns_conv2d_shape *s, int64_t num, int have_u,
                                      int threads) {
  ns_conv_plan p;
  memset(&p, 0, sizeof p);
  ns_conv_plan_choose(&p, s, num, threads, have_u);
  return p.scratch_count;
}

void ns_conv2d_batch(const ns_conv2d_shape *s, int64_t num, const float *w, const float *wino_u,
                     const ns_conv_epi *epi, const float *x, float *y, float *scratch,
                     int threads) {
  ns_conv_plan p;
  memset(&p, 0, sizeof p);
  ns_conv_plan_choose(&p, s, num, threads, wino_u != NULL);
  ns_conv_plan_run(&p, w, wino_u, epi, x, y, scratch);
}
