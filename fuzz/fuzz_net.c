/* libFuzzer target: the net builder.  A prototxt or caffemodel is parsed
 * and upgraded, built (every layer's setup and reshape, fillers drawn) with
 * a small tensor limit, reshaped again, its receptive fields computed, and
 * run forward when it is small enough to be quick. */
#include "fuzz_common.h"

#include "core/net.h"
#include "format/model_io.h"

#define FZ_TENSOR_LIMIT ((uint64_t)4 << 20)
#define FZ_FORWARD_ELEMENTS ((int64_t)1 << 20)
#define FZ_FORWARD_FLOPS 2e7

static int small_enough(const ns_net *net) {
  int64_t total = 0;
  for (int i = 0; i < net->n_blobs; i++) total += net->blobs[i]->count;
  double flops = 0;
  for (int i = 0; i < net->n_layers; i++) flops += ns_net_layer_flops(net, i);
  return total <= FZ_FORWARD_ELEMENTS && flops <= FZ_FORWARD_FLOPS;
}

static void exercise(ns_ctx *ctx, ns_net *net) {
  ns_status st = ns_net_reshape_all(ctx, net);
  fz_check_status(ctx, st);
  if (st != NS_OK) return;
  int n = ns_net_blob_count(net);
  ns_receptive_field *rf = malloc(((size_t)n + 1) * sizeof *rf);
  if (rf) {
    fz_check_status(ctx, ns_net_receptive_fields(ctx, net, rf));
    free(rf);
  }
  ns_ctx_clear_error(ctx);
  if (small_enough(net)) fz_check_status(ctx, ns_net_forward(ctx, net));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(FZ_TENSOR_LIMIT);
  Caffe__NetParameter *def = NULL;
  ns_status st = ns_parse_net_param(ctx, data, size, "fuzz.prototxt", &def, NULL);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    ns_net *net = NULL;
    st = ns_net_build(ctx, def, 1, &net); /* takes def */
    fz_check_status(ctx, st);
    if (st == NS_OK) {
      exercise(ctx, net);
      ns_net_destroy(net);
    }
  }
  fz_ctx_destroy(ctx);
  return 0;
}
