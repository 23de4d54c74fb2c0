/* Net construction and weight loading, against Caffe's rules:
 * InsertSplits naming, NetStateRule filtering, in-place layers, graph
 * errors, CopyTrainedLayersFrom (by name, legacy 4-D dims), fillers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/net.h"
#include "core/filler.h"
#include "kernels/reference.h"
#include "kernels/winograd.h"
#include "netsurg.h"
#include "support/testutil.h"

typedef struct fixture {
  char *dir;
  ns_ctx *ctx;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  f->ctx = ns_ctx_create();
  *state = f;
  return f->dir && f->ctx ? 0 : -1;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmtree(f->dir);
  free(f->dir);
  ns_ctx_destroy(f->ctx);
  free(f);
  return 0;
}

static const char *write_text(fixture *f, const char *name, const char *text) {
  static char path[1024];
  tu_path(path, sizeof path, f->dir, name);
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  return path;
}

static ns_net *load(fixture *f, const char *text) {
  ns_net *net = NULL;
  const char *p = write_text(f, "net.prototxt", text);
  if (ns_net_load(f->ctx, p, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  return net;
}

static ns_status load_status(fixture *f, const char *text) {
  ns_net *net = NULL;
  const char *p = write_text(f, "net.prototxt", text);
  ns_status st = ns_net_load(f->ctx, p, NULL, &net);
  ns_net_destroy(net);
  return st;
}

#define INPUT(n, c, h, w)                                                                    \
  "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: " #n " dim: " #c \
  " dim: " #h " dim: " #w " } } }\n"

/* Caffe names split blobs <blob>_<producer>_<top index>_split_<k>. */
static void test_split_naming(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, INPUT(1, 2, 5, 5)
                     "layer { name: 'a' type: 'ReLU' bottom: 'data' top: 'x' }\n"
                     "layer { name: 'b' type: 'ReLU' bottom: 'data' top: 'y' }\n");
  assert_true(ns_net_find_blob(net, "data_data_0_split_0") >= 0);
  assert_true(ns_net_find_blob(net, "data_data_0_split_1") >= 0);
  assert_int_equal(ns_net_layer_count(net), 4); /* Input, Split, a, b */
  assert_string_equal(ns_net_layer_type(net, 1), "Split");
  assert_string_equal(ns_net_layer_name(net, 1), "data_data_0_split");
  assert_string_equal(ns_net_layer_bottom(net, 2, 0), "data_data_0_split_0");
  ns_net_destroy(net);
}

/* An in-place layer shares its bottom blob: no new blob is made. */
static void test_in_place(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, INPUT(1, 1, 2, 2) "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'data' }\n");
  assert_int_equal(ns_net_blob_count(net), 1);
  ns_tensor t = ns_net_blob(net, 0);
  float in[4] = {-1, 2, -3, 4};
  memcpy(t.data, in, sizeof in);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_true(t.data[0] == 0 && t.data[1] == 2 && t.data[2] == 0 && t.data[3] == 4);
  ns_net_destroy(net);
}

/* phase: TRAIN layers are dropped in TEST; include/exclude and stages. */
static void test_state_rules(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, INPUT(1, 1, 2, 2)
                     "layer { name: 'train_only' type: 'ReLU' bottom: 'data' top: 't' include { phase: TRAIN } }\n"
                     "layer { name: 'test_only' type: 'ReLU' bottom: 'data' top: 'u' include { phase: TEST } }\n"
                     "layer { name: 'not_test' type: 'ReLU' bottom: 'data' top: 'v' exclude { phase: TEST } }\n"
                     "layer { name: 'staged' type: 'ReLU' bottom: 'data' top: 'w' include { stage: 'deploy' } }\n"
                     "layer { name: 'leveled' type: 'ReLU' bottom: 'data' top: 'z' include { min_level: 1 } }\n");
  assert_int_equal(ns_net_find_layer(net, "train_only"), -1);
  assert_true(ns_net_find_layer(net, "test_only") >= 0);
  assert_int_equal(ns_net_find_layer(net, "not_test"), -1);
  assert_int_equal(ns_net_find_layer(net, "staged"), -1);
  assert_int_equal(ns_net_find_layer(net, "leveled"), -1);
  ns_net_destroy(net);
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2)
                               "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'r' "
                               "include { phase: TEST } exclude { phase: TRAIN } }\n"),
                   NS_ERR_NET);
}

static void test_graph_errors(void **state) {
  fixture *f = *state;
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2) "layer { name: 'r' type: 'ReLU' bottom: 'nope' top: 'r' }\n"),
                   NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "'nope'"));
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2)
                               "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'a' }\n"
                               "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'b' }\n"),
                   NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "duplicate layer name 'r'"));
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2)
                               "layer { name: 'r1' type: 'ReLU' bottom: 'data' top: 'a' }\n"
                               "layer { name: 'r2' type: 'ReLU' bottom: 'data' top: 'a' }\n"),
                   NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "multiple sources"));
  /* a layer reading its own output (a cycle) has no earlier producer */
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2) "layer { name: 'c' type: 'ReLU' bottom: 'loop' top: 'loop' }\n"),
                   NS_ERR_NET);
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2) "layer { name: 'x' type: 'NoSuchLayer' bottom: 'data' top: 'x' }\n"),
                   NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "'NoSuchLayer'"));
  assert_int_equal(load_status(f, INPUT(1, 1, 2, 2) "layer { name: 'r' type: 'ReLU' top: 'x' }\n"), NS_ERR_NET);
}

/* Weights file written with the generated codec: V1-style 4-D dims
 * (1, 1, out, in) fill an InnerProduct's (out, in), as Caffe's legacy
 * ShapeEquals allows; (out, in, 1, 1) does not. */
static void write_ip_weights(const char *path, const char *layer, int64_t d0, int64_t d1, int64_t d2,
                             int64_t d3, int legacy, const float *w, size_t nw, const float *b,
                             size_t nb) {
  Caffe__NetParameter net = CAFFE__NET_PARAMETER__INIT;
  Caffe__LayerParameter lp = CAFFE__LAYER_PARAMETER__INIT;
  Caffe__BlobProto bw = CAFFE__BLOB_PROTO__INIT, bb = CAFFE__BLOB_PROTO__INIT;
  Caffe__BlobShape sw = CAFFE__BLOB_SHAPE__INIT, sb = CAFFE__BLOB_SHAPE__INIT;
  int64_t dims[4] = {d0, d1, d2, d3}, bdim[1] = {(int64_t)nb};
  if (legacy) {
    bw.has_num = bw.has_channels = bw.has_height = bw.has_width = 1;
    bw.num = (int32_t)d0, bw.channels = (int32_t)d1, bw.height = (int32_t)d2, bw.width = (int32_t)d3;
    bb.has_num = bb.has_channels = bb.has_height = bb.has_width = 1;
    bb.num = 1, bb.channels = 1, bb.height = 1, bb.width = (int32_t)nb;
  } else {
    sw.n_dim = 4;
    sw.dim = dims;
    bw.shape = &sw;
    sb.n_dim = 1;
    sb.dim = bdim;
    bb.shape = &sb;
  }
  bw.n_data = nw;
  bw.data = (float *)w;
  bb.n_data = nb;
  bb.data = (float *)b;
  Caffe__BlobProto *blobs[2] = {&bw, &bb};
  lp.name = (char *)layer;
  lp.type = "InnerProduct";
  lp.n_blobs = 2;
  lp.blobs = blobs;
  Caffe__LayerParameter *layers[1] = {&lp};
  net.n_layer = 1;
  net.layer = layers;
  size_t n = caffe__net_parameter__get_packed_size(&net);
  uint8_t *buf = malloc(n);
  caffe__net_parameter__pack(&net, buf);
  assert_int_equal(tu_write_file(path, buf, n), 0);
  free(buf);
}

static const char *ip_net = INPUT(1, 3, 1, 1)
    "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip' inner_product_param { num_output: 2 "
    "bias_filler { type: 'constant' value: 7 } } }\n"
    "layer { name: 'other' type: 'InnerProduct' bottom: 'data' top: 'o' inner_product_param { num_output: 1 "
    "weight_filler { type: 'constant' value: 0.5 } bias_filler { type: 'constant' value: -1 } } }\n";

static void test_weights_by_name_legacy_dims(void **state) {
  fixture *f = *state;
  const float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {10, 20};
  char wpath[1024];
  tu_path(wpath, sizeof wpath, f->dir, "w.caffemodel");
  write_ip_weights(wpath, "ip", 1, 1, 2, 3, 1, w, 6, b, 2);
  const char *p = write_text(f, "net.prototxt", ip_net);
  ns_net *net = NULL;
  if (ns_net_load(f->ctx, p, &(ns_net_opts){NS_PHASE_TEST, 1, wpath}, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(f->ctx));
  int ip = ns_net_find_layer(net, "ip"), other = ns_net_find_layer(net, "other");
  ns_tensor tw = ns_net_param(net, ip, 0), tb = ns_net_param(net, ip, 1);
  assert_int_equal(tw.num_axes, 2);
  assert_int_equal(tw.shape[0], 2);
  assert_int_equal(tw.shape[1], 3);
  assert_memory_equal(tw.data, w, sizeof w);
  assert_memory_equal(tb.data, b, sizeof b);
  /* the layer absent from the file keeps its fillers */
  assert_true(ns_net_param(net, other, 0).data[2] == 0.5f);
  assert_true(ns_net_param(net, other, 1).data[0] == -1.0f);
  /* forward: y = W x + b by hand for x = (1, 1, 1): (16, 35) */
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int i = 0; i < 3; i++) x.data[i] = 1;
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "ip"));
  assert_true(y.data[0] == 16 && y.data[1] == 35);
  ns_net_destroy(net);
}

static void test_weights_shape_mismatch(void **state) {
  fixture *f = *state;
  const float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {10, 20};
  char wpath[1024];
  tu_path(wpath, sizeof wpath, f->dir, "w.caffemodel");
  /* (2, 3, 1, 1) has the right count but not the legacy-compatible shape */
  write_ip_weights(wpath, "ip", 2, 3, 1, 1, 0, w, 6, b, 2);
  const char *p = write_text(f, "net.prototxt", ip_net);
  ns_net *net = NULL;
  assert_int_equal(ns_net_load(f->ctx, p, &(ns_net_opts){NS_PHASE_TEST, 1, wpath}, &net),
                   NS_ERR_NET);
  assert_null(net);
  const char *e = ns_ctx_error(f->ctx);
  assert_non_null(strstr(e, "'ip'"));
  assert_non_null(strstr(e, "(2, 3, 1, 1)"));
  assert_non_null(strstr(e, "(2, 3)"));
  /* a value count that does not match the shape is a corrupt file */
  write_ip_weights(wpath, "ip", 1, 1, 2, 3, 1, w, 5, b, 2);
  assert_int_equal(ns_net_load(f->ctx, p, &(ns_net_opts){NS_PHASE_TEST, 1, wpath}, &net),
                   NS_ERR_INPUT);
  /* a layer in the file the net lacks is ignored */
  write_ip_weights(wpath, "absent", 9, 9, 9, 9, 0, w, 6, b, 2);
  assert_int_equal(ns_net_load(f->ctx, p, &(ns_net_opts){NS_PHASE_TEST, 1, wpath}, &net), NS_OK);
  ns_net_destroy(net);
}

/* Save, then load into a fresh net: every param survives bit for bit. */
static void test_save_load_round_trip(void **state) {
  fixture *f = *state;
  const char *p = write_text(f, "net.prototxt", ip_net);
  char wpath[1024];
  tu_path(wpath, sizeof wpath, f->dir, "saved.caffemodel");
  ns_net *a = NULL, *b = NULL;
  assert_int_equal(ns_net_load(f->ctx, p, NULL, &a), NS_OK);
  assert_int_equal(ns_net_refill_weights(f->ctx, a, "gaussian", 5), NS_OK);
  assert_int_equal(ns_net_save_weights(f->ctx, a, wpath), NS_OK);
  assert_int_equal(ns_net_load(f->ctx, p, &(ns_net_opts){NS_PHASE_TEST, 2, wpath}, &b), NS_OK);
  for (int l = 0; l < ns_net_layer_count(a); l++)
    for (int j = 0; j < ns_net_param_count(a, l); j++) {
      ns_tensor x = ns_net_param(a, l, j), y = ns_net_param(b, l, j);
      assert_int_equal(x.count, y.count);
      assert_memory_equal(x.data, y.data, (size_t)x.count * sizeof(float));
    }
  ns_net_destroy(a);
  ns_net_destroy(b);
}

/* Fillers: values checked against their definitions. */
/* U(lo, hi): every value inside; mean (lo + hi) / 2 and variance
 * (hi - lo)^2 / 12 from the n samples within 4.5 standard errors (those
 * of the uniform: (hi - lo) / sqrt(12 n) for the mean, (hi - lo)^2 /
 * sqrt(180 n) for the variance); both ends reached within 1% of the range
 * (missed with probability 0.99^n).  A constant, or a narrower range,
 * fails. */
static void check_uniform(const ns_blob *b, double lo, double hi) {
  double n = (double)b->count, sum = 0, sum2 = 0, min = hi, max = lo, w = hi - lo;
  for (int64_t i = 0; i < b->count; i++) {
    double v = b->data[i];
    assert_true(v >= lo && v <= hi);
    sum += v;
    min = fmin(min, v);
    max = fmax(max, v);
  }
  double mean = sum / n;
  for (int64_t i = 0; i < b->count; i++) sum2 += (b->data[i] - mean) * (b->data[i] - mean);
  double var = sum2 / n;
  print_message("uniform(%g, %g): mean %.4g (want %.4g), variance %.4g (want %.4g), %.4g..%.4g\n",
                lo, hi, mean, (lo + hi) / 2, var, w * w / 12, min, max);
  assert_true(fabs(mean - (lo + hi) / 2) <= 4.5 * w / sqrt(12 * n));
  assert_true(fabs(var - w * w / 12) <= 4.5 * w * w / sqrt(180 * n));
  assert_true(min <= lo + 0.01 * w && max >= hi - 0.01 * w);
}

static void test_fillers(void **state) {
  fixture *f = *state;
  ns_ctx *ctx = f->ctx;
  ns_rng rng;
  ns_rng_seed(&rng, 42);
  ns_blob *b = ns_blob_create(ctx, "w");
  int64_t shape[4] = {10, 20, 3, 3};
  assert_int_equal(ns_blob_reshape(ctx, b, 4, shape), NS_OK);
  Caffe__FillerParameter fp = CAFFE__FILLER_PARAMETER__INIT;

  fp.type = "uniform", fp.min = -2, fp.max = 3;
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_OK);
  check_uniform(b, -2, 3);

  /* xavier: uniform in +-sqrt(3 / fan_in), fan_in = 20*3*3 = 180 */
  fp = (Caffe__FillerParameter)CAFFE__FILLER_PARAMETER__INIT;
  fp.type = "xavier";
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_OK);
  double lim = sqrt(3.0 / 180.0), sum2 = 0;
  for (int64_t i = 0; i < b->count; i++) {
    assert_true(fabs(b->data[i]) <= lim + 1e-7);
    sum2 += b->data[i] * b->data[i];
  }
  /* variance of U(-a, a) is a^2 / 3 = 1 / 180; 1800 samples: within 15% */
  assert_true(fabs(sum2 / (double)b->count * 180.0 - 1.0) < 0.15);

  /* msra: N(0, sqrt(2 / fan_in)) */
  fp.type = "msra";
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_OK);
  sum2 = 0;
  for (int64_t i = 0; i < b->count; i++) sum2 += b->data[i] * b->data[i];
  assert_true(fabs(sum2 / (double)b->count * 90.0 - 1.0) < 0.15);

  /* positive_unitball: each of the 10 rows sums to 1 */
  fp.type = "positive_unitball";
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_OK);
  for (int r = 0; r < 10; r++) {
    double s = 0;
    for (int i = 0; i < 180; i++) s += b->data[r * 180 + i];
    assert_true(fabs(s - 1.0) < 1e-5);
  }

  /* bilinear 4x4 kernel: f = 2, c = 3/4; weights (1 - |x/2 - 3/4|)(1 - |y/2 - 3/4|):
   * along one axis 0.25, 0.75, 0.75, 0.25 */
  int64_t k[4] = {1, 1, 4, 4};
  assert_int_equal(ns_blob_reshape(ctx, b, 4, k), NS_OK);
  fp.type = "bilinear";
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_OK);
  const float axis[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) assert_true(fabsf(b->data[y * 4 + x] - axis[y] * axis[x]) < 1e-6f);

  fp.type = "no_such_filler";
  assert_int_equal(ns_filler_fill(ctx, b, &fp, &rng), NS_ERR_UNSUPPORTED);
  ns_blob_destroy(ctx, b);
}

/* The same seed gives the same weights; refilling changes them (the
 * prototxt's fillers: Caffe's default constant 0 for 'ip', 0.5 for
 * 'other') and only them (the biases stay 7 and -1); another seed gives
 * others. */
static void test_seed_determinism(void **state) {
  fixture *f = *state;
  const char *p = write_text(f, "net.prototxt", ip_net);
  ns_net *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(ns_net_load(f->ctx, p, NULL, &a), NS_OK);
  assert_int_equal(ns_net_load(f->ctx, p, NULL, &b), NS_OK);
  assert_int_equal(ns_net_load(f->ctx, p, NULL, &c), NS_OK);
  /* by name: a Split is inserted before 'ip' (data has two readers) */
  int ia = ns_net_find_layer(a, "ip"), io = ns_net_find_layer(a, "other");
  assert_true(ia >= 0 && io >= 0);
  ns_tensor x = ns_net_param(a, ia, 0), xo = ns_net_param(a, io, 0);
  assert_int_equal(x.count, 6);
  assert_int_equal(xo.count, 3);
  for (int i = 0; i < 6; i++) assert_float_equal(x.data[i], 0, 0);
  for (int i = 0; i < 3; i++) assert_float_equal(xo.data[i], 0.5, 0);
  assert_int_equal(ns_net_refill_weights(f->ctx, a, "msra", 9), NS_OK);
  assert_int_equal(ns_net_refill_weights(f->ctx, b, "msra", 9), NS_OK);
  assert_int_equal(ns_net_refill_weights(f->ctx, c, "msra", 10), NS_OK);
  int ib = ns_net_find_layer(b, "ip"), ic = ns_net_find_layer(c, "ip");
  assert_true(ib >= 0 && ic >= 0);
  ns_tensor y = ns_net_param(b, ib, 0), z = ns_net_param(c, ic, 0);
  assert_memory_equal(x.data, y.data, (size_t)x.count * sizeof(float));
  /* msra draws from N(0, 2 / 3): a value equal to the old one has
   * probability 0 */
  for (int i = 0; i < 6; i++) assert_true(x.data[i] != 0);
  for (int i = 0; i < 3; i++) assert_true(xo.data[i] != 0.5f);
  for (int i = 0; i < 6; i++) assert_true(x.data[i] != z.data[i]);
  assert_float_equal(ns_net_param(a, ia, 1).data[0], 7, 0);
  assert_float_equal(ns_net_param(a, io, 1).data[0], -1, 0);
  ns_net_destroy(a);
  ns_net_destroy(b);
  ns_net_destroy(c);
}

/* A plain in-place ReLU after a Convolution or InnerProduct runs in their
 * epilogue; the tops must be what a separate ReLU gives: checked by hand
 * against the same net with out-of-place ReLUs (pre-activations kept),
 * including a leaky in-place ReLU, which is not fused. */
#define RELU_NET(c_top, ip_top)                                                                  \
  INPUT(2, 3, 7, 6)                                                                              \
  "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { "         \
  "num_output: 5 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 1 } "             \
  "bias_filler { type: 'gaussian' std: 1 } } }\n"                                              \
  "layer { name: 'rc' type: 'ReLU' bottom: 'c' top: '" c_top "' }\n"                           \
  "layer { name: 'ip' type: 'InnerProduct' bottom: '" c_top "' top: 'ip' "                     \
  "inner_product_param { num_output: 7 weight_filler { type: 'gaussian' std: 1 } "             \
  "bias_filler { type: 'gaussian' std: 1 } } }\n"                                              \
  "layer { name: 'rip' type: 'ReLU' bottom: 'ip' top: '" ip_top "' "                           \
  "relu_param { negative_slope: 0.25 } }\n"                                                     \
  "layer { name: 'ip2' type: 'InnerProduct' bottom: '" ip_top "' top: 'ip2' "                  \
  "inner_product_param { num_output: 4 weight_filler { type: 'gaussian' std: 1 } "             \
  "bias_filler { type: 'gaussian' std: 1 } } }\n"                                              \
  "layer { name: 'rip2' type: 'ReLU' bottom: 'ip2' top: 'ip2' }\n"

static void expect_relu_of(ns_tensor got, ns_tensor pre, float slope) {
  assert_int_equal(got.count, pre.count);
  int neg = 0;
  for (int64_t i = 0; i < got.count; i++) {
    float v = pre.data[i], want = v < 0 ? slope * v : v;
    neg += v < 0;
    if (got.data[i] != want) fail_msg("element %lld: %g, want %g", (long long)i, got.data[i], want);
  }
  assert_true(neg > 0); /* the case is not vacuous */
}

static void test_fused_relu(void **state) {
  fixture *f = *state;
  ns_net *a = load(f, RELU_NET("c", "ip")), *b = load(f, RELU_NET("c_relu", "ip_relu"));
  int ia = ns_net_find_blob(a, "data"), ib = ns_net_find_blob(b, "data");
  ns_tensor xa = ns_net_blob(a, ia), xb = ns_net_blob(b, ib);
  for (int64_t i = 0; i < xa.count; i++) xa.data[i] = xb.data[i] = (float)((i * 37) % 11) - 5.0f;
  for (int t = 1; t <= 2; t++) {
    ns_ctx_set_threads(f->ctx, t);
    assert_int_equal(ns_net_forward(f->ctx, a), NS_OK);
    assert_int_equal(ns_net_forward(f->ctx, b), NS_OK);
    expect_relu_of(ns_net_blob(a, ns_net_find_blob(a, "c")), ns_net_blob(b, ns_net_find_blob(b, "c")), 0);
    expect_relu_of(ns_net_blob(a, ns_net_find_blob(a, "ip")), ns_net_blob(b, ns_net_find_blob(b, "ip")),
                   0.25f);
    /* ip2 reads the same activations in both nets: same pre-activation */
    ns_tensor pa = ns_net_blob(a, ns_net_find_blob(a, "ip2")), pb = ns_net_blob(b, ns_net_find_blob(b, "ip2"));
    assert_memory_equal(pa.data, pb.data, (size_t)pa.count * sizeof(float));
    for (int64_t i = 0; i < pa.count; i++) assert_true(pa.data[i] >= 0);
  }
  ns_net_destroy(a);
  ns_net_destroy(b);
}

/* A 3x3 convolution that takes the Winograd path keeps its transformed
 * weights between forwards; writing the weights through the API must
 * take effect on the next forward, and the weights must serve a reshape
 * (26 x 26 -> 12 x 12 -> 26 x 26).
 * Reference: the direct convolution, within the Winograd tolerance of
 * test_kernels (1e-6 of sum |w| |x| besides 1e-5 + 1e-4 |y|). */
static void expect_conv_matches(ns_net *net, int li) {
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "c"));
  ns_tensor w = ns_net_param(net, li, 0), b = ns_net_param(net, li, 1);
  int64_t hw = x.shape[2];
  ns_conv2d_shape sh = {16, hw, hw, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, hw, hw};
  assert_true(ns_winograd_worth(&sh, 1, 1)); /* the case under test */
  float *ref = malloc((size_t)y.count * sizeof(float)), *absum = malloc((size_t)y.count * sizeof(float));
  float *aw = malloc((size_t)w.count * sizeof(float)), *ax = malloc((size_t)x.count * sizeof(float));
  assert_non_null(ref), assert_non_null(absum), assert_non_null(aw), assert_non_null(ax);
  for (int64_t i = 0; i < w.count; i++) aw[i] = fabsf(w.data[i]);
  for (int64_t i = 0; i < x.count; i++) ax[i] = fabsf(x.data[i]);
  ns_ref_conv2d(&sh, w.data, b.data, x.data, ref);
  ns_ref_conv2d(&sh, aw, NULL, ax, absum);
  for (int64_t i = 0; i < y.count; i++)
    if (!(fabs((double)y.data[i] - ref[i]) <= 1e-5 + 1e-4 * fabs((double)ref[i]) + 1e-6 * absum[i]))
      fail_msg("%lld x %lld, element %lld: %g, reference %g", (long long)hw, (long long)hw,
               (long long)i, y.data[i], ref[i]);
  free(ref), free(absum), free(aw), free(ax);
}

static void fill_input(ns_net *net) {
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int64_t i = 0; i < x.count; i++) x.data[i] = (float)((i * 29) % 13) / 6.0f - 1.0f;
}

static void test_winograd_weights_follow_edits(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, INPUT(1, 16, 26, 26)
                     "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' "
                     "convolution_param { num_output: 16 kernel_size: 3 pad: 1 "
                     "weight_filler { type: 'gaussian' std: 1 } "
                     "bias_filler { type: 'gaussian' std: 1 } } }\n");
  int li = ns_net_find_layer(net, "c");
  fill_input(net);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches(net, li);
  ns_tensor w = ns_net_param(net, li, 0);
  w.data[5] += 3.0f;              /* one weight of filter 0 */
  w.data[w.count - 1] = -2.0f;    /* and the last filter's last tap */
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches(net, li);
  for (int k = 0; k < 2; k++) { /* 12 x 12, then back to 26 x 26 */
    const int64_t shape[4] = {1, 16, k ? 26 : 12, k ? 26 : 12};
    assert_int_equal(ns_net_reshape_input(f->ctx, net, "data", 4, shape), NS_OK);
    fill_input(net);
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    expect_conv_matches(net, li);
  }
  ns_net_destroy(net);
}

/* Without any view of the params handed out, the transformed weights
 * follow the library's own writers (ns_net_param_set, refill, copy,
 * load) through the params epoch, with no copy of the weights compared.
 * Reference weights come through ns_net_param_get, which hands out no
 * view (params_exposed stays 0). */
static void expect_conv_matches_hidden(fixture *f, ns_net *net) {
  assert_int_equal(net->params_exposed, 0);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "c"));
  int64_t hw = x.shape[2], wc = 16 * 16 * 9;
  ns_conv2d_shape sh = {16, hw, hw, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, hw, hw};
  float *w = malloc(wc * sizeof(float)), *b = malloc(16 * sizeof(float));
  float *aw = malloc(wc * sizeof(float)), *ax = malloc((size_t)x.count * sizeof(float));
  float *ref = malloc((size_t)y.count * sizeof(float)), *absum = malloc((size_t)y.count * sizeof(float));
  assert_non_null(w), assert_non_null(b), assert_non_null(aw), assert_non_null(ax);
  assert_non_null(ref), assert_non_null(absum);
  assert_int_equal(ns_net_param_get(f->ctx, net, "c", 0, w, wc), NS_OK);
  assert_int_equal(ns_net_param_get(f->ctx, net, "c", 1, b, 16), NS_OK);
  for (int64_t i = 0; i < wc; i++) aw[i] = fabsf(w[i]);
  for (int64_t i = 0; i < x.count; i++) ax[i] = fabsf(x.data[i]);
  ns_ref_conv2d(&sh, w, b, x.data, ref);
  ns_ref_conv2d(&sh, aw, NULL, ax, absum);
  for (int64_t i = 0; i < y.count; i++)
    if (!(fabs((double)y.data[i] - ref[i]) <= 1e-5 + 1e-4 * fabs((double)ref[i]) + 1e-6 * absum[i]))
      fail_msg("element %lld: %g, reference %g", (long long)i, y.data[i], ref[i]);
  free(w), free(b), free(aw), free(ax), free(ref), free(absum);
}

static void test_winograd_weights_follow_library_writes(void **state) {
  fixture *f = *state;
  const char *text = INPUT(1, 16, 26, 26)
      "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' "
      "convolution_param { num_output: 16 kernel_size: 3 pad: 1 "
      "weight_filler { type: 'gaussian' std: 1 } bias_filler { type: 'gaussian' std: 1 } } }\n";
  ns_net *net = load(f, text), *other = load(f, text);
  assert_int_equal(ns_net_refill_weights(f->ctx, other, "xavier", 7), NS_OK);
  fill_input(net);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches_hidden(f, net);
  float w[16 * 16 * 9];
  for (int i = 0; i < 16 * 16 * 9; i++) w[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
  assert_int_equal(ns_net_param_set(f->ctx, net, "c", 0, w, 16 * 16 * 9), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches_hidden(f, net);
  assert_int_equal(ns_net_refill_weights(f->ctx, net, "gaussian", 3), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches_hidden(f, net);
  assert_int_equal(ns_net_copy_params(f->ctx, net, "c", other, "c"), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  expect_conv_matches_hidden(f, net);
  ns_net_destroy(net);
  ns_net_destroy(other);
}

/* BatchNorm (global statistics) and Scale in place after a convolution
 * are folded into its epilogue (core/net.c): every blob must still hold
 * Caffe's values.  A 3x3 convolution with BatchNorm, Scale with bias and
 * ReLU; a depthwise one (its weights scaled) with BatchNorm and Scale
 * without bias; a 1x1 whose BatchNorm writes another top (not folded:
 * the convolution's own top stays raw), that BatchNorm then the host of
 * an in-place Scale with bias and a ReLU (one pass).  Expected: the reference
 * convolution, then BatchNorm and Scale by their definitions in double.
 * Then a param written through a view takes effect on the next forward
 * (nothing folded is kept), on 1 and 2 threads; a forward range ending at
 * the convolution folds nothing. */
#define FOLD_NET                                                                                \
  INPUT(2, 3, 9, 8)                                                                             \
  "layer { name: 'c1' type: 'Convolution' bottom: 'data' top: 'c1' convolution_param { "        \
  "num_output: 4 kernel_size: 3 pad: 1 } }\n"                                                   \
  "layer { name: 'bn1' type: 'BatchNorm' bottom: 'c1' top: 'c1' }\n"                            \
  "layer { name: 'sc1' type: 'Scale' bottom: 'c1' top: 'c1' scale_param { bias_term: true } }\n" \
  "layer { name: 'r1' type: 'ReLU' bottom: 'c1' top: 'c1' }\n"                                  \
  "layer { name: 'dw' type: 'Convolution' bottom: 'c1' top: 'dw' convolution_param { "          \
  "num_output: 4 group: 4 kernel_size: 3 stride: 2 pad: 1 } }\n"                                \
  "layer { name: 'bn2' type: 'BatchNorm' bottom: 'dw' top: 'dw' }\n"                            \
  "layer { name: 'sc2' type: 'Scale' bottom: 'dw' top: 'dw' }\n"                                \
  "layer { name: 'c3' type: 'Convolution' bottom: 'dw' top: 'c3' convolution_param { "          \
  "num_output: 3 kernel_size: 1 } }\n"                                                          \
  "layer { name: 'bn3' type: 'BatchNorm' bottom: 'c3' top: 'bn3' }\n"                            \
  "layer { name: 'sc3' type: 'Scale' bottom: 'bn3' top: 'bn3' scale_param { bias_term: true } }\n" \
  "layer { name: 'r3' type: 'ReLU' bottom: 'bn3' top: 'bn3' }\n"

static void fill_param(ns_net *net, const char *layer, int j, float lo, float hi, unsigned seed) {
  ns_tensor t = ns_net_param(net, ns_net_find_layer(net, layer), j);
  for (int64_t i = 0; i < t.count; i++) {
    seed = seed * 1103515245u + 12345u;
    t.data[i] = lo + (hi - lo) * (float)((seed >> 8) & 0xffff) / 65535.0f;
  }
}

/* y (N, C, plane) in place: BatchNorm from the layer's sums and factor,
 * then Scale (and its bias) if scale is given, then ReLU if asked. */
static void ref_bn_scale(ns_net *net, const char *bn, const char *scale, int relu, float *y,
                         int64_t num, int64_t c, int64_t plane) {
  int lb = ns_net_find_layer(net, bn), ls = scale ? ns_net_find_layer(net, scale) : -1;
  ns_tensor mean = ns_net_param(net, lb, 0), var = ns_net_param(net, lb, 1);
  double factor = ns_net_param(net, lb, 2).data[0], inv = factor == 0 ? 0 : 1 / factor;
  for (int64_t n = 0; n < num; n++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t j = 0; j < plane; j++) {
        float *v = &y[(n * c + k) * plane + j];
        double x = (*v - mean.data[k] * inv) / sqrt(var.data[k] * inv + 1e-5);
        if (ls >= 0) {
          x *= ns_net_param(net, ls, 0).data[k];
          if (ns_net_param_count(net, ls) > 1) x += ns_net_param(net, ls, 1).data[k];
        }
        *v = (float)(relu && x < 0 ? 0 : x);
      }
}

static void expect_blob_near(ns_net *net, const char *name, const float *want) {
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, name));
  for (int64_t i = 0; i < y.count; i++)
    if (!(fabs((double)y.data[i] - want[i]) <= 1e-5 + 1e-4 * fabs((double)want[i])))
      fail_msg("blob %s element %lld: %g, want %g", name, (long long)i, y.data[i], want[i]);
}

/* The blobs as Caffe computes them, layer by layer from data. */
static void expect_fold_net(ns_net *net) {
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  int l1 = ns_net_find_layer(net, "c1"), l2 = ns_net_find_layer(net, "dw");
  int l3 = ns_net_find_layer(net, "c3");
  ns_conv2d_shape s1 = {3, 9, 8, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 9, 8};
  ns_conv2d_shape s2 = {4, 9, 8, 4, 4, 3, 3, 1, 1, 2, 2, 1, 1, 5, 4};
  ns_conv2d_shape s3 = {4, 5, 4, 3, 1, 1, 1, 0, 0, 1, 1, 1, 1, 5, 4};
  float c1[2 * 4 * 72], dw[2 * 4 * 20], c3[2 * 3 * 20], bn3[2 * 3 * 20];
  for (int n = 0; n < 2; n++)
    ns_ref_conv2d(&s1, ns_net_param(net, l1, 0).data, ns_net_param(net, l1, 1).data,
                  x.data + n * 3 * 72, c1 + n * 4 * 72);
  ref_bn_scale(net, "bn1", "sc1", 1, c1, 2, 4, 72);
  for (int n = 0; n < 2; n++)
    ns_ref_conv2d(&s2, ns_net_param(net, l2, 0).data, ns_net_param(net, l2, 1).data,
                  c1 + n * 4 * 72, dw + n * 4 * 20);
  ref_bn_scale(net, "bn2", "sc2", 0, dw, 2, 4, 20);
  for (int n = 0; n < 2; n++)
    ns_ref_conv2d(&s3, ns_net_param(net, l3, 0).data, ns_net_param(net, l3, 1).data,
                  dw + n * 4 * 20, c3 + n * 3 * 20);
  memcpy(bn3, c3, sizeof bn3);
  ref_bn_scale(net, "bn3", "sc3", 1, bn3, 2, 3, 20);
  expect_blob_near(net, "c1", c1);
  expect_blob_near(net, "dw", dw);
  expect_blob_near(net, "c3", c3);
  expect_blob_near(net, "bn3", bn3);
  int neg = 0, neg3 = 0; /* the ReLUs cut something: the cases are not vacuous */
  for (int i = 0; i < 2 * 4 * 72; i++) neg += c1[i] == 0;
  for (int i = 0; i < 2 * 3 * 20; i++) neg3 += bn3[i] == 0;
  assert_true(neg > 0 && neg3 > 0);
}

static void test_batchnorm_scale_folded(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, FOLD_NET);
  const char *convs[] = {"c1", "dw", "c3"}, *bns[] = {"bn1", "bn2", "bn3"};
  for (int i = 0; i < 3; i++) {
    fill_param(net, convs[i], 0, -1, 1, 11u + i);
    fill_param(net, convs[i], 1, -0.5f, 0.5f, 21u + i);
    fill_param(net, bns[i], 0, -1, 1, 31u + i);        /* mean sum */
    fill_param(net, bns[i], 1, 0.5f, 3, 41u + i);      /* variance sum */
    fill_param(net, bns[i], 2, 1.5f, 2.5f, 51u + i);   /* factor */
  }
  fill_param(net, "sc1", 0, 0.5f, 2, 61u), fill_param(net, "sc1", 1, -1, 1, 62u);
  fill_param(net, "sc2", 0, -2, 2, 63u);
  fill_param(net, "sc3", 0, -2, 2, 64u), fill_param(net, "sc3", 1, -1, 1, 65u);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int64_t i = 0; i < x.count; i++) x.data[i] = (float)((i * 29) % 13) / 6.0f - 1.0f;
  for (int t = 1; t <= 2; t++) {
    ns_ctx_set_threads(f->ctx, t);
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    expect_fold_net(net);
    fill_param(net, "bn2", 0, -3, 3, 70u + t); /* written through a view */
    fill_param(net, "sc1", 1, -2, 0, 80u + t);
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    expect_fold_net(net);
  }
  /* A forward that ends at c1 shows c1 before its BatchNorm: nothing past
   * the range is folded in. */
  int l1 = ns_net_find_layer(net, "c1");
  assert_int_equal(ns_net_forward_range(f->ctx, net, 0, l1), NS_OK);
  ns_conv2d_shape s1 = {3, 9, 8, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 9, 8};
  float raw[2 * 4 * 72];
  for (int n = 0; n < 2; n++)
    ns_ref_conv2d(&s1, ns_net_param(net, l1, 0).data, ns_net_param(net, l1, 1).data,
                  x.data + n * 3 * 72, raw + n * 4 * 72);
  expect_blob_near(net, "c1", raw);
  ns_net_destroy(net);
}

/* Eltwise applies a following in-place ReLU itself (ResNet's shortcut
 * adds): SUM with coefficients, PROD and MAX, on 2 x 3 x 40 x 40 (blocks
 * of 4096 shared out among threads, and a tail), 1 and 2 threads,
 * against the definitions; the bottoms stay as they were. */
#define ELTWISE_NET(op, extra)                                                                 \
  "layer { name: 'a' type: 'Input' top: 'a' input_param { shape { dim: 2 dim: 3 dim: 40 "     \
  "dim: 40 } } }\n"                                                                           \
  "layer { name: 'b' type: 'Input' top: 'b' input_param { shape { dim: 2 dim: 3 dim: 40 "     \
  "dim: 40 } } }\n"                                                                           \
  "layer { name: 'e' type: 'Eltwise' bottom: 'a' bottom: 'b' top: 'e' eltwise_param { "       \
  "operation: " op " " extra " } }\n"                                                        \
  "layer { name: 'r' type: 'ReLU' bottom: 'e' top: 'e' }\n"

static void test_eltwise_relu_fused(void **state) {
  fixture *f = *state;
  const char *nets[] = {ELTWISE_NET("SUM", "coeff: 1.5 coeff: -0.5"), ELTWISE_NET("PROD", ""),
                        ELTWISE_NET("MAX", "")};
  for (int op = 0; op < 3; op++) {
    ns_net *net = load(f, nets[op]);
    ns_tensor a = ns_net_blob(net, ns_net_find_blob(net, "a"));
    ns_tensor b = ns_net_blob(net, ns_net_find_blob(net, "b"));
    for (int64_t i = 0; i < a.count; i++) {
      a.data[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
      b.data[i] = (float)((i * 53) % 19) / 9.0f - 1.0f;
    }
    for (int t = 1; t <= 2; t++) {
      ns_ctx_set_threads(f->ctx, t);
      assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
      ns_tensor e = ns_net_blob(net, ns_net_find_blob(net, "e"));
      int zeros = 0;
      for (int64_t i = 0; i < e.count; i++) {
        float x = a.data[i], y = b.data[i];
        float v = op == 0 ? 1.5f * x + -0.5f * y : op == 1 ? x * y : (x > y ? x : y);
        float want = v < 0 ? 0 : v;
        zeros += want == 0;
        if (fabsf(e.data[i] - want) > 1e-6f)
          fail_msg("op %d element %lld: %g, want %g", op, (long long)i, e.data[i], want);
        assert_true(a.data[i] == (float)((i * 37) % 23) / 11.0f - 1.0f);
      }
      assert_true(zeros > 0 && zeros < e.count);
    }
    ns_net_destroy(net);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_split_naming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_in_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_state_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_graph_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_weights_by_name_legacy_dims, setup, teardown),
      cmocka_unit_test_setup_teardown(test_weights_shape_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_load_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fillers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seed_determinism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fused_relu, setup, teardown),
      cmocka_unit_test_setup_teardown(test_winograd_weights_follow_edits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_winograd_weights_follow_library_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batchnorm_scale_folded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_eltwise_relu_fused, setup, teardown),
  };
  return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
