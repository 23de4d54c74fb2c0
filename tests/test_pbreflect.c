/* format/pbreflect: the presence rules, scalar conversions and field
 * lookup that the text format and the upgrade rules share, checked on
 * Caffe's own messages against what protobuf's has_*() and C's conversion
 * rules say (worked out in the comments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/ctx.h"
#include "format/pbreflect.h"
#include "netsurg.h"

static pbfield *field(const pbmsg *m, const char *name) {
  pbfield *f = ns_pb_field_named(m->descriptor, name, strlen(name));
  assert_non_null(f);
  return f;
}

static void test_presence(void **state) {
  (void)state;
  Caffe__LayerParameter l;
  caffe__layer_parameter__init(&l);
  pbmsg *m = &l.base;
  /* nothing set: a NULL string, no has_ flag, no sub-message, no values */
  assert_false(ns_pb_field_present(m, field(m, "name")));
  assert_false(ns_pb_field_present(m, field(m, "phase")));
  assert_false(ns_pb_field_present(m, field(m, "convolution_param")));
  assert_false(ns_pb_field_present(m, field(m, "bottom")));
  char name[] = "conv1", *bottoms[1] = {name};
  Caffe__ConvolutionParameter cp;
  caffe__convolution_parameter__init(&cp);
  l.name = name;
  l.convolution_param = &cp;
  l.n_bottom = 1;
  l.bottom = bottoms;
  assert_true(ns_pb_field_present(m, field(m, "name")));
  assert_true(ns_pb_field_present(m, field(m, "convolution_param")));
  assert_true(ns_pb_field_present(m, field(m, "bottom")));
  /* a scalar counts once its has_ flag is marked, whatever its value */
  pbfield *phase = field(m, "phase");
  assert_false(ns_pb_field_present(m, phase));
  ns_pb_mark_present(m, phase);
  assert_true(l.has_phase);
  assert_true(ns_pb_field_present(m, phase));
  /* a string pointing at its default (FillerParameter's type "constant")
   * is unset, as protobuf-c's packer and init leave it; the same text in
   * a string of its own is set */
  Caffe__FillerParameter fp;
  caffe__filler_parameter__init(&fp);
  pbfield *type = field(&fp.base, "type");
  assert_ptr_equal(fp.type, type->default_value);
  assert_false(ns_pb_field_present(&fp.base, type));
  char constant[] = "constant";
  fp.type = constant;
  assert_true(ns_pb_field_present(&fp.base, type));
}

static void test_scalar_conversions(void **state) {
  (void)state;
  unsigned char buf[8];
  /* C's rules: -1 into uint32 wraps to 2^32 - 1 (as Caffe's
   * set_x(int32 -> uint32)); a float rounds to nearest; bool is != 0 */
  assert_int_equal(ns_pb_scalar_put(buf, PROTOBUF_C_TYPE_UINT32, -1.0), 4);
  uint32_t u;
  memcpy(&u, buf, 4);
  assert_int_equal(u, 4294967295u);
  assert_true(ns_pb_scalar_get(buf, PROTOBUF_C_TYPE_UINT32) == 4294967295.0);
  assert_int_equal(ns_pb_scalar_put(buf, PROTOBUF_C_TYPE_INT32, -7.9), 4);
  assert_true(ns_pb_scalar_get(buf, PROTOBUF_C_TYPE_INT32) == -7.0); /* truncation */
  assert_int_equal(ns_pb_scalar_put(buf, PROTOBUF_C_TYPE_FLOAT, 0.1), 4);
  assert_true(ns_pb_scalar_get(buf, PROTOBUF_C_TYPE_FLOAT) == (double)0.1f);
  assert_int_equal(ns_pb_scalar_put(buf, PROTOBUF_C_TYPE_BOOL, 0.5), sizeof(protobuf_c_boolean));
  assert_true(ns_pb_scalar_get(buf, PROTOBUF_C_TYPE_BOOL) == 1.0);
  assert_int_equal(ns_pb_scalar_put(buf, PROTOBUF_C_TYPE_STRING, 1.0), 0); /* not a scalar */
  assert_int_equal(ns_pb_element_size(PROTOBUF_C_TYPE_INT64), 8);
  assert_string_equal(ns_pb_type_name(PROTOBUF_C_TYPE_SFIXED32), "sfixed32");
}

/* Appending grows an array to the exact count: 2 values, then a third. */
static void test_append_and_lookup(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  Caffe__ConvolutionParameter *cp = (Caffe__ConvolutionParameter *)ns_pb_message_new(
      ctx, &caffe__convolution_parameter__descriptor);
  assert_non_null(cp);
  pbfield *pad = field(&cp->base, "pad");
  assert_int_equal(ns_pb_scalar_append(ctx, &cp->base, pad, 1), NS_OK);
  assert_int_equal(ns_pb_scalar_append(ctx, &cp->base, pad, 2), NS_OK);
  assert_int_equal(ns_pb_scalar_append(ctx, &cp->base, pad, 3), NS_OK);
  assert_int_equal(cp->n_pad, 3);
  assert_int_equal(cp->pad[0], 1);
  assert_int_equal(cp->pad[2], 3);
  assert_true(ns_pb_field_present(&cp->base, pad));
  /* appending to a message field is our bug, not the input's */
  Caffe__LayerParameter l;
  caffe__layer_parameter__init(&l);
  assert_int_equal(ns_pb_scalar_append(ctx, &l.base, field(&l.base, "blobs"), 1), NS_ERR_INTERNAL);
  ns_ctx_clear_error(ctx);
  /* lookup by a prefix's length: "pad" in "pad_h" is pad; "pa" is nothing */
  const ProtobufCMessageDescriptor *d = &caffe__convolution_parameter__descriptor;
  assert_ptr_equal(ns_pb_field_named(d, "pad_h", 3), pad);
  assert_null(ns_pb_field_named(d, "pad_h", 2));
  assert_string_equal(ns_pb_field_named(d, "pad_h", 5)->name, "pad_h");
  assert_null(ns_pb_field_named(d, "no_such_field", 13));
  protobuf_c_message_free_unpacked(&cp->base, &ctx->pb_alloc);
  ns_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_presence),
      cmocka_unit_test(test_scalar_conversions),
      cmocka_unit_test(test_append_and_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
