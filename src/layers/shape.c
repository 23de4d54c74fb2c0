/* Layers that only move data between shapes:
 *   Flatten  collapses axes [axis, end_axis] (defaults 1, -1) into one;
 *   Reshape  reshape_param.shape over axes [axis, axis + num_axes), where
 *            0 copies the bottom's dim and one -1 is inferred;
 *   Crop     cuts bottom[0] to bottom[1]'s dims from `axis` (default 2) on,
 *            at offset (one for all axes, or one per axis);
 *   Silence  consumes its bottoms, no tops. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

static ns_status no_in_place(ns_ctx *ctx, const ns_layer *l) {
  for (int i = 0; i < l->n_top; i++)
    for (int j = 0; j < l->n_bottom; j++)
      if (l->top[i] == l->bottom[j])
        return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed (blob '%s')",
                             l->top[i]->name);
  return NS_OK;
}

static ns_status set_top_shape(ns_ctx *ctx, ns_layer *l, int num_axes, const int64_t *shape) {
  if (ns_blob_reshape(ctx, l->top[0], num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
    return ctx->status;
  }
  return NS_OK;
}

/* Same element order: a straight copy. */
static ns_status copy_forward(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0]->count > 0)
    memcpy(l->top[0]->data, l->bottom[0]->data, (size_t)l->top[0]->count * sizeof(float));
  return NS_OK;
}

static ns_status canonical_axis(ns_ctx *ctx, const ns_layer *l, const ns_blob *b, int axis,
                                const char *field, int *out) {
  if (axis < -b->num_axes || axis >= b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%s %d out of range for bottom '%s' with %d axes",
                         field, axis, b->name, b->num_axes);
  *out = axis < 0 ? axis + b->num_axes : axis;
  return NS_OK;
}

/* ---- Flatten ---------------------------------------------------------- */

static ns_status flatten_setup(ns_ctx *ctx, ns_layer *l) { return no_in_place(ctx, l); }

static ns_status flatten_reshape(ns_ctx *ctx, ns_layer *l) {
  const Caffe__FlattenParameter *p = l->param->flatten_param;
  const ns_blob *b = l->bottom[0];
  int start = 0, end = 0;
  if (canonical_axis(ctx, l, b, p && p->has_axis ? p->axis : 1, "flatten_param.axis", &start) !=
          NS_OK ||
      canonical_axis(ctx, l, b, p && p->has_end_axis ? p->end_axis : -1, "flatten_param.end_axis",
                     &end) != NS_OK)
    return ctx->status;
  if (end < start)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "flatten_param.end_axis (%d) comes before axis (%d)",
                         end, start);
  int64_t shape[NS_MAX_AXES];
  int n = 0;
  for (int i = 0; i < start; i++) shape[n++] = b->shape[i];
  shape[n++] = ns_blob_count_range(b, start, end + 1);
  for (int i = end + 1; i < b->num_axes; i++) shape[n++] = b->shape[i];
  return set_top_shape(ctx, l, n, shape);
}

/* Flatten and Reshape keep the element order: the gradient is copied. */
static ns_status copy_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  if (down[0] && l->bottom[0]->count > 0)
    memcpy(l->bottom[0]->diff, l->top[0]->diff, (size_t)l->bottom[0]->count * sizeof(float));
  return NS_OK;
}

/* Every output of (N, C*H*W) sees the whole plane. */
static void flatten_geometry(const ns_layer *l, ns_layer_geometry *g) {
  (void)l;
  g->grid = NS_GRID_GLOBAL;
}

const ns_layer_ops ns_flatten_ops = {
    .type = "Flatten",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = flatten_setup,
    .reshape = flatten_reshape,
    .forward = copy_forward,
    .backward = copy_backward,
    .geometry = flatten_geometry,
    .export_onnx = ns_onnx_export_flatten,
};

/* ---- Reshape ---------------------------------------------------------- */

static ns_status reshape_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ReshapeParameter *p = l->param->reshape_param;
  if (!p || !p->shape) return ns_layer_fail(ctx, l, NS_ERR_NET, "reshape_param.shape is missing");
  int inferred = -1;
  for (size_t i = 0; i < p->shape->n_dim; i++) {
    int64_t d = p->shape->dim[i];
    if (d < -1)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "reshape_param.shape.dim[%zu] = %lld (must be >= 0, or -1 to infer)", i,
                           (long long)d);
    if (d == -1 && inferred >= 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "reshape_param.shape has more than one -1 (dims %d and %zu)", inferred,
                           i);
    if (d == -1) inferred = (int)i;
  }
  if (p->has_num_axes && p->num_axes < -1)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "reshape_param.num_axes %d must be >= 0, or -1 for all remaining axes",
                         p->num_axes);
  return no_in_place(ctx, l);
}

/* The bottom axes [*start, *end) that the new shape replaces. */
static ns_status reshape_span(ns_ctx *ctx, const ns_layer *l, int *start, int *end) {
  const Caffe__ReshapeParameter *p = l->param->reshape_param;
  const ns_blob *b = l->bottom[0];
  int axis = p->has_axis ? p->axis : 0;
  int num_axes = p->has_num_axes ? p->num_axes : -1;
  *start = axis >= 0 ? axis : axis + b->num_axes + 1;
  if (*start < 0 || *start > b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "reshape_param.axis %d out of range for bottom '%s' with %d axes", axis,
                         b->name, b->num_axes);
  *end = num_axes == -1 ? b->num_axes : *start + num_axes;
  if (*end > b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "reshape_param.num_axes %d from axis %d extends past bottom '%s' with %d "
                         "axes",
                         num_axes, *start, b->name, b->num_axes);
  return NS_OK;
}

static ns_status reshape_reshape(ns_ctx *ctx, ns_layer *l) {
  const Caffe__BlobShape *want = l->param->reshape_param->shape;
  const ns_blob *b = l->bottom[0];
  int start = 0, end = 0;
  if (reshape_span(ctx, l, &start, &end) != NS_OK) return ctx->status;
  int64_t n_axes = (int64_t)b->num_axes - (end - start) + (int64_t)want->n_dim;
  if (n_axes > NS_MAX_AXES)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the new shape has %lld axes (at most %d)",
                         (long long)n_axes, NS_MAX_AXES);
  int64_t shape[NS_MAX_AXES];
  int n = 0, inferred = -1;
  int64_t known = 1; /* product of every top dim but the inferred one */
  for (int i = 0; i < start; i++, n++) {
    shape[n] = b->shape[i];
    if (!ns_mul_i64(known, b->shape[i], &known))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "the new shape's element count overflows");
  }
  for (size_t i = 0; i < want->n_dim; i++, n++) {
    int64_t d = want->dim[i];
    if (d == 0) {
      if (start + (int64_t)i >= b->num_axes)
        return ns_layer_fail(ctx, l, NS_ERR_NET,
                             "reshape_param.shape.dim[%zu] is 0 but bottom '%s' has no axis %lld "
                             "to copy",
                             i, b->name, (long long)(start + (int64_t)i));
      d = b->shape[start + i];
    }
    if (d == -1) {
      inferred = n;
      continue;
    }
    shape[n] = d;
    if (!ns_mul_i64(known, d, &known))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "the new shape's element count overflows");
  }
  for (int i = end; i < b->num_axes; i++, n++) {
    shape[n] = b->shape[i];
    if (!ns_mul_i64(known, b->shape[i], &known))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "the new shape's element count overflows");
  }
  if (inferred >= 0) {
    if (known == 0 || b->count % known != 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "bottom '%s' count %lld is not divisible by the product %lld of the "
                           "other dims, so the -1 dim cannot be inferred",
                           b->name, (long long)b->count, (long long)known);
    shape[inferred] = b->count / known;
    known = b->count;
  }
  if (known != b->count) {
    char sb[128], st[128];
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot reshape bottom '%s' %s (%lld values) to %s",
                         b->name, ns_shape_str(b->shape, b->num_axes, sb, sizeof sb),
                         (long long)b->count, ns_shape_str(shape, n, st, sizeof st));
  }
  return set_top_shape(ctx, l, n, shape);
}

const ns_layer_ops ns_reshape_ops = {
    .type = "Reshape",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = reshape_setup,
    .reshape = reshape_reshape,
    .forward = copy_forward,
    .backward = copy_backward,
    .export_onnx = ns_onnx_export_reshape,
};

/* ---- Crop ------------------------------------------------------------- */

typedef struct crop_state {
  int64_t offset[NS_MAX_AXES]; /* per axis of bottom[0] */
} crop_state;

static ns_status crop_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__CropParameter *p = l->param->crop_param;
  const ns_blob *b = l->bottom[0];
  int axis;
  if (canonical_axis(ctx, l, b, p && p->has_axis ? p->axis : 2, "crop_param.axis", &axis) != NS_OK)
    return ctx->status;
  size_t n_off = p ? p->n_offset : 0;
  if (n_off > 1 && (size_t)axis + n_off != (size_t)b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "crop_param.offset has %zu values but axes %d..%d need %d (or give one)",
                         n_off, axis, b->num_axes - 1, b->num_axes - axis);
  crop_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  return no_in_place(ctx, l);
}

static ns_status crop_reshape(ns_ctx *ctx, ns_layer *l) {
  const Caffe__CropParameter *p = l->param->crop_param;
  crop_state *s = l->priv;
  const ns_blob *a = l->bottom[0], *ref = l->bottom[1];
  int axis;
  if (canonical_axis(ctx, l, a, p && p->has_axis ? p->axis : 2, "crop_param.axis", &axis) != NS_OK)
    return ctx->status;
  size_t n_off = p ? p->n_offset : 0;
  if (n_off > 1 && (size_t)axis + n_off != (size_t)a->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "crop_param.offset has %zu values for %d axes", n_off,
                         a->num_axes - axis);
  if (ref->num_axes < a->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %d axes, fewer than bottom '%s' (%d)",
                         ref->name, ref->num_axes, a->name, a->num_axes);
  int64_t shape[NS_MAX_AXES];
  for (int i = 0; i < a->num_axes; i++) {
    shape[i] = a->shape[i];
    s->offset[i] = 0;
    if (i < axis) continue;
    shape[i] = ref->shape[i];
    if (n_off == 1) s->offset[i] = p->offset[0];
    if (n_off > 1) s->offset[i] = p->offset[i - axis];
    if (a->shape[i] - s->offset[i] < ref->shape[i])
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "crop at axis %d: offset %lld + size %lld exceeds bottom '%s' size %lld",
                           i, (long long)s->offset[i], (long long)ref->shape[i], a->name,
                           (long long)a->shape[i]);
  }
  return set_top_shape(ctx, l, a->num_axes, shape);
}

/* Where top row r (over the top's axes before the last) starts in the
 * bottom: unravel r, add the offsets. */
static int64_t crop_source(const crop_state *s, const ns_blob *a, const ns_blob *t, int64_t r) {
  int last = t->num_axes - 1;
  int64_t src = 0, stride = a->shape[last];
  for (int i = last - 1; i >= 0; i--) {
    int64_t idx = r % t->shape[i];
    r /= t->shape[i];
    src += (idx + s->offset[i]) * stride;
    stride *= a->shape[i];
  }
  return src + s->offset[last];
}

/* Copies the last-axis rows of the cropped window, one row at a time. */
static ns_status crop_forward(ns_ctx *ctx, ns_layer *l) {
  const crop_state *s = l->priv;
  const ns_blob *a = l->bottom[0];
  ns_blob *t = l->top[0];
  int last = t->num_axes - 1;
  if (t->count == 0) return NS_OK;
  if (last < 0) {
    t->data[0] = a->data[0];
    return NS_OK;
  }
  int64_t row = t->shape[last], rows = t->count / row;
  for (int64_t r = 0; r < rows; r++)
    memcpy(t->data + r * row, a->data + crop_source(s, a, t, r), (size_t)row * sizeof(float));
  return NS_OK;
}

/* The cropped window's gradient; zero elsewhere (Caffe's Crop backward). */
static ns_status crop_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const crop_state *s = l->priv;
  ns_blob *a = l->bottom[0];
  const ns_blob *t = l->top[0];
  int last = t->num_axes - 1;
  if (!down[0] || a->count == 0) return NS_OK;
  memset(a->diff, 0, (size_t)a->count * sizeof(float));
  if (t->count == 0) return NS_OK;
  if (last < 0) {
    a->diff[0] = t->diff[0];
    return NS_OK;
  }
  int64_t row = t->shape[last], rows = t->count / row;
  for (int64_t r = 0; r < rows; r++)
    memcpy(a->diff + crop_source(s, a, t, r), t->diff + r * row, (size_t)row * sizeof(float));
  return NS_OK;
}

/* A crop is a 1x1 window that starts `offset` cells in: pad -offset. */
static void crop_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const crop_state *s = l->priv;
  ns_layer_geometry_window(g);
  for (int a = 0; a < 2; a++)
    if (a + 2 < l->bottom[0]->num_axes) g->pad[a] = -s->offset[a + 2];
}

const ns_layer_ops ns_crop_ops = {
    .type = "Crop",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = crop_setup,
    .reshape = crop_reshape,
    .forward = crop_forward,
    .backward = crop_backward,
    .geometry = crop_geometry,
    .export_onnx = ns_onnx_export_crop,
};

/* ---- Silence ---------------------------------------------------------- */

static ns_status silence_nothing(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

/* Silence passes no gradient: its bottoms' diffs are zero. */
static ns_status silence_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  for (int i = 0; i < l->n_bottom; i++)
    if (down[i] && l->bottom[i]->count > 0)
      memset(l->bottom[i]->diff, 0, (size_t)l->bottom[i]->count * sizeof(float));
  return NS_OK;
}

const ns_layer_ops ns_silence_ops = {
    .type = "Silence",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 0,
    .max_tops = 0,
    .setup = silence_nothing,
    .reshape = silence_nothing,
    .forward = silence_nothing,
    .backward = silence_backward,
    .export_onnx = ns_onnx_export_silence,
};
