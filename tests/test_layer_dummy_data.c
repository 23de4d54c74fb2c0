/* DummyData against Caffe's DummyDataLayer, worked by hand: shapes from
 * shape or the legacy 4-D lists (once, or once per top), the fillers
 * (none: zeros; one for all; one per top), a constant top filled once at
 * setup and never again, a random top refilled on each forward, and the
 * errors Caffe's checks give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

typedef tu_fixture fixture;

static ns_status try_load(fixture *f, const char *layers, ns_net **net) {
  char path[1024], text[4096];
  snprintf(text, sizeof text, "name: 'd'\n%s", layers);
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  *net = NULL;
  return ns_net_load(f->ctx, path, NULL, net);
}

static ns_net *load(fixture *f, const char *layers) {
  ns_net *net;
  if (try_load(f, layers, &net) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  return net;
}

static ns_tensor top(ns_net *net, const char *name) {
  int b = ns_net_find_blob(net, name);
  assert_true(b >= 0);
  return ns_net_blob(net, b);
}

static void assert_shape(ns_tensor t, int n, const int64_t *dims) {
  assert_int_equal(t.num_axes, n);
  for (int i = 0; i < n; i++) assert_int_equal(t.shape[i], dims[i]);
}

static void test_constant_once_random_each_forward(void **state) {
  fixture *f = *state;
  ns_net *net = load(f,
                     "layer { name: 'dd' type: 'DummyData' top: 'c' top: 'u'\n"
                     "  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 5 }\n"
                     "    data_filler { type: 'constant' value: 2.5 }\n"
                     "    data_filler { type: 'uniform' min: 1 max: 2 } } }\n");
  ns_tensor c = top(net, "c"), u = top(net, "u");
  assert_shape(c, 2, (const int64_t[]){2, 3});
  assert_shape(u, 1, (const int64_t[]){5});
  for (int i = 0; i < 6; i++) assert_float_equal(c.data[i], 2.5f, 0);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  float first[5];
  for (int i = 0; i < 5; i++) {
    assert_true(u.data[i] >= 1.0f && u.data[i] <= 2.0f);
    first[i] = u.data[i];
  }
  c.data[0] = 7; /* a constant top is not refilled (Caffe's refill_ false) */
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_float_equal(c.data[0], 7.0f, 0);
  int changed = 0;
  for (int i = 0; i < 5; i++) changed |= u.data[i] != first[i];
  assert_true(changed);
  ns_net_destroy(net);
}

static void test_legacy_dims_no_filler(void **state) {
  fixture *f = *state;
  ns_net *net = load(f,
                     "layer { name: 'dd' type: 'DummyData' top: 'a' top: 'b'\n"
                     "  dummy_data_param { num: 2 channels: 3 channels: 1 height: 4 width: 5\n"
                     "    width: 1 } }\n");
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  ns_tensor a = top(net, "a"), b = top(net, "b");
  assert_shape(a, 4, (const int64_t[]){2, 3, 4, 5});
  assert_shape(b, 4, (const int64_t[]){2, 1, 4, 1});
  for (int64_t i = 0; i < a.count; i++) assert_float_equal(a.data[i], 0.0f, 0);
  for (int64_t i = 0; i < b.count; i++) assert_float_equal(b.data[i], 0.0f, 0);
  ns_net_destroy(net);
}

/* One filler serves every top, and one shape every top. */
static void test_one_filler_one_shape_for_all(void **state) {
  fixture *f = *state;
  ns_net *net = load(f,
                     "layer { name: 'dd' type: 'DummyData' top: 'a' top: 'b'\n"
                     "  dummy_data_param { shape { dim: 3 dim: 2 }\n"
                     "    data_filler { type: 'uniform' min: -3 max: -2 } } }\n");
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  const char *names[2] = {"a", "b"};
  for (int k = 0; k < 2; k++) {
    ns_tensor t = top(net, names[k]);
    assert_shape(t, 2, (const int64_t[]){3, 2});
    for (int i = 0; i < 6; i++) assert_true(t.data[i] >= -3.0f && t.data[i] <= -2.0f);
  }
  ns_net_destroy(net);
}

static void expect_error(fixture *f, const char *layers, const char *needle) {
  ns_net *net;
  assert_int_not_equal(try_load(f, layers, &net), NS_OK);
  assert_null(net);
  const char *msg = ns_ctx_error(f->ctx);
  if (!strstr(msg, "'dd'") || !strstr(msg, needle))
    fail_msg("'%s' lacks 'dd' or '%s'", msg, needle);
}

static void test_errors(void **state) {
  fixture *f = *state;
  expect_error(f, "layer { name: 'dd' type: 'DummyData' top: 'a' }\n", "dummy_data_param");
  expect_error(f,
               "layer { name: 'dd' type: 'DummyData' top: 'a'\n"
               "  dummy_data_param { shape { dim: 1 } num: 1 channels: 1 height: 1 width: 1 } }\n",
               "both shape and");
  expect_error(f,
               "layer { name: 'dd' type: 'DummyData' top: 'a' top: 'b' top: 'c'\n"
               "  dummy_data_param { shape { dim: 1 } data_filler { value: 1 }\n"
               "    data_filler { value: 2 } } }\n",
               "data_filler is given 2 times");
  expect_error(f,
               "layer { name: 'dd' type: 'DummyData' top: 'a'\n"
               "  dummy_data_param { num: 1 channels: 1 height: 1 } }\n",
               "width is given 0 times");
  expect_error(f,
               "layer { name: 'dd' type: 'DummyData' top: 'a' top: 'b' top: 'c'\n"
               "  dummy_data_param { shape { dim: 1 } shape { dim: 2 } } }\n",
               "shape is given 2 times");
  expect_error(f,
               "layer { name: 'dd' type: 'DummyData' top: 'a'\n"
               "  dummy_data_param { shape { dim: 2 dim: -1 } } }\n",
               "negative");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_constant_once_random_each_forward, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_legacy_dims_no_filler, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_one_filler_one_shape_for_all, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_errors, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
