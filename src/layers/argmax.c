/* ArgMax: the indices (and/or values) of the top_k largest entries.
 * Without axis: over each item's flattened dims [1, end), top shape
 * (N, 1 or 2, top_k) padded to >= 3 axes with 1s; with out_max_val the
 * second channel holds indices then values.  With axis: along that axis,
 * top shape = bottom shape with axis -> top_k, holding values when
 * out_max_val, else indices.  Order as Caffe's partial_sort of (value,
 * index) pairs by std::greater: ties put the larger index first. */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct argmax_state {
  int out_max_val, has_axis, axis;
  int64_t top_k;
} argmax_state;

typedef struct scored {
  float value;
  int64_t index;
} scored;

/* Greater-first (value, index) order.  NaNs (where Caffe's order is
 * undefined) go last, so the order stays total for qsort. */
static int scored_before(const scored *a, const scored *b) {
  int na = isnan(a->value), nb = isnan(b->value);
  if (na != nb) return nb;
  if (!na && a->value != b->value) return a->value > b->value;
  return a->index > b->index;
}

static int scored_cmp(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (scored_before(a, b)) return -1;
  if (scored_before(b, a)) return 1;
  return 0;
}

static ns_status argmax_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ArgMaxParameter *p = l->param->argmax_param;
  argmax_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->out_max_val = p && p->has_out_max_val ? p->out_max_val : 0;
  s->top_k = p && p->has_top_k ? p->top_k : 1;
  s->has_axis = p && p->has_axis;
  if (s->top_k < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "argmax_param.top_k must be at least 1");
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed");
  return NS_OK;
}

static ns_status argmax_reshape(ns_ctx *ctx, ns_layer *l) {
  argmax_state *s = l->priv;
  const Caffe__ArgMaxParameter *p = l->param->argmax_param;
  const ns_blob *b = l->bottom[0];
  int64_t shape[NS_MAX_AXES];
  int n = b->num_axes < 3 ? 3 : b->num_axes;
  for (int i = 0; i < n; i++) shape[i] = 1;
  if (s->has_axis) {
    if (p->axis < -b->num_axes || p->axis >= b->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "argmax_param.axis %d out of range for bottom '%s' with %d axes",
                           p->axis, b->name, b->num_axes);
    s->axis = p->axis < 0 ? p->axis + b->num_axes : p->axis;
    if (s->top_k > b->shape[s->axis])
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "argmax_param.top_k %lld exceeds the size %lld of axis %d",
                           (long long)s->top_k, (long long)b->shape[s->axis], s->axis);
    for (int i = 0; i < b->num_axes; i++) shape[i] = b->shape[i];
    shape[s->axis] = s->top_k;
  } else {
    if (b->num_axes < 1)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has no axes", b->name);
    int64_t classes = ns_blob_count_range(b, 1, b->num_axes);
    if (s->top_k > classes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "argmax_param.top_k %lld exceeds the %lld values per item",
                           (long long)s->top_k, (long long)classes);
    shape[0] = b->shape[0];
    shape[1] = s->out_max_val ? 2 : 1;
    shape[2] = s->top_k;
  }
  if (ns_blob_reshape(ctx, l->top[0], n, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (ArgMax): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Puts the top_k best of v[0..dim) first in v, in order. */
static void select_top(scored *v, int64_t dim, int64_t top_k) {
  if (top_k == 1) {
    int64_t best = 0;
    for (int64_t j = 1; j < dim; j++)
      if (scored_before(&v[j], &v[best])) best = j;
    v[0] = v[best];
    return;
  }
  qsort(v, (size_t)dim, sizeof *v, scored_cmp);
}

static ns_status argmax_forward(ns_ctx *ctx, ns_layer *l) {
  const argmax_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  float *top = l->top[0]->data;
  int64_t dim, stride; /* entries compared, and their distance in memory */
  if (s->has_axis) {
    dim = b->shape[s->axis];
    stride = ns_blob_count_range(b, s->axis + 1, b->num_axes);
  } else {
    dim = ns_blob_count_range(b, 1, b->num_axes);
    stride = 1;
  }
  if (dim == 0 || b->count == 0) return NS_OK;
  int64_t num = b->count / dim, k = s->top_k;
  scored *v = ns_calloc(ctx, (size_t)dim, sizeof *v);
  if (!v) return ctx->status;
  for (int64_t i = 0; i < num; i++) {
    int64_t outer = i / stride, inner = i % stride;
    for (int64_t j = 0; j < dim; j++) {
      v[j].value = b->data[(outer * dim + j) * stride + inner];
      v[j].index = j;
    }
    select_top(v, dim, k);
    for (int64_t j = 0; j < k; j++) {
      if (s->has_axis) {
        top[(outer * k + j) * stride + inner] = s->out_max_val ? v[j].value : (float)v[j].index;
      } else if (s->out_max_val) {
        top[2 * i * k + j] = (float)v[j].index;
        top[2 * i * k + k + j] = v[j].value;
      } else {
        top[i * k + j] = (float)v[j].index;
      }
    }
  }
  ns_free(ctx, v);
  return NS_OK;
}

const ns_layer_ops ns_argmax_ops = {
    .type = "ArgMax",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = argmax_setup,
    .reshape = argmax_reshape,
    .forward = argmax_forward,
    .export_onnx = ns_onnx_export_argmax,
};
