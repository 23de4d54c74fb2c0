/* Concat: joins its bottoms along one axis (concat_param.axis, default 1,
 * or the legacy concat_dim).  Every other dimension must agree. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status concat_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ConcatParameter *p = l->param->concat_param;
  if (p && p->has_axis && p->has_concat_dim)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "concat_param: give either axis or concat_dim, not both");
  for (int i = 0; i < l->n_bottom; i++)
    if (l->top[0] == l->bottom[i])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed (top '%s')",
                           l->top[0]->name);
  return NS_OK;
}

/* The concatenation axis, resolved against bottom[0]'s axes. */
static ns_status concat_axis(ns_ctx *ctx, const ns_layer *l, int *axis) {
  const Caffe__ConcatParameter *p = l->param->concat_param;
  const ns_blob *b0 = l->bottom[0];
  if (p && p->has_concat_dim) {
    if (p->concat_dim >= (uint32_t)b0->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "concat_param.concat_dim %u out of range for bottom '%s' with %d axes",
                           p->concat_dim, b0->name, b0->num_axes);
    *axis = (int)p->concat_dim;
    return NS_OK;
  }
  int want = p && p->has_axis ? p->axis : 1;
  if (want < -b0->num_axes || want >= b0->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "concat_param.axis %d out of range for bottom '%s' with %d axes", want,
                         b0->name, b0->num_axes);
  *axis = want < 0 ? want + b0->num_axes : want;
  return NS_OK;
}

static ns_status concat_reshape(ns_ctx *ctx, ns_layer *l) {
  int axis;
  if (concat_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  const ns_blob *b0 = l->bottom[0];
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b0->shape, sizeof shape);
  for (int i = 1; i < l->n_bottom; i++) {
    const ns_blob *b = l->bottom[i];
    if (b->num_axes != b0->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %d axes but bottom '%s' has %d",
                           b->name, b->num_axes, b0->name, b0->num_axes);
    for (int j = 0; j < b0->num_axes; j++)
      if (j != axis && b->shape[j] != b0->shape[j]) {
        char s0[128], s1[128];
        return ns_layer_fail(ctx, l, NS_ERR_NET,
                             "bottoms '%s' %s and '%s' %s differ at axis %d (only the concat "
                             "axis %d may differ)",
                             b0->name, ns_shape_str(b0->shape, b0->num_axes, s0, sizeof s0),
                             b->name, ns_shape_str(b->shape, b->num_axes, s1, sizeof s1), j, axis);
      }
    if (!ns_add_i64(shape[axis], b->shape[axis], &shape[axis]))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "concatenated size overflows");
  }
  if (ns_blob_reshape(ctx, l->top[0], b0->num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Concat): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status concat_forward(ns_ctx *ctx, ns_layer *l) {
  int axis;
  if (concat_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  ns_blob *top = l->top[0];
  int64_t outer = ns_blob_count_range(top, 0, axis);
  int64_t inner = ns_blob_count_range(top, axis + 1, top->num_axes);
  int64_t top_axis = top->shape[axis], offset = 0;
  for (int i = 0; i < l->n_bottom; i++) {
    const ns_blob *b = l->bottom[i];
    int64_t chunk = b->shape[axis] * inner;
    if (chunk == 0) continue;
    for (int64_t n = 0; n < outer; n++)
      memcpy(top->data + (n * top_axis + offset) * inner, b->data + n * chunk,
             (size_t)chunk * sizeof(float));
    offset += b->shape[axis];
  }
  return NS_OK;
}

/* Each bottom gets its chunk of the top's gradient back. */
static ns_status concat_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  int axis;
  if (concat_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  const ns_blob *top = l->top[0];
  int64_t outer = ns_blob_count_range(top, 0, axis);
  int64_t inner = ns_blob_count_range(top, axis + 1, top->num_axes);
  int64_t top_axis = top->shape[axis], offset = 0;
  for (int i = 0; i < l->n_bottom; i++) {
    ns_blob *b = l->bottom[i];
    int64_t chunk = b->shape[axis] * inner, start = offset;
    offset += b->shape[axis];
    if (chunk == 0 || !down[i]) continue;
    for (int64_t n = 0; n < outer; n++)
      memcpy(b->diff + n * chunk, top->diff + (n * top_axis + start) * inner,
             (size_t)chunk * sizeof(float));
  }
  return NS_OK;
}

/* Along the batch or the channels, every cell stays in place. */
static void concat_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const Caffe__ConcatParameter *c = l->param->concat_param;
  int axis = c ? (c->has_axis ? c->axis : (c->has_concat_dim ? (int)c->concat_dim : 1)) : 1;
  ns_layer_geometry_pointwise(l, g);
  if (axis != 0 && axis != 1) g->grid = NS_GRID_UNKNOWN;
}

const ns_layer_ops ns_concat_ops = {
    .type = "Concat",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = concat_setup,
    .reshape = concat_reshape,
    .forward = concat_forward,
    .backward = concat_backward,
    .geometry = concat_geometry,
    .export_onnx = ns_onnx_export_concat,
};
