/* What the layer table tells the rest of the library (ns_layer_ops beyond
 * setup/reshape/forward): receptive-field geometry, multiply-add counts,
 * the rank of legacy weights, frozen statistics, net inputs, ReLU fusion.
 * Expected values are worked by hand from the layers' definitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/layer.h"
#include "netsurg.h"
#include "support/testutil.h"

/* data 1x1x9x9 -> conv 3x3/2 pad 1 (2 outputs, 5x5) -> ReLU in place ->
 * LRN WITHIN_CHANNEL 3 -> MAX pool 2/2 (3x3) -> crop to ref (2x2, offset
 * 1) -> global AVE pool, Flatten -> InnerProduct 3; and a Concat along
 * the height, which has no grid. */
static const char *const net_text =
    "layer { name: 'data' type: 'Input' top: 'data'\n"
    "  input_param { shape { dim: 1 dim: 1 dim: 9 dim: 9 } } }\n"
    "layer { name: 'ref' type: 'Input' top: 'ref'\n"
    "  input_param { shape { dim: 1 dim: 2 dim: 2 dim: 2 } } }\n"
    "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
    "  convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 } }\n"
    "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n"
    "layer { name: 'norm' type: 'LRN' bottom: 'conv' top: 'norm'\n"
    "  lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }\n"
    "layer { name: 'pool' type: 'Pooling' bottom: 'norm' top: 'pool'\n"
    "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
    "layer { name: 'crop' type: 'Crop' bottom: 'pool' bottom: 'ref' top: 'crop'\n"
    "  crop_param { axis: 2 offset: 1 } }\n"
    "layer { name: 'gap' type: 'Pooling' bottom: 'crop' top: 'gap'\n"
    "  pooling_param { pool: AVE global_pooling: true } }\n"
    "layer { name: 'flat' type: 'Flatten' bottom: 'crop' top: 'flat' }\n"
    "layer { name: 'fc' type: 'InnerProduct' bottom: 'flat' top: 'fc'\n"
    "  inner_product_param { num_output: 3 } }\n"
    "layer { name: 'tall' type: 'Concat' bottom: 'crop' bottom: 'crop' top: 'tall'\n"
    "  concat_param { axis: 2 } }\n";

typedef struct loaded {
  char *dir;
  ns_ctx *ctx;
  ns_net *net;
} loaded;

static void load(loaded *f) {
  char path[1024];
  f->dir = tu_mkdtemp();
  assert_non_null(f->dir);
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, net_text, strlen(net_text)), 0);
  f->ctx = ns_ctx_create();
  if (ns_net_load(f->ctx, path, NULL, &f->net) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
}

static void unload(loaded *f) {
  ns_net_destroy(f->net);
  ns_ctx_destroy(f->ctx);
  tu_rmtree(f->dir);
  free(f->dir);
}

/* size, stride, offset (same on both axes) of a blob's field. */
static void expect_field(const loaded *f, const ns_receptive_field *rf, const char *blob,
                         int64_t size, int64_t stride, int64_t offset) {
  const ns_receptive_field *r = &rf[ns_net_find_blob(f->net, blob)];
  if (!r->known) fail_msg("blob '%s': field unknown", blob);
  for (int a = 0; a < 2; a++)
    if (r->size[a] != size || r->stride[a] != stride || r->offset[a] != offset)
      fail_msg("blob '%s' axis %d: size %lld stride %lld offset %lld, expected %lld %lld %lld",
               blob, a, (long long)r->size[a], (long long)r->stride[a], (long long)r->offset[a],
               (long long)size, (long long)stride, (long long)offset);
}

/* size' = size + dilation (kernel - 1) stride, offset' = offset - pad
 * stride, stride' = stride * layer stride, layer by layer. */
static void test_geometry_from_the_table(void **state) {
  loaded f;
  load(&f);
  ns_receptive_field rf[16];
  assert_int_equal(ns_net_receptive_fields(f.ctx, f.net, rf), NS_OK);
  expect_field(&f, rf, "data", 1, 1, 0);
  expect_field(&f, rf, "conv", 3, 2, -1); /* 1 + 2*1; 0 - 1*1 */
  expect_field(&f, rf, "norm", 7, 2, -3); /* 3 + 2*2; -1 - 1*2 */
  expect_field(&f, rf, "pool", 9, 4, -3); /* 7 + 1*2 */
  expect_field(&f, rf, "crop", 9, 4, 1);  /* starts 1 cell (4 px) in */
  expect_field(&f, rf, "gap", 13, 4, 1);  /* the 2x2 plane: 9 + 1*4 */
  expect_field(&f, rf, "flat", 13, 4, 1); /* the same plane */
  expect_field(&f, rf, "fc", 13, 4, 1);   /* all of a 2-D bottom: nothing more */
  assert_false(rf[ns_net_find_blob(f.net, "tall")].known);
  unload(&f);
}

/* 2 FLOP per multiply-add: conv 50 outputs of 1*3*3, fc 3 outputs of
 * 2*2*2; layers without a count report 0. */
static void test_flops_from_the_table(void **state) {
  loaded f;
  load(&f);
  assert_true(ns_net_layer_flops(f.net, ns_net_find_layer(f.net, "conv")) == 2.0 * 50 * 9);
  assert_true(ns_net_layer_flops(f.net, ns_net_find_layer(f.net, "fc")) == 2.0 * 3 * 8);
  assert_true(ns_net_layer_flops(f.net, ns_net_find_layer(f.net, "pool")) == 0);
  assert_true(ns_net_layer_flops(f.net, ns_net_find_layer(f.net, "norm")) == 0);
  assert_int_equal(ns_net_input_count(f.net), 2);
  assert_int_equal(ns_net_input_blob(f.net, 1), ns_net_find_blob(f.net, "ref"));
  unload(&f);
}

/* The rank a legacy 4-D blob is read at (num, channels, height, width). */
static void test_legacy_weight_rank(void **state) {
  assert_int_equal(ns_layer_param_rank("Convolution", 0), 4);
  assert_int_equal(ns_layer_param_rank("Deconvolution", 0), 4);
  assert_int_equal(ns_layer_param_rank("InnerProduct", 0), 2);
  assert_int_equal(ns_layer_param_rank("Embed", 0), 2);
  assert_int_equal(ns_layer_param_rank("Convolution", 1), 1);
  assert_int_equal(ns_layer_param_rank("Scale", 0), 1);
  assert_int_equal(ns_layer_param_rank("NoSuchLayer", 0), 1);
}

static void test_flags(void **state) {
  assert_true(ns_layer_find("BatchNorm")->params_are_statistics);
  assert_false(ns_layer_find("Scale")->params_are_statistics);
  assert_true(ns_layer_find("Input")->is_net_input);
  assert_false(ns_layer_find("NpyData")->is_net_input);
  assert_non_null(ns_layer_find("ReLU")->fuses_as_relu);
  assert_null(ns_layer_find("PReLU")->fuses_as_relu);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_geometry_from_the_table),
      cmocka_unit_test(test_flops_from_the_table),
      cmocka_unit_test(test_legacy_weight_rank),
      cmocka_unit_test(test_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
