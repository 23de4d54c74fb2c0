/* Input: tops shaped by input_param.shape (one shape for all tops, or one
 * per top); the caller fills them before forward. */
#include "core/layer.h"

static ns_status input_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__InputParameter *p = l->param->input_param;
  size_t n_shapes = p ? p->n_shape : 0;
  if (n_shapes != 0 && n_shapes != 1 && n_shapes != (size_t)l->n_top)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%zu input shapes for %d tops", n_shapes, l->n_top);
  for (int i = 0; i < l->n_top; i++) {
    if (n_shapes == 0) continue; /* shaped later by the caller */
    const Caffe__BlobShape *s = p->shape[n_shapes == 1 ? 0 : i];
    if (s->n_dim > NS_MAX_AXES)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "input shape has %zu axes", s->n_dim);
    if (ns_blob_reshape(ctx, l->top[i], (int)s->n_dim, s->dim) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Input): ", l->name);
      return ctx->status;
    }
  }
  return NS_OK;
}

/* Input tops keep whatever shape the caller gave them. */
static ns_status input_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }
static ns_status input_forward(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

const ns_layer_ops ns_input_ops = {
    .type = "Input",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = -1,
    .setup = input_setup,
    .reshape = input_reshape,
    .forward = input_forward,
    .is_net_input = 1,
};
