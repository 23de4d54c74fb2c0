/* Caffe's legacy formats -> current format (format/upgrade.c).  Every
 * expected result is written by hand from Caffe 1.0's upgrade_proto rules
 * (as current-format text, or as field values); results are compared as
 * packed protobuf bytes, which is field-by-field equality.  Also: blobs move
 * rather than copy, allocation failure at every step leaves a freeable net,
 * and Caffe's own legacy prototxts (when $NS_SHARED has them) upgrade to
 * the same layer graph as their current versions. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/ctx.h"
#include "core/strbuf.h"
#include "format/model_io.h"
#include "format/textformat.h"
#include "format/upgrade.h"
#include "netsurg.h"
#include "support/testutil.h"

/* ---- fixture: a counting (and optionally failing) allocator ------------- */

typedef struct counter {
  long live;       /* allocations not yet freed */
  long fail_after; /* successful allocations left; -1 = unlimited */
} counter;

static int may_allocate(counter *c) {
  if (c->fail_after == 0) return 0;
  if (c->fail_after > 0) c->fail_after--;
  return 1;
}

static void *c_alloc(void *user, size_t size) {
  counter *c = user;
  if (!may_allocate(c)) return NULL;
  void *p = malloc(size);
  if (p) c->live++;
  return p;
}

static void *c_realloc(void *user, void *ptr, size_t size) {
  if (!ptr) return c_alloc(user, size);
  if (!may_allocate(user)) return NULL;
  return realloc(ptr, size);
}

static void c_free(void *user, void *ptr) {
  counter *c = user;
  if (!ptr) return;
  c->live--;
  free(ptr);
}

typedef struct fixture {
  counter count;
  ns_ctx *ctx;
  char warnings[8192];
} fixture;

static void collect_warning(void *user, const char *msg) {
  fixture *f = user;
  size_t n = strlen(f->warnings);
  snprintf(f->warnings + n, sizeof f->warnings - n, "%s\n", msg);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->count.fail_after = -1;
  ns_allocator a = {c_alloc, c_realloc, c_free, &f->count};
  f->ctx = ns_ctx_create_with(&a);
  if (!f->ctx) return -1;
  ns_ctx_set_warning_handler(f->ctx, collect_warning, f);
  *state = f;
  return 0;
}

/* Everything the tests allocated through the context was freed. */
static int teardown(void **state) {
  fixture *f = *state;
  ns_ctx_destroy(f->ctx);
  long live = f->count.live;
  free(f);
  if (live != 0) fail_msg("%ld allocation(s) leaked", live);
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static Caffe__NetParameter *parse_raw(ns_ctx *ctx, const char *text) {
  ProtobufCMessage *m = NULL;
  if (ns_text_parse(ctx, text, strlen(text), "test.prototxt", &caffe__net_parameter__descriptor,
                    &m) != NS_OK)
    fail_msg("parse: %s", ns_ctx_error(ctx));
  return (Caffe__NetParameter *)m;
}

static Caffe__NetParameter *upgrade_text(ns_ctx *ctx, const char *text, int *what) {
  Caffe__NetParameter *net = parse_raw(ctx, text);
  if (ns_upgrade_net(ctx, &net, "test.prototxt", what) != NS_OK)
    fail_msg("upgrade: %s", ns_ctx_error(ctx));
  return net;
}

static void print_net(ns_ctx *ctx, const char *title, const Caffe__NetParameter *net) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_text_write(ctx, &net->base, &sb);
  print_message("---- %s ----\n%s\n", title, sb.data ? sb.data : "(nothing)");
  ns_strbuf_free(&sb);
}

static int same_bytes(const Caffe__NetParameter *a, const Caffe__NetParameter *b) {
  size_t na = caffe__net_parameter__get_packed_size(a);
  size_t nb = caffe__net_parameter__get_packed_size(b);
  if (na != nb) return 0;
  uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
  caffe__net_parameter__pack(a, pa);
  caffe__net_parameter__pack(b, pb);
  int same = memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

/* got equals the net written (by hand) in expected_text, field by field. */
static void assert_net_equals_text(ns_ctx *ctx, const Caffe__NetParameter *got,
                                   const char *expected_text) {
  Caffe__NetParameter *want = parse_raw(ctx, expected_text);
  int same = same_bytes(got, want);
  if (!same) {
    print_net(ctx, "upgraded", got);
    print_net(ctx, "expected", want);
  }
  ns_net_param_free(ctx, want);
  assert_true(same);
}

static char *read_text_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, fp) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = '\0';
  fclose(fp);
  return s;
}

static void assert_contains(const char *haystack, const char *needle) {
  if (!strstr(haystack, needle)) fail_msg("\"%s\" lacks \"%s\"", haystack, needle);
}

/* ---- V1 -> current ------------------------------------------------------ */

static const char v1_conv[] =
    "name: \"t\"\n"
    "layers { name: \"conv1\" type: CONVOLUTION bottom: \"data\" top: \"conv1\"\n"
    "  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0\n"
    "  convolution_param { num_output: 96 kernel_size: 11 stride: 4\n"
    "    weight_filler { type: \"gaussian\" std: 0.01 } bias_filler { type: \"constant\" } } }\n";

static const char v1_conv_current[] =
    "name: \"t\"\n"
    "layer { name: \"conv1\" type: \"Convolution\" bottom: \"data\" top: \"conv1\"\n"
    "  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }\n"
    "  convolution_param { num_output: 96 kernel_size: 11 stride: 4\n"
    "    weight_filler { type: \"gaussian\" std: 0.01 } bias_filler { type: \"constant\" } } }\n";

static void test_v1_conv_blobs_lr(void **state) {
  fixture *f = *state;
  int what = -1;
  Caffe__NetParameter *raw = parse_raw(f->ctx, v1_conv);
  assert_true(ns_net_needs_upgrade(raw));
  ns_net_param_free(f->ctx, raw);
  Caffe__NetParameter *net = upgrade_text(f->ctx, v1_conv, &what);
  assert_int_equal(what, NS_UPGRADED_V1);
  assert_false(ns_net_needs_upgrade(net));
  assert_int_equal(net->n_layers, 0);
  assert_int_equal(net->n_layer, 1);
  Caffe__LayerParameter *l = net->layer[0];
  assert_string_equal(l->name, "conv1");
  assert_string_equal(l->type, "Convolution");
  assert_int_equal(l->n_param, 2);
  assert_true(l->param[0]->has_lr_mult && l->param[0]->has_decay_mult);
  assert_true(l->param[0]->lr_mult == 1.0f && l->param[0]->decay_mult == 1.0f);
  assert_true(l->param[1]->lr_mult == 2.0f && l->param[1]->decay_mult == 0.0f);
  assert_non_null(l->convolution_param);
  assert_int_equal(l->convolution_param->num_output, 96);
  assert_net_equals_text(f->ctx, net, v1_conv_current);
  assert_string_equal(f->warnings, ""); /* Caffe only LOG(INFO)s a V1 upgrade */
  ns_net_param_free(f->ctx, net);
}

/* Rules, loss weights, shared param names and modes, loss/transform params. */
static void test_v1_layer_fields(void **state) {
  fixture *f = *state;
  static const char v1[] =
      "layers { name: \"loss\" type: SOFTMAX_LOSS bottom: \"fc8\" bottom: \"label\" top: \"loss\"\n"
      "  include { phase: TRAIN stage: \"a\" } include { min_level: 1 }\n"
      "  exclude { phase: TEST max_level: 2 not_stage: \"b\" }\n"
      "  loss_weight: 2 loss_weight: 0.5\n"
      "  param: \"w_shared\" param: \"b_shared\" blob_share_mode: PERMISSIVE\n"
      "  blob_share_mode: STRICT blobs_lr: 3 weight_decay: 0.5 weight_decay: 0.25 weight_decay: 7\n"
      "  loss_param { ignore_label: 255 normalization: BATCH_SIZE }\n"
      "  transform_param { scale: 0.5 mean_value: 1 } }\n";
  static const char want[] =
      "layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"fc8\" bottom: \"label\"\n"
      "  top: \"loss\" loss_weight: 2 loss_weight: 0.5\n"
      "  param { name: \"w_shared\" share_mode: PERMISSIVE lr_mult: 3 decay_mult: 0.5 }\n"
      "  param { name: \"b_shared\" share_mode: STRICT decay_mult: 0.25 }\n"
      "  param { decay_mult: 7 }\n"
      "  include { phase: TRAIN stage: \"a\" } include { min_level: 1 }\n"
      "  exclude { phase: TEST max_level: 2 not_stage: \"b\" }\n"
      "  transform_param { scale: 0.5 mean_value: 1 }\n"
      "  loss_param { ignore_label: 255 normalization: BATCH_SIZE } }\n";
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, v1, &what);
  assert_int_equal(what, NS_UPGRADED_V1);
  Caffe__ParamSpec *p2 = net->layer[0]->param[2];
  assert_false(p2->has_lr_mult); /* not given: Caffe's default 1 applies */
  assert_true(p2->lr_mult == 1.0f);
  assert_net_equals_text(f->ctx, net, want);
  ns_net_param_free(f->ctx, net);
}

/* Every *_param a V1 layer can hold lands in the LayerParameter. */
static void test_v1_all_params_fixture(void **state) {
  fixture *f = *state;
  char path[1024], want_path[1024];
  tu_path(path, sizeof path, tu_test_dir(), "data/legacy/v1_all_params.prototxt");
  tu_path(want_path, sizeof want_path, tu_test_dir(), "data/legacy/v1_all_params.current.prototxt");
  Caffe__NetParameter *net;
  int what;
  if (ns_load_net_param(f->ctx, path, &net, &what) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(what, NS_UPGRADED_V1);
  assert_int_equal(net->n_layer, 30);
  char *want = read_text_file(want_path);
  assert_non_null(want);
  assert_net_equals_text(f->ctx, net, want);
  free(want);
  ns_net_param_free(f->ctx, net);
}

/* Caffe's UpgradeV1LayerType, written out from its switch. */
static const struct {
  const char *v1;
  const char *type;
} v1_type_names[] = {
    {"NONE", ""},
    {"ABSVAL", "AbsVal"},
    {"ACCURACY", "Accuracy"},
    {"ARGMAX", "ArgMax"},
    {"BNLL", "BNLL"},
    {"CONCAT", "Concat"},
    {"CONTRASTIVE_LOSS", "ContrastiveLoss"},
    {"CONVOLUTION", "Convolution"},
    {"DECONVOLUTION", "Deconvolution"},
    {"DATA", "Data"},
    {"DROPOUT", "Dropout"},
    {"DUMMY_DATA", "DummyData"},
    {"EUCLIDEAN_LOSS", "EuclideanLoss"},
    {"ELTWISE", "Eltwise"},
    {"EXP", "Exp"},
    {"FLATTEN", "Flatten"},
    {"HDF5_DATA", "HDF5Data"},
    {"HDF5_OUTPUT", "HDF5Output"},
    {"HINGE_LOSS", "HingeLoss"},
    {"IM2COL", "Im2col"},
    {"IMAGE_DATA", "ImageData"},
    {"INFOGAIN_LOSS", "InfogainLoss"},
    {"INNER_PRODUCT", "InnerProduct"},
    {"LRN", "LRN"},
    {"MEMORY_DATA", "MemoryData"},
    {"MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"},
    {"MVN", "MVN"},
    {"POOLING", "Pooling"},
    {"POWER", "Power"},
    {"RELU", "ReLU"},
    {"SIGMOID", "Sigmoid"},
    {"SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"},
    {"SILENCE", "Silence"},
    {"SOFTMAX", "Softmax"},
    {"SOFTMAX_LOSS", "SoftmaxWithLoss"},
    {"SPLIT", "Split"},
    {"SLICE", "Slice"},
    {"TANH", "TanH"},
    {"WINDOW_DATA", "WindowData"},
    {"THRESHOLD", "Threshold"},
};
#define N_V1_TYPES (sizeof v1_type_names / sizeof v1_type_names[0])

static void test_v1_every_type_name(void **state) {
  fixture *f = *state;
  /* the table above covers the schema's enum exactly */
  assert_int_equal(caffe__v1_layer_parameter__layer_type__descriptor.n_values, N_V1_TYPES);
  ns_strbuf sb;
  ns_strbuf_init(&sb, f->ctx);
  for (size_t i = 0; i < N_V1_TYPES; i++)
    ns_strbuf_printf(&sb, "layers { name: \"l%zu\" type: %s }\n", i, v1_type_names[i].v1);
  assert_int_equal(ns_strbuf_status(&sb), NS_OK);
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, sb.data, &what);
  ns_strbuf_free(&sb);
  assert_int_equal(net->n_layer, N_V1_TYPES);
  for (size_t i = 0; i < N_V1_TYPES; i++) {
    assert_non_null(net->layer[i]->type);
    if (strcmp(net->layer[i]->type, v1_type_names[i].type) != 0)
      fail_msg("%s -> \"%s\", expected \"%s\"", v1_type_names[i].v1, net->layer[i]->type,
               v1_type_names[i].type);
  }
  /* ns_v1_layer_type_name agrees, value by value */
  const ProtobufCEnumDescriptor *ed = &caffe__v1_layer_parameter__layer_type__descriptor;
  for (unsigned k = 0; k < ed->n_values; k++) {
    size_t i = 0;
    while (i < N_V1_TYPES && strcmp(v1_type_names[i].v1, ed->values[k].name) != 0) i++;
    assert_true(i < N_V1_TYPES);
    assert_string_equal(ns_v1_layer_type_name(ed->values[k].value), v1_type_names[i].type);
  }
  assert_null(ns_v1_layer_type_name(99));
  ns_net_param_free(f->ctx, net);
}

/* A layer without a type keeps none (Caffe sets type only if has_type). */
static void test_v1_untyped_layer(void **state) {
  fixture *f = *state;
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, "layers { name: \"x\" top: \"x\" }", &what);
  assert_null(net->layer[0]->type);
  assert_string_equal(net->layer[0]->name, "x");
  ns_net_param_free(f->ctx, net);
}

/* `layer` entries next to V1 `layers` are dropped with a warning. */
static void test_v1_with_current_layers(void **state) {
  fixture *f = *state;
  int what;
  Caffe__NetParameter *net = upgrade_text(
      f->ctx, "layer { name: \"new\" type: \"ReLU\" }\n layers { name: \"old\" type: RELU }\n",
      &what);
  assert_int_equal(net->n_layer, 1);
  assert_string_equal(net->layer[0]->name, "old");
  assert_contains(f->warnings, "ignored");
  ns_net_param_free(f->ctx, net);
}

/* ---- binary V1 caffemodel with legacy 4-D blobs -------------------------- */

static const float fc_w[12] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12};
static const float fc_b[3] = {0.5f, 0.25f, -1};

/* A V1 caffemodel as Caffe wrote them in 2014: `input` without dims,
 * blobs with num/channels/height/width. */
static uint8_t *pack_v1_caffemodel(size_t *len, int bad_type, int bad_share_mode) {
  Caffe__BlobProto w = CAFFE__BLOB_PROTO__INIT, b = CAFFE__BLOB_PROTO__INIT;
  w.has_num = w.has_channels = w.has_height = w.has_width = 1;
  w.num = 1, w.channels = 1, w.height = 3, w.width = 4;
  w.n_data = 12, w.data = (float *)fc_w;
  b.has_num = b.has_channels = b.has_height = b.has_width = 1;
  b.num = 1, b.channels = 1, b.height = 1, b.width = 3;
  b.n_data = 3, b.data = (float *)fc_b;
  Caffe__BlobProto *blobs[2] = {&w, &b};
  char *bottom[1] = {"data"}, *top[1] = {"fc"};
  float lr[2] = {1, 2};
  Caffe__V1LayerParameter__DimCheckMode modes[1] = {
      (Caffe__V1LayerParameter__DimCheckMode)(bad_share_mode ? 5 : 1)};
  Caffe__V1LayerParameter l = CAFFE__V1_LAYER_PARAMETER__INIT;
  l.name = "fc";
  l.has_type = 1;
  l.type = bad_type ? (Caffe__V1LayerParameter__LayerType)99
                    : CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT;
  l.n_bottom = 1, l.bottom = bottom, l.n_top = 1, l.top = top;
  l.n_blobs = 2, l.blobs = blobs;
  l.n_blobs_lr = 2, l.blobs_lr = lr;
  l.n_blob_share_mode = 1, l.blob_share_mode = modes;
  Caffe__InnerProductParameter ip = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  ip.has_num_output = 1, ip.num_output = 3;
  l.inner_product_param = &ip;
  Caffe__V1LayerParameter *layers[1] = {&l};
  char *input[1] = {"data"};
  Caffe__NetParameter net = CAFFE__NET_PARAMETER__INIT;
  net.name = "model";
  net.n_input = 1, net.input = input;
  net.n_layers = 1, net.layers = layers;
  *len = caffe__net_parameter__get_packed_size(&net);
  uint8_t *buf = malloc(*len);
  caffe__net_parameter__pack(&net, buf);
  return buf;
}

static void test_v1_caffemodel(void **state) {
  fixture *f = *state;
  size_t len;
  uint8_t *bytes = pack_v1_caffemodel(&len, 0, 0);
  Caffe__NetParameter *net;
  int what;
  if (ns_parse_net_param(f->ctx, bytes, len, "model.caffemodel", &net, &what) != NS_OK)
    fail_msg("%s", ns_ctx_error(f->ctx));
  free(bytes);
  assert_int_equal(what, NS_UPGRADED_V1 | NS_UPGRADED_INPUT);
  assert_int_equal(net->n_input, 0); /* input without dims: simply dropped */
  assert_int_equal(net->n_layer, 1); /* and no Input layer */
  Caffe__LayerParameter *l = net->layer[0];
  assert_string_equal(l->type, "InnerProduct");
  assert_int_equal(l->n_blobs, 2);
  Caffe__BlobProto *w = l->blobs[0];
  assert_null(w->shape); /* legacy dims stay as they were */
  assert_true(w->has_num && w->has_channels && w->has_height && w->has_width);
  assert_int_equal(w->num, 1);
  assert_int_equal(w->channels, 1);
  assert_int_equal(w->height, 3);
  assert_int_equal(w->width, 4);
  assert_int_equal(w->n_data, 12);
  assert_memory_equal(w->data, fc_w, sizeof fc_w);
  assert_int_equal(l->blobs[1]->width, 3);
  assert_memory_equal(l->blobs[1]->data, fc_b, sizeof fc_b);
  assert_int_equal(l->n_param, 2);
  assert_true(l->param[0]->has_share_mode);
  assert_int_equal(l->param[0]->share_mode, CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE);
  assert_true(l->param[1]->lr_mult == 2.0f && !l->param[1]->has_share_mode);
  ns_net_param_free(f->ctx, net);
}

/* Blobs change owner: the very same arrays end up in the new layer. */
static void test_v1_blobs_moved_not_copied(void **state) {
  fixture *f = *state;
  size_t len;
  uint8_t *bytes = pack_v1_caffemodel(&len, 0, 0);
  Caffe__NetParameter *net = caffe__net_parameter__unpack(&f->ctx->pb_alloc, len, bytes);
  free(bytes);
  assert_non_null(net);
  Caffe__BlobProto *blob = net->layers[0]->blobs[0];
  float *data = blob->data;
  long live = f->count.live;
  assert_int_equal(ns_upgrade_net(f->ctx, &net, "model.caffemodel", NULL), NS_OK);
  assert_ptr_equal(net->layer[0]->blobs[0], blob);
  assert_ptr_equal(net->layer[0]->blobs[0]->data, data);
  /* and no more live allocations than before: nothing was duplicated
   * beyond the handful of new layer/param messages */
  assert_true(f->count.live <= live + 8);
  ns_net_param_free(f->ctx, net);
}

static void test_v1_errors(void **state) {
  fixture *f = *state;
  size_t len;
  Caffe__NetParameter *net;
  uint8_t *bytes = pack_v1_caffemodel(&len, 1, 0);
  assert_int_equal(ns_parse_net_param(f->ctx, bytes, len, "bad.caffemodel", &net, NULL),
                   NS_ERR_INPUT);
  free(bytes);
  assert_null(net);
  assert_contains(ns_ctx_error(f->ctx), "bad.caffemodel");
  assert_contains(ns_ctx_error(f->ctx), "\"fc\"");
  assert_contains(ns_ctx_error(f->ctx), "99");
  bytes = pack_v1_caffemodel(&len, 0, 1);
  assert_int_equal(ns_parse_net_param(f->ctx, bytes, len, "bad.caffemodel", &net, NULL),
                   NS_ERR_INPUT);
  free(bytes);
  assert_contains(ns_ctx_error(f->ctx), "\"fc\"");
  assert_contains(ns_ctx_error(f->ctx), "blob_share_mode");
}

/* ---- V0 ----------------------------------------------------------------- */

static void test_v0_padding_fixture(void **state) {
  fixture *f = *state;
  char path[1024], want_path[1024];
  tu_path(path, sizeof path, tu_test_dir(), "data/legacy/v0_padded.prototxt");
  tu_path(want_path, sizeof want_path, tu_test_dir(), "data/legacy/v0_padded.current.prototxt");
  char *text = read_text_file(path);
  assert_non_null(text);
  Caffe__NetParameter *raw = parse_raw(f->ctx, text);
  assert_true(ns_net_needs_v0_upgrade(raw));
  ns_net_param_free(f->ctx, raw);
  free(text);
  Caffe__NetParameter *net;
  int what;
  if (ns_load_net_param(f->ctx, path, &net, &what) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(what, NS_UPGRADED_V0 | NS_UPGRADED_V1 | NS_UPGRADED_INPUT);
  assert_int_equal(net->n_layer, 8); /* input + 9 layers - 2 padding layers */
  assert_string_equal(net->layer[1]->bottom[0], "data");
  assert_int_equal(net->layer[1]->convolution_param->n_pad, 1);
  assert_int_equal(net->layer[1]->convolution_param->pad[0], 2);
  assert_int_equal(net->layer[3]->pooling_param->pad, 1);
  char *want = read_text_file(want_path);
  assert_non_null(want);
  assert_net_equals_text(f->ctx, net, want);
  free(want);
  assert_contains(f->warnings, "V0");
  ns_net_param_free(f->ctx, net);
}

/* V0 data-layer fields: source/batchsize/... to the type's param,
 * scale/meanfile/cropsize/mirror to transform_param. */
static void test_v0_data_layers(void **state) {
  fixture *f = *state;
  static const char v0[] =
      "name: \"v0data\"\n"
      "layers { layer { name: \"mnist\" type: \"data\" source: \"train_db\"\n"
      "  meanfile: \"mean.binaryproto\" batchsize: 64 cropsize: 28 mirror: true\n"
      "  scale: 0.00390625 rand_skip: 10 } top: \"data\" top: \"label\" }\n"
      "layers { layer { name: \"img\" type: \"images\" source: \"list.txt\" batchsize: 2\n"
      "  shuffle_images: true new_height: 32 new_width: 40 rand_skip: 3 }\n"
      "  top: \"img\" top: \"img_label\" }\n"
      "layers { layer { name: \"win\" type: \"window_data\" source: \"windows.txt\" batchsize: 8\n"
      "  det_fg_threshold: 0.6 det_bg_threshold: 0.4 det_fg_fraction: 0.3\n"
      "  det_context_pad: 16 det_crop_mode: \"square\" } top: \"win\" top: \"win_label\" }\n"
      "layers { layer { name: \"h5\" type: \"hdf5_data\" source: \"h5list\" batchsize: 5 }\n"
      "  top: \"h5d\" }\n"
      "layers { layer { name: \"cat\" type: \"concat\" concat_dim: 0 }\n"
      "  bottom: \"data\" bottom: \"img\" top: \"cat\" }\n"
      "layers { layer { name: \"out\" type: \"hdf5_output\"\n"
      "  hdf5_output_param { file_name: \"out.h5\" } } bottom: \"cat\" bottom: \"h5d\" }\n"
      "layers { layer { name: \"loss\" type: \"infogain_loss\" source: \"H.binaryproto\" }\n"
      "  bottom: \"cat\" bottom: \"label\" }\n"
      "force_backward: true\n";
  static const char want[] =
      "name: \"v0data\" force_backward: true\n"
      "layer { name: \"mnist\" type: \"Data\" top: \"data\" top: \"label\"\n"
      "  transform_param { scale: 0.00390625 mirror: true crop_size: 28\n"
      "    mean_file: \"mean.binaryproto\" }\n"
      "  data_param { source: \"train_db\" batch_size: 64 rand_skip: 10 } }\n"
      "layer { name: \"img\" type: \"ImageData\" top: \"img\" top: \"img_label\"\n"
      "  image_data_param { source: \"list.txt\" batch_size: 2 rand_skip: 3 shuffle: true\n"
      "    new_height: 32 new_width: 40 } }\n"
      "layer { name: \"win\" type: \"WindowData\" top: \"win\" top: \"win_label\"\n"
      "  window_data_param { source: \"windows.txt\" batch_size: 8 fg_threshold: 0.6\n"
      "    bg_threshold: 0.4 fg_fraction: 0.3 context_pad: 16 crop_mode: \"square\" } }\n"
      "layer { name: \"h5\" type: \"HDF5Data\" top: \"h5d\"\n"
      "  hdf5_data_param { source: \"h5list\" batch_size: 5 } }\n"
      "layer { name: \"cat\" type: \"Concat\" bottom: \"data\" bottom: \"img\" top: \"cat\"\n"
      "  concat_param { concat_dim: 0 } }\n"
      "layer { name: \"out\" type: \"HDF5Output\" bottom: \"cat\" bottom: \"h5d\"\n"
      "  hdf5_output_param { file_name: \"out.h5\" } }\n"
      "layer { name: \"loss\" type: \"InfogainLoss\" bottom: \"cat\" bottom: \"label\"\n"
      "  infogain_loss_param { source: \"H.binaryproto\" } }\n";
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, v0, &what);
  assert_int_equal(what, NS_UPGRADED_V0 | NS_UPGRADED_V1);
  assert_net_equals_text(f->ctx, net, want);
  ns_net_param_free(f->ctx, net);
}

/* A V0 field the layer type does not take: Caffe logs and drops it. */
static void test_v0_misplaced_field(void **state) {
  fixture *f = *state;
  int what;
  Caffe__NetParameter *net = upgrade_text(
      f->ctx,
      "input: \"data\" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n"
      "layers { layer { name: \"r\" type: \"relu\" num_output: 3 kernelsize: 2 } bottom: \"data\""
      " top: \"r\" }\n",
      &what);
  assert_contains(f->warnings, "test.prototxt");
  assert_contains(f->warnings, "\"r\"");
  assert_contains(f->warnings, "num_output");
  assert_contains(f->warnings, "kernelsize");
  assert_net_equals_text(f->ctx, net,
                         "layer { name: \"input\" type: \"Input\" top: \"data\"\n"
                         "  input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }\n"
                         "layer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" }\n");
  ns_net_param_free(f->ctx, net);
}

static void expect_upgrade_error(fixture *f, const char *text, const char *needle1,
                                 const char *needle2) {
  Caffe__NetParameter *net = parse_raw(f->ctx, text);
  assert_int_equal(ns_upgrade_net(f->ctx, &net, "bad.prototxt", NULL), NS_ERR_INPUT);
  assert_contains(ns_ctx_error(f->ctx), "bad.prototxt");
  assert_contains(ns_ctx_error(f->ctx), needle1);
  if (needle2) assert_contains(ns_ctx_error(f->ctx), needle2);
  ns_net_param_free(f->ctx, net); /* the half-upgraded net still frees */
  ns_ctx_clear_error(f->ctx);
}

static void test_v0_errors(void **state) {
  fixture *f = *state;
  expect_upgrade_error(f, "layers { layer { name: \"q\" type: \"quantum\" } top: \"q\" }", "\"q\"",
                       "quantum");
  expect_upgrade_error(f,
                       "input: \"data\" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n"
                       "layers { layer { name: \"p\" type: \"padding\" pad: 1 } bottom: \"data\""
                       " top: \"p\" }\n"
                       "layers { layer { name: \"r\" type: \"relu\" } bottom: \"p\" top: \"r\" }",
                       "\"r\"", "padding");
  expect_upgrade_error(f,
                       "layers { layer { name: \"c\" type: \"conv\" } bottom: \"nowhere\""
                       " top: \"c\" }",
                       "\"c\"", "nowhere");
  /* a padded conv takes exactly one input */
  expect_upgrade_error(
      f,
      "input: \"a\" input: \"b\"\n"
      "layers { layer { name: \"p\" type: \"padding\" } bottom: \"a\" top: \"p\" }\n"
      "layers { layer { name: \"c\" type: \"conv\" } bottom: \"p\" bottom: \"b\""
      " top: \"c\" }",
      "\"c\"", "single");
}

/* ---- input fields ------------------------------------------------------- */

static void test_input_dim(void **state) {
  fixture *f = *state;
  static const char text[] =
      "name: \"n\" input: \"a\" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4\n"
      "input: \"b\" input_dim: 5 input_dim: 6 input_dim: 7 input_dim: 8\n"
      "layer { name: \"c\" type: \"Concat\" bottom: \"a\" bottom: \"b\" top: \"c\" }\n";
  static const char want[] =
      "name: \"n\"\n"
      "layer { name: \"input\" type: \"Input\" top: \"a\" top: \"b\" input_param {\n"
      "  shape { dim: 1 dim: 2 dim: 3 dim: 4 } shape { dim: 5 dim: 6 dim: 7 dim: 8 } } }\n"
      "layer { name: \"c\" type: \"Concat\" bottom: \"a\" bottom: \"b\" top: \"c\" }\n";
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, text, &what);
  assert_int_equal(what, NS_UPGRADED_INPUT);
  assert_int_equal(net->n_input + net->n_input_dim + net->n_input_shape, 0);
  assert_net_equals_text(f->ctx, net, want);
  assert_contains(f->warnings, "Input layer");
  ns_net_param_free(f->ctx, net);
}

static void test_input_shape(void **state) {
  fixture *f = *state;
  static const char text[] =
      "input: \"a\" input_shape { dim: 1 dim: 3 } input: \"b\" input_shape { dim: 2 }\n"
      "layer { name: \"s\" type: \"Silence\" bottom: \"a\" bottom: \"b\" }\n";
  static const char want[] =
      "layer { name: \"input\" type: \"Input\" top: \"a\" top: \"b\"\n"
      "  input_param { shape { dim: 1 dim: 3 } shape { dim: 2 } } }\n"
      "layer { name: \"s\" type: \"Silence\" bottom: \"a\" bottom: \"b\" }\n";
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, text, &what);
  assert_int_equal(what, NS_UPGRADED_INPUT);
  assert_net_equals_text(f->ctx, net, want);
  ns_net_param_free(f->ctx, net);
}

static void test_input_errors(void **state) {
  fixture *f = *state;
  expect_upgrade_error(f, "input: \"a\" input_dim: 1 input_dim: 2 input_dim: 3", "input_dim",
                       "1 input");
  expect_upgrade_error(f,
                       "input: \"a\" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4"
                       " input_dim: 5",
                       "input_dim", NULL);
  expect_upgrade_error(f, "input: \"a\" input: \"b\" input_shape { dim: 1 }", "input_shape",
                       "2 input");
}

/* An input with no dims (old caffemodels) is dropped, no layer added. */
static void test_input_without_dims(void **state) {
  fixture *f = *state;
  int what;
  Caffe__NetParameter *net =
      upgrade_text(f->ctx, "input: \"data\" layer { name: \"r\" type: \"ReLU\" }", &what);
  assert_int_equal(what, NS_UPGRADED_INPUT);
  assert_int_equal(net->n_input, 0);
  assert_int_equal(net->n_layer, 1);
  assert_string_equal(net->layer[0]->name, "r");
  ns_net_param_free(f->ctx, net);
}

/* ---- data transformation ------------------------------------------------ */

static void test_data_transform(void **state) {
  fixture *f = *state;
  static const char v1[] =
      "layers { name: \"d\" type: DATA top: \"data\" top: \"label\"\n"
      "  data_param { source: \"db\" batch_size: 4 scale: 0.5 mean_file: \"m.binaryproto\"\n"
      "    crop_size: 7 mirror: true backend: LMDB } include { phase: TRAIN } }\n"
      "layers { name: \"i\" type: IMAGE_DATA top: \"i\" top: \"il\"\n"
      "  image_data_param { source: \"l.txt\" crop_size: 3 } transform_param { mean_value: 104 } "
      "}\n"
      "layers { name: \"w\" type: WINDOW_DATA top: \"w\" top: \"wl\"\n"
      "  window_data_param { source: \"w.txt\" mirror: false scale: 2 } }\n"
      "layers { name: \"c\" type: CONVOLUTION bottom: \"data\" top: \"c\"\n"
      "  data_param { scale: 3 } }\n";
  static const char want[] =
      "layer { name: \"d\" type: \"Data\" top: \"data\" top: \"label\" include { phase: TRAIN }\n"
      "  transform_param { scale: 0.5 mirror: true crop_size: 7 mean_file: \"m.binaryproto\" }\n"
      "  data_param { source: \"db\" batch_size: 4 backend: LMDB } }\n"
      "layer { name: \"i\" type: \"ImageData\" top: \"i\" top: \"il\"\n"
      "  transform_param { crop_size: 3 mean_value: 104 } image_data_param { source: \"l.txt\" } "
      "}\n"
      "layer { name: \"w\" type: \"WindowData\" top: \"w\" top: \"wl\"\n"
      "  transform_param { scale: 2 mirror: false } window_data_param { source: \"w.txt\" } }\n"
      /* only data-layer types are touched, as in Caffe */
      "layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\"\n"
      "  data_param { scale: 3 } }\n";
  Caffe__NetParameter *raw = parse_raw(f->ctx, v1);
  assert_true(ns_net_needs_data_upgrade(raw));
  ns_net_param_free(f->ctx, raw);
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, v1, &what);
  assert_int_equal(what, NS_UPGRADED_V1 | NS_UPGRADED_DATA_TRANSFORM);
  assert_net_equals_text(f->ctx, net, want);
  assert_contains(f->warnings, "transform_param");
  ns_net_param_free(f->ctx, net);
}

/* ---- BatchNorm ---------------------------------------------------------- */

static void test_batchnorm(void **state) {
  fixture *f = *state;
  static const char text[] =
      "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"x\" top: \"x\"\n"
      "  param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }\n"
      "  batch_norm_param { use_global_stats: true } }\n"
      "layer { name: \"bn2\" type: \"BatchNorm\" bottom: \"x\" top: \"y\" param { lr_mult: 0 } }\n"
      "layer { name: \"sc\" type: \"Scale\" bottom: \"y\" top: \"y\"\n"
      "  param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 } }\n";
  static const char want[] =
      "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"x\" top: \"x\"\n"
      "  batch_norm_param { use_global_stats: true } }\n"
      "layer { name: \"bn2\" type: \"BatchNorm\" bottom: \"x\" top: \"y\" param { lr_mult: 0 } }\n"
      "layer { name: \"sc\" type: \"Scale\" bottom: \"y\" top: \"y\"\n"
      "  param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 } }\n";
  Caffe__NetParameter *raw = parse_raw(f->ctx, text);
  assert_true(ns_net_needs_batchnorm_upgrade(raw));
  assert_true(ns_net_needs_upgrade(raw));
  ns_net_param_free(f->ctx, raw);
  int what;
  Caffe__NetParameter *net = upgrade_text(f->ctx, text, &what);
  assert_int_equal(what, NS_UPGRADED_BATCHNORM);
  assert_false(ns_net_needs_upgrade(net));
  assert_net_equals_text(f->ctx, net, want);
  ns_net_param_free(f->ctx, net);
}

/* A current net is left exactly as it was. */
static void test_current_net_untouched(void **state) {
  fixture *f = *state;
  static const char text[] =
      "name: \"cur\" layer { name: \"data\" type: \"Input\" top: \"data\"\n"
      "  input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }\n"
      "layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\"\n"
      "  param { lr_mult: 1 } convolution_param { num_output: 2 kernel_size: 3 } }\n"
      "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"c\" top: \"c\" }\n";
  Caffe__NetParameter *raw = parse_raw(f->ctx, text);
  assert_false(ns_net_needs_upgrade(raw));
  ns_net_param_free(f->ctx, raw);
  int what = -1;
  Caffe__NetParameter *net = upgrade_text(f->ctx, text, &what);
  assert_int_equal(what, 0);
  assert_net_equals_text(f->ctx, net, text);
  assert_string_equal(f->warnings, "");
  ns_net_param_free(f->ctx, net);
}

/* ---- solver ------------------------------------------------------------- */

static Caffe__SolverParameter *parse_solver(ns_ctx *ctx, const char *text) {
  ProtobufCMessage *m = NULL;
  if (ns_text_parse(ctx, text, strlen(text), "solver.prototxt",
                    &caffe__solver_parameter__descriptor, &m) != NS_OK)
    fail_msg("parse: %s", ns_ctx_error(ctx));
  return (Caffe__SolverParameter *)m;
}

static void test_solver_type(void **state) {
  fixture *f = *state;
  static const char *const pairs[][2] = {{"SGD", "SGD"},           {"NESTEROV", "Nesterov"},
                                         {"ADAGRAD", "AdaGrad"},   {"RMSPROP", "RMSProp"},
                                         {"ADADELTA", "AdaDelta"}, {"ADAM", "Adam"}};
  for (size_t i = 0; i < 6; i++) {
    char text[128];
    snprintf(text, sizeof text, "base_lr: 0.01 solver_type: %s", pairs[i][0]);
    Caffe__SolverParameter *s = parse_solver(f->ctx, text);
    int what;
    assert_int_equal(ns_upgrade_solver(f->ctx, s, "solver.prototxt", &what), NS_OK);
    assert_int_equal(what, NS_UPGRADED_SOLVER);
    assert_string_equal(s->type, pairs[i][1]);
    assert_false(s->has_solver_type);
    protobuf_c_message_free_unpacked(&s->base, &f->ctx->pb_alloc);
  }
  /* given both and agreeing: kept */
  Caffe__SolverParameter *s = parse_solver(f->ctx, "solver_type: ADAM type: \"Adam\"");
  assert_int_equal(ns_upgrade_solver(f->ctx, s, "solver.prototxt", NULL), NS_OK);
  assert_string_equal(s->type, "Adam");
  assert_false(s->has_solver_type);
  protobuf_c_message_free_unpacked(&s->base, &f->ctx->pb_alloc);
  /* given both and disagreeing: Caffe refuses */
  s = parse_solver(f->ctx, "solver_type: NESTEROV type: \"Adam\"");
  assert_int_equal(ns_upgrade_solver(f->ctx, s, "solver.prototxt", NULL), NS_ERR_INPUT);
  assert_contains(ns_ctx_error(f->ctx), "solver.prototxt");
  assert_contains(ns_ctx_error(f->ctx), "Nesterov");
  protobuf_c_message_free_unpacked(&s->base, &f->ctx->pb_alloc);
  /* already current: nothing to do */
  s = parse_solver(f->ctx, "type: \"RMSProp\"");
  int what = -1;
  assert_int_equal(ns_upgrade_solver(f->ctx, s, "solver.prototxt", &what), NS_OK);
  assert_int_equal(what, 0);
  assert_string_equal(s->type, "RMSProp");
  protobuf_c_message_free_unpacked(&s->base, &f->ctx->pb_alloc);
}

/* Nets inside a solver are upgraded too. */
static void test_solver_nets(void **state) {
  fixture *f = *state;
  Caffe__SolverParameter *s = parse_solver(
      f->ctx,
      "net_param { layers { name: \"ip\" type: INNER_PRODUCT blobs_lr: 2 } }\n"
      "test_net_param { input: \"x\" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1 }\n"
      "test_net_param { layer { name: \"ok\" type: \"ReLU\" } }\n");
  int what;
  assert_int_equal(ns_upgrade_solver(f->ctx, s, "solver.prototxt", &what), NS_OK);
  assert_int_equal(what, NS_UPGRADED_V1 | NS_UPGRADED_INPUT);
  assert_string_equal(s->net_param->layer[0]->type, "InnerProduct");
  assert_true(s->net_param->layer[0]->param[0]->lr_mult == 2.0f);
  assert_string_equal(s->test_net_param[0]->layer[0]->type, "Input");
  assert_string_equal(s->test_net_param[1]->layer[0]->name, "ok");
  protobuf_c_message_free_unpacked(&s->base, &f->ctx->pb_alloc);
}

/* ---- allocation failure at every step ----------------------------------- */

static const char alloc_net[] =
    "name: \"alloc\" input: \"data\" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n"
    "layers { name: \"d\" type: DATA top: \"x\" data_param { scale: 2 mean_file: \"m\" } }\n"
    "layers { name: \"c\" type: CONVOLUTION bottom: \"data\" top: \"c\" blobs_lr: 1\n"
    "  blobs_lr: 2 param: \"w\" convolution_param { num_output: 2 kernel_size: 1 } }\n"
    "layers { name: \"r\" type: RELU bottom: \"c\" top: \"c\" include { phase: TEST } }\n";

static void upgrade_under_failures(fixture *f, const char *text) {
  long live = f->count.live;
  for (long k = 0;; k++) {
    Caffe__NetParameter *net = parse_raw(f->ctx, text);
    f->count.fail_after = k;
    ns_status st = ns_upgrade_net(f->ctx, &net, "alloc.prototxt", NULL);
    f->count.fail_after = -1;
    ns_net_param_free(f->ctx, net);
    if (f->count.live != live)
      fail_msg("%ld allocation(s) leaked when allocation %ld failed (%s)", f->count.live - live, k,
               ns_ctx_error(f->ctx));
    if (st == NS_OK) break;
    assert_int_equal(st, NS_ERR_NOMEM);
    ns_ctx_clear_error(f->ctx);
    assert_true(k < 10000);
  }
}

static void test_allocation_failures(void **state) {
  fixture *f = *state;
  long live = f->count.live;
  upgrade_under_failures(f, alloc_net);
  char path[1024];
  tu_path(path, sizeof path, tu_test_dir(), "data/legacy/v0_padded.prototxt");
  char *v0 = read_text_file(path);
  assert_non_null(v0);
  upgrade_under_failures(f, v0);
  free(v0);
  upgrade_under_failures(f, "input: \"a\" input_shape { dim: 2 } layer { name: \"r\" }");
  assert_int_equal(f->count.live, live); /* teardown checks the rest */
}

/* ---- Caffe's own legacy prototxts ---------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The upgraded net written as text reads back to the same message and
 * needs no further upgrade: the output is valid current-format text. */
static void assert_text_round_trip(ns_ctx *ctx, const char *name, const Caffe__NetParameter *net) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  if (ns_net_param_to_text(ctx, net, &sb) != NS_OK) fail_msg("%s: %s", name, ns_ctx_error(ctx));
  ProtobufCMessage *m = NULL;
  if (ns_text_parse(ctx, sb.data, sb.len, name, &caffe__net_parameter__descriptor, &m) != NS_OK)
    fail_msg("%s: re-parse: %s", name, ns_ctx_error(ctx));
  ns_strbuf_free(&sb);
  Caffe__NetParameter *back = (Caffe__NetParameter *)m;
  assert_false(ns_net_needs_upgrade(back));
  assert_true(same_bytes(back, net));
  ns_net_param_free(ctx, back);
}

static Caffe__NetParameter *load_corpus_file(fixture *f, const char *dir, const char *name,
                                             int *what) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  Caffe__NetParameter *net;
  if (ns_load_net_param(f->ctx, path, &net, what) != NS_OK)
    fail_msg("%s: %s", path, ns_ctx_error(f->ctx));
  return net;
}

/* Upgrades every prototxt in prototxt/<sub>; calls fn on each. */
static int for_each_corpus_file(fixture *f, const char *sub, int expect_bits,
                                void (*fn)(fixture *, const char *, Caffe__NetParameter *)) {
  const char *shared = tu_shared_dir();
  if (!shared) return -1;
  char dir[2048];
  snprintf(dir, sizeof dir, "%s/data/prototxt/%s", shared, sub);
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!ends_with(e->d_name, ".prototxt")) continue;
    int what;
    Caffe__NetParameter *net = load_corpus_file(f, dir, e->d_name, &what);
    if ((what & expect_bits) != expect_bits)
      fail_msg("%s/%s: upgrade bits %#x", sub, e->d_name, (unsigned)what);
    assert_int_equal(net->n_layers, 0);
    assert_int_equal(net->n_input, 0);
    for (size_t i = 0; i < net->n_layer; i++)
      if (!net->layer[i]->type || !*net->layer[i]->type)
        fail_msg("%s/%s: layer %zu has no type", sub, e->d_name, i);
    assert_text_round_trip(f->ctx, e->d_name, net);
    if (fn) fn(f, e->d_name, net);
    ns_net_param_free(f->ctx, net);
    n++;
  }
  closedir(d);
  return n;
}

static int streq(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static int same_names(char **a, size_t na, char **b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++)
    if (!streq(a[i], b[i])) return 0;
  return 1;
}

static int same_message(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
  if (na != nb) return 0;
  uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
  protobuf_c_message_pack(a, pa);
  protobuf_c_message_pack(b, pb);
  int same = memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

/* The one difference between upgraded legacy files and Caffe's current
 * versions of them, found by this test: Caffe's UpgradeNetInput names the
 * Input layer "input", while the hand-edited current files name it after its
 * top ("data").  Same layer otherwise. */
static int same_but_input_name(Caffe__LayerParameter *up, const Caffe__LayerParameter *cur) {
  if (!streq(up->type, "Input") || !streq(cur->type, "Input") || !streq(up->name, "input"))
    return 0;
  char *name = up->name;
  up->name = cur->name;
  int same = same_message(&up->base, &cur->base);
  up->name = name;
  return same;
}

/* Upgraded legacy net vs the current file: every layer and every net field
 * the same, byte for byte, but for the Input layer's name. */
static void compare_nets(fixture *f, const char *what, Caffe__NetParameter *up,
                         Caffe__NetParameter *cur) {
  int differs = cur->n_layer != up->n_layer;
  for (size_t i = 0; !differs && i < up->n_layer; i++) {
    Caffe__LayerParameter *a = up->layer[i], *b = cur->layer[i];
    if (!(streq(a->type, b->type) && same_names(a->bottom, a->n_bottom, b->bottom, b->n_bottom) &&
          same_names(a->top, a->n_top, b->top, b->n_top))) {
      print_message("%s: layer %zu: upgraded \"%s\" (%s) vs current \"%s\" (%s)\n", what, i,
                    a->name, a->type, b->name, b->type);
      differs = 1;
    } else if (same_but_input_name(a, b)) {
      print_message(
          "%s: layer %zu: Input layer named \"%s\" by the upgrade, \"%s\" in the "
          "current file\n",
          what, i, a->name, b->name);
    } else if (!same_message(&a->base, &b->base)) {
      print_message("%s: layer %zu (\"%s\"): same graph, different fields\n", what, i, a->name);
      print_net(f->ctx, "upgraded", up);
      differs = 1;
    }
  }
  size_t nu = up->n_layer, nc = cur->n_layer;
  up->n_layer = cur->n_layer = 0;
  int net_fields_same = same_bytes(up, cur);
  up->n_layer = nu;
  cur->n_layer = nc;
  if (differs || !net_fields_same)
    fail_msg("%s: the upgraded net differs from the current file (%zu vs %zu layers)", what, nu,
             nc);
}

static void compare_with_current(fixture *f, const char *name, Caffe__NetParameter *up) {
  char dir[2048], path[2300];
  snprintf(dir, sizeof dir, "%s/data/prototxt/current", tu_shared_dir());
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  if (stat(path, &st) != 0) return;
  int what;
  Caffe__NetParameter *cur = load_corpus_file(f, dir, name, &what);
  assert_int_equal(what, 0);
  compare_nets(f, name, up, cur);
  ns_net_param_free(f->ctx, cur);
}

static void test_corpus_legacy_v1(void **state) {
  fixture *f = *state;
  int n = for_each_corpus_file(f, "legacy_v1", NS_UPGRADED_V1, compare_with_current);
  if (n < 0) skip();
  print_message("legacy_v1: %d files upgraded\n", n);
  assert_true(n > 0);
}

static void test_corpus_legacy_v0(void **state) {
  fixture *f = *state;
  int n = for_each_corpus_file(f, "legacy_v0", NS_UPGRADED_V0 | NS_UPGRADED_V1, NULL);
  if (n < 0) skip();
  print_message("legacy_v0: %d files upgraded\n", n);
  assert_true(n > 0);
}

/* Legacy files whose current version has another name in Caffe's tree. */
static void test_corpus_renamed_pairs(void **state) {
  fixture *f = *state;
  static const char *const pairs[][2] = {
      {"legacy_v1/imagenet__bvlc_caffenet_full_conv.prototxt",
       "current/net_surgery__bvlc_caffenet_full_conv.prototxt"},
      {"legacy_v0/lenet.prototxt", "current/mnist__lenet.prototxt"},
      {"legacy_v0/cifar10_quick.prototxt", "current/cifar10__cifar10_quick.prototxt"},
  };
  const char *shared = tu_shared_dir();
  if (!shared) skip();
  char dir[2048];
  snprintf(dir, sizeof dir, "%s/data/prototxt", shared);
  int compared = 0;
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    char p0[2300], p1[2300];
    struct stat st;
    snprintf(p0, sizeof p0, "%s/%s", dir, pairs[i][0]);
    snprintf(p1, sizeof p1, "%s/%s", dir, pairs[i][1]);
    if (stat(p0, &st) != 0 || stat(p1, &st) != 0) continue;
    int what;
    Caffe__NetParameter *up = load_corpus_file(f, dir, pairs[i][0], &what);
    Caffe__NetParameter *cur = load_corpus_file(f, dir, pairs[i][1], &what);
    compare_nets(f, pairs[i][0], up, cur);
    ns_net_param_free(f->ctx, up);
    ns_net_param_free(f->ctx, cur);
    compared++;
  }
  if (compared == 0) skip();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_v1_conv_blobs_lr, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_layer_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_all_params_fixture, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_every_type_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_untyped_layer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_with_current_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_caffemodel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_blobs_moved_not_copied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v0_padding_fixture, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v0_data_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v0_misplaced_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v0_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_dim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_without_dims, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_transform, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batchnorm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_current_net_untouched, setup, teardown),
      cmocka_unit_test_setup_teardown(test_solver_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_solver_nets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corpus_legacy_v1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corpus_legacy_v0, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corpus_renamed_pairs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
