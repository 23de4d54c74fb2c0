/* The public API's entry points that no CLI verb reaches: the options of
 * ns_net_load and ns_net_build_from (phase, seed, weights), copying
 * weights into a built net, ns_netdef_has_weights, ns_netdef_truncate, a
 * solver's count of test nets and a context's thread count.  Expected
 * values are the ones the test writes (params set by hand, saved, read
 * back) or the header's documented defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

/* An InnerProduct from 3 inputs to 2 outputs (6 weights, 2 biases) and a
 * Dropout that only a TRAIN net keeps. */
static const char net_text[] =
    "name: 'api'\n"
    "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 } } }\n"
    "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip'\n"
    "  inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 1 }\n"
    "                        bias_filler { type: 'gaussian' std: 1 } } }\n"
    "layer { name: 'drop' type: 'Dropout' bottom: 'ip' top: 'ip' include { phase: TRAIN } }\n";

static const float hand_weights[6] = {1, -2, 3, -4, 5, -6};
static const float hand_biases[2] = {0.25f, -0.5f};

static const char *write_net(tu_fixture *f, char *path, size_t size) {
  tu_path(path, size, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, net_text, strlen(net_text)), 0);
  return path;
}

/* A caffemodel of the net with the hand-set params above. */
static const char *write_weights(tu_fixture *f, const char *net_path, char *path, size_t size) {
  ns_net *net = NULL;
  tu_path(path, size, f->dir, "hand.caffemodel");
  assert_int_equal(ns_net_load(f->ctx, net_path, NULL, &net), NS_OK);
  assert_int_equal(ns_net_param_set(f->ctx, net, "ip", 0, hand_weights, 6), NS_OK);
  assert_int_equal(ns_net_param_set(f->ctx, net, "ip", 1, hand_biases, 2), NS_OK);
  assert_int_equal(ns_net_save_weights(f->ctx, net, path), NS_OK);
  ns_net_destroy(net);
  return path;
}

static void expect_hand_params(tu_fixture *f, ns_net *net) {
  float w[6], b[2];
  assert_int_equal(ns_net_param_get(f->ctx, net, "ip", 0, w, 6), NS_OK);
  assert_int_equal(ns_net_param_get(f->ctx, net, "ip", 1, b, 2), NS_OK);
  assert_memory_equal(w, hand_weights, sizeof w);
  assert_memory_equal(b, hand_biases, sizeof b);
}

static void weights_of(tu_fixture *f, ns_net *net, float *w) {
  assert_int_equal(ns_net_param_get(f->ctx, net, "ip", 0, w, 6), NS_OK);
}

/* The documented defaults, and NULL options meaning exactly them. */
static void test_opts_defaults(void **state) {
  tu_fixture *f = *state;
  ns_net_opts o;
  memset(&o, 0x5a, sizeof o);
  ns_net_opts_init(&o);
  assert_int_equal(o.phase, NS_PHASE_TEST);
  assert_int_equal(o.seed, 1);
  assert_null(o.weights);
  char path[1024];
  write_net(f, path, sizeof path);
  ns_net *by_null = NULL, *by_opts = NULL, *seed2 = NULL;
  assert_int_equal(ns_net_load(f->ctx, path, NULL, &by_null), NS_OK);
  assert_int_equal(ns_net_load(f->ctx, path, &o, &by_opts), NS_OK);
  o.seed = 2;
  assert_int_equal(ns_net_load(f->ctx, path, &o, &seed2), NS_OK);
  float a[6], b[6], c[6];
  weights_of(f, by_null, a);
  weights_of(f, by_opts, b);
  weights_of(f, seed2, c);
  assert_memory_equal(a, b, sizeof a);     /* same seed, same draws */
  assert_memory_not_equal(a, c, sizeof a); /* the seed is used */
  assert_int_equal(ns_net_phase(by_null), NS_PHASE_TEST);
  assert_int_equal(ns_net_find_layer(by_null, "drop"), -1); /* TRAIN-only */
  ns_net_destroy(by_null);
  ns_net_destroy(by_opts);
  ns_net_destroy(seed2);
}

/* Weights through the options of both entry points, and into a built net. */
static void test_weights_three_ways(void **state) {
  tu_fixture *f = *state;
  char path[1024], wpath[1024];
  write_net(f, path, sizeof path);
  write_weights(f, path, wpath, sizeof wpath);
  ns_net_opts o;
  ns_net_opts_init(&o);
  o.weights = wpath;
  ns_net *net = NULL;
  assert_int_equal(ns_net_load(f->ctx, path, &o, &net), NS_OK);
  expect_hand_params(f, net);
  ns_net_destroy(net);

  ns_netdef *def = NULL;
  assert_int_equal(ns_netdef_load(f->ctx, path, &def), NS_OK);
  o.phase = NS_PHASE_TRAIN;
  assert_int_equal(ns_net_build_from(f->ctx, def, &o, &net), NS_OK);
  expect_hand_params(f, net);
  assert_int_equal(ns_net_phase(net), NS_PHASE_TRAIN);
  assert_true(ns_net_find_layer(net, "drop") >= 0);
  ns_net_destroy(net);

  assert_int_equal(ns_net_load(f->ctx, path, NULL, &net), NS_OK);
  assert_int_equal(ns_net_load_weights(f->ctx, net, wpath), NS_OK);
  expect_hand_params(f, net);
  ns_net_destroy(net);
}

/* A failing weights file leaves no net and names the file. */
static void test_missing_weights(void **state) {
  tu_fixture *f = *state;
  char path[1024], missing[1024];
  write_net(f, path, sizeof path);
  tu_path(missing, sizeof missing, f->dir, "absent.caffemodel");
  ns_net_opts o;
  ns_net_opts_init(&o);
  o.weights = missing;
  ns_net *net = (ns_net *)&o; /* must be reset */
  assert_int_equal(ns_net_load(f->ctx, path, &o, &net), NS_ERR_IO);
  assert_null(net);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "absent.caffemodel"));
}

static void test_netdef_has_weights(void **state) {
  tu_fixture *f = *state;
  char path[1024], wpath[1024];
  write_net(f, path, sizeof path);
  write_weights(f, path, wpath, sizeof wpath);
  ns_netdef *text = NULL, *model = NULL;
  assert_int_equal(ns_netdef_load(f->ctx, path, &text), NS_OK);
  assert_int_equal(ns_netdef_load(f->ctx, wpath, &model), NS_OK);
  assert_int_equal(ns_netdef_has_weights(text), 0);
  assert_int_equal(ns_netdef_has_weights(model), 1);
  ns_netdef_destroy(text);
  ns_netdef_destroy(model);
}

/* Truncating keeps the first layers by definition order (the TRAIN-only
 * Dropout counts) and frees the rest: the prefix builds, sizes out of
 * range clamp. */
static void test_netdef_truncate(void **state) {
  tu_fixture *f = *state;
  char path[1024];
  write_net(f, path, sizeof path);
  ns_netdef *def = NULL;
  assert_int_equal(ns_netdef_load(f->ctx, path, &def), NS_OK);
  ns_netdef_truncate(def, 7);
  assert_int_equal(ns_netdef_layer_count(def), 3);
  ns_netdef_truncate(def, 1);
  assert_int_equal(ns_netdef_layer_count(def), 1);
  assert_string_equal(ns_netdef_layer_name(def, 0), "data");
  ns_net *net = NULL;
  assert_int_equal(ns_net_build_from(f->ctx, def, NULL, &net), NS_OK);
  assert_int_equal(ns_net_layer_count(net), 1);
  assert_int_equal(ns_net_blob_count(net), 1);
  ns_net_destroy(net);
  assert_int_equal(ns_netdef_load(f->ctx, path, &def), NS_OK);
  ns_netdef_truncate(def, -1);
  assert_int_equal(ns_netdef_layer_count(def), 0);
  ns_netdef_destroy(def);
}

/* Caffe makes one test net from `net_param` per test_iter value. */
static void test_solver_test_net_count(void **state) {
  tu_fixture *f = *state;
  char path[1024], text[4096];
  snprintf(text, sizeof text,
           "net_param { %s }\nbase_lr: 0.1 lr_policy: 'fixed' max_iter: 1\n"
           "test_iter: 2 test_iter: 3 test_interval: 10\n",
           net_text);
  tu_path(path, sizeof path, f->dir, "solver.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_solver *s = NULL;
  if (ns_solver_create(f->ctx, path, NULL, &s) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(ns_solver_test_net_count(s), 2);
  for (int i = 0; i < 2; i++)
    assert_int_equal(ns_net_phase(ns_solver_test_net(s, i)), NS_PHASE_TEST);
  ns_solver_destroy(s);
}

static void test_ctx_threads(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  assert_non_null(ctx);
  assert_int_equal(ns_ctx_threads(ctx), 0); /* all cores */
  ns_ctx_set_threads(ctx, 3);
  assert_int_equal(ns_ctx_threads(ctx), 3);
  ns_ctx_set_threads(ctx, -2);
  assert_int_equal(ns_ctx_threads(ctx), 0);
  ns_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_opts_defaults, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_weights_three_ways, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_missing_weights, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_netdef_has_weights, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_netdef_truncate, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_solver_test_net_count, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test(test_ctx_threads),
  };
  return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
