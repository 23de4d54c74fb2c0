/* The rest of BVLC Caffe's compute layers (Threshold, Tile, Reduction,
 * MVN, Swish, Parameter, Embed, the four losses InfogainLoss, HingeLoss,
 * ContrastiveLoss, MultinomialLogisticLoss, Filter, BatchReindex, SPP,
 * Im2col), through the layer checklist of docs/ARCHITECTURE.md.
 * Forward values are worked by hand from the formula of each layer's
 * Caffe .cpp (the working is in the comments; constants such as
 * ln 2 or 1/sqrt(1.25) are plain math); backward is compared with
 * central differences of E = sum_t sum_i w_ti top_t[i] (fixed random w,
 * h = 1e-2, |analytic - numeric| <= tol max(0.1, |analytic|, |numeric|),
 * tol 1e-3 unless a case says why not), as tests/test_backward.c does,
 * with inputs kept away from each layer's kinks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/layer.h"
#include "netsurg.h"
#include "support/grad_check.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

static ns_rng data_rng;

static float urand(float lo, float hi) { return ns_rng_uniform(&data_rng, lo, hi); }

static lh_harness *layer(const char *type) {
  lh_harness *h = lh_create(type);
  if (!h) fail_msg("layer type %s is not registered", type);
  return h;
}

static ns_blob *bottom(lh_harness *h, int n, const int64_t *shape, const float *data) {
  ns_blob *b = lh_add_bottom(h, n, shape, data);
  assert_non_null(b);
  return b;
}

/* Uniform in +-[gap, 1] (away from a kink at 0). */
static ns_blob *bottom_random(lh_harness *h, int n, const int64_t *shape, float gap) {
  ns_blob *b = bottom(h, n, shape, NULL);
  for (int64_t i = 0; i < b->count; i++) {
    float v = urand(gap, 1);
    b->data[i] = urand(0, 1) < 0.5f ? -v : v;
  }
  return b;
}

static void run_ok(lh_harness *h) {
  if (lh_run(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
}

static void assert_shape(const ns_blob *b, int n, const int64_t *shape) {
  assert_int_equal(b->num_axes, n);
  for (int i = 0; i < n; i++) assert_int_equal(b->shape[i], shape[i]);
}

/* |got - want| <= tol, so that an infinity or NaN fails (cmocka's
 * assert_float_equal is relative and lets inf equal anything large). */
static void assert_close(double got, double want, double tol) {
  if (!(fabs(got - want) <= tol)) fail_msg("got %.9g, want %.9g (tol %g)", got, want, tol);
}

static void assert_floats(const float *got, const float *want, int64_t n, double tol) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabs((double)got[i] - want[i]) <= tol))
      fail_msg("element %lld: got %.7g, want %.7g", (long long)i, (double)got[i], (double)want[i]);
}

/* A net from prototxt text through the public API (the caller destroys). */
static ns_net *load_net(ns_ctx *ctx, const char *text) {
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  tu_rmtree(dir);
  free(dir);
  return net;
}

static void expect_error(lh_harness *h, ns_status want, const char *needle) {
  ns_status st = lh_run(h);
  if (st != want) fail_msg("status %d (want %d): %s", st, want, ns_ctx_error(h->ctx));
  if (!strstr(ns_ctx_error(h->ctx), needle))
    fail_msg("'%s' not in the error: %s", needle, ns_ctx_error(h->ctx));
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'t'")); /* names the layer */
}

/* ---- Threshold ----------------------------------------------------------- */

static void test_threshold(void **state) {
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = layer("Threshold");
    Caffe__ThresholdParameter p = CAFFE__THRESHOLD_PARAMETER__INIT;
    p.has_threshold = 1;
    p.threshold = 0.75f;
    h->param.threshold_param = &p;
    /* y = x > 0.75: the threshold itself gives 0; NaN gives 0. */
    const float x[7] = {-1, 0, 0.5f, 0.75f, 0.7501f, 2, NAN};
    const float want[7] = {0, 0, 0, 0, 1, 1, 0};
    const int64_t shape[3] = {1, 7, 1};
    ns_blob *b = bottom(h, 3, shape, x);
    ns_blob *top = b;
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      top = lh_add_top(h);
    run_ok(h);
    assert_shape(top, 3, shape);
    assert_floats(top->data, want, 7, 0);
    assert_null(h->layer.ops->backward); /* Caffe has none */
    lh_destroy(h);
  }
  /* Default threshold 0: 0 itself maps to 0, the smallest positive to 1. */
  lh_harness *h = layer("Threshold");
  const float x[3] = {0, 1e-30f, -1e-30f}, want[3] = {0, 1, 0};
  const int64_t shape[1] = {3};
  bottom(h, 1, shape, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_floats(top->data, want, 3, 0);
  lh_destroy(h);
}

/* ---- Tile ---------------------------------------------------------------- */

static lh_harness *tile_layer(Caffe__TileParameter *p, int axis, int tiles) {
  lh_harness *h = layer("Tile");
  p->has_axis = 1;
  p->axis = axis;
  p->has_tiles = 1;
  p->tiles = tiles;
  h->param.tile_param = p;
  return h;
}

static void test_tile_forward(void **state) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t shape[2] = {2, 3};
  /* axis 1, 2 tiles: each row repeated in place. */
  Caffe__TileParameter p = CAFFE__TILE_PARAMETER__INIT;
  lh_harness *h = tile_layer(&p, 1, 2);
  bottom(h, 2, shape, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const int64_t s1[2] = {2, 6};
  const float w1[12] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
  assert_shape(top, 2, s1);
  assert_floats(top->data, w1, 12, 0);
  lh_destroy(h);
  /* axis 0, 3 tiles: the whole blob three times. */
  h = tile_layer(&p, 0, 3);
  bottom(h, 2, shape, x);
  top = lh_add_top(h);
  run_ok(h);
  const int64_t s0[2] = {6, 3};
  assert_shape(top, 2, s0);
  for (int i = 0; i < 18; i++) assert_true(top->data[i] == x[i % 6]);
  lh_destroy(h);
  /* axis -1 of (2, 1, 3) with 2 tiles: each element's run of 3 repeated. */
  const int64_t s3[3] = {2, 1, 3};
  h = tile_layer(&p, -1, 2);
  bottom(h, 3, s3, x);
  top = lh_add_top(h);
  run_ok(h);
  const int64_t s3t[3] = {2, 1, 6};
  assert_shape(top, 3, s3t);
  assert_floats(top->data, w1, 12, 0);
  lh_destroy(h);
}

static void test_tile_backward(void **state) {
  /* Hand case: (1, 2) tiled 3 times on axis 1; dx = sum of its copies. */
  Caffe__TileParameter p = CAFFE__TILE_PARAMETER__INIT;
  lh_harness *h = tile_layer(&p, 1, 3);
  const int64_t shape[2] = {1, 2};
  ns_blob *b = bottom(h, 2, shape, NULL);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, top), NS_OK);
  const float dy[6] = {1, 10, 100, 1000, 0.5f, 0.25f};
  memcpy(top->diff, dy, sizeof dy);
  const int down[1] = {1};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  const float want[2] = {101.5f, 1010.25f};
  assert_floats(b->diff, want, 2, 1e-4);
  lh_destroy(h);
  const int cases[][2] = {{1, 2}, {0, 3}, {2, 3}, {-1, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    h = tile_layer(&p, cases[c][0], cases[c][1]);
    const int64_t s3[3] = {3, 2, 5};
    bottom_random(h, 3, s3, 0);
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_tile_errors(void **state) {
  lh_harness *h = layer("Tile");
  const int64_t shape[1] = {3};
  bottom(h, 1, shape, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "tile_param.tiles");
  lh_destroy(h);
  Caffe__TileParameter p = CAFFE__TILE_PARAMETER__INIT;
  h = tile_layer(&p, 0, 0);
  bottom(h, 1, shape, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "positive");
  lh_destroy(h);
  h = tile_layer(&p, 1, 2); /* a 1-axis bottom has no axis 1 */
  bottom(h, 1, shape, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "tile_param.axis");
  lh_destroy(h);
}

/* ---- Reduction ----------------------------------------------------------- */

static lh_harness *reduction_layer(Caffe__ReductionParameter *p, int op, int axis, float coeff) {
  lh_harness *h = layer("Reduction");
  p->has_operation = 1;
  p->operation = (Caffe__ReductionParameter__ReductionOp)op;
  p->has_axis = 1;
  p->axis = axis;
  p->has_coeff = 1;
  p->coeff = coeff;
  h->param.reduction_param = p;
  return h;
}

enum { SUM = 1, ASUM = 2, SUMSQ = 3, MEAN = 4 };

static void test_reduction_forward(void **state) {
  /* x = [[1, -2, 3], [-4, 5, -6]]: row sums 2, -5; |x| sums 6, 15;
   * squares 1 + 4 + 9 = 14, 16 + 25 + 36 = 77; all: -3. */
  const float x[6] = {1, -2, 3, -4, 5, -6};
  const int64_t shape[2] = {2, 3};
  const struct {
    int op, axis;
    float coeff;
    int top_axes;
    float want[2];
  } cases[] = {
      {SUM, 0, 1, 0, {-3}},          {SUM, 1, 2, 1, {4, -10}},
      {ASUM, 1, 1, 1, {6, 15}},      {SUMSQ, -1, 1, 1, {14, 77}},
      {MEAN, 1, 3, 1, {2, -5}},      /* coeff 3 / dim 3 times the sums */
      {MEAN, 0, 1, 0, {-0.5f}},      {ASUM, 0, -0.5f, 0, {-10.5f}},
      {SUMSQ, 2, 1, 2, {0}}, /* axis 2 = num_axes: each value alone */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    Caffe__ReductionParameter p = CAFFE__REDUCTION_PARAMETER__INIT;
    lh_harness *h = reduction_layer(&p, cases[c].op, cases[c].axis, cases[c].coeff);
    bottom(h, 2, shape, x);
    ns_blob *top = lh_add_top(h);
    if (cases[c].axis == 2) {
      /* Caffe's CanonicalAxisIndex refuses axis == num_axes. */
      expect_error(h, NS_ERR_NET, "reduction_param.axis");
      lh_destroy(h);
      continue;
    }
    run_ok(h);
    assert_int_equal(top->num_axes, cases[c].top_axes);
    if (cases[c].top_axes) assert_int_equal(top->shape[0], 2);
    assert_floats(top->data, cases[c].want, top->count, 1e-5);
    lh_destroy(h);
  }
}

static void test_reduction_backward(void **state) {
  for (int op = SUM; op <= MEAN; op++)
    for (int axis = 0; axis < 3; axis++) {
      Caffe__ReductionParameter p = CAFFE__REDUCTION_PARAMETER__INIT;
      lh_harness *h = reduction_layer(&p, op, axis, op == MEAN ? 1.5f : -0.7f);
      const int64_t shape[3] = {3, 2, 5};
      bottom_random(h, 3, shape, 0.05f); /* ASUM: away from |x|'s kink */
      lh_add_top(h);
      grad_check(h, NULL);
      lh_destroy(h);
    }
  /* Hand case: ASUM's sign(0) = 0, coeff 2, dy 3 -> dx = 6 sign(x). */
  Caffe__ReductionParameter p = CAFFE__REDUCTION_PARAMETER__INIT;
  lh_harness *h = reduction_layer(&p, ASUM, 0, 2);
  const float x[3] = {-4, 0, 0.5f};
  const int64_t shape[1] = {3};
  ns_blob *b = bottom(h, 1, shape, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, top), NS_OK);
  top->diff[0] = 3;
  const int down[1] = {1};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  const float want[3] = {-6, 0, 6};
  assert_floats(b->diff, want, 3, 0);
  lh_destroy(h);
}

/* ---- MVN ----------------------------------------------------------------- */

static lh_harness *mvn_layer(Caffe__MVNParameter *p, int norm_var, int across, float eps) {
  lh_harness *h = layer("MVN");
  p->has_normalize_variance = 1;
  p->normalize_variance = norm_var;
  p->has_across_channels = 1;
  p->across_channels = across;
  p->has_eps = eps >= 0;
  p->eps = eps;
  h->param.mvn_param = p;
  return h;
}

static void test_mvn_forward(void **state) {
  /* Channel 0 = 1 2 3 4: mean 2.5, deviations -1.5 -0.5 0.5 1.5, variance
   * (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.  Channel 1 = 10 10 10 14: mean
   * 11, deviations -1 -1 -1 3, variance 12 / 4 = 3.  Across channels: mean
   * 54 / 8 = 6.75, sum of squared deviations 161.5, variance 20.1875. */
  const float x[8] = {1, 2, 3, 4, 10, 10, 10, 14};
  const float dev[8] = {-1.5f, -0.5f, 0.5f, 1.5f, -1, -1, -1, 3};
  const float dev_all[8] = {-5.75f, -4.75f, -3.75f, -2.75f, 3.25f, 3.25f, 3.25f, 7.25f};
  const int64_t shape[4] = {1, 2, 2, 2};
  for (int mode = 0; mode < 4; mode++) {
    int norm_var = mode & 1, across = mode >> 1;
    Caffe__MVNParameter p = CAFFE__MVNPARAMETER__INIT;
    /* eps 0.5: big enough to tell Caffe's sd + eps from sqrt(var + eps) */
    lh_harness *h = mvn_layer(&p, norm_var, across, 0.5f);
    bottom(h, 4, shape, x);
    ns_blob *top = lh_add_top(h);
    run_ok(h);
    assert_shape(top, 4, shape);
    float want[8];
    for (int i = 0; i < 8; i++) {
      float d = across ? dev_all[i] : dev[i];
      float sd = across ? sqrtf(20.1875f) : sqrtf(i < 4 ? 1.25f : 3.0f);
      want[i] = norm_var ? d / (sd + 0.5f) : d;
    }
    assert_floats(top->data, want, 8, 1e-5);
    lh_destroy(h);
  }
  /* Default eps 1e-9 and normalize_variance: 1 2 3 4 -> +-3/sqrt(5), +-1/sqrt(5). */
  lh_harness *h = layer("MVN");
  const int64_t s1[4] = {1, 1, 1, 4};
  bottom(h, 4, s1, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const float want[4] = {-3 / sqrtf(5), -1 / sqrtf(5), 1 / sqrtf(5), 3 / sqrtf(5)};
  assert_floats(top->data, want, 4, 1e-6);
  lh_destroy(h);
}

/* A 2-D bottom (N, C): each row has one value, so y = 0; the top is 4-D
 * (N, C, 1, 1) as Caffe's Reshape(num, channels, height, width) makes it. */
static void test_mvn_shapes(void **state) {
  lh_harness *h = layer("MVN");
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t shape[2] = {2, 3};
  bottom(h, 2, shape, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const int64_t want_shape[4] = {2, 3, 1, 1};
  assert_shape(top, 4, want_shape);
  for (int i = 0; i < 6; i++) assert_true(top->data[i] == 0);
  lh_destroy(h);
  h = layer("MVN");
  const int64_t s5[5] = {1, 1, 1, 1, 2};
  bottom(h, 5, s5, x);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "at most 4");
  lh_destroy(h);
}

static void test_mvn_backward(void **state) {
  for (int mode = 0; mode < 8; mode++) {
    Caffe__MVNParameter p = CAFFE__MVNPARAMETER__INIT;
    lh_harness *h = mvn_layer(&p, mode & 1, mode >> 1 & 1, -1);
    const int64_t shape[4] = {2, 3, 3, 5};
    bottom_random(h, 4, shape, 0);
    if (mode >> 2)
      lh_add_top_in_place(h, 0);
    else
      lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

/* ---- Swish --------------------------------------------------------------- */

static void test_swish(void **state) {
  /* beta 1: 0 -> 0; 1 -> 1 / (1 + e^-1) = 0.7310586; -2 -> -2 / (1 + e^2)
   * = -0.2384058.  beta 2: 1 -> 1 / (1 + e^-2) = 0.8807971. */
  const float x[3] = {0, 1, -2};
  const float want1[3] = {0, 0.7310586f, -0.2384058f};
  const int64_t shape[1] = {3};
  lh_harness *h = layer("Swish");
  bottom(h, 1, shape, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_floats(top->data, want1, 3, 1e-6);
  lh_destroy(h);
  Caffe__SwishParameter p = CAFFE__SWISH_PARAMETER__INIT;
  p.has_beta = 1;
  p.beta = 2;
  h = layer("Swish");
  h->param.swish_param = &p;
  ns_blob *b = bottom(h, 1, shape, x);
  lh_add_top_in_place(h, 0);
  run_ok(h);
  assert_floats(b->data + 1, (const float[]){0.8807971f}, 1, 1e-6);
  lh_destroy(h);
  const float betas[3] = {1, 2.5f, -0.7f};
  for (int c = 0; c < 6; c++) {
    h = layer("Swish");
    p.beta = betas[c % 3];
    h->param.swish_param = &p;
    const int64_t s4[4] = {2, 3, 1, 5};
    bottom_random(h, 4, s4, 0);
    if (c >= 3)
      lh_add_top_in_place(h, 0);
    else
      lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

/* ---- Parameter ----------------------------------------------------------- */

static void test_parameter(void **state) {
  lh_harness *h = layer("Parameter");
  Caffe__ParameterParameter p = CAFFE__PARAMETER_PARAMETER__INIT;
  Caffe__BlobShape bs = CAFFE__BLOB_SHAPE__INIT;
  int64_t dims[3] = {2, 1, 3};
  bs.n_dim = 3;
  bs.dim = dims;
  p.shape = &bs;
  h->param.parameter_param = &p;
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_setup(h), NS_OK);
  assert_int_equal(h->layer.n_params, 1);
  assert_shape(h->layer.params[0], 3, dims);
  for (int i = 0; i < 6; i++) assert_true(h->layer.params[0]->data[i] == 0); /* no filler */
  for (int i = 0; i < 6; i++) h->layer.params[0]->data[i] = (float)i - 2.5f;
  assert_int_equal(lh_rerun(h), NS_OK);
  assert_shape(top, 3, dims);
  for (int i = 0; i < 6; i++) assert_true(top->data[i] == (float)i - 2.5f);
  gc_opts o = {.setup_done = 1};
  grad_check(h, &o); /* d top / d param = identity, added to the diff */
  lh_destroy(h);
  /* No shape: a scalar, as Caffe's empty BlobShape. */
  h = layer("Parameter");
  top = lh_add_top(h);
  run_ok(h);
  assert_int_equal(top->num_axes, 0);
  assert_int_equal(top->count, 1);
  lh_destroy(h);
}

/* ---- Embed --------------------------------------------------------------- */

static lh_harness *embed_layer(Caffe__EmbedParameter *p, int in_dim, int out, int bias) {
  lh_harness *h = layer("Embed");
  p->has_input_dim = p->has_num_output = p->has_bias_term = 1;
  p->input_dim = (uint32_t)in_dim;
  p->num_output = (uint32_t)out;
  p->bias_term = bias;
  h->param.embed_param = p;
  return h;
}

static void test_embed_forward(void **state) {
  for (int bias = 0; bias < 2; bias++) {
    Caffe__EmbedParameter p = CAFFE__EMBED_PARAMETER__INIT;
    lh_harness *h = embed_layer(&p, 4, 3, bias);
    const float idx[3] = {2, 0, 3};
    const int64_t shape[2] = {1, 3};
    bottom(h, 2, shape, idx);
    ns_blob *top = lh_add_top(h);
    assert_int_equal(lh_setup(h), NS_OK);
    assert_int_equal(h->layer.n_params, bias ? 2 : 1);
    const int64_t wshape[2] = {4, 3};
    assert_shape(h->layer.params[0], 2, wshape);
    for (int i = 0; i < 12; i++) h->layer.params[0]->data[i] = (float)i; /* row k = 3k, 3k+1, 3k+2 */
    if (bias)
      for (int j = 0; j < 3; j++) h->layer.params[1]->data[j] = 100.0f * (float)(j + 1);
    assert_int_equal(lh_rerun(h), NS_OK);
    const int64_t tshape[3] = {1, 3, 3};
    assert_shape(top, 3, tshape);
    float want[9] = {6, 7, 8, 0, 1, 2, 9, 10, 11};
    if (bias)
      for (int i = 0; i < 9; i++) want[i] += 100.0f * (float)(i % 3 + 1);
    assert_floats(top->data, want, 9, 0);
    lh_destroy(h);
  }
}

static void test_embed_backward(void **state) {
  for (int bias = 0; bias < 2; bias++) {
    Caffe__EmbedParameter p = CAFFE__EMBED_PARAMETER__INIT;
    lh_harness *h = embed_layer(&p, 5, 3, bias);
    const float idx[7] = {4, 0, 4, 2, 1, 4, 0}; /* repeats: the row gets each gradient */
    const int64_t shape[1] = {7};
    bottom(h, 1, shape, idx);
    lh_add_top(h);
    assert_int_equal(lh_setup(h), NS_OK);
    for (int p_i = 0; p_i < h->layer.n_params; p_i++)
      for (int64_t i = 0; i < h->layer.params[p_i]->count; i++)
        h->layer.params[p_i]->data[i] = urand(-1, 1);
    gc_opts o = {.skip_bottoms = 1, .setup_done = 1};
    grad_check(h, &o);
    /* The indices take no gradient: asking for one is an error. */
    const int down[1] = {1};
    assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_ERR_NET);
    assert_non_null(strstr(ns_ctx_error(h->ctx), "backpropagate"));
    lh_destroy(h);
  }
}

static void test_embed_errors(void **state) {
  const float bad[3][1] = {{5}, {-1}, {1.5f}};
  for (int c = 0; c < 3; c++) {
    Caffe__EmbedParameter p = CAFFE__EMBED_PARAMETER__INIT;
    lh_harness *h = embed_layer(&p, 5, 2, 1);
    const int64_t shape[1] = {1};
    bottom(h, 1, shape, bad[c]);
    lh_add_top(h);
    expect_error(h, NS_ERR_INPUT, "input_dim");
    lh_destroy(h);
  }
  Caffe__EmbedParameter p = CAFFE__EMBED_PARAMETER__INIT;
  lh_harness *h = embed_layer(&p, 5, 0, 1);
  const int64_t shape[1] = {1};
  bottom(h, 1, shape, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "num_output");
  lh_destroy(h);
  h = embed_layer(&p, 0, 2, 1);
  bottom(h, 1, shape, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "input_dim");
  lh_destroy(h);
  assert_int_equal(ns_layer_find("Embed")->weight_rank, 2);
}

/* ---- HingeLoss ----------------------------------------------------------- */

static lh_harness *hinge_layer(Caffe__HingeLossParameter *p, int l2) {
  lh_harness *h = layer("HingeLoss");
  p->has_norm = 1;
  p->norm = l2 ? CAFFE__HINGE_LOSS_PARAMETER__NORM__L2 : CAFFE__HINGE_LOSS_PARAMETER__NORM__L1;
  h->param.hinge_loss_param = p;
  return h;
}

static void test_hinge_loss(void **state) {
  /* Item 0, label 2: max(0, 1 + 0.5) = 1.5, max(0, 1 - 0.2) = 0.8,
   * max(0, 1 - 1.5) = 0.  Item 1, label 0: max(0, 1 - 2) = 0,
   * max(0, 1.1) = 1.1, max(0, 1 - 3) = 0.  L1: (2.3 + 1.1) / 2 = 1.7;
   * L2: (2.25 + 0.64 + 1.21) / 2 = 2.05. */
  const float x[6] = {0.5f, -0.2f, 1.5f, 2, 0.1f, -3}, label[2] = {2, 0};
  const int64_t xs[2] = {2, 3}, ls[1] = {2};
  for (int l2 = 0; l2 < 2; l2++) {
    Caffe__HingeLossParameter p = CAFFE__HINGE_LOSS_PARAMETER__INIT;
    lh_harness *h = hinge_layer(&p, l2);
    bottom(h, 2, xs, x);
    bottom(h, 1, ls, label);
    ns_blob *top = lh_add_top(h);
    run_ok(h);
    assert_int_equal(top->num_axes, 0);
    assert_close(top->data[0], l2 ? 2.05f : 1.7f, 1e-6);
    lh_destroy(h);
  }
  /* Default norm is L1. */
  lh_harness *h = layer("HingeLoss");
  bottom(h, 2, xs, x);
  bottom(h, 1, ls, label);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_close(top->data[0], 1.7f, 1e-6);
  lh_destroy(h);
}

static void test_hinge_loss_backward(void **state) {
  for (int l2 = 0; l2 < 2; l2++) {
    Caffe__HingeLossParameter p = CAFFE__HINGE_LOSS_PARAMETER__INIT;
    lh_harness *h = hinge_layer(&p, l2);
    const int64_t xs[4] = {3, 5, 1, 1}, ls[1] = {3};
    ns_blob *x = bottom(h, 4, xs, NULL);
    for (int64_t i = 0; i < x->count; i++) { /* 1 +- x kept 0.05 off 0 */
      float v = urand(-2, 2);
      if (fabsf(fabsf(v) - 1) < 0.05f) v += 0.1f;
      x->data[i] = v;
    }
    const float label[3] = {4, 0, 2};
    bottom(h, 1, ls, label);
    lh_add_top(h);
    gc_opts o = {.skip_bottoms = 2};
    grad_check(h, &o);
    lh_destroy(h);
  }
  Caffe__HingeLossParameter p = CAFFE__HINGE_LOSS_PARAMETER__INIT;
  lh_harness *h = hinge_layer(&p, 0);
  const int64_t xs[2] = {1, 3}, ls[1] = {1};
  bottom(h, 2, xs, NULL);
  bottom(h, 1, ls, (const float[]){3});
  lh_add_top(h);
  expect_error(h, NS_ERR_INPUT, "out of range");
  lh_destroy(h);
}

/* ---- MultinomialLogisticLoss --------------------------------------------- */

static void test_multinomial_loss(void **state) {
  /* -(ln 0.5 + ln 0.3) / 2 = (0.6931472 + 1.2039728) / 2 = 0.94856;
   * a probability of 0 is clamped to 1e-20: -ln 1e-20 = 46.0517019. */
  const float p[6] = {0.2f, 0.5f, 0.3f, 0.6f, 0.1f, 0.3f}, label[2] = {1, 2};
  const int64_t ps[2] = {2, 3}, ls[4] = {2, 1, 1, 1};
  lh_harness *h = layer("MultinomialLogisticLoss");
  bottom(h, 2, ps, p);
  bottom(h, 4, ls, label);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_close(top->data[0], 0.9485600f, 1e-6);
  lh_destroy(h);
  h = layer("MultinomialLogisticLoss");
  const int64_t ps1[2] = {1, 3}, ls1[1] = {1};
  ns_blob *b = bottom(h, 2, ps1, (const float[]){0, 1, 0});
  bottom(h, 1, ls1, (const float[]){0});
  top = lh_add_top(h);
  run_ok(h);
  assert_close(top->data[0], 46.0517019f, 1e-4);
  /* Its gradient: -1 / (1 * 1e-20) at the label, 0 elsewhere. */
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  const int down[2] = {1, 0};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  assert_close(b->diff[0], -1e20f, 1e13);
  assert_true(b->diff[1] == 0 && b->diff[2] == 0);
  lh_destroy(h);
}

static void test_multinomial_loss_backward(void **state) {
  lh_harness *h = layer("MultinomialLogisticLoss");
  const int64_t ps[4] = {3, 2, 1, 2}, ls[1] = {3};
  ns_blob *p = bottom(h, 4, ps, NULL);
  for (int64_t i = 0; i < p->count; i++) p->data[i] = urand(0.2f, 1);
  bottom(h, 1, ls, (const float[]){3, 0, 2});
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 2};
  grad_check(h, &o);
  lh_destroy(h);
  h = layer("MultinomialLogisticLoss");
  bottom(h, 4, ps, NULL);
  bottom(h, 1, ls, (const float[]){0, 4, 1});
  lh_add_top(h);
  expect_error(h, NS_ERR_INPUT, "out of range");
  lh_destroy(h);
}

/* ---- ContrastiveLoss ----------------------------------------------------- */

static lh_harness *contrastive_layer(Caffe__ContrastiveLossParameter *p, int legacy, float margin) {
  lh_harness *h = layer("ContrastiveLoss");
  p->has_legacy_version = 1;
  p->legacy_version = legacy;
  p->has_margin = 1;
  p->margin = margin;
  h->param.contrastive_loss_param = p;
  return h;
}

static void test_contrastive_loss(void **state) {
  /* Pair 0 similar: d2 = 3^2 + 4^2 = 25.  Pair 1 dissimilar: d2 = 0.25,
   * d = 0.5.  Pair 2 (y = 0.5, truncated to 0: dissimilar): d2 = 0.04,
   * d = 0.2.  Pair 3 dissimilar beyond the margin: d = 2, adds 0.
   * Current: (25 + (1 - 0.5)^2 + (1 - 0.2)^2) / (2 * 4) = 25.89 / 8;
   * legacy: (25 + (1 - 0.25) + (1 - 0.04)) / 8 = 26.71 / 8. */
  const float a[8] = {0, 0, 1, 1, 0.2f, 0, 0, 0};
  const float b[8] = {3, 4, 1, 1.5f, 0, 0, 2, 0};
  const float y[4] = {1, 0, 0.5f, 0};
  const int64_t s[4] = {4, 2, 1, 1}, ys[4] = {4, 1, 1, 1};
  for (int legacy = 0; legacy < 2; legacy++) {
    Caffe__ContrastiveLossParameter p = CAFFE__CONTRASTIVE_LOSS_PARAMETER__INIT;
    lh_harness *h = contrastive_layer(&p, legacy, 1);
    bottom(h, 4, s, a);
    bottom(h, 4, s, b);
    bottom(h, 4, ys, y);
    ns_blob *top = lh_add_top(h);
    run_ok(h);
    assert_close(top->data[0], legacy ? 26.71f / 8 : 25.89f / 8, 1e-5);
    lh_destroy(h);
  }
}

static void test_contrastive_loss_backward(void **state) {
  for (int legacy = 0; legacy < 2; legacy++) {
    Caffe__ContrastiveLossParameter p = CAFFE__CONTRASTIVE_LOSS_PARAMETER__INIT;
    /* margin 2 (current, on d) or 2.5 (legacy, on d2): pairs on both
     * sides of it, none within the step of it or of d = 0. */
    lh_harness *h = contrastive_layer(&p, legacy, legacy ? 2.5f : 2);
    const int64_t s[2] = {6, 3}, ys[1] = {6};
    ns_blob *a = bottom(h, 2, s, NULL), *b = bottom(h, 2, s, NULL);
    const float scale[6] = {0.3f, 0.6f, 1.5f, 0.4f, 0.5f, 2};
    for (int n = 0; n < 6; n++)
      for (int c = 0; c < 3; c++) {
        a->data[n * 3 + c] = urand(-1, 1);
        b->data[n * 3 + c] = a->data[n * 3 + c] + scale[n] * (c == n % 3 ? 1.0f : 0.2f);
      }
    bottom(h, 1, ys, (const float[]){0, 1, 0, 0, 1, 0});
    lh_add_top(h);
    /* Caffe's (d + 1e-4) denominator shifts the current form's gradient
     * by up to 1e-4 / d = 3e-4 of itself (d >= 0.3 here). */
    gc_opts o = {.skip_bottoms = 4, .tol = 2e-3};
    grad_check(h, &o);
    lh_destroy(h);
  }
}

static void test_contrastive_loss_errors(void **state) {
  lh_harness *h = layer("ContrastiveLoss");
  const int64_t s[4] = {2, 2, 2, 1}, ys[1] = {2};
  bottom(h, 4, s, NULL);
  bottom(h, 4, s, NULL);
  bottom(h, 1, ys, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "(N, C, 1, 1)");
  lh_destroy(h);
}

/* ---- InfogainLoss -------------------------------------------------------- */

/* Scores (2, 3): row 0 = 0 0 0 (p = 1/3 each), row 1 = 0 ln2 0 (p = 0.25
 * 0.5 0.25); labels 1, 0.  H rows: 0 = (1 0 2), 1 = (0.5 1 0.25), 2 = e3.
 * Row 0: (0.5 + 1 + 0.25) ln 3 = 1.9225715; row 1: (1 + 2) ln 4 =
 * 4.1588831; VALID normalization over 2: 3.0407273. */
static const float IG_X[6] = {0, 0, 0, 0, 0.69314718f, 0};
static const float IG_H[9] = {1, 0, 2, 0.5f, 1, 0.25f, 0, 0, 1};
static const float IG_LABEL[2] = {1, 0};

static void test_infogain_loss(void **state) {
  const int64_t xs[2] = {2, 3}, ls[1] = {2}, hs[2] = {3, 3};
  lh_harness *h = layer("InfogainLoss");
  bottom(h, 2, xs, IG_X);
  bottom(h, 1, ls, IG_LABEL);
  bottom(h, 2, hs, IG_H);
  ns_blob *top = lh_add_top(h), *prob = lh_add_top(h);
  run_ok(h);
  assert_close(top->data[0], 3.0407273f, 1e-5);
  const float want_p[6] = {1 / 3.0f, 1 / 3.0f, 1 / 3.0f, 0.25f, 0.5f, 0.25f};
  assert_shape(prob, 2, xs);
  assert_floats(prob->data, want_p, 6, 1e-6);
  lh_destroy(h);
  /* ignore_label 0 drops row 1: 1.9225715 / 1; normalization FULL then
   * divides by both positions; BATCH_SIZE by the outer count 2; NONE by 1. */
  const struct {
    int mode;
    float want;
  } cases[] = {{1, 1.9225715f}, {0, 0.9612858f}, {2, 0.9612858f}, {3, 1.9225715f}};
  for (int c = 0; c < 4; c++) {
    Caffe__LossParameter lp = CAFFE__LOSS_PARAMETER__INIT;
    lp.has_ignore_label = 1;
    lp.ignore_label = 0;
    lp.has_normalization = 1;
    lp.normalization = (Caffe__LossParameter__NormalizationMode)cases[c].mode;
    h = layer("InfogainLoss");
    h->param.loss_param = &lp;
    bottom(h, 2, xs, IG_X);
    bottom(h, 1, ls, IG_LABEL);
    bottom(h, 2, hs, IG_H);
    top = lh_add_top(h);
    run_ok(h);
    assert_close(top->data[0], cases[c].want, 1e-5);
    lh_destroy(h);
  }
}

/* H from infogain_loss_param.source: a BlobProto file, as Caffe reads it. */
static void test_infogain_loss_source(void **state) {
  Caffe__BlobProto bp = CAFFE__BLOB_PROTO__INIT;
  bp.n_data = 9;
  bp.data = (float *)IG_H;
  uint8_t buf[256];
  size_t len = caffe__blob_proto__pack(&bp, buf);
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "H.binaryproto");
  assert_int_equal(tu_write_file(path, buf, len), 0);
  Caffe__InfogainLossParameter p = CAFFE__INFOGAIN_LOSS_PARAMETER__INIT;
  p.source = path;
  lh_harness *h = layer("InfogainLoss");
  h->param.infogain_loss_param = &p;
  const int64_t xs[2] = {2, 3}, ls[1] = {2};
  bottom(h, 2, xs, IG_X);
  bottom(h, 1, ls, IG_LABEL);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  assert_close(top->data[0], 3.0407273f, 1e-5);
  lh_destroy(h);
  /* A matrix of the wrong size, a missing file, no matrix at all. */
  bp.n_data = 4;
  len = caffe__blob_proto__pack(&bp, buf);
  assert_int_equal(tu_write_file(path, buf, len), 0);
  h = layer("InfogainLoss");
  h->param.infogain_loss_param = &p;
  bottom(h, 2, xs, IG_X);
  bottom(h, 1, ls, IG_LABEL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "3 x 3");
  lh_destroy(h);
  tu_rmtree(dir);
  free(dir);
  h = layer("InfogainLoss");
  h->param.infogain_loss_param = &p;
  bottom(h, 2, xs, IG_X);
  bottom(h, 1, ls, IG_LABEL);
  lh_add_top(h);
  assert_int_not_equal(lh_run(h), NS_OK);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "infogain_loss_param.source"));
  lh_destroy(h);
  h = layer("InfogainLoss");
  bottom(h, 2, xs, IG_X);
  bottom(h, 1, ls, IG_LABEL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "infogain");
  lh_destroy(h);
}

static void test_infogain_loss_backward(void **state) {
  for (int ignore = 0; ignore < 2; ignore++) {
    lh_harness *h = layer("InfogainLoss");
    Caffe__LossParameter lp = CAFFE__LOSS_PARAMETER__INIT;
    lp.has_ignore_label = ignore;
    lp.ignore_label = 2;
    h->param.loss_param = &lp;
    const int64_t xs[3] = {2, 3, 2}, ls[2] = {2, 2}, hs[2] = {3, 3};
    bottom_random(h, 3, xs, 0);
    bottom(h, 2, ls, (const float[]){1, 2, 0, 2});
    ns_blob *H = bottom(h, 2, hs, NULL);
    for (int i = 0; i < 9; i++) H->data[i] = urand(0, 2);
    lh_add_top(h); /* (Caffe's backward ignores a second, probability top) */
    gc_opts o = {.skip_bottoms = 6};
    grad_check(h, &o);
    lh_destroy(h);
  }
}

/* ---- Filter -------------------------------------------------------------- */

static void test_filter(void **state) {
  /* Selector 1 0 0.5 0 (any nonzero selects): items 0 and 2 of each. */
  lh_harness *h = layer("Filter");
  const float a[8] = {0, 1, 2, 3, 4, 5, 6, 7}, b[4] = {10, 11, 12, 13};
  const float sel[4] = {1, 0, 0.5f, 0};
  const int64_t as[2] = {4, 2}, bs[3] = {4, 1, 1}, ss[2] = {4, 1};
  ns_blob *ba = bottom(h, 2, as, a);
  bottom(h, 3, bs, b);
  bottom(h, 2, ss, sel);
  ns_blob *ta = lh_add_top(h), *tb = lh_add_top(h);
  run_ok(h);
  const int64_t tas[2] = {2, 2}, tbs[3] = {2, 1, 1};
  assert_shape(ta, 2, tas);
  assert_shape(tb, 3, tbs);
  assert_floats(ta->data, (const float[]){0, 1, 4, 5}, 4, 0);
  assert_floats(tb->data, (const float[]){10, 12}, 2, 0);
  /* Backward: the selected items get their top's gradient, the rest 0. */
  assert_int_equal(ns_blob_ensure_diff(h->ctx, ba), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, ta), NS_OK);
  for (int i = 0; i < 8; i++) ba->diff[i] = 9;
  memcpy(ta->diff, (const float[]){1, 2, 3, 4}, 4 * sizeof(float));
  const int down[3] = {1, 0, 0};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  assert_floats(ba->diff, (const float[]){1, 2, 0, 0, 3, 4, 0, 0}, 8, 0);
  lh_destroy(h);
  h = layer("Filter");
  const int64_t xs[3] = {5, 2, 3}, s5[1] = {5};
  bottom_random(h, 3, xs, 0);
  bottom(h, 1, s5, (const float[]){0, 1, 1, 0, 1});
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 2};
  grad_check(h, &o);
  lh_destroy(h);
  /* A selector that is not (N, 1, ...), and a mismatched first axis. */
  h = layer("Filter");
  bottom(h, 2, as, a);
  const int64_t bad[2] = {4, 2};
  bottom(h, 2, bad, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "singletons");
  lh_destroy(h);
  h = layer("Filter");
  bottom(h, 2, as, a);
  const int64_t three[1] = {3};
  bottom(h, 1, three, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "first dimension");
  lh_destroy(h);
}

/* In a net the layers after Filter follow its new item count: the SUM
 * over axis 0 of the selected rows, for two different selections. */
static void test_filter_in_a_net(void **state) {
  static const char *text =
      "layer { name: 'x' type: 'Input' top: 'x' input_param { shape { dim: 4 dim: 2 } } }\n"
      "layer { name: 'sel' type: 'Input' top: 'sel' input_param { shape { dim: 4 } } }\n"
      "layer { name: 'f' type: 'Filter' bottom: 'x' bottom: 'sel' top: 'picked' }\n"
      "layer { name: 'sum' type: 'Reduction' bottom: 'picked' top: 'sum' }\n";
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load_net(ctx, text);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "x"));
  for (int i = 0; i < 8; i++) x.data[i] = (float)(1 << i); /* each row's sum tells it apart */
  ns_tensor sel = ns_net_blob(net, ns_net_find_blob(net, "sel"));
  /* 3 rows, then 2: a Reduction left at the earlier shape would also add
   * the third row of the first pass, still in the blob. */
  const float pick[2][4] = {{1, 1, 1, 0}, {0, 1, 0, 1}};
  const float want[2] = {1 + 2 + 4 + 8 + 16 + 32, 4 + 8 + 64 + 128};
  const int64_t rows[2] = {3, 2};
  for (int c = 0; c < 2; c++) {
    memcpy(sel.data, pick[c], sizeof pick[c]);
    assert_int_equal(ns_net_forward(ctx, net), NS_OK);
    ns_tensor picked = ns_net_blob(net, ns_net_find_blob(net, "picked"));
    assert_int_equal(picked.shape[0], rows[c]);
    ns_tensor sum = ns_net_blob(net, ns_net_find_blob(net, "sum"));
    assert_close(sum.data[0], want[c], 0);
  }
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- BatchReindex -------------------------------------------------------- */

static void test_batch_reindex(void **state) {
  /* Items (1 2) (3 4) (5 6) picked as 2 0 2 1. */
  lh_harness *h = layer("BatchReindex");
  const int64_t xs[2] = {3, 2}, is[1] = {4};
  ns_blob *x = bottom(h, 2, xs, (const float[]){1, 2, 3, 4, 5, 6});
  bottom(h, 1, is, (const float[]){2, 0, 2, 1});
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const int64_t ts[2] = {4, 2};
  assert_shape(top, 2, ts);
  assert_floats(top->data, (const float[]){5, 6, 1, 2, 5, 6, 3, 4}, 8, 0);
  /* Item 2 was copied twice: its gradient is the sum of both. */
  assert_int_equal(ns_blob_ensure_diff(h->ctx, x), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, top), NS_OK);
  memcpy(top->diff, (const float[]){1, 2, 3, 4, 5, 6, 7, 8}, 8 * sizeof(float));
  const int down[2] = {1, 0};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  assert_floats(x->diff, (const float[]){3, 4, 7, 8, 6, 8}, 6, 0);
  lh_destroy(h);
  h = layer("BatchReindex");
  const int64_t x3[3] = {4, 3, 2}, i5[1] = {5};
  bottom_random(h, 3, x3, 0);
  bottom(h, 1, i5, (const float[]){3, 3, 0, 1, 3});
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 2};
  grad_check(h, &o);
  lh_destroy(h);
  h = layer("BatchReindex");
  bottom(h, 2, xs, NULL);
  bottom(h, 1, is, (const float[]){0, 3, 1, 1});
  lh_add_top(h);
  expect_error(h, NS_ERR_INPUT, "[0, 3)");
  lh_destroy(h);
  h = layer("BatchReindex");
  bottom(h, 2, xs, NULL);
  bottom(h, 2, xs, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "1 axis");
  lh_destroy(h);
}

/* ---- SPP ----------------------------------------------------------------- */

static lh_harness *spp_layer(Caffe__SPPParameter *p, int height, int pool) {
  lh_harness *h = layer("SPP");
  p->has_pyramid_height = 1;
  p->pyramid_height = (uint32_t)height;
  p->has_pool = 1;
  p->pool = (Caffe__SPPParameter__PoolMethod)pool;
  h->param.spp_param = p;
  return h;
}

static void test_spp_forward(void **state) {
  /* Channel 0 = 1..9 as a 3 x 3 grid, channel 1 = 11..19.  Level 0: one
   * 3 x 3 window.  Level 1 (2 x 2 bins): kernel ceil(3 / 2) = 2, stride 2,
   * pad (2 * 2 - 3 + 1) / 2 = 1, so the windows are rows/columns {0} and
   * {1, 2}: MAX 1 3 7 9; AVE divides by the window with its padding
   * (2 x 2 = 4): 1 / 4, (2 + 3) / 4, (4 + 7) / 4, (5 + 6 + 8 + 9) / 4, and
   * 11 / 4, (12 + 13) / 4, (14 + 17) / 4, (15 + 16 + 18 + 19) / 4. */
  float x[18];
  for (int i = 0; i < 9; i++) x[i] = (float)(i + 1), x[9 + i] = (float)(i + 11);
  const int64_t xs[4] = {1, 2, 3, 3};
  const float want_max[10] = {9, 19, 1, 3, 7, 9, 11, 13, 17, 19};
  const float want_ave[10] = {5, 15, 0.25f, 1.25f, 2.75f, 7, 2.75f, 6.25f, 7.75f, 17};
  for (int ave = 0; ave < 2; ave++) {
    Caffe__SPPParameter p = CAFFE__SPPPARAMETER__INIT;
    lh_harness *h = spp_layer(&p, 2, ave);
    bottom(h, 4, xs, x);
    ns_blob *top = lh_add_top(h);
    run_ok(h);
    const int64_t ts[2] = {1, 10};
    assert_shape(top, 2, ts);
    assert_floats(top->data, ave ? want_ave : want_max, 10, 1e-6);
    lh_destroy(h);
  }
  /* pyramid_height 1: the pooling's own 4-D top, (1, 2, 1, 1). */
  Caffe__SPPParameter p = CAFFE__SPPPARAMETER__INIT;
  lh_harness *h = spp_layer(&p, 1, 0);
  bottom(h, 4, xs, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const int64_t t1[4] = {1, 2, 1, 1};
  assert_shape(top, 4, t1);
  assert_floats(top->data, (const float[]){9, 19}, 2, 0);
  /* A new input size remakes the levels: 1 x 1 at level 0 of a 2 x 2 grid. */
  const int64_t xs2[4] = {1, 2, 2, 2};
  assert_int_equal(ns_blob_reshape(h->ctx, h->layer.bottom[0], 4, xs2), NS_OK);
  for (int i = 0; i < 8; i++) h->layer.bottom[0]->data[i] = (float)(i * (i % 2 ? 1 : -1));
  assert_int_equal(lh_rerun(h), NS_OK);
  assert_floats(top->data, (const float[]){3, 7}, 2, 0);
  lh_destroy(h);
}

static void test_spp_backward(void **state) {
  for (int ave = 0; ave < 2; ave++) {
    Caffe__SPPParameter p = CAFFE__SPPPARAMETER__INIT;
    lh_harness *h = spp_layer(&p, 3, ave); /* 7 x 6: every level's pad below its kernel */
    const int64_t xs[4] = {2, 2, 7, 6};
    ns_blob *b = bottom(h, 4, xs, NULL);
    /* distinct values 0.05 apart: no ties within the step in MAX */
    for (int64_t i = 0; i < b->count; i++) b->data[i] = 0.05f * (float)((i * 37) % b->count);
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_spp_errors(void **state) {
  Caffe__SPPParameter p = CAFFE__SPPPARAMETER__INIT;
  lh_harness *h = layer("SPP");
  const int64_t xs[4] = {1, 1, 1, 1};
  bottom(h, 4, xs, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "pyramid_height");
  lh_destroy(h);
  /* 1 x 1 with 2 levels: level 1 has kernel 1, pad 1; Caffe's Pooling
   * refuses a pad that is not below the kernel, and so do we. */
  h = spp_layer(&p, 2, 0);
  bottom(h, 4, xs, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "pad");
  lh_destroy(h);
  h = spp_layer(&p, 2, 0);
  const int64_t x3[3] = {1, 4, 4};
  bottom(h, 3, x3, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "4 axes");
  lh_destroy(h);
}

/* ---- Im2col -------------------------------------------------------------- */

static lh_harness *im2col_layer(Caffe__ConvolutionParameter *p, uint32_t *kernel, uint32_t *stride,
                                uint32_t *pad, uint32_t *dilation) {
  lh_harness *h = layer("Im2col");
  p->n_kernel_size = 1;
  p->kernel_size = kernel;
  p->n_stride = stride ? 1 : 0;
  p->stride = stride;
  p->n_pad = pad ? 1 : 0;
  p->pad = pad;
  p->n_dilation = dilation ? 1 : 0;
  p->dilation = dilation;
  h->param.convolution_param = p;
  return h;
}

static void test_im2col_forward(void **state) {
  /* Channel 0 = 1..9 as 3 x 3, channel 1 = 11..19.  Kernel 2: top (1, 8,
   * 2, 2); row (c, i, j) lists x[c, oh + i, ow + j] over (oh, ow). */
  float x[18];
  for (int i = 0; i < 9; i++) x[i] = (float)(i + 1), x[9 + i] = (float)(i + 11);
  const int64_t xs[4] = {1, 2, 3, 3};
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t k2 = 2, k3 = 3, s2 = 2, p1 = 1, d2 = 2;
  lh_harness *h = im2col_layer(&p, &k2, NULL, NULL, NULL);
  bottom(h, 4, xs, x);
  ns_blob *top = lh_add_top(h);
  run_ok(h);
  const int64_t ts[4] = {1, 8, 2, 2};
  assert_shape(top, 4, ts);
  const float want[16] = {1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9};
  assert_floats(top->data, want, 16, 0);
  for (int i = 0; i < 16; i++) assert_true(top->data[16 + i] == want[i] + 10);
  lh_destroy(h);
  /* Kernel 3, stride 2, pad 1: 2 x 2 outputs at rows/cols -1 and 1 of the
   * window's top-left tap; tap (0, 0) sees only x[1][1] = 5 inside, the
   * centre tap (1, 1) sees rows/cols 0 and 2: 1 3 7 9. */
  Caffe__ConvolutionParameter q = CAFFE__CONVOLUTION_PARAMETER__INIT;
  h = im2col_layer(&q, &k3, &s2, &p1, NULL);
  bottom(h, 4, xs, x);
  top = lh_add_top(h);
  run_ok(h);
  const int64_t ts3[4] = {1, 18, 2, 2};
  assert_shape(top, 4, ts3);
  assert_floats(top->data, (const float[]){0, 0, 0, 5}, 4, 0);
  assert_floats(top->data + 4 * 4, (const float[]){1, 3, 7, 9}, 4, 0);
  lh_destroy(h);
  /* Kernel 2 with dilation 2: one output whose taps are the corners. */
  Caffe__ConvolutionParameter r = CAFFE__CONVOLUTION_PARAMETER__INIT;
  h = im2col_layer(&r, &k2, NULL, NULL, &d2);
  bottom(h, 4, xs, x);
  top = lh_add_top(h);
  run_ok(h);
  const int64_t tsd[4] = {1, 8, 1, 1};
  assert_shape(top, 4, tsd);
  assert_floats(top->data, (const float[]){1, 3, 7, 9, 11, 13, 17, 19}, 8, 0);
  lh_destroy(h);
  /* 1-D: (2, 1, 5) with kernel 3 -> (2, 3, 3), row k = x[j + k]. */
  Caffe__ConvolutionParameter t = CAFFE__CONVOLUTION_PARAMETER__INIT;
  h = im2col_layer(&t, &k3, NULL, NULL, NULL);
  const int64_t x1[3] = {2, 1, 5};
  bottom(h, 3, x1, (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  top = lh_add_top(h);
  run_ok(h);
  const int64_t t1[3] = {2, 3, 3};
  assert_shape(top, 3, t1);
  assert_floats(top->data, (const float[]){1, 2, 3, 2, 3, 4, 3, 4, 5, 6, 7, 8, 7, 8, 9, 8, 9, 10},
                18, 0);
  lh_destroy(h);
}

static void test_im2col_backward(void **state) {
  uint32_t k2 = 2, k3 = 3, s2 = 2, p1 = 1, d2 = 2;
  const struct {
    uint32_t *k, *s, *p, *d;
    int axes;
  } cases[] = {{&k3, &s2, &p1, NULL, 4}, {&k2, NULL, &p1, &d2, 4}, {&k3, NULL, NULL, NULL, 3}};
  for (int c = 0; c < 3; c++) {
    Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
    lh_harness *h = im2col_layer(&p, cases[c].k, cases[c].s, cases[c].p, cases[c].d);
    const int64_t xs[4] = {2, 3, 5, 4}, x1[3] = {2, 3, 7};
    bottom_random(h, cases[c].axes, cases[c].axes == 4 ? xs : x1, 0);
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  lh_harness *h = layer("Im2col");
  h->param.convolution_param = &p;
  const int64_t xs[4] = {1, 1, 3, 3};
  bottom(h, 4, xs, NULL);
  lh_add_top(h);
  expect_error(h, NS_ERR_NET, "kernel_size");
  lh_destroy(h);
}

/* ---- in a net, from a prototxt ------------------------------------------- */

/* Every new layer's *_param read from text, the layers chained in a net:
 * x = 1 2 3 4 -> Tile (x2 on the default axis 1) -> SUMSQ over axis 1: 2 (1 + 4 + 9 +
 * 16) = 60 -> Threshold 59.5: 1.  Embed (3 x 2, W = 2, b = 1) of the
 * indices 2 0: 3 everywhere. */
static void test_in_a_net(void **state) {
  static const char *text =
      "layer { name: 'x' type: 'Input' top: 'x' input_param { shape { dim: 1 dim: 4 } } }\n"
      "layer { name: 'idx' type: 'Input' top: 'idx' input_param { shape { dim: 2 } } }\n"
      "layer { name: 'tile' type: 'Tile' bottom: 'x' top: 'tiled'\n"
      "  tile_param { tiles: 2 } }\n"
      "layer { name: 'sq' type: 'Reduction' bottom: 'tiled' top: 'sq'\n"
      "  reduction_param { operation: SUMSQ axis: 1 coeff: 1 } }\n"
      "layer { name: 'thr' type: 'Threshold' bottom: 'sq' top: 'thr'\n"
      "  threshold_param { threshold: 59.5 } }\n"
      "layer { name: 'mvn' type: 'MVN' bottom: 'x' top: 'mvn'\n"
      "  mvn_param { normalize_variance: false across_channels: true eps: 1e-5 } }\n"
      "layer { name: 'sw' type: 'Swish' bottom: 'mvn' top: 'mvn' swish_param { beta: 1 } }\n"
      "layer { name: 'emb' type: 'Embed' bottom: 'idx' top: 'emb'\n"
      "  embed_param { num_output: 2 input_dim: 3 bias_term: true\n"
      "    weight_filler { type: 'constant' value: 2 } bias_filler { type: 'constant' value: 1 } } }\n";
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load_net(ctx, text);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "x"));
  for (int i = 0; i < 4; i++) x.data[i] = (float)(i + 1);
  ns_tensor idx = ns_net_blob(net, ns_net_find_blob(net, "idx"));
  idx.data[0] = 2;
  idx.data[1] = 0;
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  ns_tensor sq = ns_net_blob(net, ns_net_find_blob(net, "sq"));
  ns_tensor thr = ns_net_blob(net, ns_net_find_blob(net, "thr"));
  assert_int_equal(sq.count, 1);
  assert_close(sq.data[0], 60, 1e-4);
  assert_true(thr.data[0] == 1);
  /* MVN without variance: 1 2 3 4 - 2.5; then Swish: d / (1 + e^-d);
   * -1.5 -> -1.5 / (1 + 4.4816891) = -0.2736381, 1.5 -> 1.5 / 1.2231302 = 1.2263619. */
  ns_tensor mvn = ns_net_blob(net, ns_net_find_blob(net, "mvn"));
  assert_int_equal(mvn.count, 4);
  assert_close(mvn.data[0], -0.2736381f, 1e-6);
  assert_close(mvn.data[3], 1.2263619f, 1e-6);
  ns_tensor emb = ns_net_blob(net, ns_net_find_blob(net, "emb"));
  assert_int_equal(emb.count, 4);
  for (int i = 0; i < 4; i++) assert_true(emb.data[i] == 3);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* Training through the public API: a Parameter blob (zeros, as Caffe
 * leaves it) scored by HingeLoss L1 against labels 2, 0.  Every
 * t = max(0, 1 +- 0) = 1: loss 6 / 2 = 3; the param's gradient is
 * -0.5 at each label and +0.5 elsewhere. */
static void test_trains_in_a_net(void **state) {
  static const char *text =
      "layer { name: 'label' type: 'Input' top: 'label' input_param { shape { dim: 2 } } }\n"
      "layer { name: 'scores' type: 'Parameter' top: 'scores'\n"
      "  parameter_param { shape { dim: 2 dim: 3 } } }\n"
      "layer { name: 'loss' type: 'HingeLoss' bottom: 'scores' bottom: 'label' top: 'loss'\n"
      "  hinge_loss_param { norm: L1 } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "train.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, &(ns_net_opts){NS_PHASE_TRAIN, 1, NULL}, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor label = ns_net_blob(net, ns_net_find_blob(net, "label"));
  label.data[0] = 2;
  label.data[1] = 0;
  float loss = 0;
  assert_int_equal(ns_net_forward_loss(ctx, net, &loss), NS_OK);
  assert_close(loss, 3, 1e-6);
  ns_net_clear_param_diffs(net);
  if (ns_net_backward(ctx, net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(ns_net_learnable_count(net), 1);
  ns_learnable p;
  assert_int_equal(ns_net_learnable(net, 0, &p), NS_OK);
  const float want[6] = {0.5f, 0.5f, -0.5f, -0.5f, 0.5f, 0.5f};
  assert_floats(p.diff, want, 6, 1e-6);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  ns_rng_seed(&data_rng, 2026);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threshold),
      cmocka_unit_test(test_tile_forward),
      cmocka_unit_test(test_tile_backward),
      cmocka_unit_test(test_tile_errors),
      cmocka_unit_test(test_reduction_forward),
      cmocka_unit_test(test_reduction_backward),
      cmocka_unit_test(test_mvn_forward),
      cmocka_unit_test(test_mvn_shapes),
      cmocka_unit_test(test_mvn_backward),
      cmocka_unit_test(test_swish),
      cmocka_unit_test(test_parameter),
      cmocka_unit_test(test_embed_forward),
      cmocka_unit_test(test_embed_backward),
      cmocka_unit_test(test_embed_errors),
      cmocka_unit_test(test_hinge_loss),
      cmocka_unit_test(test_hinge_loss_backward),
      cmocka_unit_test(test_multinomial_loss),
      cmocka_unit_test(test_multinomial_loss_backward),
      cmocka_unit_test(test_contrastive_loss),
      cmocka_unit_test(test_contrastive_loss_backward),
      cmocka_unit_test(test_contrastive_loss_errors),
      cmocka_unit_test(test_infogain_loss),
      cmocka_unit_test(test_infogain_loss_source),
      cmocka_unit_test(test_infogain_loss_backward),
      cmocka_unit_test(test_filter),
      cmocka_unit_test(test_filter_in_a_net),
      cmocka_unit_test(test_batch_reindex),
      cmocka_unit_test(test_spp_forward),
      cmocka_unit_test(test_spp_backward),
      cmocka_unit_test(test_spp_errors),
      cmocka_unit_test(test_im2col_forward),
      cmocka_unit_test(test_im2col_backward),
      cmocka_unit_test(test_in_a_net),
      cmocka_unit_test(test_trains_in_a_net),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
