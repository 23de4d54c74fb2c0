/* Activation reuse (ns_net_reuse_activations, ns_net_load_reusing):
 * the outputs of a net built with it are bit-identical to those of the
 * same net built without (same seed, same input), on CaffeNet (a chain
 * with in-place ReLUs), GoogLeNet (Split and Concat: blobs read by several
 * layers) and ResNet-50 (Eltwise shortcuts, in-place BatchNorm/Scale);
 * the intermediates really share storage; and what needs an intermediate
 * (a forward from the middle, a backward) fails with NS_ERR_USAGE. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "support/testutil.h"

/* The zoo prototxt under ../shared, or skip. */
static const char *zoo_path(char *buf, size_t size, const char *rel) {
  const char *shared = tu_shared_dir();
  if (!shared) skip();
  snprintf(buf, size, "%s/data/prototxt/%s", shared, rel);
  FILE *f = fopen(buf, "r");
  if (!f) skip();
  fclose(f);
  return buf;
}

/* Builds the net (MSRA weights, seed 1) at batch `batch` with a fixed input. */
static ns_net *build(ns_ctx *ctx, const char *path, int reuse, int64_t batch) {
  ns_net_opts opts;
  ns_net_opts_init(&opts);
  ns_net *net = NULL;
  if ((reuse ? ns_net_load_reusing : ns_net_load)(ctx, path, &opts, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  /* the deploy files' fillers leave some weights 0: draw them all */
  assert_int_equal(ns_net_refill_weights(ctx, net, "msra", 1), NS_OK);
  /* BatchNorm's variance 1 and factor 1 (a variance of 0 blows up by
   * 1/sqrt(eps) per layer, to inf over ResNet's 53) */
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    if (strcmp(ns_net_layer_type(net, l), "BatchNorm") != 0) continue;
    for (int j = 1; j <= 2; j++) {
      ns_tensor p = ns_net_param(net, l, j);
      for (int64_t i = 0; i < p.count; i++) p.data[i] = 1.0f;
    }
  }
  ns_tensor in = ns_net_blob(net, ns_net_input_blob(net, 0));
  int64_t shape[4] = {batch, in.shape[1], in.shape[2], in.shape[3]};
  assert_int_equal(ns_net_reshape_input(ctx, net, in.name, 4, shape), NS_OK);
  in = ns_net_blob(net, ns_net_input_blob(net, 0));
  for (int64_t i = 0; i < in.count; i++) in.data[i] = (float)sin(0.001 * (double)i) * 50.0f;
  return net;
}

/* Reused intermediates, and how many distinct buffers they take. */
static void count_shared(ns_net *net, int *reused, int *buffers) {
  int n = ns_net_blob_count(net);
  float **seen = calloc((size_t)n + 1, sizeof *seen);
  assert_non_null(seen);
  *reused = *buffers = 0;
  for (int b = 0; b < n; b++) {
    if (!ns_net_blob_reused(net, b)) continue;
    float *p = ns_net_blob(net, b).data;
    int k = 0;
    while (k < *buffers && seen[k] != p) k++;
    if (k == *buffers) seen[(*buffers)++] = p;
    (*reused)++;
  }
  free(seen);
}

/* Every output of `a` equals `b`'s bit for bit, and varies (a net of
 * zeros would match whatever the sharing did). */
static void assert_outputs_equal(ns_net *a, ns_net *b) {
  int n = ns_net_blob_count(a);
  int *outs = calloc((size_t)n + 1, sizeof *outs);
  assert_non_null(outs);
  int n_out = ns_net_output_blobs(a, outs);
  assert_true(n_out >= 1);
  for (int k = 0; k < n_out; k++) {
    ns_tensor x = ns_net_blob(a, outs[k]), y = ns_net_blob(b, outs[k]);
    assert_false(ns_net_blob_reused(a, outs[k]));
    assert_int_equal(x.count, y.count);
    assert_memory_equal(x.data, y.data, (size_t)x.count * sizeof(float));
    float lo = x.data[0], hi = x.data[0];
    for (int64_t i = 1; i < x.count; i++) {
      lo = x.data[i] < lo ? x.data[i] : lo;
      hi = x.data[i] > hi ? x.data[i] : hi;
    }
    assert_true(hi > lo);
  }
  free(outs);
}

/* Forwards both (the reusing one twice: a layer that relied on what its
 * top held before would differ) and compares their outputs. */
static void forward_and_compare(ns_ctx *ctx, ns_net *plain, ns_net *reusing) {
  assert_int_equal(ns_net_forward(ctx, plain), NS_OK);
  assert_int_equal(ns_net_forward(ctx, reusing), NS_OK);
  assert_int_equal(ns_net_forward(ctx, reusing), NS_OK);
  assert_outputs_equal(reusing, plain);
}

static void check_identical(void **state, const char *rel, int64_t batch) {
  tu_fixture *f = *state;
  char path[4096];
  zoo_path(path, sizeof path, rel);
  ns_net *plain = build(f->ctx, path, 0, batch), *reusing = build(f->ctx, path, 1, batch);
  forward_and_compare(f->ctx, plain, reusing);
  int reused, buffers;
  count_shared(reusing, &reused, &buffers);
  assert_true(reused >= 10);
  assert_true(buffers * 2 <= reused); /* at least two blobs per buffer on average */
  count_shared(plain, &reused, &buffers);
  assert_int_equal(reused, 0); /* never the default */
  ns_net_destroy(plain);
  ns_net_destroy(reusing);
}

static void test_caffenet_identical(void **state) {
  /* batch 2: the plan follows a reshape */
  check_identical(state, "current/bvlc_reference_caffenet__deploy.prototxt", 2);
}

static void test_googlenet_identical(void **state) {
  check_identical(state, "current/bvlc_googlenet__deploy.prototxt", 1);
}

static void test_resnet50_identical(void **state) {
  check_identical(state, "zoo/resnet50__deploy.prototxt", 1);
}

/* A Split's tops take its bottom's buffer (no copy) unless a later
 * layer writes one of them in place: "c" feeds two convolutions (its
 * Split's tops share c's buffer); "d" goes through a Split written in the
 * prototxt whose second top a ReLU rewrites in place (Caffe's own Splits
 * never meet that: an in-place layer there is "produced by multiple
 * sources"), so its tops keep their own buffers: shared, the ReLU would
 * change what the first top's convolution reads.  The input "x" feeds
 * two layers: its Split's tops read the caller's buffer.  Outputs
 * bit-identical to the plain net's either way. */
static const char split_net[] =
    "name: 'splits'\n"
    "layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }\n"
    "layer { name: 'c' type: 'Convolution' bottom: 'x' top: 'c' convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }\n"
    "layer { name: 'a' type: 'Convolution' bottom: 'c' top: 'a' convolution_param { num_output: 2 kernel_size: 1 } }\n"
    "layer { name: 'b' type: 'Convolution' bottom: 'c' top: 'b' convolution_param { num_output: 2 kernel_size: 1 } }\n"
    "layer { name: 'ab' type: 'Eltwise' bottom: 'a' bottom: 'b' top: 'd' }\n"
    "layer { name: 'sp' type: 'Split' bottom: 'd' top: 'd1' top: 'd2' }\n"
    "layer { name: 'r' type: 'ReLU' bottom: 'd2' top: 'd2' }\n"
    "layer { name: 'e' type: 'Convolution' bottom: 'd1' top: 'e' convolution_param { num_output: 2 kernel_size: 1 } }\n"
    "layer { name: 'de' type: 'Concat' bottom: 'd2' bottom: 'e' top: 'out' }\n"
    "layer { name: 'px' type: 'Pooling' bottom: 'x' top: 'px' pooling_param { pool: AVE global_pooling: true } }\n";

/* The net of prototxt `text` built plain and reusing (from a file in a
 * temporary folder), both run and their outputs compared. */
static void text_pair(ns_ctx *ctx, const char *text, ns_net **plain, ns_net **reusing) {
  char *dir = tu_mkdtemp(), path[4096];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  *plain = build(ctx, path, 0, 1), *reusing = build(ctx, path, 1, 1);
  tu_rmtree(dir);
  free(dir);
  forward_and_compare(ctx, *plain, *reusing);
}

static void test_split_tops_share(void **state) {
  tu_fixture *f = *state;
  ns_net *plain, *reusing;
  text_pair(f->ctx, split_net, &plain, &reusing);
  int c = ns_net_find_blob(reusing, "c"), x = ns_net_find_blob(reusing, "x");
  int shared_tops = 0, input_tops = 0, own_tops = 0;
  for (int b = 0; b < ns_net_blob_count(reusing); b++) {
    const char *name = ns_net_blob(reusing, b).name;
    if (strncmp(name, "c_", 2) == 0 && strstr(name, "_split_"))
      shared_tops += ns_net_blob(reusing, b).data == ns_net_blob(reusing, c).data;
    if (strncmp(name, "x_", 2) == 0 && strstr(name, "_split_"))
      input_tops += ns_net_blob(reusing, b).data == ns_net_blob(reusing, x).data;
    if (!strcmp(name, "d1") || !strcmp(name, "d2"))
      own_tops += ns_net_blob(reusing, b).data != ns_net_blob(reusing, ns_net_find_blob(reusing, "d")).data;
  }
  assert_int_equal(shared_tops, 2);
  assert_int_equal(input_tops, 2); /* a net input's Split: the caller's buffer */
  assert_int_equal(own_tops, 2);
  ns_net_destroy(plain);
  ns_net_destroy(reusing);
}

/* A residual block as ResNet's (a 1x1 convolution, BatchNorm and Scale
 * in place, an Eltwise sum with the block's input, a ReLU in place): with
 * reuse the sum is folded into the convolution, which writes the sum's
 * top; the plain net runs every layer.  Bit-identical outputs (not
 * saturated: no softmax), and the sum's top must not share a buffer with
 * the convolution's input (the plan holds it from the convolution on). */
static const char residual_net[] =
    "name: 'residual'\n"
    "layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 dim: 8 dim: 7 dim: 9 } } }\n"
    "layer { name: 'c0' type: 'Convolution' bottom: 'x' top: 'c0' convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }\n"
    "layer { name: 'c1' type: 'Convolution' bottom: 'c0' top: 'c1' convolution_param { num_output: 8 kernel_size: 1 } }\n"
    "layer { name: 'bn' type: 'BatchNorm' bottom: 'c1' top: 'c1' }\n"
    "layer { name: 'sc' type: 'Scale' bottom: 'c1' top: 'c1' scale_param { bias_term: true } }\n"
    "layer { name: 'sum' type: 'Eltwise' bottom: 'c0' bottom: 'c1' top: 's' }\n"
    "layer { name: 'r' type: 'ReLU' bottom: 's' top: 's' }\n"
    "layer { name: 'out' type: 'Convolution' bottom: 's' top: 'out' convolution_param { num_output: 4 kernel_size: 1 } }\n";

static void test_residual_sum_folded(void **state) {
  tu_fixture *f = *state;
  ns_net *plain, *reusing;
  text_pair(f->ctx, residual_net, &plain, &reusing);
  ns_tensor s = ns_net_blob(reusing, ns_net_find_blob(reusing, "s"));
  ns_tensor c0 = ns_net_blob(reusing, ns_net_find_blob(reusing, "c0"));
  assert_true(s.data != c0.data);
  int zeros = 0; /* the ReLU after the sum cut something */
  for (int64_t i = 0; i < s.count; i++) zeros += s.data[i] == 0.0f;
  assert_true(zeros > 0 && zeros < s.count);
  ns_net_destroy(plain);
  ns_net_destroy(reusing);
}

/* An intermediate is flagged shared; a forward from the middle and a
 * backward fail clearly; turning reuse off gives the intermediates their
 * values back after a forward (conv1 equal to the plain net's). */
static void test_intermediates_with_reuse(void **state) {
  tu_fixture *f = *state;
  char path[4096];
  zoo_path(path, sizeof path, "current/bvlc_reference_caffenet__deploy.prototxt");
  ns_net *plain = build(f->ctx, path, 0, 1), *net = build(f->ctx, path, 0, 1);
  assert_int_equal(ns_net_reuse_activations(f->ctx, net, 1), NS_OK);
  int conv1 = ns_net_find_blob(net, "conv1");
  assert_true(conv1 >= 0);
  assert_true(ns_net_blob_reused(net, conv1));
  assert_false(ns_net_blob_reused(net, ns_net_input_blob(net, 0)));
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_int_equal(ns_net_forward_range(f->ctx, net, 3, ns_net_layer_count(net) - 1),
                   NS_ERR_USAGE);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "reuse"));
  assert_int_equal(ns_net_backward(f->ctx, net), NS_ERR_USAGE);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "reuse"));

  assert_int_equal(ns_net_reuse_activations(f->ctx, net, 0), NS_OK);
  assert_false(ns_net_blob_reused(net, conv1));
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, plain), NS_OK);
  ns_tensor x = ns_net_blob(net, conv1), y = ns_net_blob(plain, conv1);
  assert_memory_equal(x.data, y.data, (size_t)x.count * sizeof(float));
  assert_outputs_equal(net, plain);
  ns_net_destroy(plain);
  ns_net_destroy(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_caffenet_identical, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_googlenet_identical, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_resnet50_identical, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_split_tops_share, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_residual_sum_folded, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_intermediates_with_reuse, tu_fixture_setup,
                                      tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
