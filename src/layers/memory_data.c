/* MemoryData, as Caffe's MemoryDataLayer with Reset (pycaffe's
 * set_input_arrays): no bottom; two tops, data (batch_size, channels,
 * height, width) and label (batch_size).  The caller hands over n items
 * (ns_memory_data_reset); each forward copies the next batch_size of them
 * and the position wraps to the first after the last (n is a multiple of
 * batch_size, so a batch never straddles the end).  Caffe points its tops
 * into the caller's arrays; here they are copied, so the caller may free
 * its own.  As Caffe's Reset, transform_param is not applied; Caffe's
 * AddDatumVector / AddMatVector (OpenCV images) are not offered. */
#include <string.h>

#include "layers/memory_data.h"

typedef struct memory_state {
  int64_t batch, item;  /* item: floats per image, channels * height * width */
  float *data, *labels; /* n * item and n floats; NULL until a reset */
  int64_t n, pos;
} memory_state;

static ns_status memory_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__MemoryDataParameter *p = l->param->memory_data_param;
  if (!p || !p->batch_size || !p->channels || !p->height || !p->width)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "memory_data_param: batch_size, channels, height and width must all be "
                         "given and positive");
  memory_state *s = l->priv = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  s->batch = p->batch_size;
  s->item = (int64_t)p->channels * p->height * p->width; /* < 2^96: checked by the reshape */
  return NS_OK;
}

static ns_status memory_reshape(ns_ctx *ctx, ns_layer *l) {
  const Caffe__MemoryDataParameter *p = l->param->memory_data_param;
  const int64_t shape[4] = {p->batch_size, p->channels, p->height, p->width};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK ||
      ns_blob_reshape(ctx, l->top[1], 1, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (MemoryData): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status memory_forward(ns_ctx *ctx, ns_layer *l) {
  memory_state *s = l->priv;
  if (!s->data)
    return ns_layer_fail(ctx, l, NS_ERR_USAGE,
                         "no arrays yet: hand them over with ns_net_set_input_arrays "
                         "(pycaffe's set_input_arrays) before the forward");
  memcpy(l->top[0]->data, s->data + s->pos * s->item, (size_t)(s->batch * s->item) * sizeof(float));
  memcpy(l->top[1]->data, s->labels + s->pos, (size_t)s->batch * sizeof(float));
  s->pos = (s->pos + s->batch) % s->n;
  return NS_OK;
}

static void memory_destroy(ns_ctx *ctx, ns_layer *l) {
  memory_state *s = l->priv;
  if (!s) return;
  ns_floats_free(ctx, s->data);
  ns_floats_free(ctx, s->labels);
}

const ns_layer_ops ns_memory_data_ops = {
    .type = "MemoryData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 2,
    .max_tops = 2,
    .setup = memory_setup,
    .reshape = memory_reshape,
    .forward = memory_forward,
    .destroy = memory_destroy,
};

ns_status ns_memory_data_reset(ns_ctx *ctx, ns_layer *l, const float *data, const float *labels,
                               int64_t n) {
  if (l->ops != &ns_memory_data_ops)
    return ns_layer_fail(ctx, l, NS_ERR_USAGE, "input arrays go to a MemoryData layer only");
  memory_state *s = l->priv;
  if (!data || !labels)
    return ns_layer_fail(ctx, l, NS_ERR_USAGE, "input arrays: data and labels are both needed");
  if (n <= 0 || n % s->batch)
    return ns_layer_fail(ctx, l, NS_ERR_USAGE,
                         "input arrays: %lld items is not a positive multiple of batch_size %lld",
                         (long long)n, (long long)s->batch);
  int64_t total;
  if (!ns_mul_i64(n, s->item, &total))
    return ns_layer_fail(ctx, l, NS_ERR_NOMEM, "input arrays: %lld items overflow", (long long)n);
  if (ns_check_tensor_size(ctx, total, l->name) != NS_OK) return ctx->status;
  float *d = ns_floats_alloc(ctx, total), *lab = ns_floats_alloc(ctx, n);
  if (!d || !lab) {
    ns_floats_free(ctx, d);
    ns_floats_free(ctx, lab);
    return ctx->status;
  }
  memcpy(d, data, (size_t)total * sizeof(float));
  memcpy(lab, labels, (size_t)n * sizeof(float));
  ns_floats_free(ctx, s->data);
  ns_floats_free(ctx, s->labels);
  s->data = d;
  s->labels = lab;
  s->n = n;
  s->pos = 0;
  return NS_OK;
}
