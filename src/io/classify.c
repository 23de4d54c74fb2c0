/* A classifier's output read as classify.py and the FCN notebook read it:
 * the argmax and its probability at every cell of the map, the top k
 * classes per cell, and the top k of the probabilities averaged over the
 * map.  Kept out of the CLI so a C program gets the same answer. */
#include <string.h>

#include "core/ctx.h"

typedef struct prob_map {
  const float *prob; /* classes x cells */
  int64_t cells;
} prob_map;

static float prob_at(const prob_map *m, int cls, int64_t cell) {
  return m->prob[(int64_t)cls * m->cells + cell];
}

/* The value that orders class c: its probability at the cell, or its mean
 * when means is given. */
static double score(const prob_map *m, int64_t cell, const double *means, int c) {
  return means ? means[c] : prob_at(m, c, cell);
}

/* Top k of n classes by score: insertion into a short sorted list; a class
 * moves ahead only of strictly smaller scores, so ties keep the lower id
 * first. */
static void top_k(const prob_map *m, int n, int k, int64_t cell, const double *means, int *out) {
  int have = 0;
  for (int c = 0; c < n; c++) {
    double v = score(m, cell, means, c);
    if (have == k && !(v > score(m, cell, means, out[k - 1]))) continue;
    int pos = have < k ? have++ : k - 1;
    while (pos > 0 && v > score(m, cell, means, out[pos - 1])) {
      out[pos] = out[pos - 1];
      pos--;
    }
    out[pos] = c;
  }
}

void ns_classification_free(ns_ctx *ctx, ns_classification *c) {
  if (!c) return;
  ns_free(ctx, c->argmax);
  ns_free(ctx, c->confidence);
  ns_free(ctx, c->top);
  ns_free(ctx, c->mean);
  ns_free(ctx, c->top_mean);
  memset(c, 0, sizeof *c);
}

static ns_status check_args(ns_ctx *ctx, const float *prob, int classes, int map_h, int map_w,
                            int top, int class_k) {
  if (!prob || classes < 1 || map_h < 1 || map_w < 1 || top < 1)
    return ns_fail(ctx, NS_ERR_USAGE,
                   "ns_classify: need probabilities, classes, map size and top of at least 1");
  if (class_k >= classes)
    return ns_fail(ctx, NS_ERR_USAGE, "ns_classify: class %d of %d classes", class_k, classes);
  return NS_OK;
}

static ns_status alloc_result(ns_ctx *ctx, ns_classification *r, int64_t cells) {
  r->argmax = ns_calloc(ctx, (size_t)cells, sizeof *r->argmax);
  r->confidence = ns_calloc(ctx, (size_t)cells, sizeof *r->confidence);
  r->top = ns_calloc(ctx, (size_t)cells, (size_t)r->k * sizeof *r->top);
  r->mean = ns_calloc(ctx, (size_t)r->classes, sizeof *r->mean);
  r->top_mean = ns_calloc(ctx, (size_t)r->k, sizeof *r->top_mean);
  if (r->argmax && r->confidence && r->top && r->mean && r->top_mean) return NS_OK;
  ns_classification_free(ctx, r);
  return ctx->status;
}

ns_status ns_classify(ns_ctx *ctx, const float *prob, int classes, int map_h, int map_w, int top,
                      int class_k, ns_classification *out) {
  memset(out, 0, sizeof *out);
  if (check_args(ctx, prob, classes, map_h, map_w, top, class_k) != NS_OK) return ctx->status;
  ns_classification r = {.classes = classes, .map_h = map_h, .map_w = map_w};
  r.k = top < classes ? top : classes;
  prob_map m = {prob, (int64_t)map_h * map_w};
  if (alloc_result(ctx, &r, m.cells) != NS_OK) return ctx->status;
  for (int64_t cell = 0; cell < m.cells; cell++) {
    int best = 0;
    for (int c = 0; c < classes; c++) {
      float p = prob_at(&m, c, cell);
      r.mean[c] += p / m.cells;
      if (p > prob_at(&m, best, cell)) best = c;
    }
    r.argmax[cell] = best;
    r.confidence[cell] = prob_at(&m, class_k >= 0 ? class_k : best, cell);
    top_k(&m, classes, r.k, cell, NULL, r.top + cell * r.k);
  }
  top_k(&m, classes, r.k, 0, r.mean, r.top_mean);
  *out = r;
  return NS_OK;
}
