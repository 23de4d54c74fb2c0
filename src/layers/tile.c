/* Tile, as Caffe's TileLayer: repeats the bottom `tiles` times along
 * tile_param.axis (default 1; negative counts from the end).  The top has
 * shape[axis] * tiles there; for each outer index (the axes before axis)
 * the block of the axes from axis on is copied tiles times in a row.
 * tile_param.tiles is required and must be positive.  Backward sums the
 * tiles' gradients.  Not in place (the top is larger). */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct tile_state {
  int axis_param, tiles;
  int64_t outer, inner; /* count(0, axis) and count(axis) of the bottom */
} tile_state;

static ns_status tile_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__TileParameter *p = l->param->tile_param;
  if (!p || !p->has_tiles)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "tile_param.tiles is required (number of tiles)");
  if (p->tiles <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "tile_param.tiles must be positive, got %d",
                         (int)p->tiles);
  tile_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->axis_param = p->has_axis ? p->axis : 1;
  s->tiles = p->tiles;
  return NS_OK;
}

static ns_status tile_reshape(ns_ctx *ctx, ns_layer *l) {
  tile_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int axis = 0;
  if (l->top[0] == b)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place (the top is larger)");
  if (ns_blob_axis(ctx, b, s->axis_param, "tile_param.axis", &axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Tile): ", l->name);
    return ctx->status;
  }
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  if (shape[axis] > INT64_MAX / s->tiles)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "tiled axis size overflows");
  shape[axis] *= s->tiles;
  if (ns_blob_reshape(ctx, l->top[0], b->num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Tile): ", l->name);
    return ctx->status;
  }
  s->outer = ns_blob_count_range(b, 0, axis);
  s->inner = ns_blob_count_range(b, axis, b->num_axes);
  return NS_OK;
}

static ns_status tile_forward(ns_ctx *ctx, ns_layer *l) {
  const tile_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  size_t bytes = (size_t)s->inner * sizeof(float);
  if (!bytes) return NS_OK;
  for (int64_t i = 0; i < s->outer; i++)
    for (int t = 0; t < s->tiles; t++) memcpy(y + (i * s->tiles + t) * s->inner, x + i * s->inner, bytes);
  return NS_OK;
}

/* dx[i, k] = sum over t of dy[i, t, k]. */
static ns_status tile_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const tile_state *s = l->priv;
  if (!down[0]) return NS_OK;
  const float *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  for (int64_t i = 0; i < s->outer; i++)
    for (int64_t k = 0; k < s->inner; k++) {
      float sum = 0;
      for (int t = 0; t < s->tiles; t++) sum += dy[(i * s->tiles + t) * s->inner + k];
      dx[i * s->inner + k] = sum;
    }
  return NS_OK;
}

const ns_layer_ops ns_tile_ops = {
    .type = "Tile",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = tile_setup,
    .reshape = tile_reshape,
    .forward = tile_forward,
    .backward = tile_backward,
    .export_onnx = ns_onnx_export_tile,
};
