/* Parameter, as Caffe's ParameterLayer: no bottom; one learnable blob of
 * parameter_param.shape (unset: a scalar, as Caffe's empty BlobShape),
 * left at zero (Caffe fills it with nothing; weights come from a
 * caffemodel or training), and one top that shows it.  Caffe's top shares
 * the blob's data and diff; here forward copies the data and backward
 * adds the top's diff to the param's, which is the same gradient (and
 * also accumulates over iter_size, where Caffe's shared diff is simply
 * overwritten by the layer above). */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status parameter_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ParameterParameter *p = l->param->parameter_param;
  const Caffe__BlobShape *bs = p ? p->shape : NULL;
  int64_t shape[NS_MAX_AXES];
  size_t n = bs ? bs->n_dim : 0;
  if (n > NS_MAX_AXES)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "parameter_param.shape has %zu dims; at most %d", n,
                         NS_MAX_AXES);
  for (size_t i = 0; i < n; i++) shape[i] = bs->dim[i]; /* negative: refused by the reshape */
  if (ns_layer_add_param(ctx, l, (int)n, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Parameter): parameter_param.shape: ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status parameter_reshape(ns_ctx *ctx, ns_layer *l) {
  if (ns_blob_reshape_like(ctx, l->top[0], l->params[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Parameter): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status parameter_forward(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *w = l->params[0];
  if (w->count) memcpy(l->top[0]->data, w->data, (size_t)w->count * sizeof(float));
  return NS_OK;
}

static ns_status parameter_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  ns_blob *w = l->params[0];
  if (!ns_layer_param_grad(l, 0)) return NS_OK;
  const float *dy = l->top[0]->diff;
  for (int64_t i = 0; i < w->count; i++) w->diff[i] += dy[i];
  return NS_OK;
}

const ns_layer_ops ns_parameter_ops = {
    .type = "Parameter",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 1,
    .setup = parameter_setup,
    .reshape = parameter_reshape,
    .forward = parameter_forward,
    .backward = parameter_backward,
    .export_onnx = ns_onnx_export_parameter,
};
