/* WindowData's parameter errors name the layer and the field (its
 * crops, context, mirror and mean are checked against a cv2 reference in
 * tests/oracle/test_window_data.py, bad window files there too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

static void expect_refused(tu_fixture *f, const char *params, const char *transform,
                           ns_status want, const char *needle) {
  char text[2048], path[1024], windows[1024];
  tu_path(windows, sizeof windows, f->dir, "windows.txt");
  const char *file = "# 0\nimg.png\n3\n10\n10\n2\n1 0.9 0 0 5 5\n0 0.1 2 2 9 9\n";
  assert_int_equal(tu_write_file(windows, file, strlen(file)), 0);
  snprintf(text, sizeof text,
           "layer { name: 'windows' type: 'WindowData' top: 'data' top: 'label'\n"
           "  transform_param { %s }\n"
           "  window_data_param { source: '%s' %s } }\n",
           transform, windows, params);
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  ns_status st = ns_net_load(f->ctx, path, NULL, &net);
  const char *msg = ns_ctx_error(f->ctx);
  if (st != want || !strstr(msg, needle) || !strstr(msg, "'windows'"))
    fail_msg("status %d (want %d), '%s' (want '%s')", st, want, msg, needle);
  assert_null(net);
}

static void test_parameter_errors(void **state) {
  tu_fixture *f = *state;
  expect_refused(f, "", "crop_size: 8", NS_ERR_NET, "batch_size");
  expect_refused(f, "batch_size: 4", "", NS_ERR_NET, "crop_size");
  expect_refused(f, "batch_size: 4 crop_mode: 'round'", "crop_size: 8", NS_ERR_NET, "crop_mode");
  expect_refused(f, "batch_size: 4 context_pad: 4", "crop_size: 8", NS_ERR_NET, "context_pad");
  expect_refused(f, "batch_size: 4 fg_fraction: 1.5", "crop_size: 8", NS_ERR_NET, "fg_fraction");
  expect_refused(f, "batch_size: 4", "crop_size: 8 mean_value: 1 mean_value: 2", NS_ERR_NET,
                 "mean_value");
  /* every window is background with thresholds of 0.95: no foreground */
  expect_refused(f, "batch_size: 4 fg_threshold: 0.95 bg_threshold: 0.95", "crop_size: 8",
                 NS_ERR_INPUT, "0 foreground");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_parameter_errors, tu_fixture_setup,
                                      tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
