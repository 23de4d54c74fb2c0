/* MemoryData with arrays handed over through ns_net_set_input_arrays
 * (pycaffe's set_input_arrays), worked by hand: consecutive batches that
 * wrap to the first, the arrays copied, and the errors (no arrays yet, a
 * count that is no multiple of batch_size, a layer of another type, a
 * missing memory_data_param field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

typedef tu_fixture fixture;

#define MEM_LAYER(param) \
  "layer { name: 'mem' type: 'MemoryData' top: 'data' top: 'label'\n" param " }\n"

static ns_status try_load(fixture *f, const char *layers, ns_net **net) {
  char path[1024], text[4096];
  snprintf(text, sizeof text, "name: 'm'\n%s", layers);
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

static const char *batch2 =
    MEM_LAYER("memory_data_param { batch_size: 2 channels: 1 height: 1 width: 2 }")
    "layer { name: 'scale' type: 'Power' bottom: 'data' top: 'scaled'\n"
    "  power_param { scale: 10 } }\n";

static void fill_items(float *data, float *labels, int n) {
  for (int i = 0; i < n * 2; i++) data[i] = (float)i; /* item k: (2k, 2k+1) */
  for (int i = 0; i < n; i++) labels[i] = 100.0f + (float)i;
}

static void test_batches_in_order_and_wrap(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, batch2);
  ns_tensor d = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor lab = ns_net_blob(net, ns_net_find_blob(net, "label"));
  assert_int_equal(d.num_axes, 4);
  assert_int_equal(d.shape[0], 2);
  assert_int_equal(d.shape[3], 2);
  assert_int_equal(lab.num_axes, 1);
  assert_int_equal(lab.shape[0], 2);
  float data[12], labels[6];
  fill_items(data, labels, 6);
  assert_int_equal(ns_net_set_input_arrays(f->ctx, net, NULL, data, labels, 6), NS_OK);
  memset(data, 0, sizeof data); /* copied: the caller's arrays may go */
  memset(labels, 0, sizeof labels);
  const int first_item[5] = {0, 2, 4, 0, 2};
  for (int step = 0; step < 5; step++) {
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    int k = first_item[step];
    for (int i = 0; i < 4; i++) assert_float_equal(d.data[i], (float)(2 * k + i), 0);
    assert_float_equal(lab.data[0], 100.0f + (float)k, 0);
    assert_float_equal(lab.data[1], 101.0f + (float)k, 0);
    const float *s = ns_net_blob(net, ns_net_find_blob(net, "scaled")).data;
    assert_float_equal(s[3], 10.0f * (float)(2 * k + 3), 0);
  }
  /* a new hand-over starts from its first item */
  fill_items(data, labels, 2);
  data[0] = -5;
  assert_int_equal(ns_net_set_input_arrays(f->ctx, net, "mem", data, labels, 2), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_float_equal(d.data[0], -5.0f, 0);
  ns_net_destroy(net);
}

static void expect(fixture *f, ns_status got, const char *needle) {
  assert_int_not_equal(got, NS_OK);
  const char *msg = ns_ctx_error(f->ctx);
  if (!strstr(msg, needle)) fail_msg("'%s' lacks '%s'", msg, needle);
}

static void test_errors(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, batch2);
  expect(f, ns_net_forward(f->ctx, net), "ns_net_set_input_arrays");
  float data[12], labels[6];
  fill_items(data, labels, 6);
  expect(f, ns_net_set_input_arrays(f->ctx, net, NULL, data, labels, 3),
         "multiple of batch_size 2");
  expect(f, ns_net_set_input_arrays(f->ctx, net, NULL, data, labels, 0), "'mem'");
  expect(f, ns_net_set_input_arrays(f->ctx, net, NULL, data, NULL, 2), "labels");
  expect(f, ns_net_set_input_arrays(f->ctx, net, "scale", data, labels, 2),
         "MemoryData layer only");
  expect(f, ns_net_set_input_arrays(f->ctx, net, "nope", data, labels, 2), "no layer 'nope'");
  ns_net_destroy(net);
  ns_net *bad;
  expect(f,
         try_load(f, MEM_LAYER("memory_data_param { batch_size: 2 channels: 1 height: 1 }"), &bad),
         "width must all be given");
  assert_null(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_batches_in_order_and_wrap, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_errors, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
