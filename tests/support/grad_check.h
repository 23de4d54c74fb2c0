/* One layer's backward against central differences, as Caffe's
 * GradientChecker: the objective is E = sum_t sum_i w_ti top_t[i] with
 * fixed random w (so the top diffs are w), and every bottom and param
 * gradient is compared with (E(x + h) - E(x - h)) / 2h, h = 1e-2.  A value
 * passes when |analytic - numeric| <= tol * max(0.1, |analytic|, |numeric|)
 * (tol 1e-3 unless the options say otherwise).  Used by test_backward.c
 * and the layer files' tests. */
#ifndef NS_TESTS_GRAD_CHECK_H
#define NS_TESTS_GRAD_CHECK_H

#include "layer_harness.h"

typedef struct gc_opts {
  double tol;            /* 0: 1e-3 */
  unsigned skip_bottoms; /* bit i: do not check (nor propagate to) bottom i */
  int skip_params;
  int train;      /* run the layer in phase TRAIN */
  int reseed;     /* reseed the net's generator before each forward (Dropout) */
  int setup_done; /* the test ran setup (and set params): reshape + forward only */
} gc_opts;

/* Runs setup/reshape/forward (or reshape/forward when setup_done), then
 * backward, and fails the cmocka test on the first gradient that
 * disagrees.  Param diffs start at 0.5 (backward must add to them), bottom
 * diffs at 7 (it must overwrite them). */
void grad_check(lh_harness *h, const gc_opts *opts);

#endif
