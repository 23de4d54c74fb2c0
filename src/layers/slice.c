/* Slice: cuts its bottom along one axis (slice_param.axis, default 1, or
 * the legacy slice_dim) at slice_point, or into equal parts. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status slice_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__SliceParameter *p = l->param->slice_param;
  if (p && p->has_axis && p->has_slice_dim)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "slice_param: give either axis or slice_dim, not both");
  if (p && p->n_slice_point != 0 && p->n_slice_point != (size_t)l->n_top - 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "slice_param.slice_point has %zu values for %d tops (need one fewer)",
                         p->n_slice_point, l->n_top);
  for (int i = 0; i < l->n_top; i++)
    if (l->top[i] == l->bottom[0])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed (top '%s')",
                           l->top[i]->name);
  return NS_OK;
}

static ns_status slice_axis(ns_ctx *ctx, const ns_layer *l, int *axis) {
  const Caffe__SliceParameter *p = l->param->slice_param;
  const ns_blob *b = l->bottom[0];
  if (p && p->has_slice_dim) {
    if (p->slice_dim >= (uint32_t)b->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "slice_param.slice_dim %u out of range for bottom '%s' with %d axes",
                           p->slice_dim, b->name, b->num_axes);
    *axis = (int)p->slice_dim;
    return NS_OK;
  }
  int want = p && p->has_axis ? p->axis : 1;
  if (want < -b->num_axes || want >= b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "slice_param.axis %d out of range for bottom '%s' with %d axes", want,
                         b->name, b->num_axes);
  *axis = want < 0 ? want + b->num_axes : want;
  return NS_OK;
}

/* Size of top i along the slice axis; checks the slice points. */
static ns_status slice_sizes(ns_ctx *ctx, const ns_layer *l, int64_t dim, int64_t *sizes) {
  const Caffe__SliceParameter *p = l->param->slice_param;
  if (!p || p->n_slice_point == 0) {
    if (dim % l->n_top != 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "%d tops do not evenly divide the slice axis of size %lld", l->n_top,
                           (long long)dim);
    for (int i = 0; i < l->n_top; i++) sizes[i] = dim / l->n_top;
    return NS_OK;
  }
  if (l->n_top > dim)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%d tops for a slice axis of size %lld", l->n_top,
                         (long long)dim);
  int64_t prev = 0;
  for (size_t i = 0; i < p->n_slice_point; i++) {
    int64_t point = p->slice_point[i];
    if (point <= prev)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "slice_param.slice_point[%zu] = %lld must be greater than %lld", i,
                           (long long)point, (long long)prev);
    sizes[i] = point - prev;
    prev = point;
  }
  if (prev > dim)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "slice_param.slice_point %lld is past the slice axis of size %lld",
                         (long long)prev, (long long)dim);
  sizes[l->n_top - 1] = dim - prev;
  return NS_OK;
}

static ns_status slice_reshape(ns_ctx *ctx, ns_layer *l) {
  int axis;
  if (slice_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  const ns_blob *b = l->bottom[0];
  int64_t *sizes = ns_calloc(ctx, (size_t)l->n_top, sizeof *sizes);
  if (!sizes) return ctx->status;
  ns_status st = slice_sizes(ctx, l, b->shape[axis], sizes);
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  for (int i = 0; i < l->n_top && st == NS_OK; i++) {
    shape[axis] = sizes[i];
    st = ns_blob_reshape(ctx, l->top[i], b->num_axes, shape);
    if (st != NS_OK) ns_error_prefix(ctx, "layer '%s' (Slice): ", l->name);
  }
  ns_free(ctx, sizes);
  return st;
}

static ns_status slice_forward(ns_ctx *ctx, ns_layer *l) {
  int axis;
  if (slice_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  const ns_blob *b = l->bottom[0];
  int64_t outer = ns_blob_count_range(b, 0, axis);
  int64_t inner = ns_blob_count_range(b, axis + 1, b->num_axes);
  int64_t offset = 0;
  for (int i = 0; i < l->n_top; i++) {
    ns_blob *t = l->top[i];
    int64_t chunk = t->shape[axis] * inner, start = offset;
    offset += t->shape[axis];
    if (chunk == 0) continue;
    for (int64_t n = 0; n < outer; n++)
      memcpy(t->data + n * chunk, b->data + (n * b->shape[axis] + start) * inner,
             (size_t)chunk * sizeof(float));
  }
  return NS_OK;
}

/* The tops' gradients go back to their places in the bottom's. */
static ns_status slice_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  int axis;
  if (!down[0]) return NS_OK;
  if (slice_axis(ctx, l, &axis) != NS_OK) return ctx->status;
  ns_blob *b = l->bottom[0];
  int64_t outer = ns_blob_count_range(b, 0, axis);
  int64_t inner = ns_blob_count_range(b, axis + 1, b->num_axes);
  int64_t offset = 0;
  for (int i = 0; i < l->n_top; i++) {
    const ns_blob *t = l->top[i];
    int64_t chunk = t->shape[axis] * inner, start = offset;
    offset += t->shape[axis];
    if (chunk == 0) continue;
    for (int64_t n = 0; n < outer; n++)
      memcpy(b->diff + (n * b->shape[axis] + start) * inner, t->diff + n * chunk,
             (size_t)chunk * sizeof(float));
  }
  return NS_OK;
}

/* Along the batch or the channels, every cell stays in place. */
static void slice_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const Caffe__SliceParameter *s = l->param->slice_param;
  int axis = s ? (s->has_axis ? s->axis : (s->has_slice_dim ? (int)s->slice_dim : 1)) : 1;
  ns_layer_geometry_pointwise(l, g);
  if (axis != 0 && axis != 1) g->grid = NS_GRID_UNKNOWN;
}

const ns_layer_ops ns_slice_ops = {
    .type = "Slice",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = slice_setup,
    .reshape = slice_reshape,
    .forward = slice_forward,
    .backward = slice_backward,
    .geometry = slice_geometry,
    .export_onnx = ns_onnx_export_slice,
};
