/* The forks' layers (issue 13): Interp, Upsample, ShuffleChannel, Axpy,
 * BN, ReLU6 and the depthwise convolution types.  Forward values are
 * worked by hand from the forks' formulas (cited in each layer's file);
 * backward is checked against central differences of E = sum w_i y_i
 * (h = 1e-2, as test_backward.c); errors name the layer and field. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/layer.h"
#include "netsurg.h"
#include "support/grad_check.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

#define TOL 2e-3

static void expect(const ns_blob *b, const float *want, int64_t n, double tol) {
  assert_int_equal(b->count, n);
  for (int64_t i = 0; i < n; i++)
    if (fabs(b->data[i] - want[i]) > tol)
      fail_msg("element %lld: got %.7g, want %.7g", (long long)i, (double)b->data[i],
               (double)want[i]);
}

static void expect_shape(const ns_blob *b, int64_t n, int64_t c, int64_t h, int64_t w) {
  assert_int_equal(b->num_axes, 4);
  assert_int_equal(b->shape[0], n);
  assert_int_equal(b->shape[1], c);
  assert_int_equal(b->shape[2], h);
  assert_int_equal(b->shape[3], w);
}

/* Central differences against backward for every bottom in `which`
 * (a bit per bottom); the harness has run once. */
static void check_gradient(lh_harness *h, unsigned which) {
  grad_check(h, &(gc_opts){.tol = TOL, .setup_done = 1, .skip_bottoms = ~which});
}

static void random_fill(float *x, int64_t n, unsigned seed) {
  ns_rng rng;
  ns_rng_seed(&rng, seed);
  for (int64_t i = 0; i < n; i++) x[i] = ns_rng_uniform(&rng, -1, 1);
}

/* ---- Interp ---- */

static lh_harness *interp_layer(Caffe__InterpParameter *p, int64_t h, int64_t w, const float *x) {
  lh_harness *hh = lh_create("Interp");
  assert_non_null(hh);
  hh->param.interp_param = p;
  const int64_t shape[4] = {1, 1, h, w};
  assert_non_null(lh_add_bottom(hh, 4, shape, x));
  lh_add_top(hh);
  return hh;
}

/* zoom_factor 2 on 2x2: 3x3 with the corners kept (align corners) and the
 * midpoints averaged. */
static void test_interp_zoom_corners(void **state) {
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_zoom_factor = 1;
  p.zoom_factor = 2;
  const float x[4] = {1, 2, 3, 4};
  lh_harness *h = interp_layer(&p, 2, 2, x);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 1, 3, 3);
  const float want[9] = {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
  expect(h->top[0], want, 9, 1e-6);
  lh_destroy(h);
}

/* height/width 3x5 from 2x3: rows at 0, 0.5, 1; columns at 0, 0.5, 1,
 * 1.5, 2 of the input grid. */
static void test_interp_height_width(void **state) {
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_height = p.has_width = 1;
  p.height = 3;
  p.width = 5;
  const float x[6] = {0, 2, 8, 4, 6, 0};
  lh_harness *h = interp_layer(&p, 2, 3, x);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 1, 3, 5);
  const float want[15] = {0, 1, 2, 5, 8, 2, 3, 4, 4, 4, 4, 5, 6, 3, 0};
  expect(h->top[0], want, 15, 1e-5);
  lh_destroy(h);
}

/* shrink_factor 2 on 5x5: (5 - 1) / 2 + 1 = 3, sampling rows and columns
 * 0, 2, 4 exactly; then with zoom_factor 2 as well, 3 -> 5 again. */
static void test_interp_shrink_then_zoom(void **state) {
  float x[25];
  for (int i = 0; i < 25; i++) x[i] = (float)i;
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_shrink_factor = 1;
  p.shrink_factor = 2;
  lh_harness *h = interp_layer(&p, 5, 5, x);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[9] = {0, 2, 4, 10, 12, 14, 20, 22, 24};
  expect(h->top[0], want, 9, 1e-5);
  lh_destroy(h);
  p.has_zoom_factor = 1;
  p.zoom_factor = 2;
  h = interp_layer(&p, 5, 5, x);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 1, 5, 5);
  expect(h->top[0], x, 25, 1e-5); /* a linear ramp survives both */
  lh_destroy(h);
}

/* pad_beg = pad_end = -1 crop a 4x4 to its inner 2x2; height/width 2x2:
 * the fork's plain copy of the crop.  Height/width 1x1: r = 0, the crop's
 * first value. */
static void test_interp_crop(void **state) {
  float x[16];
  for (int i = 0; i < 16; i++) x[i] = (float)i;
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_height = p.has_width = 1;
  p.height = p.width = 2;
  p.pad_beg = p.pad_end = -1;
  lh_harness *h = interp_layer(&p, 4, 4, x);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[4] = {5, 6, 9, 10};
  expect(h->top[0], want, 4, 0);
  lh_destroy(h);
  p.height = p.width = 1;
  h = interp_layer(&p, 4, 4, x);
  assert_int_equal(lh_run(h), NS_OK);
  const float first[1] = {5};
  expect(h->top[0], first, 1, 0);
  lh_destroy(h);
}

static void test_interp_gradient(void **state) {
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_height = p.has_width = 1;
  p.height = 5;
  p.width = 7;
  p.pad_beg = -1;
  float x[2 * 3 * 5 * 5];
  random_fill(x, 150, 5);
  lh_harness *h = lh_create("Interp");
  h->param.interp_param = &p;
  const int64_t shape[4] = {2, 3, 5, 5};
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  check_gradient(h, 1);
  lh_destroy(h);
}

static void expect_failure(lh_harness *h, ns_status st, const char *needle) {
  assert_int_equal(lh_run(h), st);
  if (!strstr(ns_ctx_error(h->ctx), needle))
    fail_msg("error '%s' does not name '%s'", ns_ctx_error(h->ctx), needle);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'t'"));
  lh_destroy(h);
}

static void test_interp_errors(void **state) {
  const float x[4] = {0};
  expect_failure(interp_layer(NULL, 2, 2, x), NS_ERR_NET, "interp_param");
  Caffe__InterpParameter p = CAFFE__INTERP_PARAMETER__INIT;
  p.has_zoom_factor = 1; /* zoom 0 */
  p.zoom_factor = 0;
  expect_failure(interp_layer(&p, 2, 2, x), NS_ERR_NET, "zoom_factor");
  Caffe__InterpParameter pad = CAFFE__INTERP_PARAMETER__INIT;
  pad.has_zoom_factor = 1;
  pad.zoom_factor = 2;
  pad.pad_end = 1;
  expect_failure(interp_layer(&pad, 2, 2, x), NS_ERR_UNSUPPORTED, "pad_end");
  Caffe__InterpParameter none = CAFFE__INTERP_PARAMETER__INIT;
  none.has_height = 1;
  none.height = 3;
  expect_failure(interp_layer(&none, 2, 2, x), NS_ERR_NET, "height and width");
  Caffe__InterpParameter crop = CAFFE__INTERP_PARAMETER__INIT;
  crop.has_zoom_factor = 1;
  crop.zoom_factor = 1;
  crop.pad_beg = -1;
  crop.pad_end = -1;
  expect_failure(interp_layer(&crop, 2, 2, x), NS_ERR_NET, "pads leave");
}

/* ---- Upsample ---- */

/* One bottom: nearest neighbour, each value repeated scale x scale. */
static void test_upsample_nearest(void **state) {
  Caffe__UpsampleParameter p = CAFFE__UPSAMPLE_PARAMETER__INIT;
  p.has_scale = 1;
  p.scale = 2;
  lh_harness *h = lh_create("Upsample");
  h->param.upsample_param = &p;
  const float x[4] = {1, 2, 3, 4};
  const int64_t shape[4] = {1, 1, 2, 2};
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 1, 4, 4);
  const float want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  expect(h->top[0], want, 16, 0);
  check_gradient(h, 1);
  lh_destroy(h);
}

static lh_harness *unpool_layer(Caffe__UpsampleParameter *p, const float *x, const float *mask) {
  lh_harness *h = lh_create("Upsample");
  h->param.upsample_param = p;
  const int64_t shape[4] = {1, 2, 2, 2};
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  assert_non_null(lh_add_bottom(h, 4, shape, mask));
  lh_add_top(h);
  return h;
}

/* Two bottoms: each value goes where its mask index says in a zeroed
 * output; pad_out_h makes the output 2 H - 1 rows. */
static void test_upsample_with_mask(void **state) {
  Caffe__UpsampleParameter p = CAFFE__UPSAMPLE_PARAMETER__INIT; /* scale 2 */
  const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const float mask[8] = {0, 3, 13, 10, 5, 6, 9, 15};
  lh_harness *h = unpool_layer(&p, x, mask);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 2, 4, 4);
  float want[32] = {0};
  want[0] = 1, want[3] = 2, want[13] = 3, want[10] = 4;
  want[16 + 5] = 5, want[16 + 6] = 6, want[16 + 9] = 7, want[16 + 15] = 8;
  expect(h->top[0], want, 32, 0);
  check_gradient(h, 1);
  lh_destroy(h);

  p.pad_out_h = 1;
  const float small_mask[8] = {0, 1, 4, 11, 0, 1, 2, 3};
  h = unpool_layer(&p, x, small_mask);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 2, 3, 4);
  lh_destroy(h);
  /* index 12 is past the 3x4 plane: an error, not a write out of bounds */
  const float bad_mask[8] = {0, 1, 4, 12, 0, 1, 2, 3};
  expect_failure(unpool_layer(&p, x, bad_mask), NS_ERR_NET, "mask value 12");
  const float nan_mask[8] = {0, 1, 4, NAN, 0, 1, 2, 3};
  expect_failure(unpool_layer(&p, x, nan_mask), NS_ERR_NET, "mask value");
}

static void test_upsample_errors(void **state) {
  const float x[8] = {0};
  Caffe__UpsampleParameter p = CAFFE__UPSAMPLE_PARAMETER__INIT;
  p.scale = 1; /* SegNet needs > 1 */
  expect_failure(unpool_layer(&p, x, x), NS_ERR_NET, "scale");
  Caffe__UpsampleParameter q = CAFFE__UPSAMPLE_PARAMETER__INIT;
  q.scale = 3;
  q.pad_out_w = 1;
  expect_failure(unpool_layer(&q, x, x), NS_ERR_NET, "pad_out");
  Caffe__UpsampleParameter z = CAFFE__UPSAMPLE_PARAMETER__INIT;
  z.scale = 0;
  lh_harness *h = lh_create("Upsample");
  h->param.upsample_param = &z;
  const int64_t shape[4] = {1, 2, 2, 2};
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  lh_add_top(h);
  expect_failure(h, NS_ERR_NET, "scale");
}

/* ---- ShuffleChannel ---- */

static void check_shuffle(int group, const int *order) {
  Caffe__ShuffleChannelParameter p = CAFFE__SHUFFLE_CHANNEL_PARAMETER__INIT;
  p.has_group = 1;
  p.group = (uint32_t)group;
  lh_harness *h = lh_create("ShuffleChannel");
  h->param.shuffle_channel_param = &p;
  float x[2 * 6 * 2];
  for (int i = 0; i < 24; i++) x[i] = (float)i; /* item n, channel c, k: 12 n + 2 c + k */
  const int64_t shape[3] = {2, 6, 2};
  assert_non_null(lh_add_bottom(h, 3, shape, x));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  float want[24];
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 6; c++)
      for (int k = 0; k < 2; k++) want[12 * n + 2 * c + k] = (float)(12 * n + 2 * order[c] + k);
  expect(h->top[0], want, 24, 0);
  check_gradient(h, 1);
  lh_destroy(h);
}

/* Output channel c reads input channel order[c]: group 2 of 6 is
 * [0 1 2 | 3 4 5] read column-wise, 0 3 1 4 2 5; group 3, 0 2 4 1 3 5. */
static void test_shuffle_channel_orders(void **state) {
  const int g2[6] = {0, 3, 1, 4, 2, 5}, g3[6] = {0, 2, 4, 1, 3, 5}, g1[6] = {0, 1, 2, 3, 4, 5};
  check_shuffle(2, g2);
  check_shuffle(3, g3);
  check_shuffle(1, g1);
  check_shuffle(6, g1); /* 6 x 1 transposed: unchanged too */
  Caffe__ShuffleChannelParameter p = CAFFE__SHUFFLE_CHANNEL_PARAMETER__INIT;
  p.has_group = 1;
  p.group = 4;
  lh_harness *h = lh_create("ShuffleChannel");
  h->param.shuffle_channel_param = &p;
  const int64_t shape[2] = {1, 6};
  assert_non_null(lh_add_bottom(h, 2, shape, NULL));
  lh_add_top(h);
  expect_failure(h, NS_ERR_NET, "group 4");
}

/* ---- Axpy ---- */

static lh_harness *axpy_layer(const float *a, const float *x, const float *y, int in_place) {
  lh_harness *h = lh_create("Axpy");
  const int64_t ashape[4] = {1, 2, 1, 1}, xshape[4] = {1, 2, 1, 3};
  assert_non_null(lh_add_bottom(h, 4, ashape, a));
  assert_non_null(lh_add_bottom(h, 4, xshape, x));
  assert_non_null(lh_add_bottom(h, 4, xshape, y));
  if (in_place)
    lh_add_top_in_place(h, 2);
  else
    lh_add_top(h);
  return h;
}

static void test_axpy(void **state) {
  const float a[2] = {2, -0.5f}, x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {10, 20, 30, 40, 50, 60};
  const float want[6] = {12, 24, 36, 38, 47.5f, 57};
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = axpy_layer(a, x, y, in_place);
    assert_int_equal(lh_run(h), NS_OK);
    expect(h->top[0], want, 6, 1e-6);
    if (!in_place) check_gradient(h, 7);
    lh_destroy(h);
  }
  lh_harness *h = lh_create("Axpy");
  const int64_t bad[4] = {1, 2, 2, 1}, xshape[4] = {1, 2, 2, 1};
  assert_non_null(lh_add_bottom(h, 4, bad, NULL));
  assert_non_null(lh_add_bottom(h, 4, xshape, NULL));
  assert_non_null(lh_add_bottom(h, 4, xshape, NULL));
  lh_add_top(h);
  expect_failure(h, NS_ERR_NET, "(N, C, 1, 1)");
}

/* ---- BN ---- */

static lh_harness *bn_layer(Caffe__BNParameter *p, const float *x) {
  lh_harness *h = lh_create("BN");
  h->param.bn_param = p;
  const int64_t shape[4] = {2, 2, 1, 2}; /* channel 0: x[0,1,4,5]; 1: x[2,3,6,7] */
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  lh_add_top(h);
  return h;
}

static void set_param(lh_harness *h, int i, float c0, float c1) {
  h->layer.params[i]->data[0] = c0;
  h->layer.params[i]->data[1] = c1;
}

/* PSPNet's form in TEST: the stored statistics, y = slope (x - mean) /
 * sqrt(var + eps) + bias (eps 1e-5 by default; var + eps = 4, 0.25). */
static void test_bn_pspnet_stored(void **state) {
  Caffe__BNParameter p = CAFFE__BNPARAMETER__INIT;
  const float x[8] = {1, 3, 0, 1, 5, -1, 2, -2};
  lh_harness *h = bn_layer(&p, x);
  assert_int_equal(lh_setup(h), NS_OK);
  assert_int_equal(h->layer.n_params, 4);
  assert_int_equal(h->layer.params[0]->num_axes, 4); /* (1, C, 1, 1) as the fork stores */
  set_param(h, 0, 2, -1);
  set_param(h, 1, 0.5f, 1);
  set_param(h, 2, 1, 0);
  set_param(h, 3, 4 - 1e-5f, 0.25f - 1e-5f);
  assert_int_equal(h->layer.ops->reshape(h->ctx, &h->layer), NS_OK);
  assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
  const float want[8] = {0.5f, 2.5f, 1, -1, 4.5f, -1.5f, -3, 5};
  expect(h->top[0], want, 8, 1e-4);
  lh_destroy(h);
}

/* TRAIN without frozen: the batch's statistics (channel 0: 1, 3, 5, -1:
 * mean 2, variance 5; channel 1: 0, 1, 2, -2: mean 0.25, variance 2.1875)
 * and the moving averages moved by momentum 0.5.  frozen: the stored ones
 * even in TRAIN, and the variance starts at 1. */
static void test_bn_pspnet_batch_and_frozen(void **state) {
  Caffe__BNParameter p = CAFFE__BNPARAMETER__INIT;
  p.has_momentum = 1;
  p.momentum = 0.5f;
  p.has_eps = 1;
  p.eps = 0;
  const float x[8] = {1, 3, 0, 1, 5, -1, 2, -2};
  lh_harness *h = bn_layer(&p, x);
  h->net.phase = NS_PHASE_TRAIN;
  assert_int_equal(lh_setup(h), NS_OK);
  set_param(h, 0, 1, 1);
  set_param(h, 1, 0, 0);
  set_param(h, 2, 10, 10);
  set_param(h, 3, 3, 3);
  assert_int_equal(h->layer.ops->reshape(h->ctx, &h->layer), NS_OK);
  assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
  const float s0 = 1 / sqrtf(5), s1 = 1 / sqrtf(2.1875f);
  const float want[8] = {-1 * s0, 1 * s0,  -0.25f * s1, 0.75f * s1,
                         3 * s0,  -3 * s0, 1.75f * s1,  -2.25f * s1};
  expect(h->top[0], want, 8, 1e-5);
  const float mean_after[2] = {6, 5.125f}, var_after[2] = {4, 2.59375f};
  expect(h->layer.params[2], mean_after, 2, 1e-5);
  expect(h->layer.params[3], var_after, 2, 1e-5);
  lh_destroy(h);

  p.has_frozen = 1;
  p.frozen = 1;
  h = bn_layer(&p, x);
  h->net.phase = NS_PHASE_TRAIN;
  assert_int_equal(lh_setup(h), NS_OK);
  assert_true(h->layer.params[3]->data[0] == 1 && h->layer.params[2]->data[1] == 0);
  set_param(h, 0, 1, 1);
  assert_int_equal(h->layer.ops->reshape(h->ctx, &h->layer), NS_OK);
  assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
  expect(h->top[0], x, 8, 1e-6); /* mean 0, var 1, slope 1, bias 0 */
  lh_destroy(h);
}

/* SegNet's form: two params; INFERENCE is scale x + shift; LEARN the
 * batch's E[x^2] - mean^2 (also in TEST), eps 1e-9. */
static void test_bn_segnet(void **state) {
  const float x[8] = {1, 3, 0, 1, 5, -1, 2, -2};
  for (int inference = 0; inference < 2; inference++) {
    Caffe__BNParameter p = CAFFE__BNPARAMETER__INIT;
    p.has_bn_mode = 1;
    p.bn_mode =
        inference ? CAFFE__BNPARAMETER__BNMODE__INFERENCE : CAFFE__BNPARAMETER__BNMODE__LEARN;
    lh_harness *h = bn_layer(&p, x);
    assert_int_equal(lh_setup(h), NS_OK);
    assert_int_equal(h->layer.n_params, 2);
    set_param(h, 0, 2, -1);
    set_param(h, 1, 0.5f, 1);
    assert_int_equal(h->layer.ops->reshape(h->ctx, &h->layer), NS_OK);
    assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
    float want[8];
    for (int i = 0; i < 8; i++) {
      int c = (i / 2) % 2;
      float scale = c ? -1 : 2, shift = c ? 1 : 0.5f, mean = c ? 0.25f : 2;
      float sd = c ? sqrtf(2.1875f) : sqrtf(5);
      want[i] = inference ? scale * x[i] + shift : scale * (x[i] - mean) / sd + shift;
    }
    expect(h->top[0], want, 8, 1e-5);
    lh_destroy(h);
  }
}

/* ---- ReLU6 ---- */

static void test_relu6(void **state) {
  lh_harness *h = lh_create("ReLU6");
  const float x[6] = {-3, 0, 2.5f, 6, 7, -0.0f};
  const float want[6] = {0, 0, 2.5f, 6, 6, 0};
  const int64_t shape[1] = {6};
  assert_non_null(lh_add_bottom(h, 1, shape, x));
  lh_add_top_in_place(h, 0);
  assert_int_equal(lh_run(h), NS_OK);
  expect(h->bottom[0], want, 6, 0);
  lh_destroy(h);
}

/* ---- the depthwise convolution types ---- */

/* ConvolutionDepthwise: one 3x3 filter per channel whatever num_output
 * says; weights of ones and pad 1 give each channel's 3x3 box sums. */
static void test_convolution_depthwise(void **state) {
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t k = 3, pad = 1;
  p.n_kernel_size = p.n_pad = 1;
  p.kernel_size = &k;
  p.pad = &pad;
  p.has_num_output = 1;
  p.num_output = 7; /* ignored, as the fork does */
  p.has_bias_term = 1;
  p.bias_term = 0;
  lh_harness *h = lh_create("ConvolutionDepthwise");
  h->param.convolution_param = &p;
  float x[2 * 3 * 3];
  for (int i = 0; i < 18; i++) x[i] = i < 9 ? 1.0f : 2.0f;
  const int64_t shape[4] = {1, 2, 3, 3};
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  lh_add_top(h);
  assert_int_equal(lh_setup(h), NS_OK);
  const ns_blob *w = h->layer.params[0];
  assert_int_equal(w->shape[0], 2);
  assert_int_equal(w->shape[1], 1);
  for (int64_t i = 0; i < w->count; i++) w->data[i] = 1;
  assert_int_equal(h->layer.ops->reshape(h->ctx, &h->layer), NS_OK);
  assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
  expect_shape(h->top[0], 1, 2, 3, 3);
  const float box[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  float want[18];
  for (int i = 0; i < 18; i++) want[i] = box[i % 9] * (i < 9 ? 1 : 2);
  expect(h->top[0], want, 18, 1e-5);
  lh_destroy(h);
}

/* DepthwiseConvolution is Convolution as written: group from the file. */
static void test_depthwise_convolution_keeps_group(void **state) {
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t k = 1;
  p.n_kernel_size = 1;
  p.kernel_size = &k;
  p.has_num_output = p.has_group = 1;
  p.num_output = 4;
  p.group = 2;
  lh_harness *h = lh_create("DepthwiseConvolution");
  h->param.convolution_param = &p;
  const int64_t shape[4] = {1, 2, 2, 2};
  assert_non_null(lh_add_bottom(h, 4, shape, NULL));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  expect_shape(h->top[0], 1, 4, 2, 2);
  assert_int_equal(h->layer.params[0]->shape[1], 1);
  assert_int_equal(ns_layer_param_rank("ConvolutionDepthwise", 0), 4);
  lh_destroy(h);
}

/* ---- in a net: Pooling's mask top feeding Upsample, from a prototxt ---- */

static void test_pooling_mask_unpools(void **state) {
  static const char *text =
      "layer { name: 'data' type: 'Input' top: 'data'\n"
      "  input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n"
      "layer { name: 'pool' type: 'Pooling' bottom: 'data' top: 'pool' top: 'mask'\n"
      "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
      "layer { name: 'up' type: 'Upsample' bottom: 'pool' bottom: 'mask' top: 'up'\n"
      "  upsample_param { scale: 2 } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  const float in[16] = {1, 5, 2, 0, 3, 4, 8, 1, 0, 0, 9, 9, 7, 0, 9, 2};
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  memcpy(x.data, in, sizeof in);
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  /* maxima 5 (index 1), 8 (6), 7 (12), 9 (10: the first of the ties) */
  const float mask[4] = {1, 6, 12, 10};
  ns_tensor m = ns_net_blob(net, ns_net_find_blob(net, "mask"));
  for (int i = 0; i < 4; i++) assert_true(m.data[i] == mask[i]);
  const float want[16] = {0, 5, 0, 0, 0, 0, 8, 0, 0, 0, 9, 0, 7, 0, 0, 0};
  ns_tensor up = ns_net_blob(net, ns_net_find_blob(net, "up"));
  assert_int_equal(up.count, 16);
  for (int i = 0; i < 16; i++) assert_true(up.data[i] == want[i]);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interp_zoom_corners),
      cmocka_unit_test(test_interp_height_width),
      cmocka_unit_test(test_interp_shrink_then_zoom),
      cmocka_unit_test(test_interp_crop),
      cmocka_unit_test(test_interp_gradient),
      cmocka_unit_test(test_interp_errors),
      cmocka_unit_test(test_upsample_nearest),
      cmocka_unit_test(test_upsample_with_mask),
      cmocka_unit_test(test_upsample_errors),
      cmocka_unit_test(test_shuffle_channel_orders),
      cmocka_unit_test(test_axpy),
      cmocka_unit_test(test_bn_pspnet_stored),
      cmocka_unit_test(test_bn_pspnet_batch_and_frozen),
      cmocka_unit_test(test_bn_segnet),
      cmocka_unit_test(test_relu6),
      cmocka_unit_test(test_convolution_depthwise),
      cmocka_unit_test(test_depthwise_convolution_keeps_group),
      cmocka_unit_test(test_pooling_mask_unpools),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
