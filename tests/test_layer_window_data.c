/* WindowData is refused with an error that names the layer, its window
 * file and what is missing, as an unsupported feature (exit 3 in the
 * CLI), not as an unknown type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

static void test_refused_saying_what_is_missing(void **state) {
  tu_fixture *f = *state;
  const char *text =
      "name: 'rcnn'\n"
      "layer { name: 'windows' type: 'WindowData' top: 'data' top: 'label'\n"
      "  window_data_param { source: 'window_file_train.txt' batch_size: 128\n"
      "    fg_threshold: 0.5 bg_threshold: 0.5 fg_fraction: 0.25 context_pad: 16 } }\n";
  char path[1024];
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  assert_int_equal(ns_net_load(f->ctx, path, NULL, &net), NS_ERR_UNSUPPORTED);
  assert_null(net);
  const char *msg = ns_ctx_error(f->ctx);
  const char *needles[] = {"'windows'", "WindowData", "window_file_train.txt", "fg_fraction",
                           "not implemented"};
  for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
    if (!strstr(msg, needles[i])) fail_msg("'%s' lacks '%s'", msg, needles[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refused_saying_what_is_missing, tu_fixture_setup,
                                      tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
