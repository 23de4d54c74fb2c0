/* The SSD fork's layers (weiliu89/caffe, branch ssd): Permute, Normalize,
 * PriorBox and DetectionOutput on cases worked by hand from the fork's
 * formulas (quoted in each layer's file), and their refusals.  The
 * larger check, two real SSD nets against OpenCV, is
 * tests/oracle/test_ssd_opencv.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/layer.h"
#include "core/rng.h"
#include "netsurg.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

static void assert_floats(const float *got, const float *want, int n, double tol) {
  for (int i = 0; i < n; i++)
    if (fabs((double)got[i] - want[i]) > tol)
      fail_msg("value %d: got %.7g, want %.7g", i, (double)got[i], (double)want[i]);
}

/* ---- Permute ---------------------------------------------------------- */

static lh_harness *permute_layer(Caffe__PermuteParameter *p, uint32_t *order, size_t n) {
  lh_harness *h = lh_create("Permute");
  assert_non_null(h);
  p->order = order;
  p->n_order = n;
  h->param.permute_param = p;
  return h;
}

/* (N, C, H, W) = (1, 2, 2, 3) with x = 0..11 to (N, H, W, C): y[h][w][c]
 * = x[c*6 + h*3 + w]; backward sends each top diff back to its source. */
static void test_permute_nchw_to_nhwc(void **state) {
  Caffe__PermuteParameter p = CAFFE__PERMUTE_PARAMETER__INIT;
  uint32_t order[4] = {0, 2, 3, 1};
  lh_harness *h = permute_layer(&p, order, 4);
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = (float)i;
  const int64_t shape[4] = {1, 2, 2, 3};
  ns_blob *b = lh_add_bottom(h, 4, shape, x);
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_int_equal(top->shape[1], 2);
  assert_int_equal(top->shape[2], 3);
  assert_int_equal(top->shape[3], 2);
  const float want[12] = {0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11};
  assert_floats(top->data, want, 12, 0);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, top), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  for (int i = 0; i < 12; i++) top->diff[i] = want[i];
  const int down[1] = {1};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  assert_floats(b->diff, x, 12, 0);
  lh_destroy(h);
}

/* A partial order: `order: 2` on (2, 3, 4) is (2, 0, 1), giving (4, 2, 3)
 * with y[k][i][j] = x[i*12 + j*4 + k]. */
static void test_permute_partial_order(void **state) {
  Caffe__PermuteParameter p = CAFFE__PERMUTE_PARAMETER__INIT;
  uint32_t order[1] = {2};
  lh_harness *h = permute_layer(&p, order, 1);
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i;
  const int64_t shape[3] = {2, 3, 4};
  assert_non_null(lh_add_bottom(h, 3, shape, x));
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_int_equal(top->shape[0], 4);
  assert_int_equal(top->shape[1], 2);
  assert_int_equal(top->shape[2], 3);
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        assert_true(top->data[k * 6 + i * 3 + j] == (float)(i * 12 + j * 4 + k));
  lh_destroy(h);
}

static void expect_permute_refused(uint32_t *order, size_t n, const char *words) {
  Caffe__PermuteParameter p = CAFFE__PERMUTE_PARAMETER__INIT;
  lh_harness *h = permute_layer(&p, order, n);
  const int64_t shape[4] = {1, 2, 2, 3};
  assert_non_null(lh_add_bottom(h, 4, shape, NULL));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  if (!strstr(ns_ctx_error(h->ctx), words) || !strstr(ns_ctx_error(h->ctx), "'t'"))
    fail_msg("message: %s", ns_ctx_error(h->ctx));
  lh_destroy(h);
}

static void test_permute_refuses_non_permutations(void **state) {
  uint32_t twice[3] = {0, 2, 2}, beyond[2] = {0, 4}, too_many[5] = {0, 1, 2, 3, 0};
  expect_permute_refused(twice, 3, "twice");
  expect_permute_refused(beyond, 2, "not an axis");
  expect_permute_refused(too_many, 5, "5 values");
}

/* ---- Normalize -------------------------------------------------------- */

/* x (1, 2, 1, 2): channel 0 = (3, 0), channel 1 = (4, 1). */
static const float norm_x[4] = {3, 0, 4, 1};

/* Per position with a scale per channel (2, 3): position 0 has norm 5,
 * position 1 norm 1, so y = (3/5*2, 0*2, 4/5*3, 1*3). */
static void test_normalize_per_position(void **state) {
  lh_harness *h = lh_create("Normalize");
  assert_non_null(h);
  Caffe__NormalizeParameter p = CAFFE__NORMALIZE_PARAMETER__INIT;
  p.has_across_spatial = p.has_channel_shared = 1;
  p.across_spatial = p.channel_shared = 0;
  h->param.norm_param = &p;
  const int64_t shape[4] = {1, 2, 1, 2};
  assert_non_null(lh_add_bottom(h, 4, shape, norm_x));
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_setup(h), NS_OK);
  assert_int_equal(h->layer.n_params, 1);
  assert_int_equal(h->layer.params[0]->count, 2);
  h->layer.params[0]->data[0] = 2;
  h->layer.params[0]->data[1] = 3;
  assert_int_equal(lh_rerun(h), NS_OK);
  const float want[4] = {1.2f, 0, 2.4f, 3};
  assert_floats(top->data, want, 4, 1e-6);
  lh_destroy(h);
}

/* Across the image, one shared scale filled with its default 1: the norm
 * is sqrt(9 + 0 + 16 + 1) = sqrt(26); eps (1e-10) is below float's
 * resolution here.  A big eps shows it is added inside the root. */
static void test_normalize_across_spatial(void **state) {
  for (int big_eps = 0; big_eps < 2; big_eps++) {
    lh_harness *h = lh_create("Normalize");
    assert_non_null(h);
    Caffe__NormalizeParameter p = CAFFE__NORMALIZE_PARAMETER__INIT;
    p.has_eps = big_eps;
    p.eps = 23; /* sqrt(26 + 23) = 7 */
    h->param.norm_param = &p;
    const int64_t shape[4] = {1, 2, 1, 2};
    assert_non_null(lh_add_bottom(h, 4, shape, norm_x));
    ns_blob *top = lh_add_top(h);
    assert_int_equal(lh_run(h), NS_OK);
    assert_int_equal(h->layer.params[0]->num_axes, 0);
    double norm = big_eps ? 7.0 : sqrt(26.0);
    float want[4];
    for (int i = 0; i < 4; i++) want[i] = (float)(norm_x[i] / norm);
    assert_floats(top->data, want, 4, 1e-6);
    lh_destroy(h);
  }
}

/* Backward against central differences of E = sum w y (h = 1e-2): the
 * bottom's gradient and the scale's, in all four forms, out of place and
 * in place (TRAIN keeps x).  A per-channel scale of 0.5, 1.5, 2.5 tells
 * the exact gradient from the fork's (which leaves it out of sum(dy x)). */
static double norm_objective(lh_harness *h, const float *x, const float *w) {
  ns_layer *l = &h->layer;
  memcpy(l->bottom[0]->data, x, (size_t)l->bottom[0]->count * sizeof(float));
  assert_int_equal(l->ops->forward(h->ctx, l), NS_OK);
  double e = 0;
  for (int64_t i = 0; i < l->top[0]->count; i++) e += (double)w[i] * l->top[0]->data[i];
  return e;
}

static void norm_gradient(int across, int shared, int in_place) {
  enum { N = 24, C = 3 };
  lh_harness *h = lh_create("Normalize");
  assert_non_null(h);
  Caffe__NormalizeParameter p = CAFFE__NORMALIZE_PARAMETER__INIT;
  p.has_across_spatial = p.has_channel_shared = 1;
  p.across_spatial = across, p.channel_shared = shared;
  h->param.norm_param = &p;
  const int64_t shape[4] = {2, C, 2, 2};
  float x[N], w[N], dx[N];
  ns_rng rng;
  ns_rng_seed(&rng, 5);
  for (int i = 0; i < N; i++) x[i] = ns_rng_uniform(&rng, -2, 2), w[i] = ns_rng_uniform(&rng, -1, 1);
  ns_blob *b = lh_add_bottom(h, 4, shape, x);
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  h->net.phase = NS_PHASE_TRAIN;
  assert_int_equal(lh_setup(h), NS_OK);
  ns_blob *scale = h->layer.params[0];
  for (int c = 0; c < scale->count; c++) scale->data[c] = 0.5f + (float)c;
  assert_int_equal(lh_rerun(h), NS_OK);
  ns_layer *l = &h->layer;
  norm_objective(h, x, w);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, l->top[0]), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, scale), NS_OK);
  memset(scale->diff, 0, (size_t)scale->count * sizeof(float));
  memcpy(l->top[0]->diff, w, sizeof w);
  const int down[1] = {1};
  assert_int_equal(l->ops->backward(h->ctx, l, down), NS_OK);
  memcpy(dx, b->diff, sizeof dx);
  const double step = 1e-2;
  for (int i = 0; i < N; i++) {
    float keep = x[i];
    x[i] = keep + (float)step;
    double ep = norm_objective(h, x, w);
    x[i] = keep - (float)step;
    double em = norm_objective(h, x, w);
    x[i] = keep;
    double num = (ep - em) / (2 * step);
    if (fabs(dx[i] - num) > 2e-3 * fmax(1.0, fabs(num)))
      fail_msg("x[%d] (across %d shared %d in place %d): analytic %.6g, numeric %.6g", i, across,
               shared, in_place, (double)dx[i], num);
  }
  for (int c = 0; c < scale->count; c++) {
    float keep = scale->data[c];
    scale->data[c] = keep + (float)step;
    double ep = norm_objective(h, x, w);
    scale->data[c] = keep - (float)step;
    double em = norm_objective(h, x, w);
    scale->data[c] = keep;
    double num = (ep - em) / (2 * step);
    if (fabs(scale->diff[c] - num) > 2e-3 * fmax(1.0, fabs(num)))
      fail_msg("scale[%d]: analytic %.6g, numeric %.6g", c, (double)scale->diff[c], num);
  }
  lh_destroy(h);
}

static void test_normalize_gradient(void **state) {
  for (int k = 0; k < 8; k++) norm_gradient(k & 1, (k >> 1) & 1, k >> 2);
}

/* ---- PriorBox --------------------------------------------------------- */

static lh_harness *prior_layer(Caffe__PriorBoxParameter *p) {
  lh_harness *h = lh_create("PriorBox");
  assert_non_null(h);
  h->param.prior_box_param = p;
  const int64_t feat[4] = {1, 1, 2, 2}, img[4] = {1, 3, 10, 10};
  assert_non_null(lh_add_bottom(h, 4, feat, NULL));
  assert_non_null(lh_add_bottom(h, 4, img, NULL));
  lh_add_top(h);
  return h;
}

/* A 2x2 map on a 10x10 image: step 5, first cell centred at (2.5, 2.5).
 * min 6, max 9, ratio 2 with flip: boxes 6x6, sqrt(54) square,
 * 6*sqrt2 x 6/sqrt2 and its transpose; normalised by 10.  Not clipped
 * (the fork's default; OpenCV's is to clip). */
static void test_prior_box_by_hand(void **state) {
  Caffe__PriorBoxParameter p = CAFFE__PRIOR_BOX_PARAMETER__INIT;
  float min = 6, max = 9, ratio = 2, var[4] = {0.1f, 0.1f, 0.2f, 0.2f};
  p.min_size = &min, p.n_min_size = 1;
  p.max_size = &max, p.n_max_size = 1;
  p.aspect_ratio = &ratio, p.n_aspect_ratio = 1;
  p.variance = var, p.n_variance = 4;
  lh_harness *h = prior_layer(&p);
  assert_int_equal(lh_run(h), NS_OK);
  ns_blob *top = h->layer.top[0];
  assert_int_equal(top->num_axes, 3);
  assert_int_equal(top->shape[1], 2);
  assert_int_equal(top->shape[2], 2 * 2 * 4 * 4);
  double half_big = sqrt(54.0) / 2, hw = 3 * sqrt(2.0), hh = 1.5 * sqrt(2.0);
  const float cell0[16] = {
      -0.05f, -0.05f, 0.55f, 0.55f,
      (float)((2.5 - half_big) / 10), (float)((2.5 - half_big) / 10),
      (float)((2.5 + half_big) / 10), (float)((2.5 + half_big) / 10),
      (float)((2.5 - hw) / 10), (float)((2.5 - hh) / 10),
      (float)((2.5 + hw) / 10), (float)((2.5 + hh) / 10),
      (float)((2.5 - hh) / 10), (float)((2.5 - hw) / 10),
      (float)((2.5 + hh) / 10), (float)((2.5 + hw) / 10)};
  assert_floats(top->data, cell0, 16, 1e-6);
  /* cell (h 1, w 0): centre (2.5, 7.5), the first box */
  const float cell2[4] = {-0.05f, 0.45f, 0.55f, 1.05f};
  assert_floats(top->data + 32, cell2, 4, 1e-6);
  for (int i = 0; i < 64; i++) assert_true(top->data[64 + i] == var[i % 4]);
  lh_destroy(h);
}

/* clip, img_size and step given, offset 0, one variance: min_size 4.7 is
 * truncated to 4 as the fork's `int min_size_` does; cell (0, 0) centred
 * at (0, 0) on a 20-pixel image with step 8, cell (1, 1) at (8, 8). */
static void test_prior_box_clip_and_steps(void **state) {
  Caffe__PriorBoxParameter p = CAFFE__PRIOR_BOX_PARAMETER__INIT;
  float min = 4.7f, var = 0.3f;
  p.min_size = &min, p.n_min_size = 1;
  p.variance = &var, p.n_variance = 1;
  p.has_clip = p.clip = 1;
  p.has_img_size = 1, p.img_size = 20;
  p.has_step = 1, p.step = 8;
  p.has_offset = 1, p.offset = 0;
  lh_harness *h = prior_layer(&p);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[16] = {0, 0, 0.1f, 0.1f,     0.3f, 0, 0.5f, 0.1f,
                          0, 0.3f, 0.1f, 0.5f,  0.3f, 0.3f, 0.5f, 0.5f};
  assert_floats(h->layer.top[0]->data, want, 16, 1e-6);
  for (int i = 16; i < 32; i++) assert_true(h->layer.top[0]->data[i] == 0.3f);
  lh_destroy(h);
}

static void expect_prior_refused(Caffe__PriorBoxParameter *p, const char *words) {
  lh_harness *h = prior_layer(p);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  if (!strstr(ns_ctx_error(h->ctx), words)) fail_msg("message: %s", ns_ctx_error(h->ctx));
  lh_destroy(h);
}

static void test_prior_box_refusals(void **state) {
  Caffe__PriorBoxParameter p = CAFFE__PRIOR_BOX_PARAMETER__INIT;
  expect_prior_refused(&p, "min_size is required");
  float min = 6, small = 5, huge = 1e30f, var[2] = {1, 1};
  p.min_size = &min, p.n_min_size = 1;
  p.max_size = &small, p.n_max_size = 1;
  expect_prior_refused(&p, "greater than min_size");
  p.n_max_size = 0;
  p.min_size = &huge;
  expect_prior_refused(&p, "min_size/max_size");
  p.min_size = &min;
  p.variance = var, p.n_variance = 2;
  expect_prior_refused(&p, "one value or four");
}

/* ---- DetectionOutput -------------------------------------------------- */

/* Four priors, zero offsets with the variance in the target (so the
 * boxes are the priors), two classes (0 background):
 *   A (0, 0, .5, .5) .9   B (.05, 0, .55, .5) .8   C (.5, .5, 1, 1) .7
 *   D (0, 0, .5, .25) .6
 * IoU(A, B) = .225 / .275 = .818, IoU(A, D) = .125 / .25 = .5, C touches
 * A at one corner only: intersection 0. */
static const float nms_priors[32] = {0, 0, .5f, .5f, .05f, 0, .55f, .5f, .5f, .5f, 1, 1,
                                     0, 0, .5f, .25f, 1, 1, 1, 1, 1, 1, 1, 1,
                                     1, 1, 1, 1, 1, 1, 1, 1};
static const float nms_conf[8] = {.1f, .9f, .2f, .8f, .3f, .7f, .4f, .6f};

static ns_blob *run_detection(lh_harness *h, Caffe__DetectionOutputParameter *p, ns_status want) {
  h->param.detection_output_param = p;
  const int64_t loc_shape[2] = {1, 16}, conf_shape[2] = {1, 8}, prior_shape[3] = {1, 2, 16};
  assert_non_null(lh_add_bottom(h, 2, loc_shape, NULL));
  assert_non_null(lh_add_bottom(h, 2, conf_shape, nms_conf));
  assert_non_null(lh_add_bottom(h, 3, prior_shape, nms_priors));
  ns_blob *top = lh_add_top(h);
  ns_status st = lh_run(h);
  if (st != want) fail_msg("status %d: %s", st, ns_ctx_error(h->ctx));
  return top;
}

static void nms_case(float nms, float threshold, int top_k, int keep_top_k, const char *want) {
  lh_harness *h = lh_create("DetectionOutput");
  assert_non_null(h);
  Caffe__DetectionOutputParameter p = CAFFE__DETECTION_OUTPUT_PARAMETER__INIT;
  Caffe__NonMaximumSuppressionParameter n = CAFFE__NON_MAXIMUM_SUPPRESSION_PARAMETER__INIT;
  p.has_num_classes = 1, p.num_classes = 2;
  p.has_variance_encoded_in_target = p.variance_encoded_in_target = 1;
  p.has_confidence_threshold = 1, p.confidence_threshold = threshold;
  p.has_keep_top_k = 1, p.keep_top_k = keep_top_k;
  n.has_nms_threshold = 1, n.nms_threshold = nms;
  n.has_top_k = top_k >= 0, n.top_k = top_k;
  p.nms_param = &n;
  ns_blob *top = run_detection(h, &p, NS_OK);
  static const float boxes[4][5] = {{0, 0, .5f, .5f, .9f}, {.05f, 0, .55f, .5f, .8f},
                                    {.5f, .5f, 1, 1, .7f}, {0, 0, .5f, .25f, .6f}};
  size_t rows = strlen(want);
  assert_int_equal(top->num_axes, 4);
  assert_int_equal(top->shape[2], rows);
  assert_int_equal(top->shape[3], 7);
  for (size_t r = 0; r < rows; r++) {
    const float *b = boxes[want[r] - 'A'];
    const float row[7] = {0, 1, b[4], b[0], b[1], b[2], b[3]};
    assert_floats(top->data + r * 7, row, 7, 1e-6);
  }
  lh_destroy(h);
}

static void test_detection_nms_survivors(void **state) {
  nms_case(0.45f, 0.0f, -1, -1, "AC");    /* B and D overlap A too much */
  nms_case(0.6f, 0.0f, -1, -1, "ACD");    /* D's 0.5 now passes; B's 0.818 not */
  nms_case(0.9f, 0.0f, -1, -1, "ABCD");   /* nothing overlaps enough */
  nms_case(0.45f, 0.75f, -1, -1, "A");    /* only A and B score above 0.75 */
  nms_case(0.9f, 0.0f, 2, -1, "AB");      /* top_k: the best two before NMS */
  nms_case(0.9f, 0.0f, 2147483647, 3, "ABC"); /* keep_top_k after NMS */
}

/* Nothing above the threshold: one row per image, image id then six -1
 * (the fork's "fake results"). */
static void test_detection_nothing_kept(void **state) {
  lh_harness *h = lh_create("DetectionOutput");
  assert_non_null(h);
  Caffe__DetectionOutputParameter p = CAFFE__DETECTION_OUTPUT_PARAMETER__INIT;
  p.has_num_classes = 1, p.num_classes = 2;
  p.has_confidence_threshold = 1, p.confidence_threshold = 0.95f;
  ns_blob *top = run_detection(h, &p, NS_OK);
  assert_int_equal(top->shape[2], 1);
  const float row[7] = {0, -1, -1, -1, -1, -1, -1};
  assert_floats(top->data, row, 7, 0);
  lh_destroy(h);
}

/* One prior (.2, .2, .6, .4), 0.4 wide and 0.2 high, variances
 * (.1, .1, .2, .2):
 *   CENTER_SIZE, t = (1, 0, 5 ln 2, 0): centre (.1*.4 + .4, .3), size
 *     (exp(ln 2) * .4, .2) = (.8, .2), so (.04, .2, .84, .4);
 *   CORNER_SIZE, t = (1, 1, -1, 0): (.2 + .1*.4, .2 + .1*.2, .6 - .2*.4, .4);
 *   CORNER, t = (1, 1, -1, 0): (.2 + .1, .2 + .1, .6 - .2, .4). */
static void test_detection_decoding(void **state) {
  const int codes[3] = {CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CENTER_SIZE,
                        CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER_SIZE,
                        CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER};
  const float t[3][4] = {{1, 0, (float)(5 * 0.69314718055994531), 0}, {1, 1, -1, 0}, {1, 1, -1, 0}};
  const float want[3][4] = {{.04f, .2f, .84f, .4f}, {.24f, .22f, .52f, .4f}, {.3f, .3f, .4f, .4f}};
  const float prior[8] = {.2f, .2f, .6f, .4f, .1f, .1f, .2f, .2f}, conf[2] = {0, 1};
  for (int k = 0; k < 3; k++) {
    lh_harness *h = lh_create("DetectionOutput");
    assert_non_null(h);
    Caffe__DetectionOutputParameter p = CAFFE__DETECTION_OUTPUT_PARAMETER__INIT;
    p.has_num_classes = 1, p.num_classes = 2;
    p.has_code_type = 1, p.code_type = codes[k];
    h->param.detection_output_param = &p;
    const int64_t loc_shape[2] = {1, 4}, conf_shape[2] = {1, 2}, prior_shape[3] = {1, 2, 4};
    assert_non_null(lh_add_bottom(h, 2, loc_shape, t[k]));
    assert_non_null(lh_add_bottom(h, 2, conf_shape, conf));
    assert_non_null(lh_add_bottom(h, 3, prior_shape, prior));
    ns_blob *top = lh_add_top(h);
    assert_int_equal(lh_run(h), NS_OK);
    assert_int_equal(top->shape[2], 1);
    assert_floats(top->data + 3, want[k], 4, 1e-6);
    lh_destroy(h);
  }
}

static void test_detection_refusals(void **state) {
  lh_harness *h = lh_create("DetectionOutput");
  assert_non_null(h);
  Caffe__DetectionOutputParameter p = CAFFE__DETECTION_OUTPUT_PARAMETER__INIT;
  run_detection(h, &p, NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "num_classes is required"));
  lh_destroy(h);
  h = lh_create("DetectionOutput");
  assert_non_null(h);
  p.has_num_classes = 1, p.num_classes = 3; /* 4 priors x 3 classes != 8 scores */
  run_detection(h, &p, NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "3 classes need 12"));
  lh_destroy(h);
}

/* The layers from text through the public API: a PriorBox on a 2x2 map,
 * read from its prototxt fields. */
static void test_prior_box_in_a_net(void **state) {
  static const char *text =
      "input: 'feat' input_shape { dim: 1 dim: 1 dim: 2 dim: 2 }\n"
      "input: 'img' input_shape { dim: 1 dim: 3 dim: 10 dim: 10 }\n"
      "layer { name: 'pb' type: 'PriorBox' bottom: 'feat' bottom: 'img' top: 'pb'\n"
      "  prior_box_param { min_size: 6 clip: true variance: 0.1 } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  ns_tensor out = ns_net_blob(net, ns_net_find_blob(net, "pb"));
  assert_int_equal(out.count, 32);
  const float want[4] = {0, 0, 0.55f, 0.55f}; /* -0.05 clipped */
  assert_floats(out.data, want, 4, 1e-6);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_permute_nchw_to_nhwc),
      cmocka_unit_test(test_permute_partial_order),
      cmocka_unit_test(test_permute_refuses_non_permutations),
      cmocka_unit_test(test_normalize_per_position),
      cmocka_unit_test(test_normalize_across_spatial),
      cmocka_unit_test(test_normalize_gradient),
      cmocka_unit_test(test_prior_box_by_hand),
      cmocka_unit_test(test_prior_box_clip_and_steps),
      cmocka_unit_test(test_prior_box_refusals),
      cmocka_unit_test(test_detection_nms_survivors),
      cmocka_unit_test(test_detection_nothing_kept),
      cmocka_unit_test(test_detection_decoding),
      cmocka_unit_test(test_detection_refusals),
      cmocka_unit_test(test_prior_box_in_a_net),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
