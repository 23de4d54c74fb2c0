/* libFuzzer target: the prototxt reader (ns_text_parse) on NetParameter and
 * SolverParameter, then the upgrade and the writer: whatever the reader
 * accepts and the upgrade keeps, the writer's text must read back. */
#include "fuzz_common.h"

#include "caffe.pb-c.h"
#include "format/textformat.h"
#include "format/upgrade.h"
#include "format/model_io.h"

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
    if (again) protobuf_c_message_free_unpacked(again, &ctx->pb_alloc);
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
