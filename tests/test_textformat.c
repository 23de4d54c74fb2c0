/* src/format/textformat: the generic prototxt reader and writer.  Expected
 * values are written out by hand from the text format's definition
 * (protobuf's TextFormat rules), positions are counted by hand, and round
 * trips are checked by comparing binary packings (protobuf-c packs equal
 * messages to identical bytes).  A hand-built descriptor covers the field
 * types, oneofs, proto3 fields and recursion Caffe's schema lacks. */
#include <dirent.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/ctx.h"
#include "core/strbuf.h"
#include "format/textformat.h"
#include "support/testutil.h"

/* ---- a hand-built descriptor with every type Caffe's schema lacks ----- */

typedef struct AllTypes AllTypes;
struct AllTypes {
  ProtobufCMessage base;
  protobuf_c_boolean has_s32;
  int32_t s32; /* 1 sint32 */
  protobuf_c_boolean has_sf32;
  int32_t sf32; /* 2 sfixed32 */
  protobuf_c_boolean has_f32;
  uint32_t f32; /* 3 fixed32 */
  protobuf_c_boolean has_u64;
  uint64_t u64; /* 4 uint64 */
  protobuf_c_boolean has_f64;
  uint64_t f64; /* 5 fixed64 */
  protobuf_c_boolean has_s64;
  int64_t s64; /* 6 sint64 */
  protobuf_c_boolean has_sf64;
  int64_t sf64;         /* 7 sfixed64 */
  uint32_t choice_case; /* oneof choice: 8 pick_int, 9 pick_str */
  union {
    int32_t pick_int;
    char *pick_str;
  };
  int32_t plain;   /* 10 proto3-style int32 (no presence) */
  char *plain_str; /* 11 proto3-style string */
  AllTypes *child; /* 12 optional AllTypes (recursion) */
  size_t n_kids;
  AllTypes **kids; /* 13 repeated AllTypes */
  size_t n_u64s;
  uint64_t *u64s; /* 14 repeated uint64 */
};

static const ProtobufCMessageDescriptor all_types_descriptor;

static void all_types_init(ProtobufCMessage *m) {
  memset(m, 0, sizeof(AllTypes));
  m->descriptor = &all_types_descriptor;
}

#define OPT(name, id, type, field)                                              \
  {                                                                             \
    name, id, PROTOBUF_C_LABEL_OPTIONAL, type, offsetof(AllTypes, has_##field), \
        offsetof(AllTypes, field), NULL, NULL, 0, 0, NULL, NULL                 \
  }

static const ProtobufCFieldDescriptor all_types_fields[14] = {
    OPT("s32", 1, PROTOBUF_C_TYPE_SINT32, s32),
    OPT("sf32", 2, PROTOBUF_C_TYPE_SFIXED32, sf32),
    OPT("f32", 3, PROTOBUF_C_TYPE_FIXED32, f32),
    OPT("u64", 4, PROTOBUF_C_TYPE_UINT64, u64),
    OPT("f64", 5, PROTOBUF_C_TYPE_FIXED64, f64),
    OPT("s64", 6, PROTOBUF_C_TYPE_SINT64, s64),
    OPT("sf64", 7, PROTOBUF_C_TYPE_SFIXED64, sf64),
    {"pick_int", 8, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32,
     offsetof(AllTypes, choice_case), offsetof(AllTypes, pick_int), NULL, NULL,
     PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
    {"pick_str", 9, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
     offsetof(AllTypes, choice_case), offsetof(AllTypes, pick_str), NULL, NULL,
     PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
    {"plain", 10, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0, offsetof(AllTypes, plain), NULL,
     NULL, 0, 0, NULL, NULL},
    {"plain_str", 11, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0,
     offsetof(AllTypes, plain_str), NULL, NULL, 0, 0, NULL, NULL},
    {"child", 12, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0, offsetof(AllTypes, child),
     &all_types_descriptor, NULL, 0, 0, NULL, NULL},
    {"kids", 13, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE, offsetof(AllTypes, n_kids),
     offsetof(AllTypes, kids), &all_types_descriptor, NULL, 0, 0, NULL, NULL},
    {"u64s", 14, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_UINT64, offsetof(AllTypes, n_u64s),
     offsetof(AllTypes, u64s), NULL, NULL, 0, 0, NULL, NULL},
};

/* Field indices in strcmp order of their names (checked by a test). */
static const unsigned all_types_by_name[14] = {11, 2, 4, 12, 7, 8, 9, 10, 0, 5, 1, 6, 3, 13};
static const ProtobufCIntRange all_types_ranges[2] = {{1, 0}, {0, 14}};

static const ProtobufCMessageDescriptor all_types_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.AllTypes",
    "AllTypes",
    "AllTypes",
    "test",
    sizeof(AllTypes),
    14,
    all_types_fields,
    all_types_by_name,
    1,
    all_types_ranges,
    all_types_init,
    NULL,
    NULL,
    NULL};

/* ---- helpers ---------------------------------------------------------- */

static ns_ctx *new_ctx(void) {
  ns_ctx *ctx = ns_ctx_create();
  assert_non_null(ctx);
  return ctx;
}

static ProtobufCMessage *parse_ok(ns_ctx *ctx, const char *text,
                                  const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse(ctx, text, strlen(text), "t.prototxt", d, &m);
  if (st != NS_OK) print_message("unexpected error: %s\n", ns_ctx_error(ctx));
  assert_int_equal(st, NS_OK);
  assert_non_null(m);
  return m;
}

static void free_msg(ns_ctx *ctx, void *m) {
  protobuf_c_message_free_unpacked((ProtobufCMessage *)m, &ctx->pb_alloc);
}

/* Parses len bytes expecting NS_ERR_INPUT with every NULL-terminated needle
 * in the message. */
static void expect_error_n(const char *text, size_t len, const ProtobufCMessageDescriptor *d, ...) {
  ns_ctx *ctx = new_ctx();
  ProtobufCMessage *m = (ProtobufCMessage *)1;
  ns_status st = ns_text_parse(ctx, text, len, "t.prototxt", d, &m);
  if (st != NS_ERR_INPUT) print_message("status %d for: %.200s\n", (int)st, text);
  assert_int_equal(st, NS_ERR_INPUT);
  assert_null(m);
  const char *err = ns_ctx_error(ctx);
  va_list ap;
  va_start(ap, d);
  for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;) {
    if (!strstr(err, needle)) print_message("error '%s' lacks '%s'\n", err, needle);
    assert_non_null(strstr(err, needle));
  }
  va_end(ap);
  ns_ctx_destroy(ctx);
}

#define expect_error(text, d, ...) expect_error_n(text, strlen(text), d, __VA_ARGS__, NULL)
#define NET (&caffe__net_parameter__descriptor)
#define LAYER (&caffe__layer_parameter__descriptor)
#define SOLVER (&caffe__solver_parameter__descriptor)
#define BLOB (&caffe__blob_proto__descriptor)
#define DATUM (&caffe__datum__descriptor)
#define CONV (&caffe__convolution_parameter__descriptor)
#define ALL (&all_types_descriptor)

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  assert_non_null(buf);
  assert_int_equal(protobuf_c_message_pack(m, buf), *len);
  return buf;
}

static void assert_same_packing(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t la, lb;
  uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(pa, pb, la);
  free(pa);
  free(pb);
}

/* Writes m; the caller frees the returned string. */
static char *write_text(ns_ctx *ctx, const void *m) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_status st = ns_text_write(ctx, (const ProtobufCMessage *)m, &sb);
  if (st != NS_OK) print_message("write failed: %s\n", ns_ctx_error(ctx));
  assert_int_equal(st, NS_OK);
  char *s = strdup(sb.data ? sb.data : "");
  ns_strbuf_free(&sb);
  return s;
}

/* text -> message -> text -> message: both messages pack identically and
 * the second writing equals the first.  Returns the first message. */
static ProtobufCMessage *round_trip(ns_ctx *ctx, const char *text,
                                    const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *a = parse_ok(ctx, text, d);
  char *t1 = write_text(ctx, a);
  ProtobufCMessage *b = parse_ok(ctx, t1, d);
  assert_same_packing(a, b);
  char *t2 = write_text(ctx, b);
  assert_string_equal(t1, t2);
  free(t1);
  free(t2);
  free_msg(ctx, b);
  return a;
}

/* ---- syntax ----------------------------------------------------------- */

static void test_basic_net(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  const char *text =
      "name: \"LeNet\"\n"
      "layer {\n"
      "  name: \"conv1\"\n"
      "  type: \"Convolution\"\n"
      "  bottom: \"data\"\n"
      "  top: \"conv1\"\n"
      "  convolution_param {\n"
      "    num_output: 20\n"
      "    kernel_size: 5\n"
      "    stride: 1\n"
      "    weight_filler {\n"
      "      type: \"xavier\"\n"
      "    }\n"
      "  }\n"
      "}\n";
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(ctx, text, NET);
  assert_string_equal(net->name, "LeNet");
  assert_int_equal(net->n_layer, 1);
  Caffe__LayerParameter *l = net->layer[0];
  assert_string_equal(l->name, "conv1");
  assert_string_equal(l->type, "Convolution");
  assert_int_equal(l->n_bottom, 1);
  assert_string_equal(l->bottom[0], "data");
  assert_int_equal(l->n_top, 1);
  assert_string_equal(l->top[0], "conv1");
  Caffe__ConvolutionParameter *c = l->convolution_param;
  assert_non_null(c);
  assert_true(c->has_num_output);
  assert_int_equal(c->num_output, 20);
  assert_int_equal(c->n_kernel_size, 1);
  assert_int_equal(c->kernel_size[0], 5);
  assert_int_equal(c->n_stride, 1);
  assert_int_equal(c->stride[0], 1);
  assert_string_equal(c->weight_filler->type, "xavier");
  /* Untouched fields keep protobuf-c's defaults. */
  assert_false(c->has_bias_term);
  assert_true(c->bias_term);
  assert_int_equal(c->group, 1);
  assert_null(l->pooling_param);
  free_msg(ctx, net);
  ns_ctx_destroy(ctx);
}

static void test_empty_input(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  const char *texts[] = {"", "   \n\t\r\n", "# only a comment", "# c1\n# c2\n"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(ctx, texts[i], NET);
    assert_null(net->name);
    assert_int_equal(net->n_layer, 0);
    free_msg(ctx, net);
  }
  /* A NULL pointer with zero length is an empty input too. */
  ProtobufCMessage *m = NULL;
  assert_int_equal(ns_text_parse(ctx, NULL, 0, NULL, NET, &m), NS_OK);
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
}

static void test_comments_and_whitespace(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  const char *text =
      "# header\r\n"
      "name:#c\n\"n\"# after\n"
      "layer#x\n{#y\n"
      "\tname\t:\v\"a\"\f#z {\n"
      "}# closing, no newline at end";
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(ctx, text, NET);
  assert_string_equal(net->name, "n");
  assert_int_equal(net->n_layer, 1);
  assert_string_equal(net->layer[0]->name, "a");
  free_msg(ctx, net);
  ns_ctx_destroy(ctx);
}

static void test_colon_before_brace_optional(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      ctx, "layer: { name: \"a\" } layer { name: \"b\" } layer:{name:\"c\"}", NET);
  assert_int_equal(net->n_layer, 3);
  assert_string_equal(net->layer[0]->name, "a");
  assert_string_equal(net->layer[1]->name, "b");
  assert_string_equal(net->layer[2]->name, "c");
  free_msg(ctx, net);
  ns_ctx_destroy(ctx);
}

static void test_angle_brackets(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      ctx, "layer < name: \"a\" convolution_param: < num_output: 3 > > layer { name: \"b\" }", NET);
  assert_int_equal(net->n_layer, 2);
  assert_string_equal(net->layer[0]->name, "a");
  assert_int_equal(net->layer[0]->convolution_param->num_output, 3);
  assert_string_equal(net->layer[1]->name, "b");
  free_msg(ctx, net);
  ns_ctx_destroy(ctx);
  /* A block closes with its own delimiter only. */
  expect_error("layer { name: \"a\" >", NET, "t.prototxt:1:19: '>', expected a field name or '}'");
  expect_error("layer < name: \"a\" }", NET, "t.prototxt:1:19: '}', expected a field name or '>'");
}

static void test_field_separators(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__LayerParameter *l = (Caffe__LayerParameter *)parse_ok(
      ctx, "name: \"a\"; type: \"b\", bottom: \"c\";top:\"d\" param { lr_mult: 1; }, param {}",
      LAYER);
  assert_string_equal(l->name, "a");
  assert_string_equal(l->type, "b");
  assert_string_equal(l->bottom[0], "c");
  assert_string_equal(l->top[0], "d");
  assert_int_equal(l->n_param, 2);
  assert_float_equal(l->param[0]->lr_mult, 1.0f, 0);
  free_msg(ctx, l);
  ns_ctx_destroy(ctx);
  /* One separator after a value, not two. */
  expect_error("name: \"a\";; type: \"b\"", LAYER, "t.prototxt:1:11: ';', expected a field name");
}

static void test_repeated_fields(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  const char *text =
      "bottom: \"a\" top: \"t\"\n"
      "bottom: [\"b\", 'c']\n"
      "bottom: []\n"
      "loss_weight: [1, 2.5]\n"
      "bottom: \"d\"\n"
      "propagate_down: []\n";
  Caffe__LayerParameter *l = (Caffe__LayerParameter *)parse_ok(ctx, text, LAYER);
  assert_int_equal(l->n_bottom, 4);
  const char *want[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) assert_string_equal(l->bottom[i], want[i]);
  assert_int_equal(l->n_top, 1);
  assert_int_equal(l->n_loss_weight, 2);
  assert_float_equal(l->loss_weight[1], 2.5f, 0);
  assert_int_equal(l->n_propagate_down, 0);
  free_msg(ctx, l);

  /* Lists of messages, with or without ':'. */
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      ctx,
      "layer [ { name: \"a\" }, < name: \"b\" > ] layer: [{name: \"c\"}] layer: [] "
      "layer { name: \"d\" }",
      NET);
  assert_int_equal(net->n_layer, 4);
  const char *names[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) assert_string_equal(net->layer[i]->name, names[i]);
  free_msg(ctx, net);

  /* Growth past many doublings keeps every value. */
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  for (int i = 0; i < 1000; i++) ns_strbuf_printf(&sb, "data: %d%s", i, i % 3 ? " " : "\n");
  ns_strbuf_puts(&sb, "data: [");
  for (int i = 1000; i < 2100; i++) ns_strbuf_printf(&sb, "%s%d", i > 1000 ? ", " : "", i);
  ns_strbuf_puts(&sb, "]");
  Caffe__BlobProto *b = (Caffe__BlobProto *)parse_ok(ctx, sb.data, BLOB);
  assert_int_equal(b->n_data, 2100);
  for (int i = 0; i < 2100; i++) assert_float_equal(b->data[i], (float)i, 0);
  free_msg(ctx, b);
  ns_strbuf_free(&sb);
  ns_ctx_destroy(ctx);
}

static void test_list_errors(void **state) {
  (void)state;
  expect_error("kernel_size: [3 5]", CONV, "t.prototxt:1:17: number 5, expected ',' or ']'",
               "kernel_size");
  expect_error("kernel_size: [3,]", CONV, "t.prototxt:1:17: ']', expected an integer",
               "'kernel_size'");
  expect_error("kernel_size: [3, 5", CONV, "t.prototxt:1:19: end of file, expected ',' or ']'");
  /* Only repeated fields take lists. */
  expect_error("num_output: [3]", CONV, "t.prototxt:1:13: '[', expected an integer",
               "'num_output'");
  expect_error("name: []", LAYER, "t.prototxt:1:7: '[', expected a quoted string", "field 'name'");
}

static void test_enums(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(
      ctx, "solver_mode: CPU snapshot_format: 0 solver_type: 5", SOLVER);
  assert_true(s->has_solver_mode);
  assert_int_equal(s->solver_mode, CAFFE__SOLVER_PARAMETER__SOLVER_MODE__CPU);
  assert_true(s->has_snapshot_format);
  assert_int_equal(s->snapshot_format, CAFFE__SOLVER_PARAMETER__SNAPSHOT_FORMAT__HDF5);
  assert_int_equal(s->solver_type, CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADAM);
  free_msg(ctx, s);
  Caffe__LayerParameter *l = (Caffe__LayerParameter *)parse_ok(
      ctx, "phase: TEST include { phase: 0 } pooling_param { pool: AVE }", LAYER);
  assert_int_equal(l->phase, CAFFE__PHASE__TEST);
  assert_true(l->include[0]->has_phase);
  assert_int_equal(l->include[0]->phase, CAFFE__PHASE__TRAIN);
  assert_int_equal(l->pooling_param->pool, CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE);
  free_msg(ctx, l);
  ns_ctx_destroy(ctx);
}

static void test_enum_errors(void **state) {
  (void)state;
  expect_error("solver_mode: 7", SOLVER,
               "t.prototxt:1:14: 7 is not a value of enum caffe.SolverParameter.SolverMode",
               "field 'solver_mode'", "expected one of CPU, GPU");
  expect_error("solver_mode: -1", SOLVER, "t.prototxt:1:14: -1 is not a value of enum",
               "SolverMode");
  expect_error("solver_mode: TPU", SOLVER,
               "t.prototxt:1:14: 'TPU' is not a value of enum caffe.SolverParameter.SolverMode",
               "'solver_mode'");
  /* Enum names are case sensitive, as in protobuf. */
  expect_error("solver_mode: cpu", SOLVER, "'cpu' is not a value of enum");
  expect_error("solver_mode: \"CPU\"", SOLVER, "t.prototxt:1:14: string \"CPU\", expected a value",
               "caffe.SolverParameter.SolverMode");
  expect_error("solver_mode: 4294967296", SOLVER, "4294967296 is out of range");
}

/* ---- strings ---------------------------------------------------------- */

static void test_string_escapes(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__LayerParameter *l =
      (Caffe__LayerParameter *)parse_ok(ctx,
                                        "name: \"\\n\\t\\r\\\\\\'\\\"\\a\\b\\f\\v\\?\"\n"
                                        "type: 'it\"s'\n"
                                        "bottom: \"\\101\\60\\0101\\x41\\x4a\\X4Bz\\x4\"\n"
                                        "bottom: \"\\u00e9\\u20AC\\U0001F600\\ud83d\\ude00\"\n"
                                        "bottom: \"abc\" 'def'\n  \"ghi\" # concatenated\n"
                                        "bottom: \"\"\n"
                                        "bottom: \"tab\there\"\n",
                                        LAYER);
  assert_string_equal(l->name, "\n\t\r\\'\"\a\b\f\v?");
  assert_string_equal(l->type, "it\"s");
  assert_int_equal(l->n_bottom, 5);
  /* \101 = 'A', \60 = '0', \010 then '1', \x41 = 'A', \x4a = 'J', \X4B = 'K', \x4 = 0x04 */
  assert_string_equal(l->bottom[0], "A0\b1AJKz\x04");
  /* U+00E9, U+20AC, U+1F600 (twice: once as a surrogate pair) in UTF-8. */
  assert_string_equal(l->bottom[1], "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
  assert_string_equal(l->bottom[2], "abcdefghi");
  assert_string_equal(l->bottom[3], "");
  assert_string_equal(l->bottom[4], "tab\there");
  free_msg(ctx, l);
  ns_ctx_destroy(ctx);
}

static void test_bytes_field(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__Datum *d = (Caffe__Datum *)parse_ok(
      ctx, "channels: 1 data: \"\\000\\001\\377a\" '\\x00b' label: -3 encoded: true", DATUM);
  assert_true(d->has_data);
  assert_int_equal(d->data.len, 6);
  assert_memory_equal(d->data.data,
                      "\x00\x01\xff"
                      "a\x00"
                      "b",
                      6);
  assert_int_equal(d->label, -3);
  assert_true(d->encoded);
  free_msg(ctx, d);
  /* An empty bytes value is present, with no data. */
  d = (Caffe__Datum *)parse_ok(ctx, "data: \"\"", DATUM);
  assert_true(d->has_data);
  assert_int_equal(d->data.len, 0);
  free_msg(ctx, d);
  ns_ctx_destroy(ctx);
}

static void test_string_errors(void **state) {
  (void)state;
  expect_error("name: \"abc", LAYER, "t.prototxt:1:7: unterminated string, expected closing \"",
               "end of file");
  expect_error("name: 'abc\n'", LAYER, "t.prototxt:1:7: unterminated string, expected closing '",
               "end of line");
  expect_error("name: \"abc\\", LAYER, "t.prototxt:1:7: unterminated string");
  expect_error("name: \"a\\qb\"", LAYER, "t.prototxt:1:9: unknown escape '\\q', expected");
  expect_error("\n  name: \"ab\\x\"", LAYER,
               "t.prototxt:2:12: '\\x' without digits, expected hex digits");
  expect_error("name: \"\\u12\"", LAYER, "t.prototxt:1:8: incomplete \\u escape, expected 4 hex");
  expect_error("name: \"\\U0011FFFF\"", LAYER, "t.prototxt:1:8: code point 0x11FFFF");
  expect_error("name: \"\\ud800x\"", LAYER, "t.prototxt:1:8: lone UTF-16 surrogate");
  expect_error("name: \"\\400\"", LAYER, "t.prototxt:1:8: octal escape \\400 above \\377");
  /* A char * cannot hold a NUL; bytes fields can (test_bytes_field). */
  expect_error("name: \"a\\0b\"", LAYER, "t.prototxt:1:7: string containing a NUL character",
               "'name'");
  expect_error("name: \"a\" \"b\\0\"", LAYER, "t.prototxt:1:7: string containing a NUL");
  expect_error_n("name: \"a\0b\"", 11, LAYER, "t.prototxt:1:9: NUL byte inside a string", NULL);
  /* Strings need quotes. */
  expect_error("name: abc", LAYER, "t.prototxt:1:7: 'abc', expected a quoted string", "'name'");
  expect_error("name: 12", LAYER, "t.prototxt:1:7: number 12, expected a quoted string");
}

/* ---- integers --------------------------------------------------------- */

static void test_integers(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__ConvolutionParameter *c = (Caffe__ConvolutionParameter *)parse_ok(
      ctx,
      "num_output: 4294967295 kernel_size: [0x1F, 017, 0, 0X0a, 00] axis: -2147483648 "
      "group: 2147483648 pad_h: 0xFFFFFFFF",
      CONV);
  assert_int_equal(c->num_output, 4294967295u);
  assert_int_equal(c->n_kernel_size, 5);
  assert_int_equal(c->kernel_size[0], 31);
  assert_int_equal(c->kernel_size[1], 15);
  assert_int_equal(c->kernel_size[2], 0);
  assert_int_equal(c->kernel_size[3], 10);
  assert_int_equal(c->kernel_size[4], 0);
  assert_true(c->has_axis);
  assert_int_equal(c->axis, INT32_MIN);
  assert_int_equal(c->group, 2147483648u);
  assert_int_equal(c->pad_h, 4294967295u);
  free_msg(ctx, c);

  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(
      ctx, "random_seed: -9223372036854775808 max_iter: - 0x7fffffff test_iter: [2147483647, -0]",
      SOLVER);
  assert_true(s->has_random_seed);
  assert_true(s->random_seed == INT64_MIN);
  assert_int_equal(s->max_iter, -2147483647);
  assert_int_equal(s->test_iter[0], 2147483647);
  assert_int_equal(s->test_iter[1], 0);
  free_msg(ctx, s);
  s = (Caffe__SolverParameter *)parse_ok(ctx, "random_seed: 0x7FFFFFFFFFFFFFFF", SOLVER);
  assert_true(s->random_seed == INT64_MAX);
  free_msg(ctx, s);
  s = (Caffe__SolverParameter *)parse_ok(ctx, "random_seed: 0777777777777777777777", SOLVER);
  assert_true(s->random_seed == INT64_MAX); /* 2^63-1 = 7 followed by twenty 7s in octal */
  free_msg(ctx, s);
  ns_ctx_destroy(ctx);
}

static void test_integer_range_errors(void **state) {
  (void)state;
  expect_error("axis: 2147483648", CONV,
               "t.prototxt:1:7: 2147483648 is out of range for int32 field 'axis', expected "
               "-2147483648..2147483647");
  expect_error("axis: -2147483649", CONV, "t.prototxt:1:7: -2147483649 is out of range");
  expect_error("axis: 0x80000000", CONV, "0x80000000 is out of range for int32");
  expect_error("num_output: 4294967296", CONV,
               "t.prototxt:1:13: 4294967296 is out of range for uint32 field 'num_output', "
               "expected 0..4294967295");
  expect_error("num_output: -1", CONV,
               "t.prototxt:1:13: '-', expected a non-negative integer for uint32 field "
               "'num_output'");
  expect_error("kernel_size: [1, -1]", CONV, "t.prototxt:1:18: '-', expected a non-negative");
  expect_error("random_seed: 9223372036854775808", SOLVER,
               "9223372036854775808 is out of range for int64 field 'random_seed'");
  expect_error("random_seed: -9223372036854775809", SOLVER, "-9223372036854775809 is out of range");
  expect_error("random_seed: 99999999999999999999999", SOLVER, "is out of range");
  /* Not integers. */
  expect_error("axis: 1.0", CONV,
               "t.prototxt:1:7: number 1.0, expected an integer for int32 field "
               "'axis'");
  expect_error("axis: 1e3", CONV, "number 1e3, expected an integer");
  expect_error("axis: one", CONV, "t.prototxt:1:7: 'one', expected an integer");
  expect_error("axis: - -1", CONV, "t.prototxt:1:9: '-', expected an integer");
  expect_error("axis: \"1\"", CONV, "string \"1\", expected an integer");
}

static void test_other_integer_types(void **state) {
  (void)state;
  /* The hand-built name index must be sorted as protobuf-c sorts it. */
  for (int i = 1; i < 14; i++)
    assert_true(strcmp(all_types_fields[all_types_by_name[i - 1]].name,
                       all_types_fields[all_types_by_name[i]].name) < 0);
  ns_ctx *ctx = new_ctx();
  const char *text =
      "s32: -2147483648 sf32: 2147483647 f32: 4294967295 "
      "u64: 18446744073709551615 f64: 0xFFFFFFFFFFFFFFFF "
      "s64: -9223372036854775808 sf64: 9223372036854775807 "
      "u64s: [0, 01777777777777777777777]";
  AllTypes *m = (AllTypes *)parse_ok(ctx, text, ALL);
  assert_true(m->has_s32 && m->has_sf32 && m->has_f32 && m->has_u64 && m->has_f64 && m->has_s64 &&
              m->has_sf64);
  assert_int_equal(m->s32, INT32_MIN);
  assert_int_equal(m->sf32, INT32_MAX);
  assert_int_equal(m->f32, UINT32_MAX);
  assert_true(m->u64 == UINT64_MAX);
  assert_true(m->f64 == UINT64_MAX);
  assert_true(m->s64 == INT64_MIN);
  assert_true(m->sf64 == INT64_MAX);
  assert_int_equal(m->n_u64s, 2);
  assert_true(m->u64s[1] == UINT64_MAX);
  free_msg(ctx, round_trip(ctx, "s32: -7 sf32: -8 f32: 9 u64: 10 f64: 11 s64: -12 sf64: -13", ALL));
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
  expect_error("s32: 2147483648", ALL, "out of range for sint32 field 's32'");
  expect_error("sf32: -2147483649", ALL, "out of range for sfixed32 field 'sf32'");
  expect_error("f32: 4294967296", ALL, "out of range for fixed32 field 'f32'");
  expect_error("f32: -1", ALL, "expected a non-negative integer for fixed32 field 'f32'");
  expect_error("u64: 18446744073709551616", ALL,
               "18446744073709551616 is out of range for uint64 field 'u64', expected "
               "0..18446744073709551615");
  expect_error("u64: 0x10000000000000000", ALL, "out of range for uint64");
  expect_error("f64: -0", ALL, "expected a non-negative integer for fixed64");
  expect_error("s64: 9223372036854775808", ALL, "out of range for sint64 field 's64'");
  expect_error("sf64: -9223372036854775809", ALL, "out of range for sfixed64 field 'sf64'");
}

/* ---- floats ----------------------------------------------------------- */

static void test_floats(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__BlobProto *b = (Caffe__BlobProto *)parse_ok(
      ctx,
      "data: [1, -2.5, .5, 5., 1e3, 1E+2, 25e-1, 2f, 2.5F, -.25f, 0x10, 010, 0, -0, 1e39]\n"
      "data: inf data: -inf data: Infinity data: -INFINITY data: InF\n"
      "data: nan data: NaN data: -nan\n"
      "double_data: [0.1, 1e-300, 1e400, -1e400, 123456789012345678, 3]",
      BLOB);
  const float want[] = {1, -2.5f, .5f, 5, 1000, 100, 2.5f, 2, 2.5f, -.25f, 16, 8, 0, 0};
  assert_int_equal(b->n_data, 23);
  for (int i = 0; i < 14; i++) assert_float_equal(b->data[i], want[i], 0);
  assert_true(signbit(b->data[13]));                  /* -0 keeps its sign */
  assert_true(isinf(b->data[14]) && b->data[14] > 0); /* above FLT_MAX: inf, as protobuf */
  for (int i = 15; i < 20; i++) assert_true(isinf(b->data[i]));
  assert_true(b->data[15] > 0 && b->data[16] < 0 && b->data[17] > 0 && b->data[18] < 0);
  for (int i = 20; i < 23; i++) assert_true(isnan(b->data[i]));
  assert_int_equal(b->n_double_data, 6);
  assert_true(b->double_data[0] == 0.1);
  assert_true(b->double_data[1] == 1e-300);
  assert_true(isinf(b->double_data[2]) && b->double_data[3] < 0 && isinf(b->double_data[3]));
  assert_true(b->double_data[4] == 123456789012345678.0);
  assert_true(b->double_data[5] == 3.0);
  free_msg(ctx, b);

  /* Near FLT_MAX values round to nearest: up to halfway to 2^128
   * (3.40282356779733661e38) they are FLT_MAX, from there on inf. */
  b = (Caffe__BlobProto *)parse_ok(
      ctx, "data: [3.4028235e+38, -3.40282356e38, 3.40282357e38, 3.4028236e38, 1e-46]", BLOB);
  assert_true(b->data[0] == FLT_MAX && b->data[1] == -FLT_MAX);
  assert_true(isinf(b->data[2]) && isinf(b->data[3]));
  assert_true(b->data[4] == 0); /* below half the smallest denormal */
  free_msg(ctx, b);

  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(
      ctx, "base_lr: 0.01 momentum: 0.9 weight_decay: 5e-4 gamma: 1", SOLVER);
  assert_true(s->has_base_lr && s->has_momentum && s->has_weight_decay && s->has_gamma);
  assert_true(s->base_lr == 0.01f);
  assert_true(s->momentum == 0.9f);
  assert_true(s->weight_decay == 5e-4f);
  assert_true(s->gamma == 1.0f);
  free_msg(ctx, s);
  ns_ctx_destroy(ctx);
}

static void test_number_errors(void **state) {
  (void)state;
  expect_error("data: 1e", BLOB, "t.prototxt:1:9: exponent without digits, expected digits");
  expect_error("data: 1e+", BLOB, "t.prototxt:1:10: exponent without digits");
  expect_error("data: 1.2.3", BLOB,
               "t.prototxt:1:10: a second '.' in a number, expected a single decimal point");
  expect_error("data: 0x", BLOB, "t.prototxt:1:9: '0x' without digits, expected hex digits");
  expect_error("data: 0x1.5", BLOB, "t.prototxt:1:10: '.' after a hex or octal number");
  expect_error("data: 08", BLOB,
               "t.prototxt:1:8: digit '8' in a number starting with 0, expected octal digits");
  expect_error("data: 1abc", BLOB,
               "t.prototxt:1:8: 'a' right after a number, expected a space or separator");
  expect_error("data: 1fx", BLOB, "t.prototxt:1:9: 'x' right after a number");
  expect_error("data: foo", BLOB,
               "t.prototxt:1:7: 'foo', expected a number for float field 'data'");
  expect_error("double_data: infinit", BLOB, "'infinit', expected a number for double field");
  expect_error("data: \"1\"", BLOB, "string \"1\", expected a number");
  expect_error("data: 0x10000000000000000", BLOB, "expected a hex or octal integer below 2^64");
  expect_error("data: .", BLOB, "t.prototxt:1:7: invalid character '.', expected a number");
}

static void test_bools(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__LayerParameter *l = (Caffe__LayerParameter *)parse_ok(
      ctx, "propagate_down: [true, false, t, f, True, False, 1, 0, 0x1, 00] propagate_down: true",
      LAYER);
  const int want[] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  assert_int_equal(l->n_propagate_down, 11);
  for (int i = 0; i < 11; i++) assert_int_equal(l->propagate_down[i], want[i]);
  free_msg(ctx, l);
  ns_ctx_destroy(ctx);
  expect_error("propagate_down: 2", LAYER,
               "t.prototxt:1:17: number 2, expected true or false for bool field "
               "'propagate_down'");
  expect_error("propagate_down: TRUE", LAYER, "'TRUE', expected true or false");
  expect_error("propagate_down: yes", LAYER, "'yes', expected true or false");
  expect_error("propagate_down: 1.0", LAYER, "number 1.0, expected true or false");
  expect_error("propagate_down: -1", LAYER, "'-', expected true or false");
}

/* ---- field-level rules ------------------------------------------------ */

static void test_duplicate_fields(void **state) {
  (void)state;
  expect_error("name: \"a\"\nname: \"b\"", LAYER,
               "t.prototxt:2:1: second value for field 'name' in message caffe.LayerParameter, "
               "expected it at most once");
  expect_error("convolution_param { } convolution_param { }", LAYER,
               "t.prototxt:1:23: second value for field 'convolution_param'");
  expect_error("layer { pooling_param { pool: MAX pool: AVE } }", NET,
               "t.prototxt:1:35: second value for field 'pool' in message "
               "caffe.PoolingParameter");
  /* The same field in two different messages is fine. */
  ns_ctx *ctx = new_ctx();
  free_msg(ctx, parse_ok(ctx, "layer { name: \"a\" } layer { name: \"b\" }", NET));
  ns_ctx_destroy(ctx);
}

static void test_oneof_and_unlabeled(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  AllTypes *m = (AllTypes *)parse_ok(ctx, "pick_str: \"x\" plain: 0 plain_str: \"p\"", ALL);
  assert_int_equal(m->choice_case, 9);
  assert_string_equal(m->pick_str, "x");
  assert_int_equal(m->plain, 0);
  assert_string_equal(m->plain_str, "p");
  /* Proto3-style zero values are not written; the oneof member is. */
  char *t = write_text(ctx, m);
  assert_string_equal(t, "pick_str: \"x\"\nplain_str: \"p\"\n");
  free(t);
  free_msg(ctx, m);
  m = (AllTypes *)parse_ok(ctx, "pick_int: 0", ALL);
  assert_int_equal(m->choice_case, 8);
  t = write_text(ctx, m);
  assert_string_equal(t, "pick_int: 0\n");
  free(t);
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
  expect_error("pick_str: \"x\" pick_int: 3", ALL,
               "t.prototxt:1:15: field 'pick_int' in message test.AllTypes, expected at most one "
               "member of its oneof ('pick_str' is already set)");
  expect_error("plain: 1 plain: 2", ALL, "t.prototxt:1:10: second value for field 'plain'");
}

static void test_required_not_enforced(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__ClipParameter *c =
      (Caffe__ClipParameter *)parse_ok(ctx, "min: -1", &caffe__clip_parameter__descriptor);
  assert_float_equal(c->min, -1.0f, 0);
  /* Required fields have no presence flag: both are written. */
  char *t = write_text(ctx, c);
  assert_string_equal(t, "min: -1\nmax: 0\n");
  free(t);
  free_msg(ctx, c);
  ns_ctx_destroy(ctx);
}

/* ---- unknown fields --------------------------------------------------- */

typedef struct {
  int count;
  char text[4096];
} warnings;

static void collect_warning(void *user, const char *message) {
  warnings *w = user;
  size_t used = strlen(w->text);
  snprintf(w->text + used, sizeof w->text - used, "%s\n", message);
  w->count++;
}

static const char unknown_text[] =
    "layer {\n"
    "  name: \"x\"\n"
    "  foo: 3\n"
    "  bar { a: 1 b < c: \"}\" > d: [1, 2] e: [{x: 1}, <y: 2>] f: [] g: -inf h: ENUM, }\n"
    "  baz: [ {x: 1}, {y: 2} ];\n"
    "  qux: \"a\" 'b'\n"
    "  neg: -12 q [ ] r: nan\n"
    "  type: \"T\"\n"
    "}\n"
    "zzz: 0x10\n";

static void test_unknown_field_error(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  ProtobufCMessage *m = (ProtobufCMessage *)1;
  assert_int_equal(ns_text_parse(ctx, unknown_text, strlen(unknown_text), "net.prototxt", NET, &m),
                   NS_ERR_INPUT);
  assert_null(m);
  assert_string_equal(ns_ctx_error(ctx),
                      "net.prototxt:3:3: unknown field 'foo' in message caffe.LayerParameter");
  ns_ctx_destroy(ctx);
  expect_error("nam: \"x\"", LAYER,
               "t.prototxt:1:1: unknown field 'nam' in message "
               "caffe.LayerParameter");
  /* Field names are case sensitive. */
  expect_error("Name: \"x\"", LAYER, "unknown field 'Name'");
}

static void test_unknown_field_allowed(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  warnings w = {0, ""};
  ns_ctx_set_allow_unknown(ctx, 1);
  ns_ctx_set_warning_handler(ctx, collect_warning, &w);
  ProtobufCMessage *m = NULL;
  assert_int_equal(ns_text_parse(ctx, unknown_text, strlen(unknown_text), "net.prototxt", NET, &m),
                   NS_OK);
  Caffe__NetParameter *net = (Caffe__NetParameter *)m;
  assert_int_equal(net->n_layer, 1);
  assert_string_equal(net->layer[0]->name, "x");
  assert_string_equal(net->layer[0]->type, "T");
  assert_int_equal(w.count, 8);
  assert_string_equal(w.text,
                      "net.prototxt:3:3: unknown field 'foo' in message caffe.LayerParameter\n"
                      "net.prototxt:4:3: unknown field 'bar' in message caffe.LayerParameter\n"
                      "net.prototxt:5:3: unknown field 'baz' in message caffe.LayerParameter\n"
                      "net.prototxt:6:3: unknown field 'qux' in message caffe.LayerParameter\n"
                      "net.prototxt:7:3: unknown field 'neg' in message caffe.LayerParameter\n"
                      "net.prototxt:7:12: unknown field 'q' in message caffe.LayerParameter\n"
                      "net.prototxt:7:18: unknown field 'r' in message caffe.LayerParameter\n"
                      "net.prototxt:10:1: unknown field 'zzz' in message caffe.NetParameter\n");
  free_msg(ctx, m);

  /* Skipped values must still be well formed. */
  const char *bad[] = {"foo: }", "foo { a: 1", "foo: [1, 2", "foo: [1 2]",
                       "foo 3",  "foo: - }",   "foo { 3 }"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    m = (ProtobufCMessage *)1;
    assert_int_equal(ns_text_parse(ctx, bad[i], strlen(bad[i]), "u", LAYER, &m), NS_ERR_INPUT);
    assert_null(m);
    assert_non_null(strstr(ns_ctx_error(ctx), "expected"));
  }
  ns_ctx_destroy(ctx);
}

/* ---- unknown names under rules (a model reader's) --------------------- */

static const ProtobufCMessageDescriptor *const layer_scopes[] = {LAYER, NULL};
static const ns_text_field_ref refused_fields[] = {
    {"caffe.PoolingParameter", "frob_round", "rounding"}, {NULL, NULL, NULL}};
static const ns_text_rules rules = {layer_scopes, "a fork's field", "a fork's value", "try -u",
                                    refused_fields};

static ns_status parse_ruled(ns_ctx *ctx, const char *text, ProtobufCMessage **m) {
  return ns_text_parse_with(ctx, text, strlen(text), "n.prototxt", NET, &rules, m);
}

/* Inside a layer: NS_ERR_UNSUPPORTED once the whole text is read, labelled
 * with the layer's name and type even where they follow the field, and
 * listing the other unknown names; a later syntax error wins. */
static void test_unknown_in_scope(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  ProtobufCMessage *m = (ProtobufCMessage *)1;
  static const char two[] =
      "layer {\n  a_param { x: 1 }\n  name: \"n1\" type: \"Frob\"\n}\n"
      "layer { name: \"n2\" b_param: 2 a_param {} }\n";
  assert_int_equal(parse_ruled(ctx, two, &m), NS_ERR_UNSUPPORTED);
  assert_null(m);
  assert_string_equal(ns_ctx_error(ctx),
                      "n.prototxt:2:3: layer 'n1' (type Frob): unknown field 'a_param' in message "
                      "caffe.LayerParameter: a fork's field; try -u (other unknown names: "
                      "b_param)");
  char bad[256];
  snprintf(bad, sizeof bad, "%slayer { name: 3 }\n", two);
  assert_int_equal(parse_ruled(ctx, bad, &m), NS_ERR_INPUT);
  assert_string_equal(ns_ctx_error(ctx),
                      "n.prototxt:6:15: number 3, expected a quoted string for string field "
                      "'name'");
  /* Nested messages of a layer are in it; the net's top level is not. */
  assert_int_equal(parse_ruled(ctx, "layer { pooling_param { pool: MEDIAN } }", &m),
                   NS_ERR_UNSUPPORTED);
  assert_string_equal(ns_ctx_error(ctx),
                      "n.prototxt:1:31: a layer without name or type: 'MEDIAN' is not a value of "
                      "enum caffe.PoolingParameter.PoolMethod (field 'pool'), expected one of MAX, "
                      "AVE, STOCHASTIC: a fork's value; try -u");
  assert_int_equal(parse_ruled(ctx, "top_param: 1\nlayer { name: 3 }", &m), NS_ERR_INPUT);
  assert_string_equal(ns_ctx_error(ctx),
                      "n.prototxt:1:1: unknown field 'top_param' in message caffe.NetParameter: "
                      "a fork's field; try -u");
  ns_ctx_destroy(ctx);
}

/* With allow_unknown: one warning per name however often it occurs, the
 * default an unknown enum value leaves, and refused fields still refused. */
static void test_unknown_once_per_name(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  warnings w = {0, ""};
  ns_ctx_set_allow_unknown(ctx, 1);
  ns_ctx_set_warning_handler(ctx, collect_warning, &w);
  ProtobufCMessage *m = NULL;
  static const char text[] =
      "layer { name: \"p1\" type: \"Pooling\" a_param {} pooling_param { pool: MEDIAN } }\n"
      "layer { name: \"p2\" a_param: 1 pooling_param { pool: MEDIAN kernel_size: 3 } }\n"
      "layer { name: \"p3\" a_param: [1, 2] pooling_param { pool: AVE } }\n";
  assert_int_equal(parse_ruled(ctx, text, &m), NS_OK);
  Caffe__NetParameter *net = (Caffe__NetParameter *)m;
  assert_int_equal(net->n_layer, 3);
  assert_false(net->layer[0]->pooling_param->has_pool);
  assert_int_equal(net->layer[0]->pooling_param->pool, CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX);
  assert_int_equal(net->layer[1]->pooling_param->kernel_size, 3);
  assert_int_equal(net->layer[2]->pooling_param->pool, CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE);
  assert_int_equal(w.count, 2);
  assert_string_equal(w.text,
                      "n.prototxt:1:36: layer 'p1' (type Pooling): unknown field 'a_param' in "
                      "message caffe.LayerParameter (3 times, first here); skipped\n"
                      "n.prototxt:1:69: layer 'p1' (type Pooling): 'MEDIAN' is not a value of enum "
                      "caffe.PoolingParameter.PoolMethod (field 'pool'), expected one of MAX, AVE, "
                      "STOCHASTIC (2 times, first here); skipped: the field keeps its default, "
                      "MAX\n");
  free_msg(ctx, m);
  m = (ProtobufCMessage *)1;
  assert_int_equal(
      parse_ruled(ctx, "layer { name: \"q\" pooling_param { frob_round: true } }", &m),
      NS_ERR_UNSUPPORTED);
  assert_null(m);
  assert_string_equal(ns_ctx_error(ctx),
                      "n.prototxt:1:35: layer 'q': unknown field 'frob_round' in message "
                      "caffe.PoolingParameter: a fork's field; skipping it would change the "
                      "results (rounding), so --allow-unknown does not");
  ns_ctx_destroy(ctx);
}

/* A file of many different unknown names keeps a bounded record: the
 * first NS_UNKNOWN_NAMES_KEPT warned one by one, the rest counted. */
static void test_unknown_names_bounded(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  warnings w = {0, ""};
  ns_ctx_set_allow_unknown(ctx, 1);
  ns_ctx_set_warning_handler(ctx, collect_warning, &w);
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  for (int i = 0; i < 1000; i++) ns_strbuf_printf(&sb, "layer { u%d: %d }\n", i % 100, i);
  ProtobufCMessage *m = NULL;
  assert_int_equal(parse_ruled(ctx, sb.data, &m), NS_OK);
  assert_int_equal(((Caffe__NetParameter *)m)->n_layer, 1000);
  /* 64 names kept (warnings cut off by the collector's buffer) + 1 summary */
  assert_int_equal(w.count, 65);
  assert_non_null(strstr(w.text, "n.prototxt:1:9: a layer without name or type: unknown field 'u0' "
                                 "in message caffe.LayerParameter (10 times, first here)"));
  ns_strbuf_free(&sb);
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
}

/* ---- errors: position and wording ------------------------------------ */

static void test_syntax_errors(void **state) {
  (void)state;
  expect_error("name \"x\"", LAYER,
               "t.prototxt:1:6: string \"x\", expected ':' after field name 'name'");
  expect_error("layer {\n  name: \"x\"\n", NET,
               "t.prototxt:3:1: end of file, expected a field name or '}' (message "
               "caffe.LayerParameter)");
  expect_error("layer { name: \"x\" } }", NET,
               "t.prototxt:1:21: '}', expected a field name (message caffe.NetParameter)");
  expect_error("name:", LAYER, "t.prototxt:1:6: end of file, expected a quoted string");
  expect_error("layer", NET,
               "t.prototxt:1:6: end of file, expected '{' to open message field "
               "'layer'");
  expect_error("layer: 3", NET, "t.prototxt:1:8: number 3, expected '{' to open message field");
  expect_error("{ }", NET, "t.prototxt:1:1: '{', expected a field name");
  expect_error(": 3", NET, "t.prototxt:1:1: ':', expected a field name");
  expect_error("\"name\": 3", NET, "t.prototxt:1:1: string \"name\", expected a field name");
  expect_error("[caffe.ext]: 3", NET, "t.prototxt:1:1: '[', expected a field name");
  expect_error("layer { name: \"a\" }\n   @", NET,
               "t.prototxt:2:4: invalid character '@', expected a field name");
  expect_error("name: \"x\" /", LAYER, "t.prototxt:1:11: invalid character '/'");
  expect_error("name: \"x\"\x01", LAYER, "t.prototxt:1:10: invalid byte 0x01, expected");
  expect_error("name: \"x\"\xff", LAYER, "t.prototxt:1:10: invalid byte 0xff");
  expect_error_n("name: \"a\"\0", 10, LAYER, "t.prototxt:1:10: NUL byte, expected a field name",
                 NULL);
  expect_error_n("layer {\0}", 9, NET, "t.prototxt:1:8: NUL byte, expected a field name or '}'",
                 NULL);
  /* A long identifier is shortened in messages. */
  char longname[300];
  memset(longname, 'z', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  expect_error(longname, LAYER, "unknown field 'zzzzzzzzzz", "...' in message");
  /* Without a file name the input is called <text>. */
  ns_ctx *ctx = new_ctx();
  ProtobufCMessage *m;
  assert_int_equal(ns_text_parse(ctx, "x", 1, NULL, LAYER, &m), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "<text>:1:1: unknown field 'x'"));
  ns_ctx_destroy(ctx);
}

static char *repeat(const char *unit, size_t times, const char *tail) {
  size_t n = strlen(unit), t = strlen(tail);
  char *s = malloc(n * times + t + 1);
  assert_non_null(s);
  for (size_t i = 0; i < times; i++) memcpy(s + i * n, unit, n);
  memcpy(s + n * times, tail, t + 1);
  return s;
}

static void test_deep_nesting(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  /* 100 nested messages are fine, 101 are not. */
  char *open = repeat("child { ", NS_TEXT_MAX_DEPTH, "");
  char *close = repeat("} ", NS_TEXT_MAX_DEPTH, "");
  size_t lo = strlen(open), lc = strlen(close);
  char *ok = malloc(lo + lc + 1);
  memcpy(ok, open, lo);
  memcpy(ok + lo, close, lc + 1);
  AllTypes *m = (AllTypes *)parse_ok(ctx, ok, ALL);
  int depth = 0;
  for (AllTypes *c = m; c->child; c = c->child) depth++;
  assert_int_equal(depth, NS_TEXT_MAX_DEPTH);
  free_msg(ctx, m);
  free(ok);
  free(open);
  free(close);

  char *deep = repeat("child {", 101, "}");
  expect_error(deep, ALL, "t.prototxt:1:707: '{', expected at most 100 levels of nested messages");
  free(deep);
  deep = repeat("child {", 200000, "");
  expect_error(deep, ALL, "expected at most 100 levels");
  free(deep);
  deep = repeat("kids [{", 200000, "");
  expect_error(deep, ALL, "expected at most 100 levels");
  free(deep);
  deep = repeat("{", 200000, "");
  expect_error(deep, ALL, "t.prototxt:1:1: '{', expected a field name");
  free(deep);
  /* Skipped unknown blocks count too. */
  ns_ctx_set_allow_unknown(ctx, 1);
  deep = repeat("zz {", 200000, "");
  ProtobufCMessage *pm;
  assert_int_equal(ns_text_parse(ctx, deep, strlen(deep), "d", NET, &pm), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "expected at most 100 levels"));
  free(deep);

  /* The writer refuses what the reader would: build 150 levels by hand. */
  AllTypes *root = calloc(1, sizeof *root);
  all_types_init(&root->base);
  AllTypes *cur = root;
  for (int i = 0; i < 150; i++) {
    cur->child = calloc(1, sizeof *cur);
    all_types_init(&cur->child->base);
    cur = cur->child;
  }
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  assert_int_equal(ns_text_write(ctx, &root->base, &sb), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "nested more than 100 levels"));
  ns_strbuf_free(&sb);
  protobuf_c_message_free_unpacked(&root->base, NULL);
  ns_ctx_destroy(ctx);
}

/* ---- memory ----------------------------------------------------------- */

static void test_strings_are_fresh_copies(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  char text[] = "weight_filler { type: \"constant\" } bias_filler { value: 1 }";
  Caffe__ConvolutionParameter *c = (Caffe__ConvolutionParameter *)parse_ok(ctx, text, CONV);
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(&caffe__filler_parameter__descriptor, "type");
  /* Given: a fresh copy, never the default's storage nor the input. */
  assert_ptr_not_equal(c->weight_filler->type, f->default_value);
  uintptr_t got = (uintptr_t)c->weight_filler->type, in = (uintptr_t)text;
  assert_true(got < in || got >= in + sizeof text);
  /* Not given: still protobuf-c's default, which the writer leaves out. */
  assert_ptr_equal(c->bias_filler->type, f->default_value);
  memset(text, 'x', sizeof text - 1);
  assert_string_equal(c->weight_filler->type, "constant");
  char *t = write_text(ctx, c);
  assert_string_equal(t,
                      "weight_filler {\n  type: \"constant\"\n}\n"
                      "bias_filler {\n  value: 1\n}\n");
  free(t);
  free_msg(ctx, c);
  ns_ctx_destroy(ctx);
}

/* An allocator that fails after a budget and counts live blocks. */
typedef struct {
  long budget; /* allocations left; negative: unlimited */
  long live;
} budget_alloc;

static void *ba_alloc(void *user, size_t size) {
  budget_alloc *b = user;
  if (b->budget == 0) return NULL;
  if (b->budget > 0) b->budget--;
  void *p = malloc(size);
  if (p) b->live++;
  return p;
}

static void *ba_realloc(void *user, void *ptr, size_t size) {
  budget_alloc *b = user;
  if (b->budget == 0) return NULL;
  if (b->budget > 0) b->budget--;
  void *p = realloc(ptr, size);
  if (p && !ptr) b->live++;
  return p;
}

static void ba_free(void *user, void *ptr) {
  budget_alloc *b = user;
  if (ptr) b->live--;
  free(ptr);
}

static const char alloc_text[] =
    "name: \"n\" layer { name: \"a\" bottom: [\"x\", \"y\", \"z\", \"w\", \"v\"] "
    "convolution_param { kernel_size: [1, 2, 3, 4, 5, 6] weight_filler { type: \"g\" } } } "
    "layer < name: 'b' include { phase: TEST stage: \"s\" } >";

static void test_allocation_failures(void **state) {
  (void)state;
  budget_alloc b = {-1, 0};
  ns_allocator a = {ba_alloc, ba_realloc, ba_free, &b};
  int failures = 0;
  for (long budget = 0;; budget++) {
    ns_ctx *ctx = ns_ctx_create_with(&a);
    assert_non_null(ctx);
    long base = b.live;
    b.budget = budget;
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    ns_status st = ns_text_parse(ctx, alloc_text, strlen(alloc_text), "a", NET, &m);
    if (st == NS_OK) {
      ns_strbuf sb;
      ns_strbuf_init(&sb, ctx);
      ns_status ws = ns_text_write(ctx, m, &sb);
      assert_true(ws == NS_OK || ws == NS_ERR_NOMEM);
      ns_strbuf_free(&sb);
      free_msg(ctx, m);
      assert_int_equal(b.live, base);
      b.budget = -1;
      ns_ctx_destroy(ctx);
      if (ws == NS_OK) break;
      failures++;
      continue;
    }
    failures++;
    assert_int_equal(st, NS_ERR_NOMEM);
    assert_null(m);
    assert_int_equal(b.live, base); /* everything allocated so far was freed */
    b.budget = -1;
    ns_ctx_destroy(ctx);
    assert_true(budget < 10000);
  }
  assert_true(failures > 20);
  assert_int_equal(b.live, 0);
}

/* ---- writer ----------------------------------------------------------- */

static void test_write_caffe_layout(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  /* Odd spellings and field order in; Caffe's layout (field number order)
   * out. */
  const char *in =
      "name:\"tiny\" # a comment\n"
      "layer <name:'data' type:\"Input\" top:\"data\" input_param{shape{dim:[1,3,0x10,16]}}>\n"
      "layer { name: \"conv1\"; type: \"Convolution\"; bottom: \"data\"; top: \"conv1\"\n"
      "  param { lr_mult: 1 } param { decay_mult: 0 lr_mult: 2.0 }\n"
      "  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1\n"
      "    bias_filler { value: .1 type: \"constant\" } weight_filler { type: \"gaussian\" std: "
      "1e-2 } } }\n"
      "layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"conv1\" "
      "relu_param { negative_slope: 0.1f } }\n"
      "layer { pooling_param { stride: 2 pool: MAX kernel_size: 3 } name: \"pool1\" "
      "type: \"Pooling\" bottom: \"conv1\" top: \"pool1\" }\n"
      "layer { name: \"prob\" include { phase: TEST } type: \"Softmax\" bottom: \"pool1\" "
      "top: \"prob\" }\n";
  const char *expected =
      "name: \"tiny\"\n"
      "layer {\n"
      "  name: \"data\"\n"
      "  type: \"Input\"\n"
      "  top: \"data\"\n"
      "  input_param {\n"
      "    shape {\n"
      "      dim: 1\n"
      "      dim: 3\n"
      "      dim: 16\n"
      "      dim: 16\n"
      "    }\n"
      "  }\n"
      "}\n"
      "layer {\n"
      "  name: \"conv1\"\n"
      "  type: \"Convolution\"\n"
      "  bottom: \"data\"\n"
      "  top: \"conv1\"\n"
      "  param {\n"
      "    lr_mult: 1\n"
      "  }\n"
      "  param {\n"
      "    lr_mult: 2\n"
      "    decay_mult: 0\n"
      "  }\n"
      "  convolution_param {\n"
      "    num_output: 8\n"
      "    pad: 1\n"
      "    kernel_size: 3\n"
      "    stride: 2\n"
      "    weight_filler {\n"
      "      type: \"gaussian\"\n"
      "      std: 0.01\n"
      "    }\n"
      "    bias_filler {\n"
      "      type: \"constant\"\n"
      "      value: 0.1\n"
      "    }\n"
      "  }\n"
      "}\n"
      "layer {\n"
      "  name: \"relu1\"\n"
      "  type: \"ReLU\"\n"
      "  bottom: \"conv1\"\n"
      "  top: \"conv1\"\n"
      "  relu_param {\n"
      "    negative_slope: 0.1\n"
      "  }\n"
      "}\n"
      "layer {\n"
      "  name: \"pool1\"\n"
      "  type: \"Pooling\"\n"
      "  bottom: \"conv1\"\n"
      "  top: \"pool1\"\n"
      "  pooling_param {\n"
      "    pool: MAX\n"
      "    kernel_size: 3\n"
      "    stride: 2\n"
      "  }\n"
      "}\n"
      "layer {\n"
      "  name: \"prob\"\n"
      "  type: \"Softmax\"\n"
      "  bottom: \"pool1\"\n"
      "  top: \"prob\"\n"
      "  include {\n"
      "    phase: TEST\n"
      "  }\n"
      "}\n";
  ProtobufCMessage *m = round_trip(ctx, in, NET);
  char *t = write_text(ctx, m);
  assert_string_equal(t, expected);
  free(t);
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
}

static void test_write_appends(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  ProtobufCMessage *m = parse_ok(ctx, "name: \"x\"", NET);
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_strbuf_puts(&sb, "# head\n");
  assert_int_equal(ns_text_write(ctx, m, &sb), NS_OK);
  assert_string_equal(sb.data, "# head\nname: \"x\"\n");
  ns_strbuf_free(&sb);
  /* An empty message writes nothing. */
  Caffe__NetParameter empty = CAFFE__NET_PARAMETER__INIT;
  char *t = write_text(ctx, &empty);
  assert_string_equal(t, "");
  free(t);
  free_msg(ctx, m);
  ns_ctx_destroy(ctx);
}

static void test_write_floats(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__BlobProto b = CAFFE__BLOB_PROTO__INIT;
  /* Shortest of %.6g..%.9g that reads back: 1/3f needs 8 digits
   * (0.33333334, as numpy's float32 repr), 2^24 needs 8, 0.1f needs 1. */
  float data[] = {0.1f,     1.0f / 3,  16777216.0f, 1e10f,         -0.0f, 1.5e-45f,
                  INFINITY, -INFINITY, NAN,         3.4028235e38f, 100,   0.001f};
  double dd[] = {0.1, 1.0 / 3, 1e-300, 2.0, -INFINITY, 123456789012345678.0};
  b.n_data = sizeof data / sizeof *data;
  b.data = data;
  b.n_double_data = sizeof dd / sizeof *dd;
  b.double_data = dd;
  char *t = write_text(ctx, &b);
  assert_string_equal(t,
                      "data: 0.1\ndata: 0.33333334\ndata: 16777216\ndata: 1e+10\ndata: -0\n"
                      "data: 1.4013e-45\ndata: inf\ndata: -inf\ndata: nan\n"
                      "data: 3.4028235e+38\ndata: 100\ndata: 0.001\n"
                      "double_data: 0.1\ndouble_data: 0.3333333333333333\n"
                      "double_data: 1e-300\ndouble_data: 2\ndouble_data: -inf\n"
                      "double_data: 1.2345678901234568e+17\n");
  /* Every value reads back to the same bits. */
  ProtobufCMessage *back = parse_ok(ctx, t, BLOB);
  assert_same_packing(&b.base, back);
  free_msg(ctx, back);
  free(t);
  ns_ctx_destroy(ctx);
}

static void test_write_strings_and_enums(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__LayerParameter l = CAFFE__LAYER_PARAMETER__INIT;
  l.name = "q\"uo'te\\ new\nline\ttab\r\x01\x7f\xc3\xa9";
  l.has_phase = 1;
  l.phase = (Caffe__Phase)7; /* not a value of the enum: written as a number */
  char *t = write_text(ctx, &l);
  assert_string_equal(t,
                      "name: \"q\\\"uo\\'te\\\\ new\\nline\\ttab\\r\\001\\177\\303\\251\"\n"
                      "phase: 7\n");
  free(t);
  l.phase = CAFFE__PHASE__TEST;
  l.type = "";
  t = write_text(ctx, &l);
  assert_non_null(strstr(t, "type: \"\"\nphase: TEST\n"));
  free(t);
  /* Reading the escaped text gives back the same string. */
  l.phase = CAFFE__PHASE__TRAIN;
  t = write_text(ctx, &l);
  Caffe__LayerParameter *back = (Caffe__LayerParameter *)parse_ok(ctx, t, LAYER);
  assert_string_equal(back->name, l.name);
  assert_same_packing(&l.base, &back->base);
  free_msg(ctx, back);
  free(t);

  Caffe__Datum d = CAFFE__DATUM__INIT;
  uint8_t bytes[] = {0, 'a', 0xff, '"'};
  d.has_data = 1;
  d.data.len = sizeof bytes;
  d.data.data = bytes;
  d.has_encoded = 1;
  t = write_text(ctx, &d);
  assert_string_equal(t, "data: \"\\000a\\377\\\"\"\nencoded: false\n");
  free(t);
  ns_ctx_destroy(ctx);
}

static void test_write_presence(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  Caffe__SolverParameter s = CAFFE__SOLVER_PARAMETER__INIT;
  char *t = write_text(ctx, &s); /* defaults everywhere: nothing present */
  assert_string_equal(t, "");
  free(t);
  s.has_random_seed = 1; /* present even at the default value */
  s.random_seed = -1;
  s.base_lr = 0.5f; /* set without has_: not present */
  s.has_solver_mode = 1;
  s.solver_mode = CAFFE__SOLVER_PARAMETER__SOLVER_MODE__CPU;
  char sgd[] = "SGD";
  s.type = sgd; /* same text as the default, but not the default's pointer */
  t = write_text(ctx, &s);
  assert_string_equal(t, "solver_mode: CPU\nrandom_seed: -1\ntype: \"SGD\"\n");
  free(t);
  ns_ctx_destroy(ctx);
}

static void test_round_trips(void **state) {
  (void)state;
  ns_ctx *ctx = new_ctx();
  const char *cases[][2] = {
      {"name: \"a\\n\\001\" layer { type: 'x' bottom: [\"p\", \"q\"] loss_weight: [1e-3, -inf] "
       "propagate_down: [t, f] include { phase: TEST min_level: -3 stage: 'x' } }",
       "NET"},
      {"test_iter: [100, 200] base_lr: 0.00999999977648258 random_seed: -123456789012 "
       "solver_mode: CPU net_param { layer { name: \"z\" } } test_net_param { } "
       "test_net_param < name: 'n' > regularization_type: 'L1' delta: 1e-8",
       "SOLVER"},
      {"shape { dim: [1, 2, 3, 9223372036854775807] } data: [nan, -0, 1.17549435e-38] "
       "double_data: [1e308, 4.9406564584124654e-324] num: -1",
       "BLOB"},
      {"channels: 3 height: 2 width: 1 data: \"\\000\\x01\\u00ff\" label: 9 float_data: [1.5]",
       "DATUM"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const ProtobufCMessageDescriptor *d = !strcmp(cases[i][1], "NET")      ? NET
                                          : !strcmp(cases[i][1], "SOLVER") ? SOLVER
                                          : !strcmp(cases[i][1], "BLOB")   ? BLOB
                                                                           : DATUM;
    free_msg(ctx, round_trip(ctx, cases[i][0], d));
  }
  ns_ctx_destroy(ctx);
}

static void test_locale_independent(void **state) {
  (void)state;
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8"};
  const char *got = NULL;
  for (size_t i = 0; i < sizeof names / sizeof *names && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  if (!got) skip();
  ns_ctx *ctx = new_ctx();
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(ctx, "base_lr: 0.25", SOLVER);
  assert_true(s->base_lr == 0.25f);
  char *t = write_text(ctx, s);
  assert_string_equal(t, "base_lr: 0.25\n");
  free(t);
  free_msg(ctx, s);
  ns_ctx_destroy(ctx);
  setlocale(LC_NUMERIC, "C");
}

/* ---- Caffe's prototxts ------------------------------------------------ */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0, got;
  char *buf = malloc(cap);
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  *len = n;
  return buf;
}

/* Parses, writes, reparses and rewrites one file; 0 if all agree. */
static int corpus_file(ns_ctx *ctx, const char *path, const ProtobufCMessageDescriptor *d) {
  size_t len;
  char *text = slurp(path, &len);
  if (!text) return print_message("cannot read %s\n", path), 1;
  ProtobufCMessage *a = NULL, *b = NULL;
  int bad = 1;
  ns_strbuf t1, t2;
  ns_strbuf_init(&t1, ctx);
  ns_strbuf_init(&t2, ctx);
  if (ns_text_parse(ctx, text, len, path, d, &a) != NS_OK || ns_text_write(ctx, a, &t1) != NS_OK ||
      ns_text_parse(ctx, t1.data, t1.len, "rewritten", d, &b) != NS_OK ||
      ns_text_write(ctx, b, &t2) != NS_OK) {
    print_message("FAIL %s: %s\n", path, ns_ctx_error(ctx));
  } else if (t1.len != t2.len || memcmp(t1.data, t2.data, t1.len) != 0) {
    print_message("FAIL %s: second writing differs\n", path);
  } else {
    size_t la, lb;
    uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
    bad = la != lb || memcmp(pa, pb, la) != 0;
    if (bad) print_message("FAIL %s: packings differ\n", path);
    free(pa);
    free(pb);
  }
  ns_strbuf_free(&t1);
  ns_strbuf_free(&t2);
  if (a) free_msg(ctx, a);
  if (b) free_msg(ctx, b);
  free(text);
  return bad;
}

static void test_caffe_corpus(void **state) {
  (void)state;
  const char *shared = tu_shared_dir();
  if (!shared) skip();
  const char *folders[] = {"current", "zoo", "legacy_v1", "legacy_v0"};
  ns_ctx *ctx = new_ctx();
  int files = 0, failed = 0;
  for (size_t i = 0; i < sizeof folders / sizeof *folders; i++) {
    char sub[1024], dir[1024], path[2048];
    snprintf(sub, sizeof sub, "data/prototxt/%s", folders[i]);
    tu_path(dir, sizeof dir, shared, sub);
    DIR *dh = opendir(dir);
    if (!dh) continue;
    for (struct dirent *e; (e = readdir(dh)) != NULL;) {
      size_t n = strlen(e->d_name);
      if (n < 9 || strcmp(e->d_name + n - 9, ".prototxt") != 0) continue;
      tu_path(path, sizeof path, dir, e->d_name);
      const ProtobufCMessageDescriptor *d = strstr(e->d_name, "solver") ? SOLVER : NET;
      files++;
      failed += corpus_file(ctx, path, d);
    }
    closedir(dh);
  }
  ns_ctx_destroy(ctx);
  if (files == 0) skip();
  print_message("%d Caffe prototxts round-tripped, %d failed\n", files, failed);
  assert_int_equal(failed, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_net),
      cmocka_unit_test(test_empty_input),
      cmocka_unit_test(test_comments_and_whitespace),
      cmocka_unit_test(test_colon_before_brace_optional),
      cmocka_unit_test(test_angle_brackets),
      cmocka_unit_test(test_field_separators),
      cmocka_unit_test(test_repeated_fields),
      cmocka_unit_test(test_list_errors),
      cmocka_unit_test(test_enums),
      cmocka_unit_test(test_enum_errors),
      cmocka_unit_test(test_string_escapes),
      cmocka_unit_test(test_bytes_field),
      cmocka_unit_test(test_string_errors),
      cmocka_unit_test(test_integers),
      cmocka_unit_test(test_integer_range_errors),
      cmocka_unit_test(test_other_integer_types),
      cmocka_unit_test(test_floats),
      cmocka_unit_test(test_number_errors),
      cmocka_unit_test(test_bools),
      cmocka_unit_test(test_duplicate_fields),
      cmocka_unit_test(test_oneof_and_unlabeled),
      cmocka_unit_test(test_required_not_enforced),
      cmocka_unit_test(test_unknown_field_error),
      cmocka_unit_test(test_unknown_field_allowed),
      cmocka_unit_test(test_unknown_in_scope),
      cmocka_unit_test(test_unknown_once_per_name),
      cmocka_unit_test(test_unknown_names_bounded),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_strings_are_fresh_copies),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_write_caffe_layout),
      cmocka_unit_test(test_write_appends),
      cmocka_unit_test(test_write_floats),
      cmocka_unit_test(test_write_strings_and_enums),
      cmocka_unit_test(test_write_presence),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_locale_independent),
      cmocka_unit_test(test_caffe_corpus),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
