/* CaffeNet's layers (Convolution, InnerProduct, ReLU, Pooling, LRN,
 * Dropout, Softmax) through their vtables on small cases worked by hand
 * (each in a comment), identities (softmax), and the error checks of
 * setup and reshape.  Expected values are exact fractions; the tolerance
 * is 1e-6 relative to max(1, |want|). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/layer_harness.h"

#define TOL 1e-6

static lh_harness *make(const char *type) {
  lh_harness *h = lh_create(type);
  if (!h) fail_msg("layer type %s is not registered", type);
  return h;
}

static void run_ok(lh_harness *h) {
  if (lh_run(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
}

static void rerun_ok(lh_harness *h) {
  if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
}

/* Runs; expects status st with every needle in the message. */
static void run_fails(lh_harness *h, ns_status st, const char *needle, const char *needle2) {
  ns_status got = lh_run(h);
  const char *msg = ns_ctx_error(h->ctx);
  if (got != st) fail_msg("status %d, expected %d (%s)", got, st, msg);
  if (!strstr(msg, needle) || (needle2 && !strstr(msg, needle2)))
    fail_msg("error '%s' lacks '%s'%s%s", msg, needle, needle2 ? " / " : "",
             needle2 ? needle2 : "");
}

static void expect_shape(const ns_blob *b, int n, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  const int64_t want[4] = {d0, d1, d2, d3};
  char got[128], exp[128];
  ns_shape_str(b->shape, b->num_axes, got, sizeof got);
  ns_shape_str(want, n, exp, sizeof exp);
  if (strcmp(got, exp) != 0) fail_msg("shape %s, expected %s", got, exp);
}

static void expect_values(const float *got, const double *want, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double scale = fabs(want[i]) > 1 ? fabs(want[i]) : 1;
    if (!(fabs(got[i] - want[i]) <= TOL * scale))
      fail_msg("element %lld: %.9g, expected %.9g", (long long)i, got[i], want[i]);
  }
}

/* ---- Pooling ------------------------------------------------------------ */

/* The 4x4 input of every pooling case:
 *   16  2  3  1
 *    4  5  6 15
 *    7  8  9 10
 *   14 11 12 13 */
static const float pool_in[16] = {16, 2, 3, 1, 4, 5, 6, 15, 7, 8, 9, 10, 14, 11, 12, 13};
static const int64_t pool_shape[4] = {1, 1, 4, 4};

static lh_harness *pool_case(Caffe__PoolingParameter *pp, int tops) {
  lh_harness *h = make("Pooling");
  h->param.pooling_param = pp;
  assert_non_null(lh_add_bottom(h, 4, pool_shape, pool_in));
  for (int i = 0; i < tops; i++) assert_non_null(lh_add_top(h));
  return h;
}

static Caffe__PoolingParameter pool_param(int method, int kernel, int stride, int pad) {
  Caffe__PoolingParameter p = CAFFE__POOLING_PARAMETER__INIT;
  p.has_pool = 1, p.pool = (Caffe__PoolingParameter__PoolMethod)method;
  p.has_kernel_size = 1, p.kernel_size = (uint32_t)kernel;
  p.has_stride = 1, p.stride = (uint32_t)stride;
  if (pad) p.has_pad = 1, p.pad = (uint32_t)pad;
  return p;
}

/* MAX, k3 s2 p0: ceil((4 - 3) / 2) + 1 = 2 outputs per axis; windows
 * rows/cols [0,3) and [2,4) (the second clipped from [2,5)):
 *   (0,0) max{16,2,3,4,5,6,7,8,9} = 16 at index 0
 *   (0,1) max{3,1,6,15,9,10}      = 15 at row 1 col 3 = 7
 *   (1,0) max{7,8,9,14,11,12}     = 14 at row 3 col 0 = 12
 *   (1,1) max{9,10,12,13}         = 13 at 15 */
static void test_pool_max_ceil(void **state) {
  Caffe__PoolingParameter pp = pool_param(0, 3, 2, 0);
  lh_harness *h = pool_case(&pp, 2);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  expect_shape(h->top[1], 4, 1, 1, 2, 2);
  const double want[4] = {16, 15, 14, 13}, mask[4] = {0, 7, 12, 15};
  expect_values(h->top[0]->data, want, 4);
  expect_values(h->top[1]->data, mask, 4);
  lh_destroy(h);
}

/* AVE, k3 s2 p0: the same windows; without padding the divisor is the
 * window clipped to the image: 9, 6, 6, 4.
 *   (0,0) (16+2+3+4+5+6+7+8+9)/9 = 60/9
 *   (0,1) (3+1+6+15+9+10)/6      = 44/6
 *   (1,0) (7+8+9+14+11+12)/6     = 61/6
 *   (1,1) (9+10+12+13)/4         = 11 */
static void test_pool_ave_ceil(void **state) {
  Caffe__PoolingParameter pp = pool_param(1, 3, 2, 0);
  lh_harness *h = pool_case(&pp, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want[4] = {60.0 / 9, 44.0 / 6, 61.0 / 6, 11};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
}

/* k3 s2 p1: ceil((4 + 2 - 3) / 2) + 1 = 3; the last window starts at
 * 2*2 - 1 = 3 < 4 + 1, so it stays.  Per axis the windows are [-1,2),
 * [1,4), [3,6)->[3,5) in padded coordinates; AVE divides by their size
 * within [-1, 5): 3, 3, 2, and sums only the pixels inside [0, 4):
 *   row 0: {16,2,4,5}=27/9        {2,3,1,5,6,15}=32/9          {1,15}=16/6
 *   row 1: {4,5,7,8,14,11}=49/9   {5,6,15,8,9,10,11,12,13}=89/9 {15,10,13}=38/6
 *   row 2: {14,11}=25/6           {11,12,13}=36/6              {13}=13/4
 * MAX over the same pixels: 16 15 15 / 14 15 15 / 14 13 13. */
static void test_pool_pad(void **state) {
  Caffe__PoolingParameter ave = pool_param(1, 3, 2, 1);
  lh_harness *h = pool_case(&ave, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 3, 3);
  const double want_ave[9] = {27.0 / 9, 32.0 / 9, 16.0 / 6, 49.0 / 9, 89.0 / 9,
                              38.0 / 6, 25.0 / 6, 36.0 / 6, 13.0 / 4};
  expect_values(h->top[0]->data, want_ave, 9);
  lh_destroy(h);
  Caffe__PoolingParameter max = pool_param(0, 3, 2, 1);
  h = pool_case(&max, 1);
  run_ok(h);
  const double want_max[9] = {16, 15, 15, 14, 15, 15, 14, 13, 13};
  expect_values(h->top[0]->data, want_max, 9);
  lh_destroy(h);
}

/* MAX k2 s3 p1: ceil((4 + 2 - 2) / 3) + 1 = 3, but the third window would
 * start at 2*3 - 1 = 5 >= 4 + 1 (inside the padding), so 2 remain:
 * windows [-1,1)->[0,1) and [2,4):
 *   (0,0) {16} = 16   (0,1) {3,1} = 3   (1,0) {7,14} = 14   (1,1) {9,10,12,13} = 13 */
static void test_pool_drops_window_in_padding(void **state) {
  Caffe__PoolingParameter pp = pool_param(0, 2, 3, 1);
  lh_harness *h = pool_case(&pp, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want[4] = {16, 3, 14, 13};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
}

/* Rectangular kernel 1x4 and stride 3x1 (the _h/_w spellings): rows
 * ceil((4 - 1) / 3) + 1 = 2 windows at rows 0 and 3, columns
 * ceil((4 - 4) / 1) + 1 = 1; MAX of row 0 = 16, of row 3 = 14. */
static void test_pool_rect(void **state) {
  Caffe__PoolingParameter pp = CAFFE__POOLING_PARAMETER__INIT;
  pp.has_kernel_h = pp.has_kernel_w = 1, pp.kernel_h = 1, pp.kernel_w = 4;
  pp.has_stride_h = pp.has_stride_w = 1, pp.stride_h = 3, pp.stride_w = 1;
  lh_harness *h = pool_case(&pp, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 1);
  const double want[2] = {16, 14};
  expect_values(h->top[0]->data, want, 2);
  lh_destroy(h);
}

/* Global: mean of 1..16 = 8.5, max 16; the kernel follows a reshape. */
static void test_pool_global(void **state) {
  Caffe__PoolingParameter pp = CAFFE__POOLING_PARAMETER__INIT;
  pp.has_global_pooling = 1, pp.global_pooling = 1;
  pp.has_pool = 1, pp.pool = CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE;
  lh_harness *h = pool_case(&pp, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 1, 1);
  const double mean = 8.5, mean_top_half = (16 + 2 + 3 + 1 + 4 + 5 + 6 + 15) / 8.0;
  expect_values(h->top[0]->data, &mean, 1);
  const int64_t half[4] = {1, 1, 2, 4};
  assert_int_equal(ns_blob_reshape(h->ctx, h->bottom[0], 4, half), NS_OK);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 1, 1);
  expect_values(h->top[0]->data, &mean_top_half, 1);
  lh_destroy(h);
}

/* Test-time STOCHASTIC (Caffe's StoPoolForwardTest: each value weighted
 * by its probability x / sum x): sum x^2 / sum x per window.
 * k2 s2 on the input:
 *   (0,0) {16,2,4,5}:   (256+4+16+25)/27    = 301/27
 *   (0,1) {3,1,6,15}:   (9+1+36+225)/25     = 271/25
 *   (1,0) {7,8,14,11}:  (49+64+196+121)/40  = 430/40
 *   (1,1) {9,10,12,13}: (81+100+144+169)/44 = 494/44
 * k3 s2, the windows of the MAX case, clipped at the edge:
 *   (0,0) {16,2,3,4,5,6,7,8,9}: 540/60
 *   (0,1) {3,1,6,15,9,10}:      452/44
 *   (1,0) {7,8,9,14,11,12}:     655/61
 *   (1,1) {9,10,12,13}:         494/44 */
static void test_pool_stochastic(void **state) {
  Caffe__PoolingParameter pp = pool_param(2, 2, 2, 0);
  lh_harness *h = pool_case(&pp, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want[4] = {301.0 / 27, 271.0 / 25, 430.0 / 40, 494.0 / 44};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
  Caffe__PoolingParameter clipped = pool_param(2, 3, 2, 0);
  h = pool_case(&clipped, 1);
  run_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want_clipped[4] = {540.0 / 60, 452.0 / 44, 655.0 / 61, 494.0 / 44};
  expect_values(h->top[0]->data, want_clipped, 4);
  lh_destroy(h);
}

static void test_pool_errors(void **state) {
  Caffe__PoolingParameter pad_too_big = pool_param(0, 2, 1, 2);
  lh_harness *h = pool_case(&pad_too_big, 1);
  run_fails(h, NS_ERR_NET, "pad 2x2", "smaller than the kernel 2x2");
  lh_destroy(h);
  Caffe__PoolingParameter global_kernel = pool_param(0, 2, 1, 0);
  global_kernel.has_global_pooling = 1, global_kernel.global_pooling = 1;
  h = pool_case(&global_kernel, 1);
  run_fails(h, NS_ERR_NET, "global_pooling", "kernel_size");
  lh_destroy(h);
  Caffe__PoolingParameter no_kernel = CAFFE__POOLING_PARAMETER__INIT;
  h = pool_case(&no_kernel, 1);
  run_fails(h, NS_ERR_NET, "kernel_size", "required");
  lh_destroy(h);
  Caffe__PoolingParameter ave_mask = pool_param(1, 2, 2, 0);
  h = pool_case(&ave_mask, 2);
  run_fails(h, NS_ERR_NET, "AVE", "mask");
  lh_destroy(h);
  Caffe__PoolingParameter sto_pad = pool_param(2, 3, 1, 1);
  h = pool_case(&sto_pad, 1);
  run_fails(h, NS_ERR_NET, "padding", "STOCHASTIC");
  lh_destroy(h);
  Caffe__PoolingParameter both = pool_param(0, 2, 1, 0);
  both.has_kernel_h = both.has_kernel_w = 1, both.kernel_h = both.kernel_w = 2;
  h = pool_case(&both, 1);
  run_fails(h, NS_ERR_NET, "kernel_size", "not both");
  lh_destroy(h);
  /* k1 s3 on 4: ceil(3/3)+1 = 2 windows at 0 and 3: fine; on 5 rows
   * ceil(4/3)+1 = 3 windows, the last at 6 >= 5: Caffe refuses it. */
  Caffe__PoolingParameter sparse = pool_param(0, 1, 3, 0);
  h = make("Pooling");
  h->param.pooling_param = &sparse;
  const int64_t five[4] = {1, 1, 5, 5};
  assert_non_null(lh_add_bottom(h, 4, five, NULL));
  assert_non_null(lh_add_top(h));
  run_fails(h, NS_ERR_NET, "height 5", "no valid pooling output");
  lh_destroy(h);
  Caffe__PoolingParameter ok = pool_param(0, 2, 2, 0);
  h = make("Pooling");
  h->param.pooling_param = &ok;
  const int64_t three_axes[3] = {1, 4, 4};
  assert_non_null(lh_add_bottom(h, 3, three_axes, NULL));
  assert_non_null(lh_add_top(h));
  run_fails(h, NS_ERR_NET, "4 axes", "(1, 4, 4)");
  lh_destroy(h);
}

/* ---- Convolution --------------------------------------------------------- */

/* x = 1..9 as a 3x3 image. */
static const float img3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const int64_t img3_shape[4] = {1, 1, 3, 3};

static lh_harness *conv_case(Caffe__ConvolutionParameter *cp, int n_axes, const int64_t *shape,
                             const float *x) {
  lh_harness *h = make("Convolution");
  h->param.convolution_param = cp;
  assert_non_null(lh_add_bottom(h, n_axes, shape, x));
  assert_non_null(lh_add_top(h));
  return h;
}

static void set_params(lh_harness *h, const float *w, const float *b) {
  memcpy(h->layer.params[0]->data, w, (size_t)h->layer.params[0]->count * sizeof(float));
  if (b) memcpy(h->layer.params[1]->data, b, (size_t)h->layer.params[1]->count * sizeof(float));
}

static void setup_ok(lh_harness *h) {
  if (lh_setup(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
}

/* 2x2 kernel of ones, bias 0.5, stride 1 on 1..9: window sums
 * 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28, + 0.5. */
static void test_conv_basic(void **state) {
  uint32_t k[1] = {2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 1, cp.kernel_size = k;
  lh_harness *h = conv_case(&cp, 4, img3_shape, img3);
  setup_ok(h);
  expect_shape(h->layer.params[0], 4, 1, 1, 2, 2);
  expect_shape(h->layer.params[1], 1, 1, 0, 0, 0);
  /* No filler given: Caffe's default is constant 0. */
  for (int i = 0; i < 4; i++) assert_true(h->layer.params[0]->data[i] == 0.0f);
  const float w[4] = {1, 1, 1, 1}, b[1] = {0.5f};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want[4] = {12.5, 16.5, 24.5, 28.5};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
}

/* pad 1, stride 2, 2x2 ones, no bias: output (3 + 2 - 2)/2 + 1 = 2; the
 * windows start at -1 and 1 per axis:
 *   (-1,-1) {1} = 1   (-1,1) {2,3} = 5   (1,-1) {4,7} = 11   (1,1) {5,6,8,9} = 28 */
static void test_conv_pad_stride(void **state) {
  uint32_t k[1] = {2}, p[1] = {1}, s[1] = {2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 1, cp.kernel_size = k;
  cp.n_pad = 1, cp.pad = p, cp.n_stride = 1, cp.stride = s;
  cp.has_bias_term = 1, cp.bias_term = 0;
  lh_harness *h = conv_case(&cp, 4, img3_shape, img3);
  setup_ok(h);
  assert_int_equal(h->layer.n_params, 1);
  const float w[4] = {1, 1, 1, 1};
  set_params(h, w, NULL);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 2, 2);
  const double want[4] = {1, 5, 11, 28};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
}

/* Dilation 2 spreads a 2x2 kernel over 3x3: one output, the corners
 * 1 + 3 + 7 + 9 = 20. */
static void test_conv_dilation(void **state) {
  uint32_t k[1] = {2}, d[1] = {2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 1, cp.kernel_size = k;
  cp.n_dilation = 1, cp.dilation = d;
  lh_harness *h = conv_case(&cp, 4, img3_shape, img3);
  setup_ok(h);
  const float w[4] = {1, 1, 1, 1}, b[1] = {0};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 1, 1);
  const double want = 20;
  expect_values(h->top[0]->data, &want, 1);
  lh_destroy(h);
}

/* group 2: channel 0 = [1 2; 3 4] with [1 0; 0 1] -> 1 + 4 = 5,
 * channel 1 = [5 6; 7 8] with [0 1; 1 0] -> 6 + 7 = 13; weights
 * [2, 1, 2, 2].  kernel_h 2 / kernel_w 2 spelling. */
static void test_conv_group(void **state) {
  const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const int64_t shape[4] = {1, 2, 2, 2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 2, cp.has_group = 1, cp.group = 2;
  cp.has_kernel_h = cp.has_kernel_w = 1, cp.kernel_h = cp.kernel_w = 2;
  lh_harness *h = conv_case(&cp, 4, shape, x);
  setup_ok(h);
  expect_shape(h->layer.params[0], 4, 2, 1, 2, 2);
  const float w[8] = {1, 0, 0, 1, 0, 1, 1, 0}, b[2] = {0, 0};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 2, 1, 1);
  const double want[2] = {5, 13};
  expect_values(h->top[0]->data, want, 2);
  lh_destroy(h);
}

/* 1x1 with 2 inputs -> 3 outputs is a per-pixel matrix product: pixel
 * (a, b) -> (a + b, a - b, 2a) + bias (0, 0, 1); pixels (1, 10), (2, 20). */
static void test_conv_1x1(void **state) {
  const float x[4] = {1, 2, 10, 20}; /* channel 0: 1 2; channel 1: 10 20 */
  const int64_t shape[4] = {1, 2, 1, 2};
  uint32_t k[1] = {1};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 3, cp.n_kernel_size = 1, cp.kernel_size = k;
  lh_harness *h = conv_case(&cp, 4, shape, x);
  setup_ok(h);
  const float w[6] = {1, 1, 1, -1, 2, 0}, b[3] = {0, 0, 1};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 3, 1, 2);
  const double want[6] = {11, 22, -9, -18, 3, 5};
  expect_values(h->top[0]->data, want, 6);
  lh_destroy(h);
}

/* kernel 1x2 (kernel_size given per axis) of ones on 1..9: 3x2 output
 * of horizontal pair sums 3 5 / 9 11 / 15 17. */
static void test_conv_rect(void **state) {
  uint32_t k[2] = {1, 2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 2, cp.kernel_size = k;
  lh_harness *h = conv_case(&cp, 4, img3_shape, img3);
  setup_ok(h);
  const float w[2] = {1, 1}, b[1] = {0};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 4, 1, 1, 3, 2);
  const double want[6] = {3, 5, 9, 11, 15, 17};
  expect_values(h->top[0]->data, want, 6);
  lh_destroy(h);
}

/* One spatial axis: x = 1..5, kernel (1, 2, 3): 1+4+9 = 14, 2+6+12 = 20,
 * 3+8+15 = 26; weights [1, 1, 3]. */
static void test_conv_1d(void **state) {
  const float x[5] = {1, 2, 3, 4, 5};
  const int64_t shape[3] = {1, 1, 5};
  uint32_t k[1] = {3};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 1, cp.kernel_size = k;
  lh_harness *h = conv_case(&cp, 3, shape, x);
  setup_ok(h);
  expect_shape(h->layer.params[0], 3, 1, 1, 3, 0);
  const float w[3] = {1, 2, 3}, b[1] = {0};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 3, 1, 1, 3, 0);
  const double want[3] = {14, 20, 26};
  expect_values(h->top[0]->data, want, 3);
  lh_destroy(h);
}

/* A batch of 2 and two bottoms sharing the weights: each item and each
 * bottom is convolved alone (2x2 ones on 1..9 and on 2*(1..9)). */
static void test_conv_batch_two_bottoms(void **state) {
  float x[18], x2[18];
  for (int i = 0; i < 18; i++) x[i] = img3[i % 9] * (i < 9 ? 1 : 2), x2[i] = -x[i];
  const int64_t shape[4] = {2, 1, 3, 3};
  uint32_t k[1] = {2};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 1, cp.n_kernel_size = 1, cp.kernel_size = k;
  lh_harness *h = conv_case(&cp, 4, shape, x);
  assert_non_null(lh_add_bottom(h, 4, shape, x2));
  assert_non_null(lh_add_top(h));
  setup_ok(h);
  const float w[4] = {1, 1, 1, 1}, b[1] = {0};
  set_params(h, w, b);
  rerun_ok(h);
  const double want[8] = {12, 16, 24, 28, 24, 32, 48, 56};
  double neg[8];
  for (int i = 0; i < 8; i++) neg[i] = -want[i];
  expect_values(h->top[0]->data, want, 8);
  expect_values(h->top[1]->data, neg, 8);
  lh_destroy(h);
}

static void conv_error(Caffe__ConvolutionParameter *cp, int n_axes, const int64_t *shape,
                       const char *needle, const char *needle2) {
  lh_harness *h = conv_case(cp, n_axes, shape, NULL);
  run_fails(h, NS_ERR_NET, needle, needle2);
  lh_destroy(h);
}

static void test_conv_errors(void **state) {
  uint32_t k2[1] = {2}, k5[1] = {5}, k0[1] = {0}, k3x[3] = {1, 2, 3};
  const int64_t three_ch[4] = {1, 3, 4, 4};
  Caffe__ConvolutionParameter cp = CAFFE__CONVOLUTION_PARAMETER__INIT;
  cp.has_num_output = 1, cp.num_output = 4, cp.has_group = 1, cp.group = 2;
  cp.n_kernel_size = 1, cp.kernel_size = k2;
  conv_error(&cp, 4, three_ch, "group 2", "3 input channels");
  cp.num_output = 3, cp.group = 1, cp.n_kernel_size = 0;
  conv_error(&cp, 4, three_ch, "kernel_size", "missing");
  cp.n_kernel_size = 1, cp.kernel_size = k2, cp.has_kernel_h = 1, cp.kernel_h = 2;
  conv_error(&cp, 4, three_ch, "either kernel_size", "not both");
  cp.has_kernel_h = 0, cp.kernel_size = k5;
  conv_error(&cp, 4, three_ch, "larger than the padded input", "bottom 'b0'");
  cp.kernel_size = k0;
  conv_error(&cp, 4, three_ch, "kernel_size", "out of range");
  cp.n_kernel_size = 3, cp.kernel_size = k3x;
  conv_error(&cp, 4, three_ch, "kernel_size has 3 values", "2");
  cp.n_kernel_size = 1, cp.kernel_size = k2, cp.has_num_output = 0;
  conv_error(&cp, 4, three_ch, "num_output", "positive");
  cp.has_num_output = 1, cp.has_axis = 1, cp.axis = 4;
  conv_error(&cp, 4, three_ch, "convolution_param.axis", "out of range");
  /* kernel_h / kernel_w need two spatial axes. */
  const int64_t one_d[3] = {1, 3, 5};
  cp.has_axis = 0, cp.n_kernel_size = 0, cp.has_kernel_h = cp.has_kernel_w = 1;
  cp.kernel_h = cp.kernel_w = 1;
  conv_error(&cp, 3, one_d, "kernel_h/kernel_w", "2 spatial axes");
  /* In place is refused (the 1x1 GEMM would read what it writes). */
  cp.has_kernel_h = cp.has_kernel_w = 0, cp.n_kernel_size = 1;
  lh_harness *h = make("Convolution");
  h->param.convolution_param = &cp;
  assert_non_null(lh_add_bottom(h, 4, three_ch, NULL));
  lh_add_top_in_place(h, 0);
  run_fails(h, NS_ERR_NET, "in-place", "b0");
  lh_destroy(h);
  /* A reshape to other channels fails and names them. */
  h = conv_case(&cp, 4, three_ch, NULL);
  run_ok(h);
  const int64_t four_ch[4] = {1, 4, 4, 4};
  assert_int_equal(ns_blob_reshape(h->ctx, h->bottom[0], 4, four_ch), NS_OK);
  assert_int_equal(lh_rerun(h), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "expected 3 channels"));
  lh_destroy(h);
}

/* ---- InnerProduct --------------------------------------------------------- */

/* x = [1 2 3; 4 5 6], W = [1 0 -1; 2 1 0], b = (0.5, -1):
 * y = x W^T + b = [1-3+0.5, 2+2-1; 4-6+0.5, 8+5-1] = [-1.5 3; -1.5 12]. */
static const float ip_x[6] = {1, 2, 3, 4, 5, 6};
static const double ip_want[4] = {-1.5, 3, -1.5, 12};

static lh_harness *ip_case(Caffe__InnerProductParameter *ip, int n_axes, const int64_t *shape) {
  lh_harness *h = make("InnerProduct");
  h->param.inner_product_param = ip;
  assert_non_null(lh_add_bottom(h, n_axes, shape, ip_x));
  assert_non_null(lh_add_top(h));
  return h;
}

static void test_ip_basic(void **state) {
  const int64_t shape[2] = {2, 3};
  Caffe__InnerProductParameter ip = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  ip.has_num_output = 1, ip.num_output = 2;
  lh_harness *h = ip_case(&ip, 2, shape);
  setup_ok(h);
  expect_shape(h->layer.params[0], 2, 2, 3, 0, 0);
  const float w[6] = {1, 0, -1, 2, 1, 0}, b[2] = {0.5f, -1};
  set_params(h, w, b);
  rerun_ok(h);
  expect_shape(h->top[0], 2, 2, 2, 0, 0);
  expect_values(h->top[0]->data, ip_want, 4);
  /* Another batch size is fine; another K is not. */
  const int64_t one[2] = {1, 3}, wrong[2] = {2, 4};
  assert_int_equal(ns_blob_reshape(h->ctx, h->bottom[0], 2, one), NS_OK);
  rerun_ok(h);
  expect_shape(h->top[0], 2, 1, 2, 0, 0);
  expect_values(h->top[0]->data, ip_want, 2);
  assert_int_equal(ns_blob_reshape(h->ctx, h->bottom[0], 2, wrong), NS_OK);
  assert_int_equal(lh_rerun(h), NS_ERR_NET);
  const char *msg = ns_ctx_error(h->ctx);
  if (!strstr(msg, "4 inputs") || !strstr(msg, "take 3")) fail_msg("message: %s", msg);
  lh_destroy(h);
}

/* transpose: the same W stored as [3, 2]. */
static void test_ip_transpose(void **state) {
  const int64_t shape[2] = {2, 3};
  Caffe__InnerProductParameter ip = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  ip.has_num_output = 1, ip.num_output = 2, ip.has_transpose = 1, ip.transpose = 1;
  lh_harness *h = ip_case(&ip, 2, shape);
  setup_ok(h);
  expect_shape(h->layer.params[0], 2, 3, 2, 0, 0);
  const float wt[6] = {1, 2, 0, 1, -1, 0}, b[2] = {0.5f, -1};
  set_params(h, wt, b);
  rerun_ok(h);
  expect_values(h->top[0]->data, ip_want, 4);
  lh_destroy(h);
}

/* axis 2 (and its negative spelling -1) on [1, 2, 3]: M = 2, K = 3, the
 * top keeps the leading axes: [1, 2, 2].  No bias. */
static void test_ip_axis(void **state) {
  const int64_t shape[3] = {1, 2, 3};
  for (int spelling = 0; spelling < 2; spelling++) {
    Caffe__InnerProductParameter ip = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
    ip.has_num_output = 1, ip.num_output = 2, ip.has_axis = 1, ip.axis = spelling ? -1 : 2;
    ip.has_bias_term = 1, ip.bias_term = 0;
    lh_harness *h = ip_case(&ip, 3, shape);
    setup_ok(h);
    assert_int_equal(h->layer.n_params, 1);
    const float w[6] = {1, 0, -1, 2, 1, 0};
    set_params(h, w, NULL);
    rerun_ok(h);
    expect_shape(h->top[0], 3, 1, 2, 2, 0);
    const double want[4] = {-2, 4, -2, 13};
    expect_values(h->top[0]->data, want, 4);
    lh_destroy(h);
  }
  Caffe__InnerProductParameter bad = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  bad.has_num_output = 1, bad.num_output = 2, bad.has_axis = 1, bad.axis = 3;
  lh_harness *h = ip_case(&bad, 3, shape);
  run_fails(h, NS_ERR_NET, "inner_product_param.axis", "axis 3");
  lh_destroy(h);
}

/* ---- ReLU and Dropout ------------------------------------------------------ */

/* negative_slope 0.1: -2 -> -0.2, -0.5 -> -0.05, 0 -> 0, 3 -> 3. */
static void test_relu(void **state) {
  const float x[4] = {-2, -0.5f, 0, 3};
  const int64_t shape[1] = {4};
  Caffe__ReLUParameter rp = CAFFE__RE_LUPARAMETER__INIT;
  rp.has_negative_slope = 1, rp.negative_slope = 0.1f;
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = make("ReLU");
    h->param.relu_param = &rp;
    assert_non_null(lh_add_bottom(h, 1, shape, x));
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      assert_non_null(lh_add_top(h));
    run_ok(h);
    const double want[4] = {-0.2, -0.05, 0, 3};
    expect_values(h->top[0]->data, want, 4);
    lh_destroy(h);
  }
  lh_harness *h = make("ReLU"); /* no relu_param: slope 0 */
  assert_non_null(lh_add_bottom(h, 1, shape, x));
  assert_non_null(lh_add_top(h));
  run_ok(h);
  const double plain[4] = {0, 0, 0, 3};
  expect_values(h->top[0]->data, plain, 4);
  lh_destroy(h);
}

static void test_dropout_identity(void **state) {
  const float x[3] = {1, -2, 3};
  const int64_t shape[2] = {1, 3};
  const double want[3] = {1, -2, 3};
  Caffe__DropoutParameter dp = CAFFE__DROPOUT_PARAMETER__INIT;
  dp.has_dropout_ratio = 1, dp.dropout_ratio = 0.9f;
  for (int in_place = 0; in_place < 2; in_place++) {
    lh_harness *h = make("Dropout");
    h->param.dropout_param = &dp;
    assert_non_null(lh_add_bottom(h, 2, shape, x));
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      assert_non_null(lh_add_top(h));
    run_ok(h);
    expect_shape(h->top[0], 2, 1, 3, 0, 0);
    expect_values(h->top[0]->data, want, 3);
    lh_destroy(h);
  }
}

/* ---- LRN ---------------------------------------------------------------- */

static lh_harness *lrn_case(Caffe__LRNParameter *lp, const int64_t *shape, const float *x) {
  lh_harness *h = make("LRN");
  h->param.lrn_param = lp;
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  assert_non_null(lh_add_top(h));
  return h;
}

static Caffe__LRNParameter lrn_param(int size, float alpha, float beta, float k) {
  Caffe__LRNParameter p = CAFFE__LRNPARAMETER__INIT;
  p.has_local_size = 1, p.local_size = (uint32_t)size;
  p.has_alpha = 1, p.alpha = alpha;
  p.has_beta = 1, p.beta = beta;
  p.has_k = 1, p.k = k;
  return p;
}

/* 3 channels at 2 positions: (1, 2, 3) and (-1, 0, 2).  size 3, alpha 3
 * (alpha / size = 1), beta 1, k 1: scale = 1 + the squares of the channel
 * and its neighbours:
 *   pos 0: 1+1+4 = 6 -> 1/6;  1+1+4+9 = 15 -> 2/15;  1+4+9 = 14 -> 3/14
 *   pos 1: 1+1+0 = 2 -> -1/2; 1+1+0+4 = 6 -> 0;      1+0+4 = 5 -> 2/5 */
static const float lrn_x[6] = {1, -1, 2, 0, 3, 2}; /* [1, 3, 1, 2] */
static const int64_t lrn_shape[4] = {1, 3, 1, 2};

static void test_lrn_across(void **state) {
  Caffe__LRNParameter lp = lrn_param(3, 3, 1, 1);
  lh_harness *h = lrn_case(&lp, lrn_shape, lrn_x);
  run_ok(h);
  const double want[6] = {1.0 / 6, -0.5, 2.0 / 15, 0, 3.0 / 14, 2.0 / 5};
  expect_values(h->top[0]->data, want, 6);
  lh_destroy(h);
}

/* size 5 covers all 3 channels for each; alpha 5 (alpha / size = 1),
 * k 2, beta 0.5: pos 0 scale 2 + 14 = 16 -> x / 4; pos 1 scale 2 + 5 = 7
 * -> x / sqrt 7.  In place. */
static void test_lrn_across_k_in_place(void **state) {
  Caffe__LRNParameter lp = lrn_param(5, 5, 0.5f, 2);
  lh_harness *h = make("LRN");
  h->param.lrn_param = &lp;
  assert_non_null(lh_add_bottom(h, 4, lrn_shape, lrn_x));
  lh_add_top_in_place(h, 0);
  run_ok(h);
  double r7 = sqrt(7.0);
  const double want[6] = {0.25, -1 / r7, 0.5, 0, 0.75, 2 / r7};
  expect_values(h->top[0]->data, want, 6);
  lh_destroy(h);
}

/* WITHIN_CHANNEL, size 3, alpha 9, beta 1 (k 5 is ignored, as in Caffe):
 * y = x / (1 + 9 * sum / 9) with sum the squares in the zero-padded 3x3
 * window.  On a 2x2 image [1 2; 3 4] every window holds all four:
 * 1 + 30 = 31 -> x / 31.  On a 1x3 row (1, 2, 3): sums 5, 14, 13 ->
 * 1/6, 2/15, 3/14. */
static void test_lrn_within(void **state) {
  Caffe__LRNParameter lp = lrn_param(3, 9, 1, 5);
  lp.has_norm_region = 1, lp.norm_region = CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL;
  const float sq[4] = {1, 2, 3, 4};
  const int64_t sq_shape[4] = {1, 1, 2, 2};
  lh_harness *h = lrn_case(&lp, sq_shape, sq);
  run_ok(h);
  const double want[4] = {1.0 / 31, 2.0 / 31, 3.0 / 31, 4.0 / 31};
  expect_values(h->top[0]->data, want, 4);
  lh_destroy(h);
  const float row[3] = {1, 2, 3};
  const int64_t row_shape[4] = {1, 1, 1, 3};
  h = lrn_case(&lp, row_shape, row);
  run_ok(h);
  const double want_row[3] = {1.0 / 6, 2.0 / 15, 3.0 / 14};
  expect_values(h->top[0]->data, want_row, 3);
  lh_destroy(h);
}

static void test_lrn_errors(void **state) {
  Caffe__LRNParameter even = lrn_param(4, 1, 0.75f, 1);
  lh_harness *h = lrn_case(&even, lrn_shape, lrn_x);
  run_fails(h, NS_ERR_NET, "local_size 4", "odd");
  lh_destroy(h);
  Caffe__LRNParameter ok = lrn_param(3, 1, 0.75f, 1);
  h = make("LRN");
  h->param.lrn_param = &ok;
  const int64_t two_axes[2] = {3, 2};
  assert_non_null(lh_add_bottom(h, 2, two_axes, lrn_x));
  assert_non_null(lh_add_top(h));
  run_fails(h, NS_ERR_NET, "4 axes", "(3, 2)");
  lh_destroy(h);
}

/* ---- Softmax --------------------------------------------------------------- */

/* Identities: outputs sum to 1 over the axis, and y_c / y_m = exp(x_c - x_m)
 * against the largest input m (so the ratio never divides by an
 * underflowed 0). */
static void check_softmax_identities(const float *x, const float *y, int64_t outer,
                                     int64_t channels, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      double sum = 0;
      int64_t base = o * channels * inner + j, m = base;
      for (int64_t c = 0; c < channels; c++) {
        sum += y[base + c * inner];
        if (x[base + c * inner] > x[m]) m = base + c * inner;
      }
      assert_true(fabs(sum - 1) < 1e-6);
      for (int64_t c = 0; c < channels; c++) {
        double ratio = (double)y[base + c * inner] / y[m];
        double want = exp((double)x[base + c * inner] - x[m]);
        if (!(fabs(ratio - want) <= 1e-5 * want + 1e-30))
          fail_msg("softmax ratio %.9g, expected %.9g", ratio, want);
      }
    }
}

static void test_softmax_channels(void **state) {
  const float x[12] = {1, 2, 3, 0.5f, -1, 0, 4, 2, 1000, 1001, 999, 1000}; /* [2, 3, 2] */
  const int64_t shape[3] = {2, 3, 2};
  lh_harness *h = make("Softmax");
  assert_non_null(lh_add_bottom(h, 3, shape, x));
  assert_non_null(lh_add_top(h));
  run_ok(h);
  expect_shape(h->top[0], 3, 2, 3, 2, 0);
  check_softmax_identities(x, h->top[0]->data, 2, 3, 2);
  /* Item 1, position 0: (4, 1000, 999): exp(-996) is 0 in float;
   * 1000 and 999 give e/(1+e) and 1/(1+e). */
  double e = exp(1.0);
  const double want[3] = {0, e / (1 + e), 1 / (1 + e)};
  const float got[3] = {h->top[0]->data[6], h->top[0]->data[8], h->top[0]->data[10]};
  expect_values(got, want, 3);
  lh_destroy(h);
}

/* axis 2 and its spelling -1 on [1, 2, 3]: rows of 3. */
static void test_softmax_axis(void **state) {
  const float x[6] = {0, 1, 2, -3, 0, 3};
  const int64_t shape[3] = {1, 2, 3};
  for (int spelling = 0; spelling < 2; spelling++) {
    Caffe__SoftmaxParameter sp = CAFFE__SOFTMAX_PARAMETER__INIT;
    sp.has_axis = 1, sp.axis = spelling ? -1 : 2;
    lh_harness *h = make("Softmax");
    h->param.softmax_param = &sp;
    assert_non_null(lh_add_bottom(h, 3, shape, x));
    lh_add_top_in_place(h, 0);
    run_ok(h);
    check_softmax_identities(x, h->top[0]->data, 2, 3, 1);
    lh_destroy(h);
  }
  Caffe__SoftmaxParameter bad = CAFFE__SOFTMAX_PARAMETER__INIT;
  bad.has_axis = 1, bad.axis = 3;
  lh_harness *h = make("Softmax");
  h->param.softmax_param = &bad;
  assert_non_null(lh_add_bottom(h, 3, shape, x));
  assert_non_null(lh_add_top(h));
  run_fails(h, NS_ERR_NET, "softmax_param.axis", "axis 3");
  lh_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_max_ceil),
      cmocka_unit_test(test_pool_ave_ceil),
      cmocka_unit_test(test_pool_pad),
      cmocka_unit_test(test_pool_drops_window_in_padding),
      cmocka_unit_test(test_pool_rect),
      cmocka_unit_test(test_pool_global),
      cmocka_unit_test(test_pool_stochastic),
      cmocka_unit_test(test_pool_errors),
      cmocka_unit_test(test_conv_basic),
      cmocka_unit_test(test_conv_pad_stride),
      cmocka_unit_test(test_conv_dilation),
      cmocka_unit_test(test_conv_group),
      cmocka_unit_test(test_conv_1x1),
      cmocka_unit_test(test_conv_rect),
      cmocka_unit_test(test_conv_1d),
      cmocka_unit_test(test_conv_batch_two_bottoms),
      cmocka_unit_test(test_conv_errors),
      cmocka_unit_test(test_ip_basic),
      cmocka_unit_test(test_ip_transpose),
      cmocka_unit_test(test_ip_axis),
      cmocka_unit_test(test_relu),
      cmocka_unit_test(test_dropout_identity),
      cmocka_unit_test(test_lrn_across),
      cmocka_unit_test(test_lrn_across_k_in_place),
      cmocka_unit_test(test_lrn_within),
      cmocka_unit_test(test_lrn_errors),
      cmocka_unit_test(test_softmax_channels),
      cmocka_unit_test(test_softmax_axis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
