/* libFuzzer target: the prototxt reader (ns_text_parse) on NetParameter and
 * SolverParameter, then the upgrade and the writer: whatever the reader
 * accepts and the upgrade keeps, the writer's text must read back as the
 * same message (the same binary form). */
#include "fuzz_common.h"

#include "caffe.pb-c.h"
#include "format/textformat.h"
#include "format/upgrade.h"
#include "format/model_io.h"

/* The binary form of a net without its layers' param blobs (the text
 * writer leaves them out); malloc'ed, *len bytes. */
static uint8_t *pack_without_blobs(Caffe__NetParameter *net, size_t *len) {
  size_t *saved = calloc(net->n_layer + 1, sizeof *saved);
  if (!saved) return NULL;
  for (size_t i = 0; i < net->n_layer; i++) {
    saved[i] = net->layer[i]->n_blobs;
    net->layer[i]->n_blobs = 0;
  }
  *len = caffe__net_parameter__get_packed_size(net);
  uint8_t *buf = malloc(*len + 1);
  if (buf) caffe__net_parameter__pack(net, buf);
  for (size_t i = 0; i < net->n_layer; i++) net->layer[i]->n_blobs = saved[i];
  free(saved);
  return buf;
}

/* The text read back must be the same message: same binary form. */
static void same_message(ns_ctx *ctx, Caffe__NetParameter *a, Caffe__NetParameter *b,
                         const ns_strbuf *text) {
  size_t la = 0, lb = 0;
  uint8_t *pa = pack_without_blobs(a, &la), *pb = pack_without_blobs(b, &lb);
  if (pa && pb && (la != lb || memcmp(pa, pb, la) != 0)) {
    fprintf(stderr, "--- written text ---\n%.*s\n", (int)text->len, text->data);
    fz_abort("the writer's output reads back as another message", ctx);
  }
  free(pa);
  free(pb);
}

static void round_trip(ns_ctx *ctx, Caffe__NetParameter *net) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_status st = ns_net_param_to_text(ctx, net, &sb);
  if (st == NS_OK) st = ns_strbuf_status(&sb);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    ProtobufCMessage *again = NULL;
    st = ns_text_parse(ctx, sb.data ? sb.data : "", sb.len, "written",
                       &caffe__net_parameter__descriptor, &again);
    if (st == NS_ERR_NOMEM) {
      ns_ctx_clear_error(ctx);
    } else if (st != NS_OK) {
      fprintf(stderr, "--- written text ---\n%.*s\n", (int)sb.len, sb.data);
      fz_abort("the writer's output does not read back", ctx);
    }
    if (again) {
      same_message(ctx, net, (Caffe__NetParameter *)again, &sb);
      protobuf_c_message_free_unpacked(again, &ctx->pb_alloc);
    }
  }
  ns_strbuf_free(&sb);
}

static void net_param(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(0);
  ns_ctx_set_allow_unknown(ctx, size > 0 && (data[0] & 1));
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse(ctx, (const char *)data, size, "fuzz.prototxt",
                               &caffe__net_parameter__descriptor, &m);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    Caffe__NetParameter *net = (Caffe__NetParameter *)m;
    st = ns_upgrade_net(ctx, &net, "fuzz.prototxt", NULL);
    fz_check_status(ctx, st);
    if (st == NS_OK) round_trip(ctx, net);
    ns_net_param_free(ctx, net);
  }
  fz_ctx_destroy(ctx);
}

static void solver_param(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(0);
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse(ctx, (const char *)data, size, "fuzz_solver.prototxt",
                               &caffe__solver_parameter__descriptor, &m);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    st = ns_upgrade_solver(ctx, (Caffe__SolverParameter *)m, "fuzz_solver.prototxt", NULL);
    fz_check_status(ctx, st);
    protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
  }
  fz_ctx_destroy(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  net_param(data, size);
  solver_param(data, size);
  return 0;
}
