/* Backward passes against finite differences, as Caffe's GradientChecker:
 * the objective is E = sum_t sum_i w_ti top_t[i] with fixed random w, so
 * the top diffs are w and every bottom and param gradient is compared
 * with the central difference (E(x + h) - E(x - h)) / 2h, h = 1e-2, on
 * small shapes (odd sizes, groups, padding, stride, dilation).  A gradient
 * passes when |analytic - numeric| <= tol * max(0.1, |analytic|, |numeric|)
 * (tol 1e-3, Caffe's usual threshold, unless a test says otherwise; float
 * forward, double sums).  The floor is 0.1, not Caffe's 1: most element-wise
 * gradients are below 1 (Sigmoid's at most 0.25), and a floor of 1 would
 * check them only to an absolute 1e-3.  Measured (December 2026) the worst
 * layer check is 3.4e-4 of that scale (SoftmaxWithLoss, Convolution), and
 * 5.5e-4 over 40 other seeds of the data (Deconvolution).
 * Inputs avoid the kinks (ReLU at 0, ties in MAX) by construction.
 * Loss values are checked against hand computations. */
#include <float.h>
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
#include "netsurg.h"
#include "support/grad_check.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

#define STEP 1e-2
#define TOL 1e-3
#define SCALE_FLOOR 0.1

/* ---- random data -------------------------------------------------------- */

static ns_rng data_rng;

static float urand(float lo, float hi) { return ns_rng_uniform(&data_rng, lo, hi); }

static void fill_uniform(ns_blob *b, float lo, float hi) {
  for (int64_t i = 0; i < b->count; i++) b->data[i] = urand(lo, hi);
}

/* Values at least `gap` away from 0 (ReLU-like kinks). */
static void fill_away_from_zero(ns_blob *b, float gap) {
  for (int64_t i = 0; i < b->count; i++) {
    float v = urand(gap, 1.0f);
    b->data[i] = urand(0, 1) < 0.5f ? -v : v;
  }
}

/* Distinct values spaced 0.05 apart, shuffled (no ties in MAX within h). */
static void fill_distinct(ns_blob *b) {
  for (int64_t i = 0; i < b->count; i++) b->data[i] = 0.05f * (float)i - 0.025f * (float)b->count;
  for (int64_t i = b->count - 1; i > 0; i--) {
    int64_t j = (int64_t)(ns_rng_uniform01(&data_rng) * (double)(i + 1));
    float t = b->data[i];
    b->data[i] = b->data[j];
    b->data[j] = t;
  }
}

static ns_blob *bottom(lh_harness *h, int n, const int64_t *shape) {
  ns_blob *b = lh_add_bottom(h, n, shape, NULL);
  assert_non_null(b);
  fill_uniform(b, -1, 1);
  return b;
}

/* ---- the checker -------------------------------------------------------- */

static int agrees(double ana, double num, double tol) {
  return fabs(ana - num) <= tol * fmax(SCALE_FLOOR, fmax(fabs(ana), fabs(num)));
}

static void compare(const char *what, int index, int64_t i, double ana, double num, double tol) {
  if (!agrees(ana, num, tol))
    fail_msg("%s %d element %lld: analytic %.6g, numeric %.6g", what, index, (long long)i, ana,
             num);
}

static lh_harness *layer(const char *type) {
  lh_harness *h = lh_create(type);
  assert_non_null(h);
  return h;
}

/* ---- element-wise layers ------------------------------------------------- */

static const int64_t S4[4] = {2, 3, 5, 4};

static void check_relu(float slope, int in_place) {
  lh_harness *h = layer("ReLU");
  Caffe__ReLUParameter p = CAFFE__RE_LUPARAMETER__INIT;
  p.has_negative_slope = 1;
  p.negative_slope = slope;
  h->param.relu_param = &p;
  fill_away_from_zero(bottom(h, 4, S4), 0.05f);
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_relu(void **state) {
  check_relu(0, 0);
  check_relu(0.1f, 0);
  check_relu(0, 1);
  check_relu(0.2f, 1);
}

static void check_neuron(const char *type, float lo, float hi, int in_place) {
  lh_harness *h = layer(type);
  ns_blob *b = bottom(h, 4, S4);
  fill_uniform(b, lo, hi);
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_neurons(void **state) {
  check_neuron("Sigmoid", -3, 3, 0);
  check_neuron("Sigmoid", -3, 3, 1);
  check_neuron("TanH", -2, 2, 0);
  check_neuron("TanH", -2, 2, 1);
  check_neuron("BNLL", -2, 2, 0);
  check_neuron("Exp", -1, 1, 0);
  check_neuron("Exp", -1, 1, 1);
  check_neuron("Log", 0.5f, 2, 0);
  lh_harness *h = layer("AbsVal");
  fill_away_from_zero(bottom(h, 4, S4), 0.05f);
  lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_elu(void **state) {
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = layer("ELU");
    Caffe__ELUParameter p = CAFFE__ELUPARAMETER__INIT;
    p.has_alpha = 1;
    p.alpha = 0.7f;
    h->param.elu_param = &p;
    fill_away_from_zero(bottom(h, 4, S4), 0.05f);
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_power(void **state) {
  const float cases[][3] = {{2, 0.5f, 1.5f}, {1, -2, 0.3f}, {3, 0.7f, 2}, {0.5f, 1, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    lh_harness *h = layer("Power");
    Caffe__PowerParameter p = CAFFE__POWER_PARAMETER__INIT;
    p.has_power = p.has_scale = p.has_shift = 1;
    p.power = cases[c][0];
    p.scale = cases[c][1];
    p.shift = cases[c][2];
    h->param.power_param = &p;
    fill_uniform(bottom(h, 4, S4), 0, 1); /* keeps shift + scale x > 0 */
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_prelu(void **state) {
  for (int shared = 0; shared < 2; shared++)
    for (int in_place = 0; in_place < 2; in_place++) {
      lh_harness *h = layer("PReLU");
      Caffe__PReLUParameter p = CAFFE__PRE_LUPARAMETER__INIT;
      p.has_channel_shared = 1;
      p.channel_shared = shared;
      h->param.prelu_param = &p;
      fill_away_from_zero(bottom(h, 4, S4), 0.05f);
      if (in_place)
        lh_add_top_in_place(h, 0);
      else
        lh_add_top(h);
      h->net.phase = NS_PHASE_TRAIN; /* in place keeps a copy of the bottom */
      assert_int_equal(lh_setup(h), NS_OK);
      for (int64_t i = 0; i < h->layer.params[0]->count; i++)
        h->layer.params[0]->data[i] = urand(0.1f, 0.6f);
      gc_opts o = {.setup_done = 1};
      grad_check(h, &o);
      lh_destroy(h);
    }
}

static void test_dropout(void **state) {
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = layer("Dropout");
    Caffe__DropoutParameter p = CAFFE__DROPOUT_PARAMETER__INIT;
    p.has_dropout_ratio = 1;
    p.dropout_ratio = 0.3f;
    h->param.dropout_param = &p;
    bottom(h, 4, S4);
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      lh_add_top(h);
    gc_opts o = {.train = 1, .reseed = 1};
    grad_check(h, &o);
    lh_destroy(h);
  }
}

/* TRAIN: kept elements scaled by 1 / (1 - ratio), about 1 - ratio kept. */
static void test_dropout_values(void **state) {
  lh_harness *h = layer("Dropout");
  h->net.phase = NS_PHASE_TRAIN;
  Caffe__DropoutParameter p = CAFFE__DROPOUT_PARAMETER__INIT;
  p.has_dropout_ratio = 1;
  p.dropout_ratio = 0.25f;
  h->param.dropout_param = &p;
  const int64_t shape[1] = {4000};
  ns_blob *b = lh_add_bottom(h, 1, shape, NULL);
  for (int64_t i = 0; i < b->count; i++) b->data[i] = 3.0f;
  ns_blob *t = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  int kept = 0;
  for (int64_t i = 0; i < t->count; i++) {
    if (t->data[i] != 0) {
      assert_float_equal(t->data[i], 4.0f, 1e-6);
      kept++;
    }
  }
  assert_in_range(kept, 2850, 3150); /* 3000 +- 5 sigma */
  lh_destroy(h);
}

/* ---- softmax, split, concat, slice, shapes ------------------------------- */

static void test_softmax(void **state) {
  for (int axis = 1; axis <= 3; axis += 2) {
    lh_harness *h = layer("Softmax");
    Caffe__SoftmaxParameter p = CAFFE__SOFTMAX_PARAMETER__INIT;
    p.has_axis = 1;
    p.axis = axis;
    h->param.softmax_param = &p;
    fill_uniform(bottom(h, 4, S4), -2, 2);
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_split(void **state) {
  lh_harness *h = layer("Split");
  bottom(h, 4, S4);
  lh_add_top(h);
  lh_add_top(h);
  lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_concat(void **state) {
  for (int axis = 0; axis < 4; axis += 1) {
    lh_harness *h = layer("Concat");
    Caffe__ConcatParameter p = CAFFE__CONCAT_PARAMETER__INIT;
    p.has_axis = 1;
    p.axis = axis;
    h->param.concat_param = &p;
    int64_t a[4] = {2, 3, 3, 2}, b[4] = {2, 3, 3, 2};
    a[axis] = 1;
    b[axis] = 3;
    bottom(h, 4, a);
    bottom(h, 4, b);
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

static void test_slice(void **state) {
  lh_harness *h = layer("Slice");
  Caffe__SliceParameter p = CAFFE__SLICE_PARAMETER__INIT;
  uint32_t points[2] = {1, 4};
  p.n_slice_point = 2;
  p.slice_point = points;
  h->param.slice_param = &p;
  const int64_t shape[4] = {2, 5, 3, 2};
  bottom(h, 4, shape);
  lh_add_top(h);
  lh_add_top(h);
  lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_flatten_reshape_crop(void **state) {
  lh_harness *h = layer("Flatten");
  bottom(h, 4, S4);
  lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);

  h = layer("Reshape");
  Caffe__ReshapeParameter p = CAFFE__RESHAPE_PARAMETER__INIT;
  Caffe__BlobShape bs = CAFFE__BLOB_SHAPE__INIT;
  int64_t dims[3] = {0, -1, 4};
  bs.n_dim = 3;
  bs.dim = dims;
  p.shape = &bs;
  h->param.reshape_param = &p;
  bottom(h, 4, S4);
  lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);

  h = layer("Crop");
  Caffe__CropParameter cp = CAFFE__CROP_PARAMETER__INIT;
  uint32_t off[1] = {1};
  cp.n_offset = 1;
  cp.offset = off;
  h->param.crop_param = &cp;
  const int64_t big[4] = {2, 2, 5, 6}, small[4] = {2, 2, 3, 3};
  bottom(h, 4, big);
  bottom(h, 4, small);
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 2};
  grad_check(h, &o);
  lh_destroy(h);
}

/* ---- convolution, deconvolution, inner product, pooling ----------------- */

typedef struct conv_case {
  int64_t shape[4];
  uint32_t num_output, group, kh, kw, pad_h, pad_w, stride_h, stride_w, dilation;
  int bias;
} conv_case;

static const conv_case conv_cases[] = {
    {{2, 3, 5, 6}, 4, 1, 3, 3, 0, 0, 1, 1, 1, 1}, /* plain, odd sizes */
    {{1, 4, 7, 5}, 6, 2, 3, 2, 1, 0, 2, 1, 1, 1}, /* groups, pad, stride, rect kernel */
    {{2, 2, 7, 7}, 3, 1, 3, 3, 2, 2, 1, 2, 2, 0}, /* dilation, no bias */
    {{2, 6, 4, 3}, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1}, /* 1x1 path, groups */
    {{1, 3, 6, 6}, 2, 1, 2, 2, 1, 1, 3, 3, 1, 1}, /* stride larger than kernel */
};

static void set_conv_param(Caffe__ConvolutionParameter *p, const conv_case *c, uint32_t *dil) {
  p->has_num_output = p->has_group = p->has_bias_term = 1;
  p->num_output = c->num_output;
  p->group = c->group;
  p->bias_term = c->bias;
  p->has_kernel_h = p->has_kernel_w = p->has_pad_h = p->has_pad_w = 1;
  p->has_stride_h = p->has_stride_w = 1;
  p->kernel_h = c->kh;
  p->kernel_w = c->kw;
  p->pad_h = c->pad_h;
  p->pad_w = c->pad_w;
  p->stride_h = c->stride_h;
  p->stride_w = c->stride_w;
  *dil = c->dilation;
  p->n_dilation = 1;
  p->dilation = dil;
}

static void randomize_params(lh_harness *h) {
  for (int i = 0; i < h->layer.n_params; i++) fill_uniform(h->layer.params[i], -1, 1);
}

/* A Convolution or Deconvolution layer of conv_cases[c] with `bottoms`
 * bottoms (they share the weights: their gradients add up in the params)
 * and random params, gradient-checked. */
static void check_conv_layer(const char *type, size_t c, int bottoms) {
  lh_harness *h = layer(type);
  Caffe__ConvolutionParameter p = CAFFE__CONVOLUTION_PARAMETER__INIT;
  uint32_t dil;
  set_conv_param(&p, &conv_cases[c], &dil);
  h->param.convolution_param = &p;
  for (int i = 0; i < bottoms; i++) {
    bottom(h, 4, conv_cases[c].shape);
    lh_add_top(h);
  }
  assert_int_equal(lh_setup(h), NS_OK);
  randomize_params(h);
  gc_opts o = {.setup_done = 1};
  grad_check(h, &o);
  lh_destroy(h);
}

static void test_convolution(void **state) {
  for (size_t c = 0; c < sizeof conv_cases / sizeof *conv_cases; c++)
    check_conv_layer("Convolution", c, 1);
}

static void test_convolution_two_bottoms(void **state) { check_conv_layer("Convolution", 1, 2); }

static void test_deconvolution(void **state) {
  for (size_t c = 0; c < sizeof conv_cases / sizeof *conv_cases; c++)
    check_conv_layer("Deconvolution", c, 1);
}

static void test_inner_product(void **state) {
  for (int transpose = 0; transpose < 2; transpose++)
    for (int axis = 1; axis <= 2; axis++) {
      lh_harness *h = layer("InnerProduct");
      Caffe__InnerProductParameter p = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
      p.has_num_output = p.has_transpose = p.has_axis = 1;
      p.num_output = 5;
      p.transpose = transpose;
      p.axis = axis;
      h->param.inner_product_param = &p;
      const int64_t shape[4] = {3, 2, 3, 2};
      bottom(h, 4, shape);
      lh_add_top(h);
      assert_int_equal(lh_setup(h), NS_OK);
      randomize_params(h);
      gc_opts o = {.setup_done = 1};
      grad_check(h, &o);
      lh_destroy(h);
    }
}

typedef struct pool_case {
  int64_t shape[4];
  int method;
  uint32_t kernel, pad, stride;
  int global;
} pool_case;

static void test_pooling(void **state) {
  const pool_case cases[] = {
      {{2, 2, 5, 5}, 0, 3, 0, 2, 0}, {{1, 3, 6, 7}, 0, 2, 1, 2, 0}, {{2, 2, 7, 5}, 0, 3, 1, 1, 0},
      {{2, 2, 5, 5}, 1, 3, 0, 2, 0}, {{1, 3, 6, 7}, 1, 3, 1, 2, 0}, {{2, 2, 7, 5}, 1, 2, 1, 3, 0},
      {{2, 3, 4, 5}, 0, 0, 0, 1, 1}, {{2, 3, 4, 5}, 1, 0, 0, 1, 1}, {{1, 2, 6, 6}, 0, 3, 0, 2, 0},
      {{1, 2, 6, 8}, 1, 3, 0, 2, 0}, /* ceil: last window clipped */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    lh_harness *h = layer("Pooling");
    Caffe__PoolingParameter p = CAFFE__POOLING_PARAMETER__INIT;
    p.has_pool = 1;
    p.pool = cases[c].method;
    if (cases[c].global) {
      p.has_global_pooling = 1;
      p.global_pooling = 1;
    } else {
      p.has_kernel_size = p.has_pad = p.has_stride = 1;
      p.kernel_size = cases[c].kernel;
      p.pad = cases[c].pad;
      p.stride = cases[c].stride;
    }
    h->param.pooling_param = &p;
    fill_distinct(bottom(h, 4, cases[c].shape));
    lh_add_top(h);
    grad_check(h, NULL);
    lh_destroy(h);
  }
}

/* ---- LRN, BatchNorm, Scale, Bias, Eltwise ---------------------------------- */

static void test_lrn(void **state) {
  for (int within = 0; within < 2; within++)
    for (uint32_t size = 3; size <= 5; size += 2) {
      lh_harness *h = layer("LRN");
      Caffe__LRNParameter p = CAFFE__LRNPARAMETER__INIT;
      p.has_local_size = p.has_alpha = p.has_beta = p.has_k = p.has_norm_region = 1;
      p.local_size = size;
      p.alpha = 0.8f; /* large enough for the normalisation to matter */
      p.beta = 0.75f;
      p.k = 1.5f;
      p.norm_region = within ? CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL
                             : CAFFE__LRNPARAMETER__NORM_REGION__ACROSS_CHANNELS;
      h->param.lrn_param = &p;
      const int64_t shape[4] = {2, 7, 3, 4};
      fill_uniform(bottom(h, 4, shape), -2, 2);
      lh_add_top(h);
      grad_check(h, NULL);
      lh_destroy(h);
    }
}

static void check_batchnorm(int global, int in_place, int axes) {
  lh_harness *h = layer("BatchNorm");
  Caffe__BatchNormParameter p = CAFFE__BATCH_NORM_PARAMETER__INIT;
  if (global >= 0) {
    p.has_use_global_stats = 1;
    p.use_global_stats = global;
  }
  h->param.batch_norm_param = &p;
  const int64_t shape[4] = {3, 4, 3, 2};
  fill_uniform(bottom(h, axes, shape), -2, 2);
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  h->net.phase = NS_PHASE_TRAIN;
  assert_int_equal(lh_setup(h), NS_OK);
  /* stored statistics for the global case: factor 2, so mean 0.1, var 0.8 */
  for (int64_t k = 0; k < 4; k++) {
    h->layer.params[0]->data[k] = 0.2f * (float)(k - 1);
    h->layer.params[1]->data[k] = 1.6f + 0.1f * (float)k;
  }
  h->layer.params[2]->data[0] = 2.0f;
  /* the normalisation curves strongly: with h = 1e-2 the central
   * difference is up to 3.2e-3 of the scale off (40 data seeds; 2.5e-4
   * with this file's), and a smaller step brings the float noise up */
  gc_opts o = {.setup_done = 1, .train = 1, .skip_params = 1, .tol = 5e-3};
  grad_check(h, &o);
  lh_destroy(h);
}

static void test_batchnorm(void **state) {
  check_batchnorm(-1, 0, 4); /* TRAIN default: batch statistics */
  check_batchnorm(-1, 1, 4);
  check_batchnorm(-1, 0, 2);
  check_batchnorm(1, 0, 4); /* frozen statistics while fine-tuning */
  check_batchnorm(1, 1, 4);
}

/* Caffe's moving averages after two TRAIN forwards, by hand: factor
 * 0.999 * 1 + 1 ... with maf 0.5: after one forward from zeros, factor 1,
 * mean sum = mean, var sum = m / (m - 1) var; after a second (same data)
 * factor 1.5, mean sum 1.5 mean, var sum 1.5 m / (m - 1) var. */
static void test_batchnorm_moving_average(void **state) {
  lh_harness *h = layer("BatchNorm");
  h->net.phase = NS_PHASE_TRAIN;
  Caffe__BatchNormParameter p = CAFFE__BATCH_NORM_PARAMETER__INIT;
  p.has_moving_average_fraction = 1;
  p.moving_average_fraction = 0.5f;
  h->param.batch_norm_param = &p;
  const int64_t shape[2] = {4, 2};
  const float x[8] = {1, 10, 2, 20, 3, 30, 6, 40}; /* channel 0: 1 2 3 6; channel 1: 10..40 */
  assert_non_null(lh_add_bottom(h, 2, shape, x));
  ns_blob *t = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_int_equal(h->layer.ops->forward(h->ctx, &h->layer), NS_OK);
  float *mean = h->layer.params[0]->data, *var = h->layer.params[1]->data;
  assert_float_equal(h->layer.params[2]->data[0], 1.5, 1e-6);
  assert_float_equal(mean[0], 1.5 * 3.0, 1e-5);
  assert_float_equal(mean[1], 1.5 * 25.0, 1e-4);
  /* channel 0: deviations -2 -1 0 3, biased var 14/4, unbiased 14/3 */
  assert_float_equal(var[0], 1.5 * 14.0 / 3.0, 1e-4);
  assert_float_equal(var[1], 1.5 * 500.0 / 3.0, 1e-2); /* deviations -15 -5 5 15 */
  assert_float_equal(t->data[0], -2.0 / sqrt(3.5 + 1e-5), 1e-5);
  lh_destroy(h);
}

static void check_scale(const char *type, int two_bottoms, int bias, int in_place) {
  lh_harness *h = layer(type);
  Caffe__ScaleParameter sp = CAFFE__SCALE_PARAMETER__INIT;
  Caffe__BiasParameter bp = CAFFE__BIAS_PARAMETER__INIT;
  sp.has_bias_term = 1;
  sp.bias_term = bias;
  sp.has_axis = bp.has_axis = 1;
  sp.axis = bp.axis = 1;
  sp.has_num_axes = bp.has_num_axes = 1;
  sp.num_axes = bp.num_axes = 2;
  h->param.scale_param = &sp;
  h->param.bias_param = &bp;
  bottom(h, 4, S4);
  if (two_bottoms) {
    const int64_t op[2] = {S4[1], S4[2]};
    bottom(h, 2, op);
  }
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  h->net.phase = NS_PHASE_TRAIN;
  assert_int_equal(lh_setup(h), NS_OK);
  randomize_params(h);
  gc_opts o = {.setup_done = 1, .train = 1};
  grad_check(h, &o);
  lh_destroy(h);
}

static void test_scale_bias(void **state) {
  check_scale("Scale", 0, 0, 0);
  check_scale("Scale", 0, 1, 0);
  check_scale("Scale", 0, 1, 1);
  check_scale("Scale", 1, 0, 0);
  check_scale("Scale", 1, 1, 1);
  check_scale("Bias", 0, 0, 0);
  check_scale("Bias", 1, 0, 0);
  check_scale("Bias", 0, 0, 1);
}

static void check_eltwise(int op, int n_bottoms, int coeff, int in_place) {
  lh_harness *h = layer("Eltwise");
  Caffe__EltwiseParameter p = CAFFE__ELTWISE_PARAMETER__INIT;
  float c[3] = {0.5f, -1.5f, 2.0f};
  p.has_operation = 1;
  p.operation = op;
  if (coeff) {
    p.n_coeff = (size_t)n_bottoms;
    p.coeff = c;
  }
  h->param.eltwise_param = &p;
  for (int i = 0; i < n_bottoms; i++) {
    ns_blob *b = bottom(h, 4, S4);
    if (op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX)
      for (int64_t j = 0; j < b->count; j++) b->data[j] = urand(0, 1) + (float)((j + i) % 3);
  }
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  grad_check(h, NULL);
  lh_destroy(h);
}

static void test_eltwise(void **state) {
  check_eltwise(CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, 2, 0, 0);
  check_eltwise(CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, 3, 1, 0);
  check_eltwise(CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, 3, 1, 1);
  check_eltwise(CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, 3, 0, 0);
  check_eltwise(CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX, 3, 0, 0);
}

/* ---- losses and accuracy ---------------------------------------------------- */

static ns_blob *labels(lh_harness *h, int n, const int64_t *shape, int classes, int ignore) {
  ns_blob *b = lh_add_bottom(h, n, shape, NULL);
  assert_non_null(b);
  for (int64_t i = 0; i < b->count; i++) {
    int v = (int)(ns_rng_uniform01(&data_rng) * classes);
    b->data[i] = (float)(ignore >= 0 && i % 4 == 1 ? ignore : v);
  }
  return b;
}

static void test_softmax_loss_grad(void **state) {
  const int modes[] = {-1, CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL,
                       CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID,
                       CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE,
                       CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__NONE};
  for (size_t m = 0; m < sizeof modes / sizeof *modes; m++)
    for (int ignore = 0; ignore < 2; ignore++) {
      lh_harness *h = layer("SoftmaxWithLoss");
      Caffe__LossParameter lp = CAFFE__LOSS_PARAMETER__INIT;
      if (modes[m] >= 0) {
        lp.has_normalization = 1;
        lp.normalization = modes[m];
      }
      if (ignore) {
        lp.has_ignore_label = 1;
        lp.ignore_label = 2;
      }
      h->param.loss_param = &lp;
      const int64_t shape[4] = {2, 4, 3, 2}, lshape[3] = {2, 3, 2}; /* a loss map */
      fill_uniform(bottom(h, 4, shape), -2, 2);
      labels(h, 3, lshape, 4, ignore ? 2 : -1);
      lh_add_top(h);
      gc_opts o = {.skip_bottoms = 2};
      grad_check(h, &o);
      lh_destroy(h);
    }
  /* axis 2 of a (2, 3, 5) bottom: 5 classes, labels (2, 3); second top prob */
  lh_harness *h = layer("SoftmaxWithLoss");
  Caffe__SoftmaxParameter sp = CAFFE__SOFTMAX_PARAMETER__INIT;
  sp.has_axis = 1;
  sp.axis = 2;
  h->param.softmax_param = &sp;
  const int64_t shape[3] = {2, 3, 5}, lshape[2] = {2, 3};
  fill_uniform(bottom(h, 3, shape), -2, 2);
  labels(h, 2, lshape, 5, -1);
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 2};
  grad_check(h, &o);
  lh_destroy(h);
}

/* Hand computation: logits (1, 2, 3) label 2 and (0, 0, 0) label 0 (ignored
 * in the second run).  -log softmax: log(e + e^2 + e^3) - 3 = 0.407606;
 * log 3 = 1.098612. */
static void test_softmax_loss_values(void **state) {
  const double l0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0, l1 = log(3.0);
  const struct {
    int mode, legacy, ignore;
    double want;
  } cases[] = {
      {-1, -1, 0, (l0 + l1) / 2}, /* default VALID */
      {CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__NONE, -1, 0, l0 + l1},
      {CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID, -1, 1, l0},
      {CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL, -1, 1, l0 / 2},
      {CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE, -1, 1, l0 / 2},
      {-1, 0, 1, l0 / 2}, /* normalize: false is BATCH_SIZE */
      {-1, 1, 1, l0},     /* normalize: true is VALID */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    lh_harness *h = layer("SoftmaxWithLoss");
    Caffe__LossParameter lp = CAFFE__LOSS_PARAMETER__INIT;
    if (cases[c].mode >= 0) {
      lp.has_normalization = 1;
      lp.normalization = cases[c].mode;
    }
    if (cases[c].legacy >= 0) {
      lp.has_normalize = 1;
      lp.normalize = cases[c].legacy;
    }
    if (cases[c].ignore) {
      lp.has_ignore_label = 1;
      lp.ignore_label = 0;
    }
    h->param.loss_param = &lp;
    const int64_t shape[2] = {2, 3}, lshape[1] = {2};
    const float x[6] = {1, 2, 3, 0, 0, 0}, lab[2] = {2, 0};
    assert_non_null(lh_add_bottom(h, 2, shape, x));
    assert_non_null(lh_add_bottom(h, 1, lshape, lab));
    ns_blob *t = lh_add_top(h);
    ns_blob *prob = lh_add_top(h);
    assert_int_equal(lh_run(h), NS_OK);
    assert_int_equal(t->num_axes, 0);
    assert_float_equal(t->data[0], cases[c].want, 1e-5);
    assert_float_equal(prob->data[3], 1.0 / 3.0, 1e-6);
    lh_destroy(h);
  }
  /* a label out of range is an error, not a read past the row */
  lh_harness *h = layer("SoftmaxWithLoss");
  const int64_t shape[2] = {1, 3}, lshape[1] = {1};
  const float x[3] = {0, 0, 0}, lab[1] = {3};
  assert_non_null(lh_add_bottom(h, 2, shape, x));
  assert_non_null(lh_add_bottom(h, 1, lshape, lab));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "out of range"));
  lh_destroy(h);
  /* so is a NaN or huge label, in the loss and in Accuracy */
  const float bad[2] = {NAN, 3e9f};
  for (int k = 0; k < 4; k++) {
    h = layer(k < 2 ? "SoftmaxWithLoss" : "Accuracy");
    assert_non_null(lh_add_bottom(h, 2, shape, x));
    assert_non_null(lh_add_bottom(h, 1, lshape, &bad[k % 2]));
    lh_add_top(h);
    assert_int_equal(lh_run(h), NS_ERR_INPUT);
    lh_destroy(h);
  }
}

static void test_euclidean_loss(void **state) {
  lh_harness *h = layer("EuclideanLoss");
  const int64_t shape[2] = {2, 3};
  const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 3, 1, 5, 7};
  assert_non_null(lh_add_bottom(h, 2, shape, a));
  assert_non_null(lh_add_bottom(h, 2, shape, b));
  ns_blob *t = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_float_equal(t->data[0], (4.0 + 9.0 + 1.0) / 2 / 2, 1e-6); /* sum d^2 / (2 N) */
  lh_destroy(h);
  h = layer("EuclideanLoss");
  const int64_t s3[3] = {3, 2, 2};
  bottom(h, 3, s3);
  bottom(h, 3, s3);
  lh_add_top(h);
  grad_check(h, NULL); /* both bottoms take gradients */
  lh_destroy(h);
}

static void test_sigmoid_ce_loss(void **state) {
  /* x = (0, 2, -1), t = (1, 0, 1): -[log s(0)] - [log(1 - s(2))] - [log s(-1)]
   * = log 2 + log(1 + e^2) + log(1 + e), divided by the batch size 1. */
  lh_harness *h = layer("SigmoidCrossEntropyLoss");
  const int64_t shape[2] = {1, 3};
  const float x[3] = {0, 2, -1}, t[3] = {1, 0, 1};
  assert_non_null(lh_add_bottom(h, 2, shape, x));
  assert_non_null(lh_add_bottom(h, 2, shape, t));
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_float_equal(top->data[0], log(2.0) + log(1 + exp(2.0)) + log(1 + exp(1.0)), 1e-5);
  lh_destroy(h);
  for (int ignore = 0; ignore < 2; ignore++) {
    h = layer("SigmoidCrossEntropyLoss");
    Caffe__LossParameter lp = CAFFE__LOSS_PARAMETER__INIT;
    lp.has_ignore_label = ignore;
    lp.ignore_label = -1;
    h->param.loss_param = &lp;
    const int64_t s4[4] = {2, 3, 2, 2};
    fill_uniform(bottom(h, 4, s4), -3, 3);
    ns_blob *tb = bottom(h, 4, s4);
    for (int64_t i = 0; i < tb->count; i++)
      tb->data[i] = ignore && i % 5 == 0 ? -1.0f : urand(0, 1); /* soft targets */
    lh_add_top(h);
    gc_opts o = {.skip_bottoms = 2};
    grad_check(h, &o);
    lh_destroy(h);
  }
}

static void test_accuracy(void **state) {
  /* 4 items, 3 classes; labels 0 1 2 1 */
  const float x[12] = {0.9f, 0.05f, 0.05f, /* top-1 hit */
                       0.5f, 0.3f,  0.2f,  /* label 1: second */
                       0.1f, 0.2f,  0.7f,  /* hit */
                       0.3f, 0.3f,  0.4f}; /* label 1 ties class 0 at 2nd; third */
  const float lab[4] = {0, 1, 2, 1};
  const struct {
    int top_k, ignore;
    double want;
  } cases[] = {{1, -1, 0.5}, {2, -1, 0.75}, {3, -1, 1.0}, {1, 2, 1.0 / 3.0}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    lh_harness *h = layer("Accuracy");
    Caffe__AccuracyParameter p = CAFFE__ACCURACY_PARAMETER__INIT;
    p.has_top_k = 1;
    p.top_k = (uint32_t)cases[c].top_k;
    if (cases[c].ignore >= 0) {
      p.has_ignore_label = 1;
      p.ignore_label = cases[c].ignore;
    }
    h->param.accuracy_param = &p;
    const int64_t shape[2] = {4, 3}, lshape[1] = {4};
    assert_non_null(lh_add_bottom(h, 2, shape, x));
    assert_non_null(lh_add_bottom(h, 1, lshape, lab));
    ns_blob *t = lh_add_top(h);
    ns_blob *per = lh_add_top(h);
    assert_int_equal(lh_run(h), NS_OK);
    assert_float_equal(t->data[0], cases[c].want, 1e-6);
    if (cases[c].top_k == 1 && cases[c].ignore < 0) {
      assert_float_equal(per->data[0], 1.0, 1e-6);
      assert_float_equal(per->data[1], 0.0, 1e-6);
      assert_float_equal(per->data[2], 1.0, 1e-6);
    }
    lh_destroy(h);
  }
  /* spatial: (1, 2, 2) scores at axis 1 against a (1, 2) label map */
  lh_harness *h = layer("Accuracy");
  const int64_t shape[3] = {1, 2, 2}, lshape[2] = {1, 2};
  const float xs[4] = {1, 0, 0, 1}, ls[2] = {0, 0}; /* position 0: class 0 wins; 1: class 1 */
  assert_non_null(lh_add_bottom(h, 3, shape, xs));
  assert_non_null(lh_add_bottom(h, 2, lshape, ls));
  ns_blob *t = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_float_equal(t->data[0], 0.5, 1e-6);
  lh_destroy(h);
}

/* ---- whole nets -------------------------------------------------------------- */

/* conv -> ReLU (in place) -> split: MAX pool -> ip -> SoftmaxWithLoss, and
 * 1x1 conv -> AVE pool -> ip -> EuclideanLoss (weight 0.5); an Accuracy
 * only in TEST; Dropout in place on the second path (TRAIN: a mask). */
static const char *const small_net =
    "name: 'small'\n"
    "force_backward: true\n"
    "layer { name: 'in' type: 'Input' top: 'data' top: 'label' top: 'target'\n"
    "  input_param { shape { dim: 2 dim: 2 dim: 7 dim: 6 } shape { dim: 2 }\n"
    "                shape { dim: 2 dim: 3 } } }\n"
    "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1'\n"
    "  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }\n"
    "  convolution_param { num_output: 3 kernel_size: 3 pad: 1\n"
    "    weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'uniform' min: -0.3 max: "
    "0.3 } } }\n"
    "layer { name: 'relu1' type: 'ReLU' bottom: 'conv1' top: 'conv1' }\n"
    "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1'\n"
    "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
    "layer { name: 'ip1' type: 'InnerProduct' bottom: 'pool1' top: 'ip1'\n"
    "  inner_product_param { num_output: 4 weight_filler { type: 'gaussian' std: 0.5 }\n"
    "    bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
    "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip1' bottom: 'label' top: 'loss' }\n"
    "layer { name: 'acc' type: 'Accuracy' bottom: 'ip1' bottom: 'label' top: 'acc'\n"
    "  include { phase: TEST } }\n"
    "layer { name: 'conv2' type: 'Convolution' bottom: 'conv1' top: 'conv2'\n"
    "  convolution_param { num_output: 2 kernel_size: 1\n"
    "    weight_filler { type: 'gaussian' std: 0.5 } } }\n"
    "layer { name: 'drop' type: 'Dropout' bottom: 'conv2' top: 'conv2'\n"
    "  dropout_param { dropout_ratio: 0.2 } }\n"
    "layer { name: 'pool2' type: 'Pooling' bottom: 'conv2' top: 'pool2'\n"
    "  pooling_param { pool: AVE kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'ip2' type: 'InnerProduct' bottom: 'pool2' top: 'ip2'\n"
    "  inner_product_param { num_output: 3 weight_filler { type: 'gaussian' std: 0.5 } } }\n"
    "layer { name: 'l2' type: 'EuclideanLoss' bottom: 'ip2' bottom: 'target' top: 'l2'\n"
    "  loss_weight: 0.5 }\n";

typedef struct net_fixture {
  char *dir;
  ns_ctx *ctx;
  ns_net *net;
} net_fixture;

static ns_status load_net(net_fixture *f, const char *text, ns_phase phase) {
  char path[1024];
  f->dir = tu_mkdtemp();
  assert_non_null(f->dir);
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  f->ctx = ns_ctx_create();
  ns_ctx_set_threads(f->ctx, 1);
  return ns_net_load(f->ctx, path, &(ns_net_opts){phase, 5, NULL}, &f->net);
}

static void free_net(net_fixture *f) {
  ns_net_destroy(f->net);
  ns_ctx_destroy(f->ctx);
  tu_rmtree(f->dir);
  free(f->dir);
}

/* Fuzz regression: an empty batch through SoftmaxWithLoss (with its
 * probabilities as a second top) forwards and backwards cleanly; Caffe's
 * normalizer is at least 1, so the loss is 0. */
static void test_net_empty_batch(void **state) {
  (void)state;
  static const char *text =
      "layer { name: 'in' type: 'Input' top: 'data' top: 'label'\n"
      "  input_param { shape { dim: 0 dim: 3 dim: 4 dim: 4 } shape { dim: 0 dim: 4 dim: 4 } } }\n"
      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
      "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'conv' bottom: 'label' top: 'loss'\n"
      "  top: 'prob' loss_weight: 1 loss_weight: 0 propagate_down: true propagate_down: false }\n";
  net_fixture f = {0};
  assert_int_equal(load_net(&f, text, NS_PHASE_TRAIN), NS_OK);
  float loss = -1;
  assert_int_equal(ns_net_forward_loss(f.ctx, f.net, &loss), NS_OK);
  assert_true(loss == 0.0f);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  free_net(&f);
}

static float *blob_data(ns_net *net, const char *name) {
  int b = ns_net_find_blob(net, name);
  assert_true(b >= 0);
  return ns_net_blob(net, b).data;
}

static void fill_inputs(ns_net *net) {
  float *data = blob_data(net, "data"), *label = blob_data(net, "label");
  float *target = blob_data(net, "target");
  for (int i = 0; i < 2 * 2 * 7 * 6; i++) data[i] = urand(-1, 1);
  label[0] = 3;
  label[1] = 1;
  for (int i = 0; i < 6; i++) target[i] = urand(-1, 1);
}

/* Copies n floats of a view (the run being compared overwrites them). */
static float *saved(const ns_tensor *t) {
  float *copy = malloc((size_t)t->count * sizeof *copy);
  assert_non_null(copy);
  memcpy(copy, t->data, (size_t)t->count * sizeof *copy);
  return copy;
}

/* pycaffe's forward(start, end) and backward(start, end): a run cut in two
 * ranges at any layer is the same sequence of layer calls as the whole
 * run, so blobs, blob diffs and param diffs come out bit for bit the
 * same (TEST phase: Dropout draws no mask, so two forwards agree).  A
 * cut between conv1 and its fused in-place ReLU shows conv1's values
 * before the ReLU.  Ranges and indexes out of bounds are usage errors. */
static void test_net_ranges(void **state) {
  (void)state;
  net_fixture f = {0};
  assert_int_equal(load_net(&f, small_net, NS_PHASE_TEST), NS_OK);
  fill_inputs(f.net);
  int n = ns_net_layer_count(f.net), relu = ns_net_find_layer(f.net, "relu1");
  int conv1 = ns_net_find_layer(f.net, "conv1"), b_conv1 = ns_net_find_blob(f.net, "conv1");
  int b_data = ns_net_find_blob(f.net, "data");
  assert_true(relu == conv1 + 1);
  assert_int_equal(ns_net_forward(f.ctx, f.net), NS_OK);
  ns_tensor out = ns_net_blob(f.net, ns_net_find_blob(f.net, "l2"));
  float whole_loss = out.data[0];
  ns_tensor d_data, d_w;
  assert_int_equal(ns_net_backward_range(f.ctx, f.net, 0, n - 1), NS_OK);
  assert_int_equal(ns_net_blob_diff(f.ctx, f.net, b_data, &d_data), NS_OK);
  assert_int_equal(ns_net_param_diff(f.ctx, f.net, conv1, 0, &d_w), NS_OK);
  float *whole_dx = saved(&d_data), *whole_dw = saved(&d_w);

  out.data[0] = -1;
  assert_int_equal(ns_net_forward_range(f.ctx, f.net, 0, conv1), NS_OK);
  ns_tensor c = ns_net_blob(f.net, b_conv1);
  int negatives = 0;
  for (int64_t i = 0; i < c.count; i++) negatives += c.data[i] < 0;
  assert_true(negatives > 0);     /* the ReLU did not run */
  assert_true(out.data[0] == -1); /* nor did anything past conv1 */
  assert_int_equal(ns_net_forward_range(f.ctx, f.net, relu, n - 1), NS_OK);
  assert_true(out.data[0] == whole_loss);

  ns_net_clear_param_diffs(f.net);
  memset(d_data.data, 0, (size_t)d_data.count * sizeof(float));
  assert_int_equal(ns_net_backward_range(f.ctx, f.net, relu, n - 1), NS_OK);
  assert_int_equal(ns_net_backward_range(f.ctx, f.net, 0, conv1), NS_OK);
  assert_memory_equal(d_data.data, whole_dx, (size_t)d_data.count * sizeof(float));
  assert_memory_equal(d_w.data, whole_dw, (size_t)d_w.count * sizeof(float));

  assert_int_equal(ns_net_forward_range(f.ctx, f.net, relu, conv1), NS_ERR_USAGE);
  assert_non_null(strstr(ns_ctx_error(f.ctx), "layer range"));
  assert_int_equal(ns_net_backward_range(f.ctx, f.net, 0, n), NS_ERR_USAGE);
  assert_int_equal(ns_net_blob_diff(f.ctx, f.net, -1, &d_data), NS_ERR_USAGE);
  assert_int_equal(ns_net_param_diff(f.ctx, f.net, 0, 0, &d_w), NS_ERR_USAGE); /* Input: none */
  free(whole_dx);
  free(whole_dw);
  free_net(&f);
}

/* ---- differences across kinks ---------------------------------------------- */

/* A net's objective E, evaluated after each change of a param or input. */
typedef struct net_objective net_objective;
struct net_objective {
  double (*eval)(const net_objective *o);
  ns_net *net;
  ns_ctx *ctx;
  const struct conf_out *outs; /* conformance nets: their outputs and targets */
  int n_out;
};

/* (E(x[i] + up) - E(x[i] - down)) over the step the floats actually took:
 * central with up = down, one-sided with one of them 0. */
static double slope(const net_objective *o, float *x, int64_t i, double up, double down) {
  float keep = x[i], hi = keep + (float)up, lo = keep - (float)down;
  x[i] = hi;
  double ep = o->eval(o);
  x[i] = lo;
  double em = o->eval(o);
  x[i] = keep;
  return (ep - em) / ((double)hi - (double)lo);
}

static double rel_error(double ana, double num) {
  return fabs(ana - num) / fmax(SCALE_FLOOR, fmax(fabs(ana), fabs(num)));
}

/* The error of the analytic gradient `ana` of E in x[i] against the
 * central difference with step h.  Through a whole net x reaches many
 * ReLU and MAX kinks, and one within h of x makes the central difference
 * a blend of the two one-sided slopes.  So when it is more than a quarter
 * of tol off, two more chances, and the smaller error counts (*retried
 * counts these): the central difference with step KINK_STEP * h (clear
 * of a kink that is not that near), and, for a kink at x itself, where
 * the backward (as Caffe's) gives one side's slope, the distance from the
 * range between the forward and the backward difference with that step
 * (0 inside).  Away from kinks that range is only the curvature over
 * h / 4 wide (1.6e-3 at most in small_net), so a gradient scaled by 1.05
 * still fails. */
#define KINK_STEP 0.25
static double kink_tolerant_error(const net_objective *o, float *x, int64_t i, double h, double ana,
                                  double tol, const char *what, int *retried) {
  double central = slope(o, x, i, h, h), err = rel_error(ana, central);
  if (err <= tol / 4) return err;
  (*retried)++;
  double k = KINK_STEP * h, near = slope(o, x, i, k, k);
  double fwd = slope(o, x, i, k, 0), back = slope(o, x, i, 0, k);
  double lo = fmin(fwd, back), hi = fmax(fwd, back);
  double outside = ana < lo ? lo - ana : ana > hi ? ana - hi : 0;
  err = fmin(fmin(err, rel_error(ana, near)), outside / fmax(SCALE_FLOOR, fabs(ana)));
  if (err > tol)
    fprintf(stderr,
            "  %s[%lld]: analytic %.6g, central %.6g; with step h / 4 %.6g, forward %.6g, "
            "backward %.6g\n",
            what, (long long)i, ana, central, near, fwd, back);
  return err;
}

/* Loss with the dropout mask fixed: the net's generator reseeded. */
static double net_loss(ns_net *net, ns_ctx *ctx) {
  float loss;
  ns_rng_seed(&net->rng, 31);
  assert_int_equal(ns_net_forward_loss(ctx, net, &loss), NS_OK);
  return loss;
}

static double net_loss_of(const net_objective *o) { return net_loss(o->net, o->ctx); }

/* Every element of x against kink_tolerant_error. */
static void check_net_array(const net_objective *o, const char *what, float *x, const float *ana,
                            int64_t n, double h, double tol) {
  int retried = 0;
  for (int64_t i = 0; i < n; i++) {
    double err = kink_tolerant_error(o, x, i, h, ana[i], tol, what, &retried);
    if (err > tol) fail_msg("%s element %lld: %.3g of the scale off", what, (long long)i, err);
  }
}

static void test_net_gradient(void **state) {
  net_fixture f;
  if (load_net(&f, small_net, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  ns_net *net = f.net;
  assert_int_equal(ns_net_find_layer(net, "acc"), -1); /* TEST only */
  assert_int_equal(ns_net_phase(net), NS_PHASE_TRAIN);
  fill_inputs(net);
  double loss = net_loss(net, f.ctx);
  /* the loss is the weighted sum of the two loss tops */
  double parts = blob_data(net, "loss")[0] + 0.5 * blob_data(net, "l2")[0];
  assert_float_equal(loss, parts, 1e-5);
  ns_net_clear_param_diffs(net);
  assert_int_equal(ns_net_backward(f.ctx, net), NS_OK);
  /* every learnable param, and the data (force_backward), against
   * central differences of the net's loss; step 1e-3 here: a 1e-2 step
   * would cross ReLU kinks somewhere in the net, and those within 1e-3
   * are handled as kink_tolerant_error says.  The float forward through
   * five layers makes the loss uneven by about 3e-7 (the float loss
   * itself rounds at 2.4e-7), 1.5e-4 over 2h: tol 1e-2, an absolute 1e-3
   * below the floor (measured worst 0.41 of it; 0.76 over 40 other data
   * seeds). */
  const double h = 1e-3, tol = 1e-2;
  net_objective o = {net_loss_of, net, f.ctx, NULL, 0};
  int n = ns_net_learnable_count(net);
  assert_int_equal(n, 8); /* weights and biases of conv1, ip1, conv2, ip2 */
  for (int k = 0; k < n; k++) {
    ns_learnable lr;
    assert_int_equal(ns_net_learnable(net, k, &lr), NS_OK);
    float *ana = malloc((size_t)lr.data.count * sizeof(float));
    memcpy(ana, lr.diff, (size_t)lr.data.count * sizeof(float));
    check_net_array(&o, lr.layer_name, lr.data.data, ana, lr.data.count, h, tol);
    free(ana);
  }
  int d = ns_net_find_blob(net, "data");
  ns_tensor data = ns_net_blob(net, d);
  assert_non_null(net->blobs[d]->diff);
  float *ana = malloc((size_t)data.count * sizeof(float));
  memcpy(ana, net->blobs[d]->diff, (size_t)data.count * sizeof(float));
  check_net_array(&o, "data", data.data, ana, data.count, h, tol);
  free(ana);
  free_net(&f);
}

static void test_net_learnables(void **state) {
  net_fixture f;
  if (load_net(&f, small_net, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  const char *names[] = {"conv1", "conv1", "ip1", "ip1", "conv2", "conv2", "ip2", "ip2"};
  int n = ns_net_learnable_count(f.net);
  assert_int_equal(n, 8);
  for (int k = 0; k < n; k++) {
    ns_learnable lr;
    assert_int_equal(ns_net_learnable(f.net, k, &lr), NS_OK);
    assert_string_equal(lr.layer_name, names[k]);
    assert_int_equal(lr.index, k % 2);
    assert_non_null(lr.diff);
    float want_lr = k == 1 ? 2.0f : 1.0f, want_decay = k == 1 ? 0.0f : 1.0f;
    assert_float_equal(lr.lr_mult, want_lr, 0);
    assert_float_equal(lr.decay_mult, want_decay, 0);
  }
  ns_learnable lr;
  assert_int_equal(ns_net_learnable(f.net, n, &lr), NS_ERR_USAGE);
  /* TEST has the Accuracy and the same learnables */
  ns_net *test;
  char path[1024];
  tu_path(path, sizeof path, f.dir, "net.prototxt");
  assert_int_equal(ns_net_load(f.ctx, path, &(ns_net_opts){NS_PHASE_TEST, 5, NULL}, &test), NS_OK);
  assert_true(ns_net_find_layer(test, "acc") >= 0);
  assert_int_equal(ns_net_phase(test), NS_PHASE_TEST);
  assert_int_equal(ns_net_learnable_count(test), 8);
  ns_net_destroy(test);
  /* the same through a net definition */
  ns_netdef *def;
  assert_int_equal(ns_netdef_load(f.ctx, path, &def), NS_OK);
  assert_int_equal(ns_net_build_from(f.ctx, def, &(ns_net_opts){NS_PHASE_TEST, 5, NULL}, &test),
                   NS_OK);
  assert_true(ns_net_find_layer(test, "acc") >= 0);
  ns_net_destroy(test);
  assert_int_equal(ns_netdef_load(f.ctx, path, &def), NS_OK);
  assert_int_equal(ns_net_build_from(f.ctx, def, &(ns_net_opts){NS_PHASE_TRAIN, 5, NULL}, &test),
                   NS_OK);
  assert_int_equal(ns_net_find_layer(test, "acc"), -1);
  assert_int_equal(ns_net_phase(test), NS_PHASE_TRAIN);
  ns_net_destroy(test);
  free_net(&f);
}

/* Param diffs accumulate over backward calls (iter_size) until cleared. */
static void test_net_accumulate(void **state) {
  net_fixture f;
  if (load_net(&f, small_net, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  fill_inputs(f.net);
  net_loss(f.net, f.ctx);
  ns_net_clear_param_diffs(f.net);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  ns_learnable lr;
  assert_int_equal(ns_net_learnable(f.net, 2, &lr), NS_OK);
  float *once = malloc((size_t)lr.data.count * sizeof(float));
  memcpy(once, lr.diff, (size_t)lr.data.count * sizeof(float));
  net_loss(f.net, f.ctx);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  int nonzero = 0;
  for (int64_t i = 0; i < lr.data.count; i++) {
    assert_float_equal(lr.diff[i], 2 * once[i], 1e-5 * (1 + fabs(once[i])));
    nonzero += once[i] != 0;
  }
  assert_true(nonzero > 0);
  ns_net_clear_param_diffs(f.net);
  for (int64_t i = 0; i < lr.data.count; i++) assert_true(lr.diff[i] == 0);
  free(once);
  free_net(&f);
}

/* The small net with each `from` replaced by its `to` (NULL-terminated
 * pairs); without force_backward. */
static char *edit_net(const char *from, const char *to, ...) {
  char *s = strdup(small_net);
  va_list ap;
  va_start(ap, to);
  const char *pairs[16] = {"force_backward: true\n", "", from, to};
  int n = 4;
  while (n < 14 && (pairs[n] = va_arg(ap, const char *)) != NULL) {
    pairs[n + 1] = va_arg(ap, const char *);
    n += 2;
  }
  va_end(ap);
  for (int i = 0; i < n; i += 2) {
    char *at = strstr(s, pairs[i]);
    assert_non_null(at);
    size_t len = strlen(s) + strlen(pairs[i + 1]) + 1;
    char *t = malloc(len);
    snprintf(t, len, "%.*s%s%s", (int)(at - s), s, pairs[i + 1], at + strlen(pairs[i]));
    free(s);
    s = t;
  }
  return s;
}

static int layer_needs_backward(ns_net *net, const char *name) {
  int i = ns_net_find_layer(net, name);
  assert_true(i >= 0);
  return net->layers[i].need_backward;
}

static int diff_is_zero(ns_net *net, const char *layer, int index) {
  ns_tensor t;
  assert_int_equal(ns_net_param_by_name(net->ctx, net, layer, index, &t), NS_OK);
  int li = ns_net_find_layer(net, layer);
  const float *d = net->layers[li].params[index]->diff;
  for (int64_t i = 0; d && i < t.count; i++)
    if (d[i] != 0) return 0;
  return 1;
}

/* lr_mult 0 freezes conv1 (no param gradient; without force_backward no
 * layer below ip1's inputs needs backward at all); propagate_down false
 * on ip1 cuts pool1 and relu1 off the first loss. */
static void test_net_frozen_and_propagate_down(void **state) {
  char *frozen = edit_net("param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }",
                          "param { lr_mult: 0 } param { lr_mult: 0 }", NULL);
  net_fixture f;
  if (load_net(&f, frozen, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  assert_false(layer_needs_backward(f.net, "conv1"));
  assert_false(layer_needs_backward(f.net, "relu1"));
  assert_true(layer_needs_backward(f.net, "ip1"));
  assert_true(layer_needs_backward(f.net, "conv2"));
  assert_false(layer_needs_backward(f.net, "pool1"));
  fill_inputs(f.net);
  net_loss(f.net, f.ctx);
  ns_net_clear_param_diffs(f.net);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  assert_true(diff_is_zero(f.net, "conv1", 0));
  assert_true(diff_is_zero(f.net, "conv1", 1));
  assert_false(diff_is_zero(f.net, "ip1", 0));
  assert_false(diff_is_zero(f.net, "conv2", 0));
  ns_learnable lr;
  assert_int_equal(ns_net_learnable(f.net, 0, &lr), NS_OK);
  assert_float_equal(lr.lr_mult, 0, 0);
  free_net(&f);
  free(frozen);

  /* propagate_down: false on ip1 and conv2 -> conv1 gets no gradient */
  char *cut =
      edit_net("bottom: 'pool1' top: 'ip1'\n", "bottom: 'pool1' top: 'ip1' propagate_down: false\n",
               "bottom: 'conv1' top: 'conv2'\n",
               "bottom: 'conv1' top: 'conv2' propagate_down: false\n", NULL);
  if (load_net(&f, cut, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  assert_false(layer_needs_backward(f.net, "conv1"));
  assert_false(layer_needs_backward(f.net, "pool1"));
  assert_true(layer_needs_backward(f.net, "ip1"));
  fill_inputs(f.net);
  net_loss(f.net, f.ctx);
  ns_net_clear_param_diffs(f.net);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  assert_true(diff_is_zero(f.net, "conv1", 0));
  assert_false(diff_is_zero(f.net, "ip1", 0));
  assert_false(diff_is_zero(f.net, "ip2", 0));
  free_net(&f);
  free(cut);
}

/* A layer without a backward on the loss's path is an error naming it. */
static void test_net_no_backward(void **state) {
  const char *text =
      "layer { name: 'in' type: 'Input' top: 'x' top: 'y'\n"
      "  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'ip'\n"
      "  inner_product_param { num_output: 3 } }\n"
      "layer { name: 'am' type: 'ArgMax' bottom: 'ip' top: 'am' }\n"
      "layer { name: 'l' type: 'EuclideanLoss' bottom: 'am' bottom: 'y' top: 'l' }\n";
  net_fixture f;
  if (load_net(&f, text, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  assert_int_equal(ns_net_forward_loss(f.ctx, f.net, NULL), NS_OK);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(f.ctx), "'am'"));
  free_net(&f);
}

/* A loss_weight on an inner top that a later layer also reads: its loss
 * is weight * sum(top) and its gradient adds to the reader's. */
static void test_net_inner_loss_weight(void **state) {
  const char *text =
      "layer { name: 'in' type: 'Input' top: 'x' top: 'label'\n"
      "  input_param { shape { dim: 3 dim: 4 } shape { dim: 3 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'ip' loss_weight: 0.3\n"
      "  inner_product_param { num_output: 5 weight_filler { type: 'gaussian' std: 1 } } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip' bottom: 'label' top: 'loss'\n"
      "  loss_weight: 2 }\n";
  net_fixture f;
  if (load_net(&f, text, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
  float *x = blob_data(f.net, "x"), *label = blob_data(f.net, "label");
  for (int i = 0; i < 12; i++) x[i] = urand(-1, 1);
  label[0] = 0;
  label[1] = 4;
  label[2] = 2;
  double loss = net_loss(f.net, f.ctx);
  double want = 2.0 * blob_data(f.net, "loss")[0];
  for (int i = 0; i < 15; i++) want += 0.3 * blob_data(f.net, "ip")[i];
  assert_float_equal(loss, want, 1e-5);
  ns_net_clear_param_diffs(f.net);
  assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
  for (int k = 0; k < 2; k++) {
    ns_learnable lr;
    assert_int_equal(ns_net_learnable(f.net, k, &lr), NS_OK);
    for (int64_t i = 0; i < lr.data.count; i++) {
      float keep = lr.data.data[i];
      lr.data.data[i] = keep + 1e-2f;
      double ep = net_loss(f.net, f.ctx);
      lr.data.data[i] = keep - 1e-2f;
      double em = net_loss(f.net, f.ctx);
      lr.data.data[i] = keep;
      compare(lr.layer_name, k, i, lr.diff[i], (ep - em) / 2e-2, TOL);
    }
  }
  free_net(&f);
}


/* The gradients do not depend on the thread count (GEMM K-slicing,
 * per-plane loops): 1 and 3 threads give the same bits. */
static void test_net_threads_deterministic(void **state) {
  /* GEMM reductions longer than a K slice (256): conv dW over 400
   * positions, ip1 dX over 300 outputs */
  const char *text =
      "layer { name: 'in' type: 'Input' top: 'data' top: 'label'\n"
      "  input_param { shape { dim: 2 dim: 3 dim: 22 dim: 22 } shape { dim: 2 } } }\n"
      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
      "  convolution_param { num_output: 8 kernel_size: 3 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n"
      "layer { name: 'pool' type: 'Pooling' bottom: 'conv' top: 'pool'\n"
      "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
      "layer { name: 'ip1' type: 'InnerProduct' bottom: 'pool' top: 'ip1'\n"
      "  inner_product_param { num_output: 300 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'relu1' type: 'ReLU' bottom: 'ip1' top: 'ip1' }\n"
      "layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2'\n"
      "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip2' bottom: 'label' top: 'loss' }\n";
  float *diffs[2] = {NULL, NULL};
  int64_t total = 0;
  for (int run = 0; run < 2; run++) {
    net_fixture f;
    if (load_net(&f, text, NS_PHASE_TRAIN) != NS_OK) fail_msg("%s", ns_ctx_error(f.ctx));
    ns_ctx_set_threads(f.ctx, run ? 3 : 1);
    ns_rng saved = data_rng;
    float *data = blob_data(f.net, "data");
    for (int i = 0; i < 2 * 3 * 22 * 22; i++) data[i] = urand(-1, 1);
    blob_data(f.net, "label")[0] = 1;
    blob_data(f.net, "label")[1] = 4;
    data_rng = saved; /* the same inputs in both runs */
    net_loss(f.net, f.ctx);
    ns_net_clear_param_diffs(f.net);
    assert_int_equal(ns_net_backward(f.ctx, f.net), NS_OK);
    total = 0;
    for (int k = 0; k < ns_net_learnable_count(f.net); k++) {
      ns_learnable lr;
      assert_int_equal(ns_net_learnable(f.net, k, &lr), NS_OK);
      total += lr.data.count;
    }
    diffs[run] = malloc((size_t)total * sizeof(float));
    int64_t at = 0;
    for (int k = 0; k < ns_net_learnable_count(f.net); k++) {
      ns_learnable lr;
      assert_int_equal(ns_net_learnable(f.net, k, &lr), NS_OK);
      memcpy(diffs[run] + at, lr.diff, (size_t)lr.data.count * sizeof(float));
      at += lr.data.count;
    }
    free_net(&f);
  }
  assert_memory_equal(diffs[0], diffs[1], (size_t)total * sizeof(float));
  free(diffs[0]);
  free(diffs[1]);
}

/* ---- the conformance nets, trained ---------------------------------------- */

/* Every net of ../shared/conformance (Caffe's own nets and weights) with an
 * EuclideanLoss against a random target on each output blob, in TRAIN with
 * force_backward: the net's param and input gradients against central
 * differences of E = sum over outputs of |out - target|^2 / (2 num),
 * summed in double.  Up to 8 sampled elements per param and input, h =
 * 1e-3, tol CONF_TOL on the scale above (measured worst 0.14 of it,
 * conv_group; 0.59 over 40 other data seeds), kinks handled as
 * kink_tolerant_error says (3 of 764 comparisons take the second chance,
 * all in mini_caffenet's conv1, whose weights reach hundreds of ReLU and
 * MAX kinks).  No miss is allowed in
 * any case, every case must compare something (but those on
 * no_gradient_cases), and a backward answering UNSUPPORTED fails the case
 * unless the layer it names is one whose backward Caffe does not
 * implement either. */
#define CONF_TOL 1e-2

/* Caffe's ArgMax and Accuracy have a NOT_IMPLEMENTED backward. */
static const char *const no_backward_types[] = {"ArgMax", "Accuracy"};
/* Cases with nothing to differentiate: the output is ArgMax's. */
static const char *const no_gradient_cases[] = {"argmax"};

static int on_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, list[i]) == 0) return 1;
  return 0;
}

/* ns_layer_fail's text is "layer 'name' (Type): ..." */
static int names_no_backward_type(const char *error) {
  for (size_t i = 0; i < sizeof no_backward_types / sizeof *no_backward_types; i++) {
    char want[64];
    snprintf(want, sizeof want, "(%s):", no_backward_types[i]);
    if (strstr(error, want)) return 1;
  }
  return 0;
}

#include <dirent.h>

typedef struct conf_out {
  int blob, target;
  int64_t count, num;
} conf_out;

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, fp) != (size_t)n) n = 0;
  s[n] = 0;
  fclose(fp);
  return s;
}

static double conf_objective(ns_net *net, const conf_out *outs, int n_out) {
  ns_rng_seed(&net->rng, 31); /* the same Dropout masks every time */
  assert_int_equal(ns_net_run_forward(net->ctx, net, NULL), NS_OK);
  double e = 0;
  for (int k = 0; k < n_out; k++) {
    const float *y = net->blobs[outs[k].blob]->data, *t = net->blobs[outs[k].target]->data;
    double sum = 0;
    for (int64_t i = 0; i < outs[k].count; i++)
      sum += ((double)y[i] - t[i]) * ((double)y[i] - t[i]);
    e += sum / (2.0 * (double)outs[k].num);
  }
  return e;
}

typedef struct conf_stats {
  int compared, retried;
  double worst; /* of |analytic - numeric| / scale, over the comparisons that passed */
  char worst_case[256];
} conf_stats;

static double conf_objective_of(const net_objective *o) {
  return conf_objective(o->net, o->outs, o->n_out);
}

/* Compares up to 8 sampled elements of every learning param and of every
 * input that is not a target; fails the test on any miss.  Returns the
 * number of comparisons. */
static int compare_conformance_gradients(const char *name, ns_net *net, const conf_out *outs,
                                         int n_out, conf_stats *stats) {
  const double h = 1e-3;
  net_objective o = {conf_objective_of, net, net->ctx, outs, n_out};
  int compared = 0, misses = 0;
  int n_learn = ns_net_learnable_count(net);
  for (int k = 0; k < n_learn + ns_net_input_count(net); k++) {
    float *x, *ana;
    int64_t count;
    const char *what;
    if (k < n_learn) {
      ns_learnable lr;
      assert_int_equal(ns_net_learnable(net, k, &lr), NS_OK);
      if (lr.lr_mult == 0) continue; /* BatchNorm statistics */
      x = lr.data.data;
      count = lr.data.count;
      what = lr.layer_name;
      ana = malloc((size_t)count * sizeof(float) + 4);
      memcpy(ana, lr.diff, (size_t)count * sizeof(float));
    } else {
      ns_blob *b = net->blobs[ns_net_input_blob(net, k - n_learn)];
      if (strncmp(b->name, "gc_target", 9) == 0 || !b->diff) continue;
      x = b->data;
      count = b->count;
      what = b->name;
      ana = malloc((size_t)count * sizeof(float) + 4);
      memcpy(ana, b->diff, (size_t)count * sizeof(float));
    }
    for (int s = 0; s < 8 && s < count; s++) {
      int64_t i = count <= 8 ? s : (int64_t)(ns_rng_uniform01(&data_rng) * (double)count);
      double err = kink_tolerant_error(&o, x, i, h, ana[i], CONF_TOL, what, &stats->retried);
      compared++;
      if (err > CONF_TOL) {
        misses++;
      } else if (err > stats->worst) {
        stats->worst = err;
        snprintf(stats->worst_case, sizeof stats->worst_case, "%s", name);
      }
    }
    free(ana);
  }
  if (misses)
    fail_msg("%s: %d of %d gradient comparisons out of tolerance", name, misses, compared);
  return compared;
}

static void check_conformance_case(const char *dir, const char *name, conf_stats *stats) {
  char path[1200], wpath[1200];
  tu_path(path, sizeof path, dir, "net.prototxt");
  tu_path(wpath, sizeof wpath, dir, "weights.caffemodel");
  ns_ctx *ctx = ns_ctx_create();
  ns_ctx_set_threads(ctx, 1);
  ns_net *plain;
  if (ns_net_load(ctx, path, NULL, &plain) != NS_OK) fail_msg("%s: %s", name, ns_ctx_error(ctx));
  /* outputs: blobs no layer reads (in place does not count as reading) */
  char *text = read_text(path);
  assert_non_null(text);
  size_t cap = strlen(text) + 4096;
  char *edited = malloc(cap);
  size_t len = (size_t)snprintf(edited, cap, "force_backward: true\n%s\n", text);
  free(text);
  int n_out = 0;
  char out_names[8][256];
  for (int b = 0; b < ns_net_blob_count(plain) && n_out < 8; b++) {
    ns_tensor t = ns_net_blob(plain, b);
    int read = 0;
    for (int l = 0; l < ns_net_layer_count(plain) && !read; l++)
      for (int j = 0; j < ns_net_layer_bottom_count(plain, l); j++) {
        if (strcmp(ns_net_layer_bottom(plain, l, j), t.name) != 0) continue;
        int in_place = j < ns_net_layer_top_count(plain, l) &&
                       strcmp(ns_net_layer_top(plain, l, j), t.name) == 0;
        if (!in_place) read = 1;
      }
    if (read || t.count == 0) continue;
    snprintf(out_names[n_out], sizeof out_names[n_out], "%s", t.name);
    len += (size_t)snprintf(edited + len, cap - len,
                            "layer { name: 'gc_in%d' type: 'Input' top: 'gc_target%d' "
                            "input_param { shape {",
                            n_out, n_out);
    for (int a = 0; a < t.num_axes; a++)
      len += (size_t)snprintf(edited + len, cap - len, " dim: %lld", (long long)t.shape[a]);
    len += (size_t)snprintf(edited + len, cap - len,
                            " } } }\nlayer { name: 'gc_loss%d' type: 'EuclideanLoss' "
                            "bottom: '%s' bottom: 'gc_target%d' top: 'gc_loss%d' }\n",
                            n_out, t.name, n_out, n_out);
    n_out++;
  }
  ns_net_destroy(plain);
  char tdir_path[1200];
  char *tdir = tu_mkdtemp();
  tu_path(tdir_path, sizeof tdir_path, tdir, "net.prototxt");
  assert_int_equal(tu_write_file(tdir_path, edited, strlen(edited)), 0);
  free(edited);
  ns_net *net;
  if (ns_net_load(ctx, tdir_path, &(ns_net_opts){NS_PHASE_TRAIN, 1, wpath}, &net) != NS_OK)
    fail_msg("%s: %s", name, ns_ctx_error(ctx));
  tu_rmtree(tdir);
  free(tdir);
  conf_out outs[8];
  for (int k = 0; k < n_out; k++) {
    char tname[64];
    snprintf(tname, sizeof tname, "gc_target%d", k);
    outs[k].blob = ns_net_find_blob(net, out_names[k]);
    outs[k].target = ns_net_find_blob(net, tname);
    outs[k].count = net->blobs[outs[k].blob]->count;
    outs[k].num = net->blobs[outs[k].blob]->num_axes ? net->blobs[outs[k].blob]->shape[0] : 1;
  }
  /* random inputs (also the targets) */
  for (int i = 0; i < ns_net_input_count(net); i++) {
    ns_tensor t = ns_net_blob(net, ns_net_input_blob(net, i));
    for (int64_t k = 0; k < t.count; k++) t.data[k] = urand(-1, 1);
  }
  conf_objective(net, outs, n_out);
  ns_net_clear_param_diffs(net);
  ns_status st = ns_net_backward(ctx, net);
  int compared = 0;
  if (st == NS_ERR_UNSUPPORTED && names_no_backward_type(ns_ctx_error(ctx))) {
    fprintf(stderr, "  %s: no backward in Caffe either: %s\n", name, ns_ctx_error(ctx));
  } else {
    if (st != NS_OK) fail_msg("%s: %s", name, ns_ctx_error(ctx));
    compared = compare_conformance_gradients(name, net, outs, n_out, stats);
  }
  int listed =
      on_list(name, no_gradient_cases, sizeof no_gradient_cases / sizeof *no_gradient_cases);
  if (!listed && compared == 0) fail_msg("%s: no gradient to compare", name);
  if (listed && compared > 0)
    fail_msg("%s: has gradients now: drop it from no_gradient_cases", name);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  stats->compared += compared;
}

static void test_conformance_nets(void **state) {
  const char *root = tu_conformance_dir();
  if (!root) skip(); /* no ../shared */
  DIR *d = opendir(root);
  assert_non_null(d);
  struct dirent *e;
  conf_stats stats = {0};
  int cases = 0;
  while ((e = readdir(d))) {
    char dir[1100], w[1200];
    if (e->d_name[0] == '.' || strstr(e->d_name, "_v1") || strstr(e->d_name, "_fcn")) continue;
    tu_path(dir, sizeof dir, root, e->d_name);
    tu_path(w, sizeof w, dir, "weights.caffemodel");
    FILE *fp = fopen(w, "rb");
    if (!fp) continue;
    fclose(fp);
    check_conformance_case(dir, e->d_name, &stats);
    cases++;
  }
  closedir(d);
  fprintf(stderr,
          "  conformance nets: %d cases, %d comparisons, %d given the kink chance, "
          "worst %.2g of the tolerance (%s)\n",
          cases, stats.compared, stats.retried, stats.worst / CONF_TOL, stats.worst_case);
  assert_true(cases > 40);
}

int main(void) {
  ns_rng_seed(&data_rng, 2026);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_relu),
      cmocka_unit_test(test_neurons),
      cmocka_unit_test(test_elu),
      cmocka_unit_test(test_power),
      cmocka_unit_test(test_prelu),
      cmocka_unit_test(test_dropout),
      cmocka_unit_test(test_dropout_values),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_concat),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_flatten_reshape_crop),
      cmocka_unit_test(test_convolution),
      cmocka_unit_test(test_convolution_two_bottoms),
      cmocka_unit_test(test_deconvolution),
      cmocka_unit_test(test_inner_product),
      cmocka_unit_test(test_pooling),
      cmocka_unit_test(test_lrn),
      cmocka_unit_test(test_batchnorm),
      cmocka_unit_test(test_batchnorm_moving_average),
      cmocka_unit_test(test_scale_bias),
      cmocka_unit_test(test_eltwise),
      cmocka_unit_test(test_softmax_loss_grad),
      cmocka_unit_test(test_softmax_loss_values),
      cmocka_unit_test(test_euclidean_loss),
      cmocka_unit_test(test_sigmoid_ce_loss),
      cmocka_unit_test(test_accuracy),
      cmocka_unit_test(test_net_gradient),
      cmocka_unit_test(test_net_learnables),
      cmocka_unit_test(test_net_accumulate),
      cmocka_unit_test(test_net_frozen_and_propagate_down),
      cmocka_unit_test(test_net_no_backward),
      cmocka_unit_test(test_net_empty_batch),
      cmocka_unit_test(test_net_ranges),
      cmocka_unit_test(test_net_inner_loss_weight),
      cmocka_unit_test(test_net_threads_deterministic),
      cmocka_unit_test(test_conformance_nets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
