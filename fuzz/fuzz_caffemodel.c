/* libFuzzer target: a whole caffemodel (or prototxt: decided by content, as
 * the loader does) through ns_parse_net_param: protobuf-c's decoder, then
 * every upgrade step; what loads must pack (to the size it announces) and
 * print as text. */
#include "fuzz_common.h"

#include "caffe.pb-c.h"
#include "format/model_io.h"

static void repack(ns_ctx *ctx, const Caffe__NetParameter *net) {
  size_t n = caffe__net_parameter__get_packed_size(net);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return;
  if (caffe__net_parameter__pack(net, buf) != n) fz_abort("packed size differs from pack", ctx);
  /* Not required to unpack again: protobuf-c keeps an unknown field whose
   * tag was 0 in a long varint, then packs it as the short, illegal tag. */
  Caffe__NetParameter *again = caffe__net_parameter__unpack(&ctx->pb_alloc, n, buf);
  if (again) ns_net_param_free(ctx, again);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(0);
  Caffe__NetParameter *net = NULL;
  int what = 0;
  ns_status st = ns_parse_net_param(ctx, data, size, "fuzz.caffemodel", &net, &what);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    repack(ctx, net);
    ns_strbuf sb;
    ns_strbuf_init(&sb, ctx);
    st = ns_net_param_to_text(ctx, net, &sb);
    if (st == NS_OK) st = ns_strbuf_status(&sb);
    fz_check_status(ctx, st);
    ns_strbuf_free(&sb);
    ns_net_param_free(ctx, net);
  }
  fz_ctx_destroy(ctx);
  return 0;
}
