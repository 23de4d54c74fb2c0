/* Library calls that the CLI verbs are thin callers of: the classification
 * of classify (top-k, argmax and confidence maps), a mean file's channel
 * averages for the transform, the scoring of `netsurg test` and the
 * solver's test phase, the net's output blobs in Caffe's order, and the
 * counting allocator of the CLI and the fuzz targets.  Every expectation
 * is worked out by hand in the comments beside it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

/* ---- classification ------------------------------------------------------ */

/* 3 classes on a 2 x 2 map, class-major (Caffe's (1, K, H, W) layout):
 *            cell 0  cell 1  cell 2  cell 3
 *   class 0   0.5     0.1     0.2     0.3
 *   class 1   0.3     0.6     0.2     0.3
 *   class 2   0.2     0.3     0.6     0.4
 * Cells 2 and 3 tie classes 0 and 1 for second place: the lower id wins. */
static const float map_prob[12] = {0.5f, 0.1f, 0.2f, 0.3f, 0.3f, 0.6f,
                                   0.2f, 0.3f, 0.2f, 0.3f, 0.6f, 0.4f};

static void test_classify_map(void **state) {
  ns_ctx *ctx = ((tu_fixture *)*state)->ctx;
  ns_classification c;
  assert_int_equal(ns_classify(ctx, map_prob, 3, 2, 2, 2, -1, &c), NS_OK);
  assert_int_equal(c.classes, 3);
  assert_int_equal(c.map_h, 2);
  assert_int_equal(c.map_w, 2);
  assert_int_equal(c.k, 2);
  static const int argmax[4] = {0, 1, 2, 2};
  static const float confidence[4] = {0.5f, 0.6f, 0.6f, 0.4f};
  static const int top[8] = {0, 1, 1, 2, 2, 0, 2, 0};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(c.argmax[i], argmax[i]);
    assert_true(c.confidence[i] == confidence[i]);
  }
  for (int i = 0; i < 8; i++) assert_int_equal(c.top[i], top[i]);
  /* means: 1.1 / 4, 1.4 / 4, 1.5 / 4 */
  static const double mean[3] = {0.275, 0.35, 0.375};
  for (int k = 0; k < 3; k++) assert_true(fabs(c.mean[k] - mean[k]) < 1e-6);
  assert_int_equal(c.top_mean[0], 2);
  assert_int_equal(c.top_mean[1], 1);
  ns_classification_free(ctx, &c);

  /* confidence of a chosen class: class 1's row */
  assert_int_equal(ns_classify(ctx, map_prob, 3, 2, 2, 2, 1, &c), NS_OK);
  static const float class1[4] = {0.3f, 0.6f, 0.2f, 0.3f};
  for (int i = 0; i < 4; i++) assert_true(c.confidence[i] == class1[i]);
  assert_int_equal(c.argmax[0], 0); /* the argmax does not follow the chosen class */
  ns_classification_free(ctx, &c);
}

static void test_classify_single(void **state) {
  ns_ctx *ctx = ((tu_fixture *)*state)->ctx;
  /* a plain (1, 4) classifier; top 10 is cut to the 4 classes */
  static const float prob[4] = {0.1f, 0.4f, 0.2f, 0.3f};
  ns_classification c;
  assert_int_equal(ns_classify(ctx, prob, 4, 1, 1, 10, -1, &c), NS_OK);
  assert_int_equal(c.k, 4);
  static const int order[4] = {1, 3, 2, 0};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(c.top[i], order[i]);
    assert_int_equal(c.top_mean[i], order[i]); /* one cell: the mean is the cell */
    assert_true(c.mean[i] == (double)prob[i]);
  }
  assert_int_equal(c.argmax[0], 1);
  assert_true(c.confidence[0] == 0.4f);
  ns_classification_free(ctx, &c);
  /* a class past the last, and a top of 0, are the caller's mistake */
  assert_int_equal(ns_classify(ctx, prob, 4, 1, 1, 5, 4, &c), NS_ERR_USAGE);
  assert_non_null(strstr(ns_ctx_error(ctx), "class 4 of 4"));
  assert_null(c.argmax);
  ns_ctx_clear_error(ctx);
  assert_int_equal(ns_classify(ctx, prob, 4, 1, 1, 0, -1, &c), NS_ERR_USAGE);
  ns_ctx_clear_error(ctx);
}

/* ---- a mean file in the transform ---------------------------------------- */

static void test_transform_set_mean(void **state) {
  ns_ctx *ctx = ((tu_fixture *)*state)->ctx;
  /* (2, 1, 2): channel 0 = {1, 3}, channel 1 = {10, 20} */
  float image[4] = {1, 3, 10, 20};
  ns_ndarray m = {.num_axes = 3, .shape = {2, 1, 2}, .count = 4, .data = image};
  ns_transform t;
  ns_transform_init(&t);
  assert_int_equal(ns_transform_set_mean(ctx, &t, &m, 0), NS_OK);
  assert_ptr_equal(t.mean_image, &m);
  assert_int_equal(t.num_mean_values, 0);
  /* channel averages: (1 + 3) / 2, (10 + 20) / 2; the image is dropped */
  assert_int_equal(ns_transform_set_mean(ctx, &t, &m, 1), NS_OK);
  assert_null(t.mean_image);
  assert_int_equal(t.num_mean_values, 2);
  assert_true(t.mean_values[0] == 2.0);
  assert_true(t.mean_values[1] == 15.0);
  /* a (C,) mean is its own per-channel values */
  float values[3] = {104, 117, 123};
  ns_ndarray v = {.num_axes = 1, .shape = {3}, .count = 3, .data = values};
  assert_int_equal(ns_transform_set_mean(ctx, &t, &v, 0), NS_OK);
  assert_int_equal(t.num_mean_values, 3);
  assert_true(t.mean_values[0] == 104.0 && t.mean_values[1] == 117.0 && t.mean_values[2] == 123.0);
  /* more channels than a transform holds */
  float many[NS_TRANSFORM_MAX_CHANNELS + 1] = {0};
  ns_ndarray big = {.num_axes = 1,
                    .shape = {NS_TRANSFORM_MAX_CHANNELS + 1},
                    .count = NS_TRANSFORM_MAX_CHANNELS + 1,
                    .data = many};
  assert_int_equal(ns_transform_set_mean(ctx, &t, &big, 0), NS_ERR_USAGE);
  assert_int_equal(t.num_mean_values, 0);
  ns_ctx_clear_error(ctx);
}

/* ---- nets: outputs and scores -------------------------------------------- */

static ns_net *load_text(tu_fixture *f, const char *name, const char *text) {
  char path[1024];
  tu_path(path, sizeof path, f->dir, name);
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  assert_int_equal(ns_net_load(f->ctx, path, NULL, &net), NS_OK);
  return net;
}

/* Caffe's Net::Init collects the outputs in a std::set<string>, so they
 * come in name order, not layer order; an in-place layer does not consume
 * its blob. */
static void test_output_blobs_caffe_order(void **state) {
  tu_fixture *f = *state;
  ns_net *net = load_text(f, "outs.prototxt",
                          "layer { name: 'in' type: 'Input' top: 'data'\n"
                          "  input_param { shape { dim: 1 dim: 2 } } }\n"
                          "layer { name: 'first' type: 'ReLU' bottom: 'data' top: 'zeta' }\n"
                          "layer { name: 'second' type: 'ReLU' bottom: 'data' top: 'alpha' }\n"
                          "layer { name: 'inplace' type: 'ReLU' bottom: 'zeta' top: 'zeta' }\n"
                          "layer { name: 'mid' type: 'ReLU' bottom: 'alpha' top: 'mid' }\n"
                          "layer { name: 'last' type: 'ReLU' bottom: 'alpha' top: 'beta' }\n");
  int outs[16];
  assert_true(ns_net_blob_count(net) < 16);
  int n = ns_net_output_blobs(net, outs);
  /* alpha is read by 'mid' and 'last': the outputs are beta, mid, zeta */
  assert_int_equal(n, 3);
  assert_string_equal(ns_net_blob(net, outs[0]).name, "beta");
  assert_string_equal(ns_net_blob(net, outs[1]).name, "mid");
  assert_string_equal(ns_net_blob(net, outs[2]).name, "zeta");
  ns_net_destroy(net);
}

/* Two samples (1, 2) and (3, 4), batch 1, no shuffle: three passes see
 * (1, 2), (3, 4), (1, 2).  The outputs are 'r' = ReLU(-data), all zeros,
 * and 'twice' = ReLU(data), which averages to (5/3, 8/3); 'twice' has
 * loss weight 2, so the loss is 2 * (3, 7, 3) per pass: 26/3 on average. */
static void test_score_outputs(void **state) {
  tu_fixture *f = *state;
  char xpath[1024], text[2048];
  float x[4] = {1, 2, 3, 4};
  int64_t shape[2] = {2, 2};
  tu_path(xpath, sizeof xpath, f->dir, "x.npy");
  assert_int_equal(ns_npy_save_f32(f->ctx, xpath, 2, shape, x), NS_OK);
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'NpyData' top: 'data'\n"
           "  array_data_param { source: '%s' batch_size: 1 } }\n"
           "layer { name: 'neg' type: 'Power' bottom: 'data' top: 'negdata'\n"
           "  power_param { scale: -1 } }\n"
           "layer { name: 'r' type: 'ReLU' bottom: 'negdata' top: 'r' }\n"
           "layer { name: 'twice' type: 'ReLU' bottom: 'data' top: 'twice' loss_weight: 2 }\n",
           xpath);
  ns_net *net = load_text(f, "score.prototxt", text);
  ns_net_score sc;
  assert_int_equal(ns_net_score_outputs(f->ctx, net, 3, NULL, &sc), NS_OK);
  /* in name order; 'data' and 'negdata' are read by later layers */
  assert_int_equal(sc.n_values, 4);
  assert_string_equal(sc.names[0], "r");
  assert_string_equal(sc.names[1], "r");
  assert_string_equal(sc.names[2], "twice");
  assert_string_equal(sc.names[3], "twice");
  assert_true(sc.values[0] == 0 && sc.values[1] == 0);
  assert_true(fabs(sc.values[2] - 5.0 / 3) < 1e-12);
  assert_true(fabs(sc.values[3] - 8.0 / 3) < 1e-12);
  assert_true(fabs(sc.loss - 26.0 / 3) < 1e-5);
  ns_net_score_free(f->ctx, &sc);
  /* a stop flag already set: no pass runs, nothing to average */
  volatile int stop = 1;
  assert_int_equal(ns_net_score_outputs(f->ctx, net, 3, &stop, &sc), NS_OK);
  assert_int_equal(sc.n_values, 0);
  assert_true(sc.loss == 0);
  ns_net_score_free(f->ctx, &sc);
  ns_net_destroy(net);
}

/* ---- the counting allocator ---------------------------------------------- */

static void test_budget_allocator(void **state) {
  (void)state;
  ns_budget b = {.limit = 1000};
  ns_allocator a = ns_budget_allocator(&b);
  void *p = a.alloc(a.user, 600);
  assert_non_null(p);
  assert_int_equal(b.live_bytes, 600);
  assert_int_equal(b.live_blocks, 1);
  assert_null(a.alloc(a.user, 401)); /* 600 + 401 > 1000 */
  void *q = a.alloc(a.user, 400);    /* exactly the limit */
  assert_non_null(q);
  assert_int_equal(b.live_bytes, 1000);
  a.free(a.user, q);
  assert_null(a.realloc(a.user, p, 1001)); /* growing past it fails, p stays */
  assert_int_equal(b.live_bytes, 600);
  memset(p, 7, 600);
  p = a.realloc(a.user, p, 900);
  assert_non_null(p);
  assert_int_equal(((unsigned char *)p)[599], 7);
  assert_int_equal(b.live_bytes, 900);
  p = a.realloc(a.user, p, 100); /* shrinking gives bytes back */
  assert_int_equal(b.live_bytes, 100);
  a.free(a.user, p);
  a.free(a.user, NULL);
  assert_int_equal(b.live_bytes, 0);
  assert_int_equal(b.live_blocks, 0);

  /* a context on a small budget: a tensor past it is NS_ERR_NOMEM, and
   * destroying the context gives every block back */
  ns_budget small = {.limit = 1 << 20};
  ns_allocator sa = ns_budget_allocator(&small);
  ns_ctx *ctx = ns_ctx_create_with(&sa);
  assert_non_null(ctx);
  ns_image im;
  assert_int_equal(ns_image_alloc(ctx, 1000, 1000, 3, &im), NS_ERR_NOMEM);
  assert_int_equal(ns_image_alloc(ctx, 100, 100, 3, &im), NS_OK);
  assert_true(small.live_bytes >= 100 * 100 * 3 * sizeof(float));
  ns_image_free(ctx, &im);
  ns_ctx_destroy(ctx);
  assert_int_equal(small.live_blocks, 0);
  assert_int_equal(small.live_bytes, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_classify_map, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_classify_single, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_transform_set_mean, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_output_blobs_caffe_order, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_score_outputs, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test(test_budget_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
