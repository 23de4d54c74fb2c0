/* libFuzzer target: the net builder.  A prototxt or caffemodel is parsed
 * and upgraded, built (every layer's setup and reshape, fillers drawn) with
 * a small tensor limit, reshaped again, its receptive fields computed, and
 * run forward and backward when it is small enough to be quick. */
#include "fuzz_common.h"

#include <string.h>

#include "core/net.h"
#include "format/model_io.h"

#define FZ_TENSOR_LIMIT ((uint64_t)4 << 20)
#define FZ_FORWARD_ELEMENTS ((int64_t)1 << 20)
#define FZ_FORWARD_WORK 3e7

/* Work of a layer's forward, roughly: FLOPs of the GEMM layers, window
 * sizes of the windowed ones, one step per element otherwise.  Only for
 * keeping legitimate big computations (a 500 x 500 pooling window) from
 * reading as hangs. */
static double layer_work(const ns_net *net, int i) {
  const ns_layer *l = &net->layers[i];
  double out = 0, work = ns_net_layer_flops(net, i);
  for (int j = 0; j < l->n_top; j++) out += (double)l->top[j]->count;
  for (int j = 0; j < l->n_bottom; j++) out += (double)l->bottom[j]->count;
  const Caffe__LayerParameter *p = l->param;
  double window = 1;
  if (!strcmp(l->ops->type, "Pooling") && p->pooling_param) {
    const Caffe__PoolingParameter *pp = p->pooling_param;
    const ns_blob *b = l->n_bottom ? l->bottom[0] : NULL;
    if (pp->global_pooling && b && b->num_axes == 4)
      window = (double)b->shape[2] * (double)b->shape[3];
    else if (pp->has_kernel_size)
      window = (double)pp->kernel_size * pp->kernel_size;
    else
      window = (double)pp->kernel_h * pp->kernel_w;
  } else if ((!strcmp(l->ops->type, "ROIPooling") || !strcmp(l->ops->type, "PSROIPooling")) &&
             l->n_bottom && l->bottom[0]->num_axes == 4) {
    /* a bin may cover the whole plane */
    window = (double)l->bottom[0]->shape[2] * (double)l->bottom[0]->shape[3];
  } else if (!strcmp(l->ops->type, "Proposal") || !strcmp(l->ops->type, "Python")) {
    /* NMS: each candidate against up to all top rows kept */
    window = l->n_top ? (double)l->top[0]->shape[0] : 1;
  } else if (!strcmp(l->ops->type, "LRN") && p->lrn_param) {
    double n = p->lrn_param->has_local_size ? p->lrn_param->local_size : 5;
    window = p->lrn_param->norm_region ? n * n : n;
  }
  return work + out * (window > 1 ? window : 1);
}

static int small_enough(const ns_net *net) {
  int64_t total = 0;
  for (int i = 0; i < net->n_blobs; i++) total += net->blobs[i]->count;
  double work = 0;
  for (int i = 0; i < net->n_layers; i++) work += layer_work(net, i);
  return total <= FZ_FORWARD_ELEMENTS && work <= FZ_FORWARD_WORK;
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
  if (!small_enough(net)) return;
  float loss;
  ns_status fst = ns_net_forward_loss(ctx, net, &loss);
  fz_check_status(ctx, fst);
  /* backward from whatever losses the net has (and force_backward) */
  if (fst == NS_OK) fz_check_status(ctx, ns_net_backward(ctx, net));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(FZ_TENSOR_LIMIT);
  Caffe__NetParameter *def = NULL;
  ns_status st = ns_parse_net_param(ctx, data, size, "fuzz.prototxt", &def, NULL);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    ns_net *net = NULL;
    st = ns_net_build(ctx, def, 1, NS_PHASE_TEST, &net); /* takes def */
    fz_check_status(ctx, st);
    if (st == NS_OK) {
      exercise(ctx, net);
      ns_net_destroy(net);
    }
  }
  fz_ctx_destroy(ctx);
  return 0;
}
