/* Net surgery: params by name, transplants, the FCN cast (against Caffe's
 * figures for a hand-made cast, and against the classifier on crops),
 * receptive fields (hand-computed for CaffeNet's architecture), atomic
 * saves, and the notebook's designer filters (Caffe's figures and a direct
 * convolution written here). */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

#define ABS_TOL 1e-5
#define REL_TOL 1e-4

/* ---- helpers ----------------------------------------------------------- */

static ns_ctx *new_ctx(void) {
  ns_ctx *ctx = ns_ctx_create();
  assert_non_null(ctx);
  ns_ctx_set_threads(ctx, 2);
  return ctx;
}

static void write_text(const char *path, const char *text) {
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

static ns_net *load_or_fail(ns_ctx *ctx, const char *proto, const char *weights, uint64_t seed) {
  ns_net *net = NULL;
  if (ns_net_load(ctx, proto, &(ns_net_opts){NS_PHASE_TEST, seed, weights}, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  return net;
}

/* Caffe's conformance case NAME; skips the test without ../shared (the
 * callers ask for it before they make anything). */
static const char *conf_dir(char *buf, size_t size, const char *name) {
  const char *root = tu_conformance_dir();
  if (!root) skip();
  return tu_path(buf, size, root, name);
}

static const char *conf_file(char *buf, size_t size, const char *name, const char *file) {
  char dir[1024];
  conf_dir(dir, sizeof dir, name);
  return tu_path(buf, size, dir, file);
}

static void feed(ns_ctx *ctx, ns_net *net, const char *blob, const ns_ndarray *a) {
  if (ns_net_reshape_input(ctx, net, blob, a->num_axes, a->shape) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, blob));
  assert_int_equal(t.count, a->count);
  memcpy(t.data, a->data, (size_t)a->count * sizeof(float));
}

static void feed_npy(ns_ctx *ctx, ns_net *net, const char *blob, const char *path) {
  ns_ndarray a;
  if (ns_npy_load(ctx, path, &a) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  feed(ctx, net, blob, &a);
  ns_ndarray_free(ctx, &a);
}

static void expect_blob_close(ns_ctx *ctx, ns_net *net, const char *blob, const char *npy) {
  ns_ndarray want;
  if (ns_npy_load(ctx, npy, &want) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  int b = ns_net_find_blob(net, blob);
  if (b < 0) fail_msg("no blob '%s'", blob);
  ns_tensor t = ns_net_blob(net, b);
  assert_int_equal(t.num_axes, want.num_axes);
  for (int i = 0; i < t.num_axes; i++) assert_int_equal(t.shape[i], want.shape[i]);
  double max_abs;
  double excess = tu_excess(t.data, want.data, t.count, ABS_TOL, REL_TOL, &max_abs);
  if (excess > 0) fail_msg("blob '%s': max |diff| %g over tolerance", blob, max_abs);
  ns_ndarray_free(ctx, &want);
}

/* Deterministic values in [-1, 1) (a 64-bit LCG). */
static void fill_random(float *x, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    x[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }
}

static int contains(const char *haystack, const char *needle) {
  return strstr(haystack, needle) != NULL;
}

/* A small net: conv (no padding) -> pool -> conv -> fc -> fc -> softmax. */
static const char *no_pad_net =
    "name: 'nopad'\n"
    "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 dim: 20 "
    "dim: 20 } } }\n"
    "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1' convolution_param { "
    "num_output: 6 kernel_size: 5 weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: "
    "'uniform' min: -0.1 max: 0.1 } } }\n"
    "layer { name: 'relu1' type: 'ReLU' bottom: 'conv1' top: 'conv1' }\n"
    "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1' pooling_param { pool: MAX "
    "kernel_size: 2 stride: 2 } }\n"
    "layer { name: 'conv2' type: 'Convolution' bottom: 'pool1' top: 'conv2' convolution_param { "
    "num_output: 8 kernel_size: 3 weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: "
    "'uniform' min: -0.1 max: 0.1 } } }\n"
    "layer { name: 'relu2' type: 'ReLU' bottom: 'conv2' top: 'conv2' }\n"
    "layer { name: 'fc1' type: 'InnerProduct' bottom: 'conv2' top: 'fc1' inner_product_param { "
    "num_output: 12 weight_filler { type: 'gaussian' std: 0.1 } bias_filler { type: 'uniform' "
    "min: -0.1 max: 0.1 } } }\n"
    "layer { name: 'relu3' type: 'ReLU' bottom: 'fc1' top: 'fc1' }\n"
    "layer { name: 'drop3' type: 'Dropout' bottom: 'fc1' top: 'fc1' }\n"
    "layer { name: 'fc2' type: 'InnerProduct' bottom: 'fc1' top: 'fc2' inner_product_param { "
    "num_output: 5 weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'uniform' "
    "min: -0.1 max: 0.1 } } }\n"
    "layer { name: 'prob' type: 'Softmax' bottom: 'fc2' top: 'prob' }\n";

/* CaffeNet's architecture (kernels, strides, pads, groups) with few
 * channels: receptive fields depend on the geometry alone. */
static void write_small_caffenet(const char *path, int size) {
  char text[8192];
  snprintf(
      text, sizeof text,
      "name: 'CaffeNetShaped'\n"
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 dim: %d "
      "dim: %d } } }\n"
      "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1' convolution_param { "
      "num_output: 4 kernel_size: 11 stride: 4 } }\n"
      "layer { name: 'relu1' type: 'ReLU' bottom: 'conv1' top: 'conv1' }\n"
      "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1' pooling_param { pool: "
      "MAX kernel_size: 3 stride: 2 } }\n"
      "layer { name: 'norm1' type: 'LRN' bottom: 'pool1' top: 'norm1' lrn_param { local_size: 5 "
      "alpha: 0.0001 beta: 0.75 } }\n"
      "layer { name: 'conv2' type: 'Convolution' bottom: 'norm1' top: 'conv2' convolution_param { "
      "num_output: 8 pad: 2 kernel_size: 5 group: 2 } }\n"
      "layer { name: 'relu2' type: 'ReLU' bottom: 'conv2' top: 'conv2' }\n"
      "layer { name: 'pool2' type: 'Pooling' bottom: 'conv2' top: 'pool2' pooling_param { pool: "
      "MAX kernel_size: 3 stride: 2 } }\n"
      "layer { name: 'norm2' type: 'LRN' bottom: 'pool2' top: 'norm2' lrn_param { local_size: 5 "
      "alpha: 0.0001 beta: 0.75 } }\n"
      "layer { name: 'conv3' type: 'Convolution' bottom: 'norm2' top: 'conv3' convolution_param { "
      "num_output: 8 pad: 1 kernel_size: 3 } }\n"
      "layer { name: 'relu3' type: 'ReLU' bottom: 'conv3' top: 'conv3' }\n"
      "layer { name: 'conv4' type: 'Convolution' bottom: 'conv3' top: 'conv4' convolution_param { "
      "num_output: 8 pad: 1 kernel_size: 3 group: 2 } }\n"
      "layer { name: 'relu4' type: 'ReLU' bottom: 'conv4' top: 'conv4' }\n"
      "layer { name: 'conv5' type: 'Convolution' bottom: 'conv4' top: 'conv5' convolution_param { "
      "num_output: 8 pad: 1 kernel_size: 3 group: 2 } }\n"
      "layer { name: 'relu5' type: 'ReLU' bottom: 'conv5' top: 'conv5' }\n"
      "layer { name: 'pool5' type: 'Pooling' bottom: 'conv5' top: 'pool5' pooling_param { pool: "
      "MAX kernel_size: 3 stride: 2 } }\n"
      "layer { name: 'fc6' type: 'InnerProduct' bottom: 'pool5' top: 'fc6' inner_product_param { "
      "num_output: 16 } }\n"
      "layer { name: 'relu6' type: 'ReLU' bottom: 'fc6' top: 'fc6' }\n"
      "layer { name: 'drop6' type: 'Dropout' bottom: 'fc6' top: 'fc6' }\n"
      "layer { name: 'fc7' type: 'InnerProduct' bottom: 'fc6' top: 'fc7' inner_product_param { "
      "num_output: 16 } }\n"
      "layer { name: 'relu7' type: 'ReLU' bottom: 'fc7' top: 'fc7' }\n"
      "layer { name: 'drop7' type: 'Dropout' bottom: 'fc7' top: 'fc7' }\n"
      "layer { name: 'fc8' type: 'InnerProduct' bottom: 'fc7' top: 'fc8' inner_product_param { "
      "num_output: 10 } }\n"
      "layer { name: 'prob' type: 'Softmax' bottom: 'fc8' top: 'prob' }\n",
      size, size);
  write_text(path, text);
}

typedef struct tmp_fixture {
  char *dir;
} tmp_fixture;

static int setup_tmp(void **state) {
  tmp_fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  if (!f->dir) return -1;
  *state = f;
  return 0;
}

static int teardown_tmp(void **state) {
  tmp_fixture *f = *state;
  tu_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static const char *tmp_path(void **state, char *buf, size_t size, const char *name) {
  tmp_fixture *f = *state;
  return tu_path(buf, size, f->dir, name);
}

/* ---- params by name ----------------------------------------------------- */

static void test_param_access(void **state) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "nopad.prototxt");
  write_text(proto, no_pad_net);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 3);

  ns_tensor t;
  assert_int_equal(ns_net_param_by_name(ctx, net, "conv1", 0, &t), NS_OK);
  assert_int_equal(t.num_axes, 4);
  assert_int_equal(t.shape[0], 6);
  assert_int_equal(t.shape[1], 3);
  assert_int_equal(t.count, 6 * 3 * 5 * 5);
  assert_int_equal(ns_net_param_by_name(ctx, net, "fc1", 0, &t), NS_OK);
  assert_int_equal(t.num_axes, 2);
  assert_int_equal(t.shape[0], 12);
  assert_int_equal(t.shape[1], 8 * 6 * 6);

  assert_int_equal(ns_net_param_by_name(ctx, net, "nope", 0, &t), NS_ERR_USAGE);
  assert_true(contains(ns_ctx_error(ctx), "nope"));
  assert_int_equal(ns_net_param_by_name(ctx, net, "conv1", 2, &t), NS_ERR_USAGE);
  assert_true(contains(ns_ctx_error(ctx), "(6, 3, 5, 5)"));
  assert_true(contains(ns_ctx_error(ctx), "(6,)"));
  assert_int_equal(ns_net_param_by_name(ctx, net, "relu1", 0, &t), NS_ERR_USAGE);

  /* get/set round trip, flat in C order */
  float bias[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
  assert_int_equal(ns_net_param_set(ctx, net, "conv1", 1, bias, 6), NS_OK);
  assert_int_equal(ns_net_param_get(ctx, net, "conv1", 1, back, 6), NS_OK);
  assert_memory_equal(bias, back, sizeof bias);
  assert_int_equal(ns_net_param_set(ctx, net, "conv1", 1, bias, 5), NS_ERR_USAGE);
  assert_true(contains(ns_ctx_error(ctx), "(6,)"));

  /* offsets: fc1[0][2,3] is 2 * 288 + 3; flat index; errors */
  assert_int_equal(ns_net_param_by_name(ctx, net, "fc1", 0, &t), NS_OK);
  int64_t idx2[2] = {2, 3}, off = -1;
  assert_int_equal(ns_tensor_offset(ctx, &t, 2, idx2, &off), NS_OK);
  assert_int_equal(off, 2 * 288 + 3);
  int64_t flat = 1000;
  assert_int_equal(ns_tensor_offset(ctx, &t, 1, &flat, &off), NS_OK);
  assert_int_equal(off, 1000);
  int64_t bad[2] = {12, 0};
  assert_int_equal(ns_tensor_offset(ctx, &t, 2, bad, &off), NS_ERR_USAGE);
  assert_true(contains(ns_ctx_error(ctx), "(12, 288)"));
  flat = 12 * 288;
  assert_int_equal(ns_tensor_offset(ctx, &t, 1, &flat, &off), NS_ERR_USAGE);
  int64_t three[3] = {0, 0, 0};
  assert_int_equal(ns_tensor_offset(ctx, &t, 3, three, &off), NS_ERR_USAGE);
  int64_t neg[2] = {0, -1};
  assert_int_equal(ns_tensor_offset(ctx, &t, 2, neg, &off), NS_ERR_USAGE);

  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- transplant ----------------------------------------------------------- */

static const char *transplant_dst =
    "name: 'dst'\n"
    "layer { name: 'data' type: 'Input' top: 'd1' top: 'd2' top: 'd3' top: 'd4' input_param { "
    "shape { dim: 1 dim: 8 dim: 6 dim: 6 } } }\n"
    "layer { name: 'fc1-conv' type: 'Convolution' bottom: 'd1' top: 'a' convolution_param { "
    "num_output: 12 kernel_size: 6 } }\n"
    "layer { name: 'wrong' type: 'Convolution' bottom: 'd2' top: 'b' convolution_param { "
    "num_output: 12 kernel_size: 5 } }\n"
    "layer { name: 'nobias' type: 'Convolution' bottom: 'd3' top: 'c' convolution_param { "
    "num_output: 12 kernel_size: 6 bias_term: false } }\n"
    "layer { name: 'conv1' type: 'Convolution' bottom: 'd4' top: 'd' convolution_param { "
    "num_output: 6 kernel_size: 1 } }\n";

static void test_copy_params(void **state) {
  char proto[1024], dst_proto[1024];
  tmp_path(state, proto, sizeof proto, "nopad.prototxt");
  tmp_path(state, dst_proto, sizeof dst_proto, "dst.prototxt");
  write_text(proto, no_pad_net);
  write_text(dst_proto, transplant_dst);
  ns_ctx *ctx = new_ctx();
  ns_net *src = load_or_fail(ctx, proto, NULL, 5);
  ns_net *dst = load_or_fail(ctx, dst_proto, NULL, 6);

  /* (12, 288) weights into (12, 8, 6, 6) filters: the same memory */
  assert_int_equal(ns_net_copy_params(ctx, dst, "fc1-conv", src, "fc1"), NS_OK);
  ns_tensor a, b;
  for (int j = 0; j < 2; j++) {
    assert_int_equal(ns_net_param_by_name(ctx, src, "fc1", j, &a), NS_OK);
    assert_int_equal(ns_net_param_by_name(ctx, dst, "fc1-conv", j, &b), NS_OK);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.data, b.data, (size_t)a.count * sizeof(float));
  }

  /* counts differ: the error names both shapes */
  assert_int_equal(ns_net_copy_params(ctx, dst, "wrong", src, "fc1"), NS_ERR_NET);
  assert_true(contains(ns_ctx_error(ctx), "(12, 288)"));
  assert_true(contains(ns_ctx_error(ctx), "(12, 8, 5, 5)"));
  assert_true(contains(ns_ctx_error(ctx), "fc1"));
  assert_true(contains(ns_ctx_error(ctx), "wrong"));
  /* the failed copy wrote nothing */
  assert_int_equal(ns_net_param_by_name(ctx, dst, "wrong", 1, &b), NS_OK);
  assert_int_equal(ns_net_param_by_name(ctx, src, "fc1", 1, &a), NS_OK);
  assert_true(memcmp(a.data, b.data, 12 * sizeof(float)) != 0);

  /* param counts differ (no bias on one side) */
  assert_int_equal(ns_net_copy_params(ctx, dst, "nobias", src, "fc1"), NS_ERR_NET);
  assert_true(contains(ns_ctx_error(ctx), "param counts differ"));
  /* unknown layers */
  assert_int_equal(ns_net_copy_params(ctx, dst, "nope", src, "fc1"), NS_ERR_USAGE);
  assert_int_equal(ns_net_copy_params(ctx, dst, "fc1-conv", src, "nope"), NS_ERR_USAGE);

  /* by name: only conv1 is in both nets; (6, 3, 5, 5) vs (6, 8, 1, 1) differ */
  int n = -1;
  assert_int_equal(ns_net_copy_params_by_name(ctx, dst, src, &n), NS_ERR_NET);
  assert_true(contains(ns_ctx_error(ctx), "(6, 3, 5, 5)"));

  /* within one net */
  assert_int_equal(ns_net_copy_params(ctx, src, "fc1", src, "fc1"), NS_OK);
  ns_net_destroy(src);
  ns_net_destroy(dst);
  ns_ctx_destroy(ctx);
}

static void test_copy_by_name(void **state) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "nopad.prototxt");
  write_text(proto, no_pad_net);
  ns_ctx *ctx = new_ctx();
  ns_net *a = load_or_fail(ctx, proto, NULL, 1), *b = load_or_fail(ctx, proto, NULL, 2);
  ns_tensor ta, tb;
  assert_int_equal(ns_net_param_by_name(ctx, a, "fc2", 0, &ta), NS_OK);
  assert_int_equal(ns_net_param_by_name(ctx, b, "fc2", 0, &tb), NS_OK);
  assert_true(memcmp(ta.data, tb.data, (size_t)ta.count * sizeof(float)) != 0);
  int n = 0;
  assert_int_equal(ns_net_copy_params_by_name(ctx, b, a, &n), NS_OK);
  assert_int_equal(n, 4);
  for (int l = 0; l < ns_net_layer_count(a); l++)
    for (int j = 0; j < ns_net_param_count(a, l); j++) {
      ta = ns_net_param(a, l, j);
      tb = ns_net_param(b, l, j);
      assert_memory_equal(ta.data, tb.data, (size_t)ta.count * sizeof(float));
    }
  ns_net_destroy(a);
  ns_net_destroy(b);
  ns_ctx_destroy(ctx);
}

/* ---- the FCN cast against Caffe's figures --------------------------------- */

/* Casts mini_caffenet (39x39 classifier) to 71x71 and compares every blob
 * with what Caffe computed on the hand-made cast (mini_caffenet_fcn). */
static void cast_and_compare(const char *case_name) {
  char proto[1024], weights[1024], dir[1024], path[1024];
  conf_file(proto, sizeof proto, case_name, "net.prototxt");
  conf_file(weights, sizeof weights, case_name, "weights.caffemodel");
  conf_dir(dir, sizeof dir, "mini_caffenet_fcn");
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, weights, 0);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = o.width = 71;
  o.batch = 1;
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));

  /* the same layers, blobs and shapes as the hand-made cast */
  ns_net *ref = load_or_fail(ctx, tu_path(path, sizeof path, dir, "net.prototxt"),
                             tu_path(weights, sizeof weights, dir, "weights.caffemodel"), 0);
  assert_int_equal(ns_net_layer_count(fcn), ns_net_layer_count(ref));
  for (int l = 0; l < ns_net_layer_count(ref); l++) {
    /* a legacy net's upgraded input layer is called "input", as in Caffe */
    if (strcmp(ns_net_layer_type(ref, l), "Input") != 0)
      assert_string_equal(ns_net_layer_name(fcn, l), ns_net_layer_name(ref, l));
    assert_string_equal(ns_net_layer_type(fcn, l), ns_net_layer_type(ref, l));
    assert_int_equal(ns_net_layer_bottom_count(fcn, l), ns_net_layer_bottom_count(ref, l));
    for (int j = 0; j < ns_net_layer_bottom_count(ref, l); j++)
      assert_string_equal(ns_net_layer_bottom(fcn, l, j), ns_net_layer_bottom(ref, l, j));
    for (int j = 0; j < ns_net_layer_top_count(ref, l); j++)
      assert_string_equal(ns_net_layer_top(fcn, l, j), ns_net_layer_top(ref, l, j));
    assert_int_equal(ns_net_param_count(fcn, l), ns_net_param_count(ref, l));
    for (int j = 0; j < ns_net_param_count(ref, l); j++) {
      ns_tensor a = ns_net_param(fcn, l, j), b = ns_net_param(ref, l, j);
      assert_int_equal(a.num_axes, b.num_axes);
      for (int k = 0; k < a.num_axes; k++) assert_int_equal(a.shape[k], b.shape[k]);
      /* the reference's weights are the same values, transplanted */
      assert_memory_equal(a.data, b.data, (size_t)a.count * sizeof(float));
    }
  }

  feed_npy(ctx, fcn, "data", tu_path(path, sizeof path, dir, "in_data.npy"));
  if (ns_net_forward(ctx, fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  for (int b = 0; b < ns_net_blob_count(fcn); b++) {
    char file[512];
    snprintf(file, sizeof file, "blob_%s.npy", ns_net_blob(fcn, b).name);
    expect_blob_close(ctx, fcn, ns_net_blob(fcn, b).name, tu_path(path, sizeof path, dir, file));
  }
  ns_net_destroy(ref);
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

static void test_fcn_vs_caffe(void **state) {
  (void)state;
  cast_and_compare("mini_caffenet");
}

static void test_fcn_vs_caffe_legacy_v1(void **state) {
  (void)state;
  cast_and_compare("mini_caffenet_v1");
}

/* The saved prototxt and caffemodel load back into the same net. */
static void test_fcn_save_reload(void **state) {
  char proto[1024], weights[1024], out_proto[1024], out_model[1024];
  conf_file(proto, sizeof proto, "mini_caffenet", "net.prototxt");
  conf_file(weights, sizeof weights, "mini_caffenet", "weights.caffemodel");
  tmp_path(state, out_proto, sizeof out_proto, "fcn.prototxt");
  tmp_path(state, out_model, sizeof out_model, "fcn.caffemodel");
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, weights, 0);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = 55;
  o.width = 71;
  o.suffix = "_c";
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(ns_net_save_prototxt(ctx, fcn, out_proto), NS_OK);
  assert_int_equal(ns_net_save_weights(ctx, fcn, out_model), NS_OK);
  ns_net *back = load_or_fail(ctx, out_proto, out_model, 99);
  assert_true(ns_net_find_layer(back, "fc6_c") >= 0);
  assert_true(ns_net_find_layer(back, "fc7_c") >= 0);
  assert_true(ns_net_find_blob(back, "fc6_c") >= 0);
  assert_int_equal(ns_net_find_blob(back, "fc6"), -1);
  ns_tensor in = ns_net_blob(back, ns_net_find_blob(back, "data"));
  assert_int_equal(in.shape[0], 2); /* batch kept */
  assert_int_equal(in.shape[2], 55);
  assert_int_equal(in.shape[3], 71);
  ns_tensor prob = ns_net_blob(back, ns_net_find_blob(back, "prob"));
  assert_int_equal(prob.num_axes, 4);
  assert_int_equal(prob.shape[2], 3); /* (55 - 39) / 8 + 1 */
  assert_int_equal(prob.shape[3], 5); /* (71 - 39) / 8 + 1 */
  for (int l = 0; l < ns_net_layer_count(fcn); l++)
    for (int j = 0; j < ns_net_param_count(fcn, l); j++) {
      ns_tensor a = ns_net_param(fcn, l, j), b = ns_net_param(back, l, j);
      assert_memory_equal(a.data, b.data, (size_t)a.count * sizeof(float));
    }
  ns_net_destroy(back);
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* Without sizes the cast keeps the classifier's current input shape, even
 * after a reshape. */
static void test_fcn_keeps_current_shape(void **state) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "nopad.prototxt");
  write_text(proto, no_pad_net);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 1);
  int64_t shape[4] = {3, 3, 20, 20};
  assert_int_equal(ns_net_reshape_input(ctx, net, "data", 4, shape), NS_OK);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor in = ns_net_blob(fcn, ns_net_find_blob(fcn, "data"));
  assert_int_equal(in.shape[0], 3);
  assert_int_equal(in.shape[2], 20);
  ns_tensor p = ns_net_blob(fcn, ns_net_find_blob(fcn, "prob"));
  assert_int_equal(p.num_axes, 4);
  assert_int_equal(p.shape[2], 1); /* the classifier's own size: a 1x1 map */
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- the identity: map cell (i, j) = the classifier on the window at
 * (stride*i, stride*j), in a net without padding ---------------------- */

static void test_fcn_equals_classifier_on_crops(void **state) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "nopad.prototxt");
  write_text(proto, no_pad_net);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 11);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = 26; /* 20 + 3*2: a 4x4 map */
  o.width = 28;  /* 20 + 4*2: 5 columns */
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));

  ns_tensor big = ns_net_blob(fcn, ns_net_find_blob(fcn, "data"));
  fill_random(big.data, big.count, 42);
  if (ns_net_forward(ctx, fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor map = ns_net_blob(fcn, ns_net_find_blob(fcn, "prob"));
  assert_int_equal(map.num_axes, 4);
  assert_int_equal(map.shape[1], 5);
  assert_int_equal(map.shape[2], 4);
  assert_int_equal(map.shape[3], 5);

  ns_fcn_map m;
  assert_int_equal(ns_fcn_map_describe(ctx, fcn, "prob", 20, 20, &m), NS_OK);
  assert_int_equal(m.stride[0], 2);
  assert_int_equal(m.stride[1], 2);
  assert_int_equal(m.field[0], 20); /* no padding: the field is the window */
  assert_int_equal(m.offset[0], 0);
  assert_int_equal(m.excess[0], 0);
  assert_int_equal(m.excess[1], 0);
  assert_int_equal(m.padded, 0);

  ns_tensor crop = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 5; j++) {
      for (int c = 0; c < 3; c++)
        for (int y = 0; y < 20; y++)
          for (int x = 0; x < 20; x++)
            crop.data[(c * 20 + y) * 20 + x] = big.data[(c * 26 + 2 * i + y) * 28 + 2 * j + x];
      if (ns_net_forward(ctx, net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
      ns_tensor p = ns_net_blob(net, ns_net_find_blob(net, "prob"));
      float cell[5];
      for (int k = 0; k < 5; k++) cell[k] = map.data[(k * 4 + i) * 5 + j];
      double max_abs;
      if (tu_excess(cell, p.data, 5, ABS_TOL, REL_TOL, &max_abs) > 0)
        fail_msg("cell (%d, %d): max |diff| %g from the classifier on its crop", i, j, max_abs);
    }
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- cast errors ---------------------------------------------------------- */

static void expect_cast_error(void **state, const char *text, int h, const char *suffix,
                              ns_status want, const char *needle) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "cast.prototxt");
  write_text(proto, text);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 1);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = o.width = h;
  if (suffix) o.suffix = suffix;
  ns_net *fcn = (ns_net *)1;
  assert_int_equal(ns_fcn_cast(ctx, net, &o, &fcn), want);
  assert_null(fcn);
  if (!contains(ns_ctx_error(ctx), needle))
    fail_msg("error '%s' lacks '%s'", ns_ctx_error(ctx), needle);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

static void test_fcn_errors(void **state) {
  /* smaller than the classifier's window */
  expect_cast_error(state, no_pad_net, 19, NULL, NS_ERR_USAGE, "window");
  /* the new name is taken */
  char text[8192];
  snprintf(text, sizeof text, "%s%s", no_pad_net,
           "layer { name: 'fc1-conv' type: 'ReLU' bottom: 'prob' top: 'x' }\n");
  expect_cast_error(state, text, 26, NULL, NS_ERR_NET, "fc1-conv");
  /* a Flatten before the InnerProduct cannot be cast flat */
  const char *flat =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 2 dim: 4 "
      "dim: 4 } } }\n"
      "layer { name: 'flat' type: 'Flatten' bottom: 'data' top: 'flat' }\n"
      "layer { name: 'fc' type: 'InnerProduct' bottom: 'flat' top: 'fc' inner_product_param { "
      "num_output: 3 } }\n";
  expect_cast_error(state, flat, 8, NULL, NS_ERR_UNSUPPORTED, "Flatten");
  /* nothing to cast */
  const char *convs =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 2 dim: 4 "
      "dim: 4 } } }\n"
      "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { "
      "num_output: 3 kernel_size: 3 } }\n";
  expect_cast_error(state, convs, 8, NULL, NS_ERR_USAGE, "no InnerProduct");
  /* transpose: (in, out) weights are not the filters */
  const char *transposed =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 2 dim: 4 "
      "dim: 4 } } }\n"
      "layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { "
      "num_output: 3 transpose: true } }\n";
  expect_cast_error(state, transposed, 8, NULL, NS_ERR_UNSUPPORTED, "transpose");
}

/* A top that is not the layer's name stays; readers are rewired only up
 * to a layer that makes a new blob of the old name. */
static void test_fcn_rewiring(void **state) {
  const char *text =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 2 dim: 4 "
      "dim: 4 } } }\n"
      "layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { "
      "num_output: 3 } }\n"
      "layer { name: 'r' type: 'ReLU' bottom: 'fc' top: 'fc' }\n"
      "layer { name: 's' type: 'Sigmoid' bottom: 'fc' top: 'sig' }\n"
      "layer { name: 'g' type: 'InnerProduct' bottom: 'sig' top: 'g_out' inner_product_param { "
      "num_output: 2 } }\n"
      "layer { name: 'p' type: 'Softmax' bottom: 'g_out' top: 'p' }\n";
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "rewire.prototxt");
  write_text(proto, text);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 1);
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = 6;
  o.width = 5;
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  int r = ns_net_find_layer(fcn, "r"), s = ns_net_find_layer(fcn, "s");
  assert_string_equal(ns_net_layer_bottom(fcn, r, 0), "fc-conv");
  assert_string_equal(ns_net_layer_top(fcn, r, 0), "fc-conv");
  assert_string_equal(ns_net_layer_bottom(fcn, s, 0), "fc-conv");
  int g = ns_net_find_layer(fcn, "g-conv");
  assert_true(g >= 0);
  assert_string_equal(ns_net_layer_type(fcn, g), "Convolution");
  assert_string_equal(ns_net_layer_top(fcn, g, 0), "g_out"); /* not the layer's name: kept */
  ns_tensor p = ns_net_blob(fcn, ns_net_find_blob(fcn, "p"));
  assert_int_equal(p.shape[2], 3);
  assert_int_equal(p.shape[3], 2);
  ns_tensor w = ns_net_param(fcn, g, 0);
  assert_int_equal(w.num_axes, 4);
  assert_int_equal(w.shape[2], 1); /* 2-D bottom after a cast layer: 1x1 */
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- receptive fields of CaffeNet's architecture -------------------------- */

typedef struct rf_want {
  const char *blob;
  int64_t size, stride, offset;
} rf_want;

/* By hand from the architecture: size' = size + (k - 1) * stride,
 * offset' = offset - pad * stride, stride' = stride * s. */
static const rf_want caffenet_rf[] = {
    {"data", 1, 1, 0},       {"conv1", 11, 4, 0},     {"pool1", 19, 8, 0},
    {"norm1", 19, 8, 0},     {"conv2", 51, 8, -16},   {"pool2", 67, 16, -16},
    {"norm2", 67, 16, -16},  {"conv3", 99, 16, -32},  {"conv4", 131, 16, -48},
    {"conv5", 163, 16, -64}, {"pool5", 195, 32, -64}, {"fc6", 355, 32, -64},
    {"fc7", 355, 32, -64},   {"fc8", 355, 32, -64},   {"prob", 355, 32, -64},
};

static void check_fields(ns_ctx *ctx, ns_net *net, const char *suffix) {
  ns_receptive_field rf[64];
  assert_true(ns_net_blob_count(net) <= 64);
  assert_int_equal(ns_net_receptive_fields(ctx, net, rf), NS_OK);
  for (size_t i = 0; i < sizeof caffenet_rf / sizeof caffenet_rf[0]; i++) {
    const rf_want *w = &caffenet_rf[i];
    char name[64];
    snprintf(name, sizeof name, "%s%s", w->blob, !strncmp(w->blob, "fc", 2) ? suffix : "");
    int b = ns_net_find_blob(net, name);
    if (b < 0) fail_msg("no blob %s", name);
    if (!rf[b].known || rf[b].size[0] != w->size || rf[b].size[1] != w->size ||
        rf[b].stride[0] != w->stride || rf[b].stride[1] != w->stride ||
        rf[b].offset[0] != w->offset || rf[b].offset[1] != w->offset)
      fail_msg("%s: field %lld stride %lld offset %lld, want %lld %lld %lld", name,
               (long long)rf[b].size[0], (long long)rf[b].stride[0], (long long)rf[b].offset[0],
               (long long)w->size, (long long)w->stride, (long long)w->offset);
    assert_int_equal(rf[b].input, ns_net_find_blob(net, "data"));
  }
}

static void test_receptive_fields_caffenet(void **state) {
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "caffenet.prototxt");
  write_small_caffenet(proto, 227);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 1);
  check_fields(ctx, net, "");

  /* cast at 451: an 8x8 map of 227x227 windows at stride 32, exactly */
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.height = o.width = 451;
  ns_net *fcn = NULL;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  check_fields(ctx, fcn, "-conv");
  ns_tensor w = ns_net_param(fcn, ns_net_find_layer(fcn, "fc6-conv"), 0);
  assert_int_equal(w.shape[1], 8);
  assert_int_equal(w.shape[2], 6);
  assert_int_equal(w.shape[3], 6);
  ns_fcn_map m;
  assert_int_equal(ns_fcn_map_describe(ctx, fcn, "prob", 227, 227, &m), NS_OK);
  assert_int_equal(m.map[0], 8);
  assert_int_equal(m.map[1], 8);
  assert_int_equal(m.window[0], 227);
  assert_int_equal(m.stride[0], 32);
  assert_int_equal(m.excess[0], 0);
  assert_int_equal(m.padded, 1);
  char text[1024];
  ns_fcn_map_explain(&m, text, sizeof text);
  if (!contains(text, "451 = 227 + 7*32") || !contains(text, "8x8 map") ||
      !contains(text, "tile the input exactly"))
    fail_msg("%s", text);
  int64_t lo, hi;
  ns_fcn_exact_sizes(451, 227, 32, &lo, &hi);
  assert_int_equal(lo, 451);
  assert_int_equal(hi, 451);
  ns_net_destroy(fcn);

  /* 450: pooling rounds up, the map is still 8x8 and its last windows run
   * 1 px past the edge */
  o.height = o.width = 450;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(ns_fcn_map_describe(ctx, fcn, "prob", 227, 227, &m), NS_OK);
  assert_int_equal(m.map[0], 8);
  assert_int_equal(m.excess[0], 1);
  ns_fcn_map_explain(&m, text, sizeof text);
  if (!contains(text, "450 = 227 + 6*32 + 31") || !contains(text, "1 px past"))
    fail_msg("%s", text);
  ns_fcn_exact_sizes(450, 227, 32, &lo, &hi);
  assert_int_equal(lo, 419);
  assert_int_equal(hi, 451);
  ns_net_destroy(fcn);

  /* rectangular: 259 rows (2 cells), 451 columns (8 cells) */
  o.height = 259;
  o.width = 451;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(ns_fcn_map_describe(ctx, fcn, "prob", 227, 227, &m), NS_OK);
  assert_int_equal(m.map[0], 2);
  assert_int_equal(m.map[1], 8);
  ns_fcn_map_explain(&m, text, sizeof text);
  if (!contains(text, "259 = 227 + 1*32") || !contains(text, "2x8 map")) fail_msg("%s", text);
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* A net whose last rows no window reaches: convolution with stride 3. */
static void test_explain_unseen_pixels(void **state) {
  (void)state;
  ns_fcn_map m;
  memset(&m, 0, sizeof m);
  m.input[0] = m.input[1] = 30;
  m.window[0] = m.window[1] = 10;
  m.stride[0] = m.stride[1] = 3;
  m.map[0] = m.map[1] = 7; /* (30 - 10) / 3 + 1, floor */
  m.excess[0] = m.excess[1] = 6 * 3 + 10 - 30;
  char text[1024];
  ns_fcn_map_explain(&m, text, sizeof text);
  if (!contains(text, "30 = 10 + 6*3 + 2") || !contains(text, "last 2 px") ||
      !contains(text, "no window"))
    fail_msg("%s", text);
}

/* Dilation and within-channel LRN widen the field; Deconvolution makes
 * it unknown. */
static void test_receptive_fields_dilation(void **state) {
  const char *text =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 1 dim: 20 "
      "dim: 20 } } }\n"
      "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { "
      "num_output: 1 kernel_size: 3 dilation: 2 pad: 1 stride: 2 } }\n"
      "layer { name: 'n' type: 'LRN' bottom: 'c' top: 'n' lrn_param { norm_region: "
      "WITHIN_CHANNEL local_size: 3 } }\n"
      "layer { name: 'r' type: 'Convolution' bottom: 'n' top: 'r' convolution_param { "
      "num_output: 1 kernel_h: 3 kernel_w: 1 } }\n"
      "layer { name: 'd' type: 'Deconvolution' bottom: 'r' top: 'd' convolution_param { "
      "num_output: 1 kernel_size: 2 stride: 2 } }\n";
  char proto[1024];
  tmp_path(state, proto, sizeof proto, "dil.prototxt");
  write_text(proto, text);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 1);
  ns_receptive_field rf[8];
  assert_int_equal(ns_net_receptive_fields(ctx, net, rf), NS_OK);
  int c = ns_net_find_blob(net, "c"), n = ns_net_find_blob(net, "n");
  int r = ns_net_find_blob(net, "r"), d = ns_net_find_blob(net, "d");
  /* c: effective kernel 2*(3-1)+1 = 5, stride 2, offset -1 */
  assert_int_equal(rf[c].size[0], 5);
  assert_int_equal(rf[c].stride[0], 2);
  assert_int_equal(rf[c].offset[0], -1);
  /* n: window 3, pad 1, at stride 2: 5 + 2*2 = 9, offset -1 - 2 = -3 */
  assert_int_equal(rf[n].size[0], 9);
  assert_int_equal(rf[n].offset[0], -3);
  /* r: 3x1 kernel: rows 9 + 2*2 = 13, columns 9 */
  assert_int_equal(rf[r].size[0], 13);
  assert_int_equal(rf[r].size[1], 9);
  assert_int_equal(rf[d].known, 0);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- edits and atomic saves ------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static void test_edit_save_reload(void **state) {
  char proto[1024], weights[1024], out[1024];
  conf_file(proto, sizeof proto, "mini_caffenet", "net.prototxt");
  conf_file(weights, sizeof weights, "mini_caffenet", "weights.caffemodel");
  tmp_path(state, out, sizeof out, "edited.caffemodel");
  size_t before_len, after_len;
  unsigned char *before = read_all(weights, &before_len);
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, weights, 0);
  ns_tensor t;
  int64_t idx[2] = {2, 3}, off;
  assert_int_equal(ns_net_param_by_name(ctx, net, "fc7", 0, &t), NS_OK);
  assert_int_equal(ns_tensor_offset(ctx, &t, 2, idx, &off), NS_OK);
  t.data[off] = 123.5f;
  assert_int_equal(ns_net_param_by_name(ctx, net, "conv1", 1, &t), NS_OK);
  t.data[0] = -7.25f;
  assert_int_equal(ns_net_save_weights(ctx, net, out), NS_OK);

  ns_net *orig = load_or_fail(ctx, proto, weights, 0);
  ns_net *back = load_or_fail(ctx, proto, out, 0);
  int changed = 0;
  for (int l = 0; l < ns_net_layer_count(orig); l++)
    for (int j = 0; j < ns_net_param_count(orig, l); j++) {
      ns_tensor a = ns_net_param(orig, l, j), b = ns_net_param(back, l, j);
      for (int64_t i = 0; i < a.count; i++)
        if (a.data[i] != b.data[i]) {
          changed++;
          const char *name = ns_net_layer_name(orig, l);
          if (!strcmp(name, "fc7")) {
            assert_int_equal(j, 0);
            assert_int_equal(i, 2 * 32 + 3);
            assert_true(b.data[i] == 123.5f);
          } else {
            assert_string_equal(name, "conv1");
            assert_int_equal(j, 1);
            assert_int_equal(i, 0);
            assert_true(b.data[i] == -7.25f);
          }
        }
    }
  assert_int_equal(changed, 2);
  unsigned char *after = read_all(weights, &after_len); /* the source is untouched */
  assert_int_equal(before_len, after_len);
  assert_memory_equal(before, after, before_len);
  free(before);
  free(after);
  ns_net_destroy(orig);
  ns_net_destroy(back);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

static void test_atomic_save(void **state) {
  tmp_fixture *f = *state;
  char proto[1024], weights[1024], out[1024], dir[1024], sub[1024], missing[1024];
  conf_file(proto, sizeof proto, "mini_caffenet", "net.prototxt");
  conf_file(weights, sizeof weights, "mini_caffenet", "weights.caffemodel");
  tmp_path(state, sub, sizeof sub, "keep");
  assert_int_equal(mkdir(sub, 0755), 0);
  tu_path(out, sizeof out, sub, "w.caffemodel");
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, weights, 0);
  assert_int_equal(ns_net_save_weights(ctx, net, out), NS_OK);
  size_t old_len, now_len;
  unsigned char *old = read_all(out, &old_len);
  assert_true(old_len > 4096);
  ns_tensor t = ns_net_param(net, ns_net_find_layer(net, "fc6"), 0);
  t.data[0] += 1.0f; /* the new save would differ */

  /* a write that fails half way (file size limit): the old file is whole */
  struct rlimit saved, small = {4096, 0};
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small.rlim_max = saved.rlim_max;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  ns_status st = ns_net_save_weights(ctx, net, out);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
  assert_int_not_equal(st, NS_OK);
  assert_true(strlen(ns_ctx_error(ctx)) > 0);
  unsigned char *now = read_all(out, &now_len);
  assert_int_equal(now_len, old_len);
  assert_memory_equal(now, old, old_len);
  free(now);
  assert_int_equal(count_entries(sub), 1); /* no temp file left behind */

  /* a folder where the file should go: refused, the folder intact */
  tmp_path(state, dir, sizeof dir, "adir");
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_not_equal(ns_net_save_weights(ctx, net, dir), NS_OK);
  assert_int_not_equal(ns_net_save_prototxt(ctx, net, dir), NS_OK);
  struct stat sb;
  assert_int_equal(stat(dir, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_int_equal(count_entries(f->dir), 2); /* keep/, adir/ */

  /* a folder that does not exist */
  tmp_path(state, missing, sizeof missing, "nope/w.caffemodel");
  assert_int_equal(ns_net_save_weights(ctx, net, missing), NS_ERR_IO);
  assert_true(contains(ns_ctx_error(ctx), "nope"));

  /* a read-only folder (root writes anyway, so only as another user) */
  if (geteuid() != 0) {
    assert_int_equal(chmod(sub, 0555), 0);
    assert_int_not_equal(ns_net_save_weights(ctx, net, out), NS_OK);
    assert_int_equal(chmod(sub, 0755), 0);
    now = read_all(out, &now_len);
    assert_int_equal(now_len, old_len);
    assert_memory_equal(now, old, old_len);
    free(now);
  }

  /* and a save that succeeds replaces the file */
  assert_int_equal(ns_net_save_weights(ctx, net, out), NS_OK);
  now = read_all(out, &now_len);
  assert_true(now_len != old_len || memcmp(now, old, old_len) != 0);
  free(now);
  free(old);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

/* ---- designer filters (the notebook's first half) -------------------------- */

static double channel_mean(const ns_tensor *t, int c) {
  int64_t per = t->shape[2] * t->shape[3];
  double sum = 0;
  for (int64_t i = 0; i < per; i++) sum += t->data[c * per + i];
  return sum / (double)per;
}

/* The notebook's kernels: a normalised 5x5 Gaussian (sigma 1) and the
 * horizontal and vertical Sobel operators in the centre of zero 5x5s. */
static void designer_kernels(float *w) {
  double g[25], sum = 0;
  for (int y = -2; y <= 2; y++)
    for (int x = -2; x <= 2; x++) sum += g[(y + 2) * 5 + x + 2] = exp(-(x * x + y * y) / 2.0);
  for (int i = 0; i < 25; i++) w[i] = (float)(g[i] / sum);
  static const float sobel[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  memset(w + 25, 0, 50 * sizeof *w);
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++) {
      w[25 + (y + 1) * 5 + x + 1] = sobel[y * 3 + x];
      w[50 + (y + 1) * 5 + x + 1] = sobel[x * 3 + y]; /* transposed */
    }
}

static void test_designer_filters(void **state) {
  (void)state;
  char proto[1024], path[1024];
  conf_file(proto, sizeof proto, "designer_filters", "net.prototxt");
  ns_ctx *ctx = new_ctx();
  ns_net *net = load_or_fail(ctx, proto, NULL, 7);
  ns_ndarray in;
  assert_int_equal(
      ns_npy_load(ctx, conf_file(path, sizeof path, "designer_filters", "in_data.npy"), &in),
      NS_OK);
  feed(ctx, net, "data", &in);

  /* bias surgery: +1 on filter 0's bias raises its output's mean by 1 */
  ns_tensor bias;
  assert_int_equal(ns_net_param_by_name(ctx, net, "conv", 1, &bias), NS_OK);
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  ns_tensor out = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  double before[3], after[3];
  for (int c = 0; c < 3; c++) before[c] = channel_mean(&out, c);
  bias.data[0] += 1.0f;
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);
  out = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  for (int c = 0; c < 3; c++) after[c] = channel_mean(&out, c);
  assert_true(fabs(after[0] - before[0] - 1.0) < 1e-5);
  assert_true(fabs(after[1] - before[1]) < 1e-9);
  assert_true(fabs(after[2] - before[2]) < 1e-9);

  /* the designed kernels are the notebook's (its saved params) */
  float w[75];
  designer_kernels(w);
  ns_ndarray want_w, want_b;
  assert_int_equal(
      ns_npy_load(ctx, conf_file(path, sizeof path, "designer_filters", "conv_weights.npy"),
                  &want_w),
      NS_OK);
  assert_int_equal(
      ns_npy_load(ctx, conf_file(path, sizeof path, "designer_filters", "conv_bias.npy"), &want_b),
      NS_OK);
  assert_int_equal(want_w.count, 75);
  for (int i = 0; i < 75; i++) assert_true(fabsf(w[i] - want_w.data[i]) < 1e-7f);
  assert_int_equal(ns_net_param_set(ctx, net, "conv", 0, w, 75), NS_OK);
  float b[3] = {1, 0, 0};
  for (int i = 0; i < 3; i++) assert_true(b[i] == want_b.data[i]);
  assert_int_equal(ns_net_param_set(ctx, net, "conv", 1, b, 3), NS_OK);
  assert_int_equal(ns_net_forward(ctx, net), NS_OK);

  /* Caffe's output, and its channel means */
  expect_blob_close(ctx, net, "conv",
                    conf_file(path, sizeof path, "designer_filters", "blob_conv.npy"));
  out = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  static const double caffe_means[3] = {1.494440, 0.013326, 0.003287};
  for (int c = 0; c < 3; c++) assert_true(fabs(channel_mean(&out, c) - caffe_means[c]) < 2e-6);

  /* a direct convolution, in double */
  int H = (int)in.shape[2], W = (int)in.shape[3], OH = H - 4, OW = W - 4;
  assert_int_equal(out.shape[2], OH);
  assert_int_equal(out.shape[3], OW);
  double worst = 0;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < OH; y++)
      for (int x = 0; x < OW; x++) {
        double s = b[c];
        for (int ky = 0; ky < 5; ky++)
          for (int kx = 0; kx < 5; kx++)
            s += (double)w[c * 25 + ky * 5 + kx] * in.data[(y + ky) * W + x + kx];
        double d = fabs(s - out.data[((int64_t)c * OH + y) * OW + x]);
        if (d > worst) worst = d;
      }
  if (worst > 1e-5) fail_msg("direct convolution differs by %g", worst);
  ns_ndarray_free(ctx, &want_w);
  ns_ndarray_free(ctx, &want_b);
  ns_ndarray_free(ctx, &in);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_param_access, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_copy_params, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_copy_by_name, setup_tmp, teardown_tmp),
      cmocka_unit_test(test_fcn_vs_caffe),
      cmocka_unit_test(test_fcn_vs_caffe_legacy_v1),
      cmocka_unit_test_setup_teardown(test_fcn_save_reload, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_fcn_keeps_current_shape, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_fcn_equals_classifier_on_crops, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_fcn_errors, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_fcn_rewiring, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_receptive_fields_caffenet, setup_tmp, teardown_tmp),
      cmocka_unit_test(test_explain_unseen_pixels),
      cmocka_unit_test_setup_teardown(test_receptive_fields_dilation, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_edit_save_reload, setup_tmp, teardown_tmp),
      cmocka_unit_test_setup_teardown(test_atomic_save, setup_tmp, teardown_tmp),
      cmocka_unit_test(test_designer_filters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
