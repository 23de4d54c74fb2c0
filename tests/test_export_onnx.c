/* ns_net_export_onnx through the public API: the bytes written, read
 * back with protobuf-c against ONNX's field numbers (src/export/onnx.proto),
 * hold what was worked out by hand for a small net (in-place values named
 * apart, the dynamic batch, initializers with the params' shapes, external
 * data's entries and side file), and the errors name the layer or the
 * option, leaving no file.  The numbers
 * the models compute are judged by ONNX Runtime in
 * tests/oracle/test_onnx_export.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netsurg.h"
#include "onnx.pb-c.h"
#include "support/testutil.h"

static const char *conv_relu =
    "name: 'tiny'\n"
    "layer { name: 'data' type: 'Input' top: 'data'\n"
    "  input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }\n"
    "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 1 } }\n"
    "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n";

static ns_net *load(ns_ctx *ctx, const char *dir, const char *text) {
  char path[1024];
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  return net;
}

static Onnx__ModelProto *read_model(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, buf);
  assert_non_null(m);
  return m;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
  fail_msg("node %s has no attribute %s", n->name, name);
  return NULL;
}

/* Conv then an in-place ReLU on blob 'conv': Conv writes 'conv@conv',
 * ReLU the last value, named 'conv', the graph's output. */
static void test_conv_relu_graph(void **state) {
  char *dir = tu_mkdtemp(), path[1024];
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load(ctx, dir, conv_relu);
  tu_path(path, sizeof path, dir, "tiny.onnx");
  ns_onnx_summary sum;
  if (ns_net_export_onnx(ctx, net, path, NULL, &sum) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(sum.layers, 2);
  assert_int_equal(sum.nodes, 2);
  assert_int_equal(sum.initializers, 2);
  Onnx__ModelProto *m = read_model(path);
  assert_int_equal(m->ir_version, 7);
  assert_int_equal(m->n_opset_import, 1);
  assert_int_equal(m->opset_import[0]->version, 13);
  const Onnx__GraphProto *g = m->graph;
  assert_string_equal(g->name, "tiny");
  assert_int_equal(g->n_input, 1);
  assert_string_equal(g->input[0]->name, "data");
  const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
  assert_int_equal(s->n_dim, 4);
  assert_string_equal(s->dim[0]->dim_param, "N");
  assert_int_equal(s->dim[1]->dim_value, 3);
  assert_int_equal(g->n_node, 2);
  const Onnx__NodeProto *conv = g->node[0], *relu = g->node[1];
  assert_string_equal(conv->op_type, "Conv");
  assert_string_equal(conv->name, "conv");
  assert_string_equal(conv->input[0], "data");
  assert_string_equal(conv->input[1], "conv/weight");
  assert_string_equal(conv->input[2], "conv/bias");
  assert_string_equal(conv->output[0], "conv@conv");
  const Onnx__AttributeProto *pads = attr(conv, "pads");
  assert_int_equal(pads->n_ints, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(pads->ints[i], 1);
  assert_int_equal(attr(conv, "group")->i, 1);
  assert_string_equal(relu->op_type, "Relu");
  assert_string_equal(relu->input[0], "conv@conv");
  assert_string_equal(relu->output[0], "conv");
  assert_int_equal(g->n_output, 1);
  assert_string_equal(g->output[0]->name, "conv");
  /* the weights: (4, 3, 3, 3) floats, the net's own */
  const Onnx__TensorProto *w = g->initializer[0];
  assert_string_equal(w->name, "conv/weight");
  assert_int_equal(w->n_dims, 4);
  assert_int_equal(w->dims[0], 4);
  assert_int_equal(w->dims[3], 3);
  assert_int_equal(w->raw_data.len, 4 * 3 * 3 * 3 * sizeof(float));
  ns_tensor p = ns_net_param(net, ns_net_find_layer(net, "conv"), 0);
  assert_memory_equal(w->raw_data.data, p.data, w->raw_data.len);
  onnx__model_proto__free_unpacked(m, NULL);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

/* A fixed batch and another opset. */
static void test_options(void **state) {
  char *dir = tu_mkdtemp(), path[1024];
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load(ctx, dir, conv_relu);
  tu_path(path, sizeof path, dir, "fixed.onnx");
  ns_onnx_options o = {17, 1, 0};
  if (ns_net_export_onnx(ctx, net, path, &o, NULL) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  Onnx__ModelProto *m = read_model(path);
  assert_int_equal(m->opset_import[0]->version, 17);
  assert_int_equal(m->ir_version, 8);
  const Onnx__TensorShapeProto *s = m->graph->output[0]->type->tensor_type->shape;
  assert_int_equal(s->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
  assert_int_equal(s->dim[0]->dim_value, 2);
  onnx__model_proto__free_unpacked(m, NULL);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

static void test_errors(void **state) {
  static const char *with_roi_pooling =
      "layer { name: 'data' type: 'Input' top: 'data' top: 'rois'\n"
      "  input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } shape { dim: 1 dim: 5 } } }\n"
      "layer { name: 'pool5' type: 'ROIPooling' bottom: 'data' bottom: 'rois' top: 'y'\n"
      "  roi_pooling_param { pooled_h: 2 pooled_w: 2 } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load(ctx, dir, with_roi_pooling);
  tu_path(path, sizeof path, dir, "x.onnx");
  assert_int_equal(ns_net_export_onnx(ctx, net, path, NULL, NULL), NS_ERR_UNSUPPORTED);
  assert_non_null(
      strstr(ns_ctx_error(ctx), "layer 'pool5' (ROIPooling) cannot be exported to ONNX"));
  assert_non_null(strstr(ns_ctx_error(ctx), "MaxRoiPool"));
  assert_int_not_equal(access(path, F_OK), 0);
  ns_ctx_clear_error(ctx);
  ns_onnx_options o = {10, 0, 0};
  assert_int_equal(ns_net_export_onnx(ctx, net, path, &o, NULL), NS_ERR_USAGE);
  assert_non_null(strstr(ns_ctx_error(ctx), "opset 10"));
  ns_ctx_clear_error(ctx);
  assert_int_equal(ns_net_export_onnx(ctx, net, NULL, NULL, NULL), NS_ERR_USAGE);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

static const char *entry_value(const Onnx__TensorProto *t, const char *key) {
  for (size_t i = 0; i < t->n_external_data; i++)
    if (strcmp(t->external_data[i]->key, key) == 0) return t->external_data[i]->value;
  fail_msg("tensor %s has no external_data entry %s", t->name, key);
  return NULL;
}

/* External data: the conv's (16, 3, 3, 3) weights, 1728 bytes, leave the
 * model for big.onnx.data at offset 0; its 64-byte bias stays inline
 * (under ONNX's 1 KB threshold); the side file holds the net's floats. */
static void test_external_data(void **state) {
  static const char *big_conv =
      "layer { name: 'data' type: 'Input' top: 'data'\n"
      "  input_param { shape { dim: 1 dim: 3 dim: 5 dim: 5 } } }\n"
      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
      "  convolution_param { num_output: 16 kernel_size: 3\n"
      "    weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } } }\n";
  char *dir = tu_mkdtemp(), path[1024], data[1100];
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = load(ctx, dir, big_conv);
  tu_path(path, sizeof path, dir, "big.onnx");
  snprintf(data, sizeof data, "%s.data", path);
  ns_onnx_options o = {0, 0, 1};
  ns_onnx_summary sum;
  if (ns_net_export_onnx(ctx, net, path, &o, &sum) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(sum.external_bytes, 1728);
  Onnx__ModelProto *m = read_model(path);
  const Onnx__TensorProto *w = m->graph->initializer[0], *b = m->graph->initializer[1];
  assert_string_equal(w->name, "conv/weight");
  assert_int_equal(w->data_location, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL);
  assert_false(w->has_raw_data);
  assert_string_equal(entry_value(w, "location"), "big.onnx.data");
  assert_string_equal(entry_value(w, "offset"), "0");
  assert_string_equal(entry_value(w, "length"), "1728");
  assert_false(b->has_data_location && b->data_location);
  assert_int_equal(b->raw_data.len, 64);
  FILE *fp = fopen(data, "rb");
  assert_non_null(fp);
  float floats[432];
  assert_int_equal(fread(floats, sizeof(float), 433, fp), 432);
  fclose(fp);
  ns_tensor p = ns_net_param(net, ns_net_find_layer(net, "conv"), 0);
  assert_memory_equal(floats, p.data, sizeof floats);
  onnx__model_proto__free_unpacked(m, NULL);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_relu_graph),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_external_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
