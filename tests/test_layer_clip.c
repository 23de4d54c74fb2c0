/* Clip (Caffe's ClipLayer; ReLU6 is Clip(0, 6)), added through the
 * layer checklist of docs/ARCHITECTURE.md.  Forward values are worked by
 * hand; backward is checked against central differences (as
 * test_backward.c: E = sum w_i y_i, h = 1e-2, inputs kept more than h
 * from the bounds) and at the bounds themselves, where Caffe passes the
 * gradient (min <= x <= max). */
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
#include "support/layer_harness.h"
#include "support/testutil.h"

#define STEP 1e-2
#define TOL 1e-3

static lh_harness *clip_layer(Caffe__ClipParameter *p, float min, float max) {
  lh_harness *h = lh_create("Clip");
  assert_non_null(h);
  p->min = min;
  p->max = max;
  h->param.clip_param = p;
  return h;
}

/* ReLU6 on values below, inside, on and above [0, 6]; NaN becomes min,
 * as Caffe's std::max(min, std::min(x, max)) makes it. */
static void test_clip_forward_relu6(void **state) {
  Caffe__ClipParameter p = CAFFE__CLIP_PARAMETER__INIT;
  lh_harness *h = clip_layer(&p, 0, 6);
  const float x[10] = {-7, -1, 0, 0.5f, 3, 5.999f, 6, 6.5f, 100, NAN};
  const float want[10] = {0, 0, 0, 0.5f, 3, 5.999f, 6, 6, 6, 0};
  const int64_t shape[2] = {2, 5};
  assert_non_null(lh_add_bottom(h, 2, shape, x));
  ns_blob *top = lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK);
  assert_int_equal(top->num_axes, 2);
  assert_int_equal(top->shape[0], 2);
  assert_int_equal(top->shape[1], 5);
  for (int i = 0; i < 10; i++) assert_true(top->data[i] == want[i]);
  lh_destroy(h);
}

/* In place with negative bounds: Clip(-1, 0.5) overwrites its bottom. */
static void test_clip_forward_in_place(void **state) {
  Caffe__ClipParameter p = CAFFE__CLIP_PARAMETER__INIT;
  lh_harness *h = clip_layer(&p, -1, 0.5f);
  const float x[6] = {-3, -1, -0.25f, 0.5f, 0.75f, 2};
  const float want[6] = {-1, -1, -0.25f, 0.5f, 0.5f, 0.5f};
  const int64_t shape[4] = {1, 2, 1, 3};
  ns_blob *b = lh_add_bottom(h, 4, shape, x);
  lh_add_top_in_place(h, 0);
  assert_int_equal(lh_run(h), NS_OK);
  for (int i = 0; i < 6; i++) assert_true(b->data[i] == want[i]);
  lh_destroy(h);
}

static double objective(lh_harness *h, const float *x, const float *w) {
  ns_layer *l = &h->layer;
  memcpy(l->bottom[0]->data, x, (size_t)l->bottom[0]->count * sizeof(float));
  assert_int_equal(l->ops->forward(h->ctx, l), NS_OK);
  double e = 0;
  for (int64_t i = 0; i < l->top[0]->count; i++) e += (double)w[i] * l->top[0]->data[i];
  return e;
}

/* Analytic bottom gradient of E = sum w_i y_i, from one TRAIN forward
 * and backward at x. */
static void analytic(lh_harness *h, const float *x, const float *w, float *dx) {
  ns_layer *l = &h->layer;
  objective(h, x, w);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, l->bottom[0]), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, l->top[0]), NS_OK);
  memcpy(l->top[0]->diff, w, (size_t)l->top[0]->count * sizeof(float));
  const int down[1] = {1};
  assert_int_equal(l->ops->backward(h->ctx, l, down), NS_OK);
  memcpy(dx, l->bottom[0]->diff, (size_t)l->bottom[0]->count * sizeof(float));
}

static void check_gradient(int in_place) {
  Caffe__ClipParameter p = CAFFE__CLIP_PARAMETER__INIT;
  lh_harness *h = clip_layer(&p, -0.5f, 0.75f);
  enum { N = 60 };
  const int64_t shape[4] = {2, 3, 2, 5};
  float x[N], w[N], dx[N];
  ns_rng rng;
  ns_rng_seed(&rng, 3);
  for (int i = 0; i < N; i++) { /* spread over [-2, 2], kept 0.05 off the bounds */
    x[i] = ns_rng_uniform(&rng, -2, 2);
    if (fabsf(x[i] - p.min) < 0.05f || fabsf(x[i] - p.max) < 0.05f) x[i] += 0.1f;
    w[i] = ns_rng_uniform(&rng, -1, 1);
  }
  assert_non_null(lh_add_bottom(h, 4, shape, x));
  if (in_place)
    lh_add_top_in_place(h, 0);
  else
    lh_add_top(h);
  h->net.phase = NS_PHASE_TRAIN; /* in place keeps a copy of the bottom */
  assert_int_equal(lh_run(h), NS_OK);
  analytic(h, x, w, dx);
  int passed = 0;
  for (int i = 0; i < N; i++) {
    float keep = x[i];
    x[i] = keep + (float)STEP;
    double ep = objective(h, x, w);
    x[i] = keep - (float)STEP;
    double em = objective(h, x, w);
    x[i] = keep;
    double num = (ep - em) / (2 * STEP);
    if (fabs(dx[i] - num) > TOL * fmax(1.0, fabs(num)))
      fail_msg("element %d (x %g): analytic %.6g, numeric %.6g", i, (double)x[i], (double)dx[i],
               num);
    passed += dx[i] != 0;
  }
  assert_true(passed > 0 && passed < N); /* both sides of the bounds were seen */
  lh_destroy(h);
}

static void test_clip_gradient(void **state) {
  check_gradient(0);
  check_gradient(1);
}

/* On the bounds the gradient passes (Caffe's >= and <=); just outside it
 * stops.  In place, the saved bottom decides, not the clipped top. */
static void test_clip_gradient_at_bounds(void **state) {
  for (int in_place = 0; in_place < 2; in_place++) {
    Caffe__ClipParameter p = CAFFE__CLIP_PARAMETER__INIT;
    lh_harness *h = clip_layer(&p, 0, 6);
    const float x[6] = {-0.001f, 0, 3, 6, 6.001f, -50};
    const float w[6] = {1, 2, 3, 4, 5, 6};
    const float want[6] = {0, 2, 3, 4, 0, 0};
    const int64_t shape[1] = {6};
    assert_non_null(lh_add_bottom(h, 1, shape, x));
    if (in_place)
      lh_add_top_in_place(h, 0);
    else
      lh_add_top(h);
    h->net.phase = NS_PHASE_TRAIN;
    assert_int_equal(lh_run(h), NS_OK);
    float dx[6];
    analytic(h, x, w, dx);
    for (int i = 0; i < 6; i++) assert_true(dx[i] == want[i]);
    lh_destroy(h);
  }
}

static void test_clip_needs_its_param(void **state) {
  lh_harness *h = lh_create("Clip");
  assert_non_null(h);
  const int64_t shape[1] = {3};
  assert_non_null(lh_add_bottom(h, 1, shape, NULL));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "clip_param"));
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'t'"));
  lh_destroy(h);
}

/* From a prototxt: clip_param is read from text, the layer runs in a
 * net, and a cell keeps the receptive field of the convolution before it
 * (3x3 window, stride 2, pad 1: the field starts 1 px into the padding). */
static void test_clip_in_a_net(void **state) {
  static const char *text =
      "layer { name: 'data' type: 'Input' top: 'data'\n"
      "  input_param { shape { dim: 1 dim: 1 dim: 5 dim: 5 } } }\n"
      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
      "  convolution_param { num_output: 1 kernel_size: 3 stride: 2 pad: 1 bias_term: false\n"
      "    weight_filler { type: 'constant' value: 1 } } }\n"
      "layer { name: 'relu6' type: 'Clip' bottom: 'conv' top: 'conv'\n"
      "  clip_param { min: 0 max: 6 } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor in = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int i = 0; i < 25; i++) in.data[i] = 0.5f * (float)(i % 5) - 0.5f; /* -0.5 .. 1.5 */
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  /* Output (i, j) sums rows 2i-1..2i+1 and columns 2j-1..2j+1 inside the
   * input: 2, 3, 2 rows; column sums -0.5, 1.5, 2.5.  So -1, 3, 5 /
   * -1.5, 4.5, 7.5 / -1, 3, 5 before the clip. */
  const float want[9] = {0, 3, 5, 0, 4.5f, 6, 0, 3, 5};
  ns_tensor out = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  assert_int_equal(out.count, 9);
  for (int i = 0; i < 9; i++) assert_float_equal(out.data[i], want[i], 1e-5);
  ns_receptive_field rf[4];
  assert_int_equal(ns_net_receptive_fields(ctx, net, rf), NS_OK);
  int b = ns_net_find_blob(net, "conv");
  assert_true(rf[b].known);
  assert_int_equal(rf[b].size[0], 3);
  assert_int_equal(rf[b].stride[1], 2);
  assert_int_equal(rf[b].offset[0], -1);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clip_forward_relu6),   cmocka_unit_test(test_clip_forward_in_place),
      cmocka_unit_test(test_clip_gradient),        cmocka_unit_test(test_clip_gradient_at_bounds),
      cmocka_unit_test(test_clip_needs_its_param), cmocka_unit_test(test_clip_in_a_net),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
