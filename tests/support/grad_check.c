/* The layer gradient checker (see grad_check.h). */
#include "grad_check.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"

#define STEP 1e-2
#define TOL 1e-3
#define SCALE_FLOOR 0.1

typedef struct gc {
  lh_harness *h;
  const gc_opts *o;
  float *orig[LH_MAX_IO]; /* the bottoms' inputs (restored before each forward: in place) */
  float *w[LH_MAX_IO];
} gc;

static double objective(gc *g) {
  ns_layer *l = &g->h->layer;
  for (int i = 0; i < l->n_bottom; i++)
    memcpy(l->bottom[i]->data, g->orig[i], (size_t)l->bottom[i]->count * sizeof(float));
  if (g->o->reseed) ns_rng_seed(&g->h->net.rng, 99);
  if (l->ops->forward(g->h->ctx, l) != NS_OK) fail_msg("forward: %s", ns_ctx_error(g->h->ctx));
  double e = 0;
  for (int t = 0; t < l->n_top; t++)
    for (int64_t i = 0; i < l->top[t]->count; i++) e += (double)g->w[t][i] * l->top[t]->data[i];
  return e;
}

/* Checks one perturbable array: analytic gradient `ana` of `x`. */
static void check_array(gc *g, const char *what, int index, float *x, int64_t n, const float *ana) {
  double tol = g->o->tol;
  for (int64_t i = 0; i < n; i++) {
    float keep = x[i];
    x[i] = keep + (float)STEP;
    double ep = objective(g);
    x[i] = keep - (float)STEP;
    double em = objective(g);
    x[i] = keep;
    double num = (ep - em) / (2 * STEP);
    if (!(fabs(ana[i] - num) <= tol * fmax(SCALE_FLOOR, fmax(fabs(ana[i]), fabs(num)))))
      fail_msg("%s %d element %lld: analytic %.6g, numeric %.6g", what, index, (long long)i,
               (double)ana[i], num);
  }
}

static float *copy_floats(const float *src, int64_t n) {
  float *p = malloc((size_t)(n + 1) * sizeof(float));
  assert_non_null(p);
  if (n) memcpy(p, src, (size_t)n * sizeof(float));
  return p;
}

void grad_check(lh_harness *h, const gc_opts *opts) {
  gc_opts o = opts ? *opts : (gc_opts){0};
  if (o.tol == 0) o.tol = TOL;
  if (o.train) h->net.phase = NS_PHASE_TRAIN;
  ns_layer *l = &h->layer;
  ns_ctx *ctx = h->ctx;
  if (o.reseed) ns_rng_seed(&h->net.rng, 99);
  gc g = {h, &o, {0}, {0}};
  /* Inputs saved before any forward: in place, forward overwrites them. */
  for (int i = 0; i < l->n_bottom; i++)
    g.orig[i] = copy_floats(l->bottom[i]->data, l->bottom[i]->count);
  if ((o.setup_done ? lh_rerun(h) : lh_run(h)) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_non_null(l->ops->backward);
  ns_rng wr;
  ns_rng_seed(&wr, 7);
  for (int t = 0; t < l->n_top; t++) {
    g.w[t] = malloc((size_t)(l->top[t]->count + 1) * sizeof(float));
    assert_non_null(g.w[t]);
    for (int64_t i = 0; i < l->top[t]->count; i++) g.w[t][i] = ns_rng_uniform(&wr, -1, 1);
  }
  objective(&g);
  int down[LH_MAX_IO] = {0};
  for (int i = 0; i < l->n_bottom; i++) {
    down[i] = !(o.skip_bottoms >> i & 1);
    assert_int_equal(ns_blob_ensure_diff(ctx, l->bottom[i]), NS_OK);
    for (int64_t k = 0; k < l->bottom[i]->count; k++) l->bottom[i]->diff[k] = 7;
  }
  for (int t = 0; t < l->n_top; t++) {
    assert_int_equal(ns_blob_ensure_diff(ctx, l->top[t]), NS_OK);
    memcpy(l->top[t]->diff, g.w[t], (size_t)l->top[t]->count * sizeof(float));
  }
  for (int p = 0; p < l->n_params; p++) {
    assert_int_equal(ns_blob_ensure_diff(ctx, l->params[p]), NS_OK);
    for (int64_t i = 0; i < l->params[p]->count; i++) l->params[p]->diff[i] = 0.5f;
  }
  if (l->ops->backward(ctx, l, down) != NS_OK) fail_msg("backward: %s", ns_ctx_error(ctx));
  float *ana[LH_MAX_IO] = {0};
  for (int i = 0; i < l->n_bottom; i++)
    if (down[i]) ana[i] = copy_floats(l->bottom[i]->diff, l->bottom[i]->count);
  int n_params = o.skip_params ? 0 : l->n_params;
  float **pana = calloc((size_t)n_params + 1, sizeof *pana);
  assert_non_null(pana);
  for (int p = 0; p < n_params; p++) {
    pana[p] = copy_floats(l->params[p]->diff, l->params[p]->count);
    for (int64_t i = 0; i < l->params[p]->count; i++) pana[p][i] -= 0.5f;
  }
  for (int i = 0; i < l->n_bottom; i++)
    if (down[i]) check_array(&g, "bottom", i, g.orig[i], l->bottom[i]->count, ana[i]);
  for (int p = 0; p < n_params; p++)
    check_array(&g, "param", p, l->params[p]->data, l->params[p]->count, pana[p]);
  for (int i = 0; i < LH_MAX_IO; i++) {
    free(g.orig[i]);
    free(g.w[i]);
    free(ana[i]);
  }
  for (int p = 0; p < n_params; p++) free(pana[p]);
  free(pana);
}
