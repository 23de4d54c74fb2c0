/* The model zoo's layers, one small case each, driven without a net.
 * Expected values come from hand computation or from plain reference
 * loops written here (deconvolution as a scatter over input pixels, crop
 * by index arithmetic, ...), never from the layers themselves. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/layer.h"
#include "core/net.h"

#define TOL 1e-5

/* ---- a one-layer harness ----------------------------------------------- */

#define MAX_IO 4

typedef struct harness {
  ns_ctx *ctx;
  ns_net net;
  ns_layer l;
  Caffe__LayerParameter param;
  ns_blob *bottom[MAX_IO], *top[MAX_IO];
  ns_blob *owned[2 * MAX_IO];
  int n_owned;
} harness;

static harness *h_new(const char *type) {
  harness *h = calloc(1, sizeof *h);
  assert_non_null(h);
  h->ctx = ns_ctx_create();
  assert_non_null(h->ctx);
  Caffe__LayerParameter init = CAFFE__LAYER_PARAMETER__INIT;
  h->param = init;
  h->param.name = (char *)"t";
  h->param.type = (char *)type;
  h->net.ctx = h->ctx;
  h->net.phase = NS_PHASE_TEST; /* a zeroed net would be TRAIN */
  ns_rng_seed(&h->net.rng, 1);
  h->l.ops = ns_layer_find(type);
  if (!h->l.ops) fail_msg("layer type %s is not registered", type);
  h->l.param = &h->param;
  h->l.name = "t";
  h->l.net = &h->net;
  h->l.rng = &h->net.rng;
  h->l.bottom = h->bottom;
  h->l.top = h->top;
  return h;
}

static ns_blob *h_blob(harness *h, int n_axes, const int64_t *shape, const float *data) {
  char name[16];
  snprintf(name, sizeof name, "b%d", h->n_owned);
  ns_blob *b = ns_blob_create(h->ctx, name);
  assert_non_null(b);
  assert_int_equal(ns_blob_reshape(h->ctx, b, n_axes, shape), NS_OK);
  if (data) memcpy(b->data, data, (size_t)b->count * sizeof(float));
  h->owned[h->n_owned++] = b;
  return b;
}

static ns_blob *h_bottom(harness *h, int n_axes, const int64_t *shape, const float *data) {
  ns_blob *b = h_blob(h, n_axes, shape, data);
  h->bottom[h->l.n_bottom++] = b;
  return b;
}

static ns_blob *h_top(harness *h) {
  ns_blob *b = h_blob(h, 0, NULL, NULL);
  h->top[h->l.n_top++] = b;
  return b;
}

static void h_top_in_place(harness *h, int bottom) { h->top[h->l.n_top++] = h->bottom[bottom]; }

/* setup + reshape + forward; the status of the first step that fails. */
static ns_status h_run(harness *h) {
  const ns_layer_ops *o = h->l.ops;
  assert_true(h->l.n_bottom >= o->min_bottoms);
  assert_true(o->max_bottoms < 0 || h->l.n_bottom <= o->max_bottoms);
  assert_true(h->l.n_top >= o->min_tops);
  assert_true(o->max_tops < 0 || h->l.n_top <= o->max_tops);
  ns_status st = o->setup(h->ctx, &h->l);
  if (st == NS_OK) st = o->reshape(h->ctx, &h->l);
  if (st == NS_OK) st = o->forward(h->ctx, &h->l);
  return st;
}

static void h_run_ok(harness *h) {
  if (h_run(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
}

/* Runs, expects failure with status st and `needle` in the message. */
static void h_run_fails(harness *h, ns_status st, const char *needle) {
  ns_status got = h_run(h);
  if (got != st) fail_msg("status %d, expected %d (%s)", got, st, ns_ctx_error(h->ctx));
  if (!strstr(ns_ctx_error(h->ctx), needle))
    fail_msg("error '%s' lacks '%s'", ns_ctx_error(h->ctx), needle);
}

static void h_free(harness *h) {
  if (h->l.ops->destroy && h->l.priv) h->l.ops->destroy(h->ctx, &h->l);
  ns_free(h->ctx, h->l.priv);
  for (int i = 0; i < h->l.n_params; i++) ns_blob_destroy(h->ctx, h->l.params[i]);
  ns_free(h->ctx, h->l.params);
  for (int i = 0; i < h->n_owned; i++) ns_blob_destroy(h->ctx, h->owned[i]);
  ns_floats_free(h->ctx, h->net.scratch);
  ns_ctx_destroy(h->ctx);
  free(h);
}

static void assert_shape(const ns_blob *b, int n_axes, const int64_t *shape) {
  char got[128], want[128];
  ns_shape_str(b->shape, b->num_axes, got, sizeof got);
  ns_shape_str(shape, n_axes, want, sizeof want);
  if (strcmp(got, want) != 0) fail_msg("shape %s, expected %s", got, want);
}

static void assert_near(const float *got, const float *want, int64_t n, double tol) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    if (!(err <= tol * (1.0 + fabs((double)want[i]))))
      fail_msg("element %lld: %.9g, expected %.9g", (long long)i, got[i], want[i]);
  }
}

/* Deterministic values in [-2, 2). */
static void ramp(float *v, int64_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    v[i] = (float)((s >> 8) & 0xffff) / 16384.0f - 2.0f;
  }
}

/* ---- Concat -------------------------------------------------------------- */

static void test_concat_channels(void **state) {
  harness *h = h_new("Concat");
  const int64_t sa[4] = {2, 2, 1, 2}, sb[4] = {2, 1, 1, 2};
  float a[8], b[4];
  for (int i = 0; i < 8; i++) a[i] = (float)i;
  for (int i = 0; i < 4; i++) b[i] = 100.0f + (float)i;
  h_bottom(h, 4, sa, a);
  h_bottom(h, 4, sb, b);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  const int64_t st[4] = {2, 3, 1, 2};
  assert_shape(t, 4, st);
  /* Item n: a's 4 values, then b's 2. */
  const float want[12] = {0, 1, 2, 3, 100, 101, 4, 5, 6, 7, 102, 103};
  assert_near(t->data, want, 12, 0);
  h_free(h);
}

static void test_concat_axis2_and_legacy_dim(void **state) {
  for (int legacy = 0; legacy < 2; legacy++) {
    harness *h = h_new("Concat");
    Caffe__ConcatParameter p = CAFFE__CONCAT_PARAMETER__INIT;
    if (legacy) {
      p.has_concat_dim = 1;
      p.concat_dim = 2;
    } else {
      p.has_axis = 1;
      p.axis = -1; /* the last of 3 axes */
    }
    h->param.concat_param = &p;
    const int64_t sa[3] = {2, 2, 3}, sb[3] = {2, 2, 1};
    float a[12], b[4];
    ramp(a, 12, 1);
    ramp(b, 4, 2);
    h_bottom(h, 3, sa, a);
    h_bottom(h, 3, sb, b);
    ns_blob *t = h_top(h);
    h_run_ok(h);
    const int64_t st[3] = {2, 2, 4};
    assert_shape(t, 3, st);
    for (int r = 0; r < 4; r++)
      for (int k = 0; k < 4; k++) assert_true(t->data[r * 4 + k] == (k < 3 ? a[r * 3 + k] : b[r]));
    h_free(h);
  }
}

static void test_concat_errors(void **state) {
  harness *h = h_new("Concat");
  const int64_t sa[2] = {2, 3}, sb[2] = {3, 3};
  h_bottom(h, 2, sa, NULL);
  h_bottom(h, 2, sb, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "differ at axis 0");
  h_free(h);

  h = h_new("Concat");
  Caffe__ConcatParameter p = CAFFE__CONCAT_PARAMETER__INIT;
  p.has_axis = p.has_concat_dim = 1;
  h->param.concat_param = &p;
  h_bottom(h, 2, sa, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "not both");
  h_free(h);
}

/* ---- Eltwise ------------------------------------------------------------- */

static void test_eltwise_ops(void **state) {
  const int64_t s[2] = {2, 3};
  float a[6] = {1, -2, 3, 0.5f, 0, -1}, b[6] = {2, 2, -1, 4, -3, -1}, c[6] = {0, 1, 5, 1, 2, -4};
  const Caffe__EltwiseParameter__EltwiseOp ops[3] = {CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM,
                                                     CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD,
                                                     CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX};
  for (int k = 0; k < 3; k++) {
    harness *h = h_new("Eltwise");
    Caffe__EltwiseParameter p = CAFFE__ELTWISE_PARAMETER__INIT;
    float coeff[3] = {0.5f, -2.0f, 1.0f};
    p.has_operation = 1;
    p.operation = ops[k];
    if (k == 0) {
      p.n_coeff = 3;
      p.coeff = coeff;
    }
    h->param.eltwise_param = &p;
    h_bottom(h, 2, s, a);
    h_bottom(h, 2, s, b);
    h_bottom(h, 2, s, c);
    ns_blob *t = h_top(h);
    h_run_ok(h);
    float want[6];
    for (int i = 0; i < 6; i++)
      want[i] = k == 0   ? 0.5f * a[i] - 2.0f * b[i] + c[i]
                : k == 1 ? a[i] * b[i] * c[i]
                         : fmaxf(a[i], fmaxf(b[i], c[i]));
    assert_near(t->data, want, 6, 1e-6);
    h_free(h);
  }
}

static void test_eltwise_default_sum_in_place(void **state) {
  harness *h = h_new("Eltwise");
  const int64_t s[1] = {4};
  float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
  ns_blob *x = h_bottom(h, 1, s, a);
  h_bottom(h, 1, s, b);
  h_top_in_place(h, 0);
  h_run_ok(h);
  const float want[4] = {11, 22, 33, 44};
  assert_near(x->data, want, 4, 0);
  h_free(h);
}

static void test_eltwise_errors(void **state) {
  const int64_t s[1] = {4}, s2[1] = {5};
  float coeff[1] = {1};
  harness *h = h_new("Eltwise");
  Caffe__EltwiseParameter p = CAFFE__ELTWISE_PARAMETER__INIT;
  p.n_coeff = 1;
  p.coeff = coeff;
  h->param.eltwise_param = &p;
  h_bottom(h, 1, s, NULL);
  h_bottom(h, 1, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "coeff has 1 values for 2 bottoms");
  h_free(h);

  h = h_new("Eltwise");
  h_bottom(h, 1, s, NULL);
  h_bottom(h, 1, s2, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "differ in shape");
  h_free(h);
}

/* ---- Split and Slice ----------------------------------------------------- */

static void test_split(void **state) {
  harness *h = h_new("Split");
  const int64_t s[3] = {1, 2, 3};
  float x[6];
  ramp(x, 6, 3);
  h_bottom(h, 3, s, x);
  ns_blob *t0 = h_top(h), *t1 = h_top(h), *t2 = h_top(h);
  h_run_ok(h);
  assert_shape(t2, 3, s);
  assert_near(t0->data, x, 6, 0);
  assert_near(t1->data, x, 6, 0);
  assert_near(t2->data, x, 6, 0);
  h_free(h);
}

static void test_slice_points(void **state) {
  harness *h = h_new("Slice");
  Caffe__SliceParameter p = CAFFE__SLICE_PARAMETER__INIT;
  uint32_t points[2] = {1, 4};
  p.n_slice_point = 2;
  p.slice_point = points;
  h->param.slice_param = &p;
  const int64_t s[3] = {2, 6, 2};
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i;
  h_bottom(h, 3, s, x);
  ns_blob *t[3] = {h_top(h), h_top(h), h_top(h)};
  h_run_ok(h);
  const int64_t lo[3] = {0, 1, 4}, hi[3] = {1, 4, 6};
  for (int k = 0; k < 3; k++) {
    const int64_t st[3] = {2, hi[k] - lo[k], 2};
    assert_shape(t[k], 3, st);
    for (int64_t n = 0; n < 2; n++)
      for (int64_t c = lo[k]; c < hi[k]; c++)
        for (int64_t j = 0; j < 2; j++)
          assert_true(t[k]->data[(n * (hi[k] - lo[k]) + c - lo[k]) * 2 + j] ==
                      x[(n * 6 + c) * 2 + j]);
  }
  h_free(h);
}

static void test_slice_equal_legacy_dim(void **state) {
  harness *h = h_new("Slice");
  Caffe__SliceParameter p = CAFFE__SLICE_PARAMETER__INIT;
  p.has_slice_dim = 1;
  p.slice_dim = 0;
  h->param.slice_param = &p;
  const int64_t s[2] = {4, 2};
  float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  h_bottom(h, 2, s, x);
  ns_blob *a = h_top(h), *b = h_top(h);
  h_run_ok(h);
  const int64_t st[2] = {2, 2};
  assert_shape(a, 2, st);
  assert_near(a->data, x, 4, 0);
  assert_near(b->data, x + 4, 4, 0);
  h_free(h);
}

static void test_slice_errors(void **state) {
  harness *h = h_new("Slice");
  const int64_t s[2] = {1, 5};
  h_bottom(h, 2, s, NULL);
  h_top(h);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "do not evenly divide");
  h_free(h);

  h = h_new("Slice");
  Caffe__SliceParameter p = CAFFE__SLICE_PARAMETER__INIT;
  uint32_t points[2] = {3, 2};
  p.n_slice_point = 2;
  p.slice_point = points;
  h->param.slice_param = &p;
  h_bottom(h, 2, s, NULL);
  h_top(h);
  h_top(h);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "slice_point[1] = 2 must be greater than 3");
  h_free(h);
}

/* ---- BatchNorm ----------------------------------------------------------- */

/* Sets the three param blobs after setup, then reshape + forward. */
static void bn_run(harness *h, const float *mean_sum, const float *var_sum, float factor) {
  const ns_layer_ops *o = h->l.ops;
  if (o->setup(h->ctx, &h->l) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  assert_int_equal(h->l.n_params, 3);
  int64_t c = h->l.params[0]->count;
  memcpy(h->l.params[0]->data, mean_sum, (size_t)c * sizeof(float));
  memcpy(h->l.params[1]->data, var_sum, (size_t)c * sizeof(float));
  h->l.params[2]->data[0] = factor;
  if (o->reshape(h->ctx, &h->l) != NS_OK || o->forward(h->ctx, &h->l) != NS_OK)
    fail_msg("%s", ns_ctx_error(h->ctx));
}

static void test_batchnorm_scale_factor(void **state) {
  const int64_t s[4] = {2, 2, 1, 3};
  float x[12];
  ramp(x, 12, 4);
  const float mean_sum[2] = {1.0f, -3.0f}, var_sum[2] = {8.0f, 0.5f};
  /* factor 2: mean {0.5, -1.5}, var {4, 0.25}; factor 0: mean 0, var 0. */
  for (int zero = 0; zero < 2; zero++) {
    harness *h = h_new("BatchNorm");
    ns_blob *b = h_bottom(h, 4, s, x);
    h_top_in_place(h, 0);
    bn_run(h, mean_sum, var_sum, zero ? 0.0f : 2.0f);
    for (int n = 0; n < 2; n++)
      for (int c = 0; c < 2; c++)
        for (int j = 0; j < 3; j++) {
          int i = (n * 2 + c) * 3 + j;
          double m = zero ? 0 : mean_sum[c] / 2.0, v = zero ? 0 : var_sum[c] / 2.0;
          double want = (x[i] - m) / sqrt(v + 1e-5);
          assert_true(fabs(b->data[i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    h_free(h);
  }
}

static void test_batchnorm_batch_stats(void **state) {
  harness *h = h_new("BatchNorm");
  Caffe__BatchNormParameter p = CAFFE__BATCH_NORM_PARAMETER__INIT;
  p.has_use_global_stats = 1;
  p.use_global_stats = 0;
  p.has_eps = 1;
  p.eps = 0.5f;
  h->param.batch_norm_param = &p;
  /* One channel, values 1..4 over N=2, spatial 2: mean 2.5, var 1.25. */
  const int64_t s[3] = {2, 1, 2};
  const float x[4] = {1, 2, 3, 4}, zeros[1] = {0};
  h_bottom(h, 3, s, x);
  ns_blob *t = h_top(h);
  bn_run(h, zeros, zeros, 0.0f);
  float want[4];
  for (int i = 0; i < 4; i++) want[i] = (float)((x[i] - 2.5) / sqrt(1.25 + 0.5));
  assert_near(t->data, want, 4, 1e-6);
  h_free(h);
}

/* ---- Scale and Bias ------------------------------------------------------ */

/* y[n,c,h,w] against an independent 4-D loop with scale index f(n,c,h,w). */
static void test_scale_learned_axis1(void **state) {
  harness *h = h_new("Scale");
  Caffe__ScaleParameter p = CAFFE__SCALE_PARAMETER__INIT;
  p.has_bias_term = 1;
  p.bias_term = 1;
  h->param.scale_param = &p;
  const int64_t s[4] = {2, 3, 2, 2};
  float x[24];
  ramp(x, 24, 5);
  h_bottom(h, 4, s, x);
  ns_blob *t = h_top(h);
  const ns_layer_ops *o = h->l.ops;
  assert_int_equal(o->setup(h->ctx, &h->l), NS_OK);
  assert_int_equal(h->l.n_params, 2);
  const int64_t ps[1] = {3};
  assert_shape(h->l.params[0], 1, ps);
  assert_shape(h->l.params[1], 1, ps);
  for (int c = 0; c < 3; c++) { /* default fillers: scale 1, bias 0 */
    assert_true(h->l.params[0]->data[c] == 1.0f);
    assert_true(h->l.params[1]->data[c] == 0.0f);
  }
  const float sc[3] = {2, -1, 0.5f}, bi[3] = {1, 0, -3};
  memcpy(h->l.params[0]->data, sc, sizeof sc);
  memcpy(h->l.params[1]->data, bi, sizeof bi);
  assert_int_equal(o->reshape(h->ctx, &h->l), NS_OK);
  assert_int_equal(o->forward(h->ctx, &h->l), NS_OK);
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 3; c++)
      for (int j = 0; j < 4; j++) {
        int i = (n * 3 + c) * 4 + j;
        assert_true(fabsf(t->data[i] - (x[i] * sc[c] + bi[c])) < 1e-6f);
      }
  h_free(h);
}

static void test_scale_two_bottoms_axis0(void **state) {
  harness *h = h_new("Scale");
  Caffe__ScaleParameter p = CAFFE__SCALE_PARAMETER__INIT;
  p.has_axis = 1;
  p.axis = 0;
  h->param.scale_param = &p;
  const int64_t s[4] = {2, 3, 1, 2}, ss[2] = {2, 3};
  float x[12], f[6];
  ramp(x, 12, 6);
  ramp(f, 6, 7);
  ns_blob *b = h_bottom(h, 4, s, x);
  h_bottom(h, 2, ss, f);
  h_top_in_place(h, 0);
  h_run_ok(h);
  assert_int_equal(h->l.n_params, 0);
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 3; c++)
      for (int j = 0; j < 2; j++) {
        int i = (n * 3 + c) * 2 + j;
        assert_true(fabsf(b->data[i] - x[i] * f[n * 3 + c]) < 1e-6f);
      }
  h_free(h);
}

static void test_scale_scalar_and_trailing(void **state) {
  /* num_axes 0: one scalar; num_axes -1 from axis 2: a [2, 2] map per (n, c). */
  const int64_t s[4] = {2, 2, 2, 2};
  float x[16];
  ramp(x, 16, 8);
  for (int k = 0; k < 2; k++) {
    harness *h = h_new("Scale");
    Caffe__ScaleParameter p = CAFFE__SCALE_PARAMETER__INIT;
    Caffe__FillerParameter fill = CAFFE__FILLER_PARAMETER__INIT;
    fill.type = (char *)"constant";
    fill.has_value = 1;
    fill.value = 3.0f;
    p.filler = &fill;
    p.has_num_axes = 1;
    p.num_axes = k == 0 ? 0 : -1;
    if (k == 1) {
      p.has_axis = 1;
      p.axis = 2;
    }
    h->param.scale_param = &p;
    h_bottom(h, 4, s, x);
    ns_blob *t = h_top(h);
    const ns_layer_ops *o = h->l.ops;
    assert_int_equal(o->setup(h->ctx, &h->l), NS_OK);
    const int64_t ps[2] = {2, 2};
    assert_shape(h->l.params[0], k == 0 ? 0 : 2, ps);
    if (k == 1)
      for (int j = 0; j < 4; j++) h->l.params[0]->data[j] = (float)(j + 1);
    else
      assert_true(h->l.params[0]->data[0] == 3.0f);
    assert_int_equal(o->reshape(h->ctx, &h->l), NS_OK);
    assert_int_equal(o->forward(h->ctx, &h->l), NS_OK);
    for (int i = 0; i < 16; i++) {
      float f = k == 0 ? 3.0f : (float)(i % 4 + 1);
      assert_true(fabsf(t->data[i] - x[i] * f) < 1e-6f);
    }
    h_free(h);
  }
}

static void test_bias_param_and_bottom(void **state) {
  const int64_t s[3] = {2, 3, 2}, bs[2] = {3, 2};
  float x[12], b[6];
  ramp(x, 12, 9);
  ramp(b, 6, 10);
  /* A second bottom over axes 1..2. */
  harness *h = h_new("Bias");
  h_bottom(h, 3, s, x);
  h_bottom(h, 2, bs, b);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  for (int i = 0; i < 12; i++) assert_true(fabsf(t->data[i] - (x[i] + b[i % 6])) < 1e-6f);
  h_free(h);

  /* A learned bias at axis -1, filled by a constant filler. */
  h = h_new("Bias");
  Caffe__BiasParameter p = CAFFE__BIAS_PARAMETER__INIT;
  Caffe__FillerParameter fill = CAFFE__FILLER_PARAMETER__INIT;
  fill.type = (char *)"constant";
  fill.has_value = 1;
  fill.value = -0.5f;
  p.filler = &fill;
  p.has_axis = 1;
  p.axis = -1;
  h->param.bias_param = &p;
  h_bottom(h, 3, s, x);
  t = h_top(h);
  h_run_ok(h);
  const int64_t ps[1] = {2};
  assert_shape(h->l.params[0], 1, ps);
  for (int i = 0; i < 12; i++) assert_true(fabsf(t->data[i] - (x[i] - 0.5f)) < 1e-6f);
  h_free(h);
}

static void test_scale_mismatch(void **state) {
  harness *h = h_new("Scale");
  const int64_t s[3] = {2, 3, 2}, ss[1] = {4};
  h_bottom(h, 3, s, NULL);
  h_bottom(h, 1, ss, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "does not match bottom");
  h_free(h);
}

/* ---- neurons --------------------------------------------------------------- */

typedef double (*ref_fn)(double x);
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_abs(double x) { return fabs(x); }
static double ref_power(double x) { return pow(1.0 + 0.5 * x, 2.0); } /* power 2 scale .5 shift 1 */
static double ref_elu(double x) { return x > 0 ? x : 0.7 * (exp(x) - 1.0); }
static double ref_bnll(double x) { return x > 30 ? x : log(1.0 + exp(x)); }
static double ref_exp(double x) { return pow(2.0, 1.0 + 0.5 * x); } /* base 2 scale .5 shift 1 */
static double ref_log(double x) { return log10(3.0 + 2.0 * x); }    /* base 10 scale 2 shift 3 */

static void check_neuron(const char *type, Caffe__LayerParameter *extra, ref_fn ref) {
  const int64_t s[2] = {3, 8};
  float x[24];
  ramp(x, 24, 11);
  x[0] = 40.0f; /* far tails */
  x[1] = -40.0f;
  if (ref == ref_log || ref == ref_power)
    for (int i = 0; i < 24; i++) x[i] = fabsf(x[i]) * 0.25f;
  if (ref == ref_exp) x[0] = 10.0f, x[1] = -10.0f;
  harness *h = h_new(type);
  if (extra) {
    h->param.power_param = extra->power_param;
    h->param.elu_param = extra->elu_param;
    h->param.exp_param = extra->exp_param;
    h->param.log_param = extra->log_param;
  }
  h_bottom(h, 2, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  for (int i = 0; i < 24; i++) {
    double want = ref(x[i]);
    if (!(fabs(t->data[i] - want) <= 1e-5 * (1 + fabs(want))))
      fail_msg("%s(%g) = %.9g, expected %.9g", type, x[i], t->data[i], want);
  }
  h_free(h);
}

static void test_neurons(void **state) {
  Caffe__LayerParameter lp = CAFFE__LAYER_PARAMETER__INIT;
  Caffe__PowerParameter pw = CAFFE__POWER_PARAMETER__INIT;
  Caffe__ELUParameter el = CAFFE__ELUPARAMETER__INIT;
  Caffe__ExpParameter ex = CAFFE__EXP_PARAMETER__INIT;
  Caffe__LogParameter lg = CAFFE__LOG_PARAMETER__INIT;
  pw.has_power = pw.has_scale = pw.has_shift = 1;
  pw.power = 2, pw.scale = 0.5f, pw.shift = 1;
  el.has_alpha = 1, el.alpha = 0.7f;
  ex.has_base = ex.has_scale = ex.has_shift = 1;
  ex.base = 2, ex.scale = 0.5f, ex.shift = 1;
  lg.has_base = lg.has_scale = lg.has_shift = 1;
  lg.base = 10, lg.scale = 2, lg.shift = 3;
  lp.power_param = &pw;
  lp.elu_param = &el;
  lp.exp_param = &ex;
  lp.log_param = &lg;
  check_neuron("Sigmoid", NULL, ref_sigmoid);
  check_neuron("TanH", NULL, ref_tanh);
  check_neuron("AbsVal", NULL, ref_abs);
  check_neuron("Power", &lp, ref_power);
  check_neuron("ELU", &lp, ref_elu);
  check_neuron("BNLL", NULL, ref_bnll);
  check_neuron("Exp", &lp, ref_exp);
  check_neuron("Log", &lp, ref_log);
}

static void test_neuron_defaults(void **state) {
  /* Exp and Log with base -1 (e); Power's constant case power 0. */
  const int64_t s[1] = {3};
  const float x[3] = {0.5f, 1.0f, 2.0f};
  harness *h = h_new("Exp");
  h_bottom(h, 1, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  for (int i = 0; i < 3; i++) assert_true(fabs(t->data[i] - exp(x[i])) < 1e-5);
  h_free(h);

  h = h_new("Log");
  h_bottom(h, 1, s, x);
  t = h_top(h);
  h_run_ok(h);
  for (int i = 0; i < 3; i++) assert_true(fabs(t->data[i] - log(x[i])) < 1e-6);
  h_free(h);

  h = h_new("Power");
  Caffe__PowerParameter pw = CAFFE__POWER_PARAMETER__INIT;
  pw.has_power = 1, pw.power = 0;
  h->param.power_param = &pw;
  h_bottom(h, 1, s, x);
  t = h_top(h);
  h_run_ok(h);
  for (int i = 0; i < 3; i++) assert_true(t->data[i] == 1.0f);
  h_free(h);

  h = h_new("TanH"); /* in place */
  ns_blob *b = h_bottom(h, 1, s, x);
  h_top_in_place(h, 0);
  h_run_ok(h);
  for (int i = 0; i < 3; i++) assert_true(fabs(b->data[i] - tanh(x[i])) < 1e-6);
  h_free(h);
}

static void test_neuron_errors(void **state) {
  const int64_t s[1] = {3};
  harness *h = h_new("AbsVal");
  h_bottom(h, 1, s, NULL);
  h_top_in_place(h, 0);
  h_run_fails(h, NS_ERR_NET, "in-place");
  h_free(h);

  h = h_new("Exp");
  Caffe__ExpParameter ex = CAFFE__EXP_PARAMETER__INIT;
  ex.has_base = 1, ex.base = -2;
  h->param.exp_param = &ex;
  h_bottom(h, 1, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "exp_param.base -2 must be positive");
  h_free(h);

  h = h_new("Log");
  Caffe__LogParameter lg = CAFFE__LOG_PARAMETER__INIT;
  lg.has_base = 1, lg.base = 1;
  h->param.log_param = &lg;
  h_bottom(h, 1, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "1 / log(base)");
  h_free(h);
}

/* ---- PReLU ------------------------------------------------------------------ */

static void test_prelu(void **state) {
  const int64_t s[4] = {2, 3, 1, 2};
  float x[12];
  ramp(x, 12, 12);
  for (int shared = 0; shared < 2; shared++) {
    harness *h = h_new("PReLU");
    Caffe__PReLUParameter p = CAFFE__PRE_LUPARAMETER__INIT;
    p.has_channel_shared = 1;
    p.channel_shared = shared;
    h->param.prelu_param = &p;
    ns_blob *b = h_bottom(h, 4, s, x);
    h_top_in_place(h, 0);
    const ns_layer_ops *o = h->l.ops;
    assert_int_equal(o->setup(h->ctx, &h->l), NS_OK);
    assert_int_equal(h->l.params[0]->num_axes, shared ? 0 : 1);
    assert_int_equal(h->l.params[0]->count, shared ? 1 : 3);
    for (int c = 0; c < (shared ? 1 : 3); c++)
      assert_true(h->l.params[0]->data[c] == 0.25f); /* Caffe's default */
    if (!shared) h->l.params[0]->data[1] = -2.0f;
    assert_int_equal(o->reshape(h->ctx, &h->l), NS_OK);
    assert_int_equal(o->forward(h->ctx, &h->l), NS_OK);
    for (int i = 0; i < 12; i++) {
      int c = (i / 2) % 3;
      float a = !shared && c == 1 ? -2.0f : 0.25f;
      float want = x[i] > 0 ? x[i] : a * x[i];
      assert_true(fabsf(b->data[i] - want) < 1e-6f);
    }
    h_free(h);
  }
}

/* ---- Flatten, Reshape, Crop, Silence ------------------------------------- */

static void test_flatten(void **state) {
  const int64_t s[4] = {2, 3, 4, 5};
  float x[120];
  ramp(x, 120, 13);
  harness *h = h_new("Flatten");
  h_bottom(h, 4, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  const int64_t s1[2] = {2, 60};
  assert_shape(t, 2, s1);
  assert_near(t->data, x, 120, 0);
  h_free(h);

  h = h_new("Flatten");
  Caffe__FlattenParameter p = CAFFE__FLATTEN_PARAMETER__INIT;
  p.has_axis = p.has_end_axis = 1;
  p.axis = 1, p.end_axis = 2;
  h->param.flatten_param = &p;
  h_bottom(h, 4, s, x);
  t = h_top(h);
  h_run_ok(h);
  const int64_t s2[3] = {2, 12, 5};
  assert_shape(t, 3, s2);
  h_free(h);
}

static void reshape_case(const int64_t *dims, size_t n_dims, int has_axis, int axis,
                         int has_num_axes, int num_axes, int want_axes, const int64_t *want) {
  const int64_t s[4] = {2, 3, 4, 5};
  float x[120];
  ramp(x, 120, 14);
  harness *h = h_new("Reshape");
  Caffe__ReshapeParameter p = CAFFE__RESHAPE_PARAMETER__INIT;
  Caffe__BlobShape shape = CAFFE__BLOB_SHAPE__INIT;
  shape.n_dim = n_dims;
  shape.dim = (int64_t *)dims;
  p.shape = &shape;
  p.has_axis = has_axis, p.axis = axis;
  p.has_num_axes = has_num_axes, p.num_axes = num_axes;
  h->param.reshape_param = &p;
  h_bottom(h, 4, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  assert_shape(t, want_axes, want);
  assert_near(t->data, x, 120, 0);
  h_free(h);
}

static void test_reshape(void **state) {
  const int64_t d1[3] = {0, -1, 10}, w1[3] = {2, 6, 10};
  reshape_case(d1, 3, 0, 0, 0, 0, 3, w1);
  const int64_t d2[1] = {-1}, w2[3] = {2, 12, 5};
  reshape_case(d2, 1, 1, 1, 1, 2, 3, w2);
  const int64_t d3[2] = {1, 1}, w3[6] = {2, 3, 4, 5, 1, 1};
  reshape_case(d3, 2, 1, -1, 1, 0, 6, w3);
  const int64_t d4[3] = {0, 0, -1}, w4[3] = {2, 3, 20};
  reshape_case(d4, 3, 0, 0, 0, 0, 3, w4);
}

static void reshape_error(const int64_t *dims, size_t n_dims, const char *needle) {
  const int64_t s[2] = {2, 3};
  harness *h = h_new("Reshape");
  Caffe__ReshapeParameter p = CAFFE__RESHAPE_PARAMETER__INIT;
  Caffe__BlobShape shape = CAFFE__BLOB_SHAPE__INIT;
  shape.n_dim = n_dims;
  shape.dim = (int64_t *)dims;
  p.shape = &shape;
  h->param.reshape_param = &p;
  h_bottom(h, 2, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, needle);
  h_free(h);
}

static void test_reshape_errors(void **state) {
  const int64_t two[2] = {-1, -1}, indiv[2] = {4, -1}, copy[3] = {0, 0, 0}, count[1] = {7};
  reshape_error(two, 2, "more than one -1");
  reshape_error(indiv, 2, "not divisible");
  reshape_error(copy, 3, "no axis 2 to copy");
  reshape_error(count, 1, "cannot reshape");
}

static void test_crop(void **state) {
  const int64_t sa[4] = {2, 3, 6, 7}, sr[4] = {1, 2, 3, 4};
  float a[252];
  for (int i = 0; i < 252; i++) a[i] = (float)i;
  /* axis 2, offsets (2, 1); then axis 1 with one offset 1 for all. */
  for (int k = 0; k < 2; k++) {
    harness *h = h_new("Crop");
    Caffe__CropParameter p = CAFFE__CROP_PARAMETER__INIT;
    uint32_t off2[2] = {2, 1}, off1[1] = {1};
    if (k == 0) {
      p.n_offset = 2, p.offset = off2;
    } else {
      p.has_axis = 1, p.axis = 1;
      p.n_offset = 1, p.offset = off1;
    }
    h->param.crop_param = &p;
    h_bottom(h, 4, sa, a);
    h_bottom(h, 4, sr, NULL);
    ns_blob *t = h_top(h);
    h_run_ok(h);
    const int64_t st[4] = {2, k == 0 ? 3 : 2, 3, 4};
    assert_shape(t, 4, st);
    int64_t o[4] = {0, k == 0 ? 0 : 1, k == 0 ? 2 : 1, 1};
    int64_t i = 0;
    for (int64_t n = 0; n < st[0]; n++)
      for (int64_t c = 0; c < st[1]; c++)
        for (int64_t y = 0; y < st[2]; y++)
          for (int64_t x = 0; x < st[3]; x++, i++)
            assert_true(t->data[i] ==
                        a[((n + o[0]) * 3 + c + o[1]) * 42 + (y + o[2]) * 7 + x + o[3]]);
    h_free(h);
  }
}

static void test_crop_errors(void **state) {
  const int64_t sa[4] = {1, 1, 4, 4}, sr[4] = {1, 1, 3, 3};
  harness *h = h_new("Crop");
  Caffe__CropParameter p = CAFFE__CROP_PARAMETER__INIT;
  uint32_t off[1] = {2};
  p.n_offset = 1, p.offset = off;
  h->param.crop_param = &p;
  h_bottom(h, 4, sa, NULL);
  h_bottom(h, 4, sr, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "crop at axis 2: offset 2 + size 3 exceeds");
  h_free(h);

  h = h_new("Crop");
  uint32_t offs[3] = {0, 0, 0};
  p.n_offset = 3, p.offset = offs;
  h->param.crop_param = &p;
  h_bottom(h, 4, sa, NULL);
  h_bottom(h, 4, sr, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "crop_param.offset has 3 values");
  h_free(h);
}

static void test_silence(void **state) {
  const int64_t s[1] = {2};
  harness *h = h_new("Silence");
  h_bottom(h, 1, s, NULL);
  h_bottom(h, 1, s, NULL);
  h_run_ok(h);
  h_free(h);
}

/* ---- ArgMax ---------------------------------------------------------------- */

static void test_argmax_ties(void **state) {
  /* Values with ties: Caffe's order puts the larger index first. */
  const int64_t s[2] = {2, 5};
  const float x[10] = {1, 3, 3, 2, 0, /**/ 7, 7, 7, -1, 7};
  harness *h = h_new("ArgMax");
  Caffe__ArgMaxParameter p = CAFFE__ARG_MAX_PARAMETER__INIT;
  p.has_top_k = 1, p.top_k = 3;
  p.has_out_max_val = 1, p.out_max_val = 1;
  h->param.argmax_param = &p;
  h_bottom(h, 2, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  const int64_t st[3] = {2, 2, 3};
  assert_shape(t, 3, st);
  const float want[12] = {2, 1, 3, 3, 3, 2, /**/ 4, 2, 1, 7, 7, 7};
  assert_near(t->data, want, 12, 0);
  h_free(h);

  h = h_new("ArgMax"); /* defaults: top 1, indices only */
  h_bottom(h, 2, s, x);
  t = h_top(h);
  h_run_ok(h);
  const int64_t s1[3] = {2, 1, 1};
  assert_shape(t, 3, s1);
  assert_true(t->data[0] == 2.0f && t->data[1] == 4.0f);
  h_free(h);
}

/* Caffe's order is undefined with NaN; ours puts NaN last and stays total. */
static void test_argmax_nan_last(void **state) {
  const int64_t s[2] = {1, 4};
  const float x[4] = {NAN, 1, NAN, 2};
  harness *h = h_new("ArgMax");
  Caffe__ArgMaxParameter p = CAFFE__ARG_MAX_PARAMETER__INIT;
  p.has_top_k = 1, p.top_k = 4;
  h->param.argmax_param = &p;
  h_bottom(h, 2, s, x);
  ns_blob *t = h_top(h);
  h_run_ok(h);
  const float want[4] = {3, 1, 2, 0};
  assert_near(t->data, want, 4, 0);
  h_free(h);
}

static void test_argmax_axis(void **state) {
  const int64_t s[4] = {2, 5, 2, 3};
  float x[60];
  ramp(x, 60, 15);
  x[(0 * 5 + 1) * 6 + 4] = x[(0 * 5 + 3) * 6 + 4] = 9.0f; /* a tie along the axis */
  for (int vals = 0; vals < 2; vals++) {
    harness *h = h_new("ArgMax");
    Caffe__ArgMaxParameter p = CAFFE__ARG_MAX_PARAMETER__INIT;
    p.has_axis = 1, p.axis = 1;
    p.has_top_k = 1, p.top_k = 2;
    p.has_out_max_val = 1, p.out_max_val = vals;
    h->param.argmax_param = &p;
    h_bottom(h, 4, s, x);
    ns_blob *t = h_top(h);
    h_run_ok(h);
    const int64_t st[4] = {2, 2, 2, 3};
    assert_shape(t, 4, st);
    for (int n = 0; n < 2; n++)
      for (int j = 0; j < 6; j++) {
        /* Independent selection: best, then second best, by (value, index). */
        int best = -1, second = -1;
        for (int c = 0; c < 5; c++) {
          float v = x[(n * 5 + c) * 6 + j];
          if (best < 0 || v > x[(n * 5 + best) * 6 + j] || v == x[(n * 5 + best) * 6 + j]) {
            second = best;
            best = c;
          } else if (second < 0 || v >= x[(n * 5 + second) * 6 + j]) {
            second = c;
          }
        }
        float w0 = vals ? x[(n * 5 + best) * 6 + j] : (float)best;
        float w1 = vals ? x[(n * 5 + second) * 6 + j] : (float)second;
        assert_true(t->data[(n * 2 + 0) * 6 + j] == w0);
        assert_true(t->data[(n * 2 + 1) * 6 + j] == w1);
      }
    if (!vals) assert_true(t->data[(0 * 2 + 0) * 6 + 4] == 3.0f); /* the tie: index 3 first */
    h_free(h);
  }
}

static void test_argmax_errors(void **state) {
  const int64_t s[2] = {2, 3};
  harness *h = h_new("ArgMax");
  Caffe__ArgMaxParameter p = CAFFE__ARG_MAX_PARAMETER__INIT;
  p.has_top_k = 1, p.top_k = 4;
  h->param.argmax_param = &p;
  h_bottom(h, 2, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "top_k 4 exceeds");
  h_free(h);
}

/* ---- Deconvolution --------------------------------------------------------- */

typedef struct deconv_case {
  int64_t n, c, h, w, o, group;
  int kh, kw, sh, sw, ph, pw, dh, dw, bias;
} deconv_case;

/* Every input pixel scatters weight * value into the output window. */
static void deconv_reference(const deconv_case *k, const float *x, const float *wt,
                             const float *bias, float *y, int64_t oh, int64_t ow) {
  int64_t cg = k->c / k->group, og = k->o / k->group;
  memset(y, 0, (size_t)(k->n * k->o * oh * ow) * sizeof(float));
  for (int64_t n = 0; n < k->n; n++)
    for (int64_t ci = 0; ci < k->c; ci++)
      for (int64_t iy = 0; iy < k->h; iy++)
        for (int64_t ix = 0; ix < k->w; ix++) {
          float v = x[((n * k->c + ci) * k->h + iy) * k->w + ix];
          int64_t g = ci / cg;
          for (int64_t oc = 0; oc < og; oc++)
            for (int ky = 0; ky < k->kh; ky++)
              for (int kx = 0; kx < k->kw; kx++) {
                int64_t yy = iy * k->sh - k->ph + ky * k->dh;
                int64_t xx = ix * k->sw - k->pw + kx * k->dw;
                if (yy < 0 || yy >= oh || xx < 0 || xx >= ow) continue;
                float wv = wt[((ci * og + oc) * k->kh + ky) * k->kw + kx];
                y[((n * k->o + g * og + oc) * oh + yy) * ow + xx] += v * wv;
              }
        }
  if (bias)
    for (int64_t n = 0; n < k->n; n++)
      for (int64_t o = 0; o < k->o; o++)
        for (int64_t j = 0; j < oh * ow; j++) y[(n * k->o + o) * oh * ow + j] += bias[o];
}

static void run_deconv_case(const deconv_case *k, int use_hw_fields) {
  harness *h = h_new("Deconvolution");
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t ks[1] = {(uint32_t)k->kh}, st[1] = {(uint32_t)k->sh}, pd[1] = {(uint32_t)k->ph};
  uint32_t dl[2] = {(uint32_t)k->dh, (uint32_t)k->dw};
  p.has_num_output = 1, p.num_output = (uint32_t)k->o;
  p.has_group = 1, p.group = (uint32_t)k->group;
  p.has_bias_term = 1, p.bias_term = k->bias;
  if (use_hw_fields) {
    p.has_kernel_h = p.has_kernel_w = 1, p.kernel_h = k->kh, p.kernel_w = k->kw;
    p.has_stride_h = p.has_stride_w = 1, p.stride_h = k->sh, p.stride_w = k->sw;
    p.has_pad_h = p.has_pad_w = 1, p.pad_h = k->ph, p.pad_w = k->pw;
  } else {
    p.n_kernel_size = 1, p.kernel_size = ks;
    p.n_stride = 1, p.stride = st;
    p.n_pad = 1, p.pad = pd;
  }
  p.n_dilation = 2, p.dilation = dl;
  h->param.convolution_param = &p;
  const int64_t s[4] = {k->n, k->c, k->h, k->w};
  int64_t nx = k->n * k->c * k->h * k->w;
  float *x = malloc((size_t)nx * sizeof *x);
  ramp(x, nx, 16);
  h_bottom(h, 4, s, x);
  ns_blob *t = h_top(h);
  const ns_layer_ops *o = h->l.ops;
  if (o->setup(h->ctx, &h->l) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  const int64_t ws[4] = {k->c, k->o / k->group, k->kh, k->kw};
  assert_int_equal(h->l.n_params, k->bias ? 2 : 1);
  assert_shape(h->l.params[0], 4, ws);
  ramp(h->l.params[0]->data, h->l.params[0]->count, 17);
  if (k->bias) ramp(h->l.params[1]->data, k->o, 18);
  if (o->reshape(h->ctx, &h->l) != NS_OK || o->forward(h->ctx, &h->l) != NS_OK)
    fail_msg("%s", ns_ctx_error(h->ctx));
  int64_t oh = (int64_t)k->sh * (k->h - 1) + (int64_t)k->dh * (k->kh - 1) + 1 - 2 * k->ph;
  int64_t ow = (int64_t)k->sw * (k->w - 1) + (int64_t)k->dw * (k->kw - 1) + 1 - 2 * k->pw;
  const int64_t ts[4] = {k->n, k->o, oh, ow};
  assert_shape(t, 4, ts);
  float *want = malloc((size_t)t->count * sizeof *want);
  deconv_reference(k, x, h->l.params[0]->data, k->bias ? h->l.params[1]->data : NULL, want, oh, ow);
  assert_near(t->data, want, t->count, 1e-5);
  free(want);
  free(x);
  h_free(h);
}

static void test_deconv(void **state) {
  /* The conformance geometry; groups with rectangular everything; 1x1. */
  const deconv_case a = {1, 4, 6, 7, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1};
  run_deconv_case(&a, 0);
  const deconv_case b = {2, 4, 5, 3, 6, 2, 3, 2, 2, 3, 1, 0, 2, 1, 1};
  run_deconv_case(&b, 1);
  const deconv_case c = {2, 3, 4, 4, 5, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0};
  run_deconv_case(&c, 0);
  const deconv_case d = {1, 6, 3, 3, 3, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1}; /* depthwise-like */
  run_deconv_case(&d, 0);
}

static void test_deconv_errors(void **state) {
  const int64_t s[4] = {1, 3, 4, 4};
  harness *h = h_new("Deconvolution");
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t ks[1] = {3};
  p.has_num_output = 1, p.num_output = 4;
  p.has_group = 1, p.group = 2;
  p.n_kernel_size = 1, p.kernel_size = ks;
  h->param.convolution_param = &p;
  h_bottom(h, 4, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "group 2 must divide");
  h_free(h);

  h = h_new("Deconvolution");
  p.group = 1;
  p.has_kernel_h = 1, p.kernel_h = 3;
  h->param.convolution_param = &p;
  h_bottom(h, 4, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "either kernel_size or kernel_h/kernel_w");
  h_free(h);

  h = h_new("Deconvolution");
  p.has_kernel_h = 0;
  p.n_kernel_size = 0;
  h->param.convolution_param = &p;
  h_bottom(h, 4, s, NULL);
  h_top(h);
  h_run_fails(h, NS_ERR_NET, "kernel_size is missing");
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concat_channels),
      cmocka_unit_test(test_concat_axis2_and_legacy_dim),
      cmocka_unit_test(test_concat_errors),
      cmocka_unit_test(test_eltwise_ops),
      cmocka_unit_test(test_eltwise_default_sum_in_place),
      cmocka_unit_test(test_eltwise_errors),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_slice_points),
      cmocka_unit_test(test_slice_equal_legacy_dim),
      cmocka_unit_test(test_slice_errors),
      cmocka_unit_test(test_batchnorm_scale_factor),
      cmocka_unit_test(test_batchnorm_batch_stats),
      cmocka_unit_test(test_scale_learned_axis1),
      cmocka_unit_test(test_scale_two_bottoms_axis0),
      cmocka_unit_test(test_scale_scalar_and_trailing),
      cmocka_unit_test(test_bias_param_and_bottom),
      cmocka_unit_test(test_scale_mismatch),
      cmocka_unit_test(test_neurons),
      cmocka_unit_test(test_neuron_defaults),
      cmocka_unit_test(test_neuron_errors),
      cmocka_unit_test(test_prelu),
      cmocka_unit_test(test_flatten),
      cmocka_unit_test(test_reshape),
      cmocka_unit_test(test_reshape_errors),
      cmocka_unit_test(test_crop),
      cmocka_unit_test(test_crop_errors),
      cmocka_unit_test(test_silence),
      cmocka_unit_test(test_argmax_ties),
      cmocka_unit_test(test_argmax_nan_last),
      cmocka_unit_test(test_argmax_axis),
      cmocka_unit_test(test_argmax_errors),
      cmocka_unit_test(test_deconv),
      cmocka_unit_test(test_deconv_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
