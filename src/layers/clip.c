/* Clip, as Caffe's ClipLayer: y = max(min, min(x, max)) element-wise with
 * clip_param { min max } (both required); ReLU6 is Clip(0, 6).  One bottom,
 * one top of the same shape, in place allowed.  Backward passes the
 * gradient where min <= x <= max (the bounds included, as Caffe's). */
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct clip_state {
  float min, max;
  float *saved; /* in place, TRAIN: the bottom before forward */
  int64_t saved_cap;
} clip_state;

static ns_status clip_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ClipParameter *p = l->param->clip_param;
  if (!p)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "clip_param { min max } is required (both bounds)");
  clip_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->min = p->min;
  s->max = p->max;
  return NS_OK;
}

static void clip_destroy(ns_ctx *ctx, ns_layer *l) {
  clip_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->saved);
}

static ns_status clip_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Clip): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Written as Caffe's std::max(min, std::min(x, max)), so NaN becomes min. */
static ns_status clip_forward(ns_ctx *ctx, ns_layer *l) {
  clip_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  /* In place, backward needs the x that forward overwrites: training
   * keeps a copy (Caffe's in-place Clip would read the clipped y). */
  if (l->top[0] == b && ns_layer_phase_train(l) &&
      ns_floats_save(ctx, &s->saved, &s->saved_cap, b->data, b->count) != NS_OK)
    return ctx->status;
  const float *x = b->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < b->count; i++) {
    float below = s->max < x[i] ? s->max : x[i];
    y[i] = s->min < below ? below : s->min;
  }
  return NS_OK;
}

/* dx = dy where min <= x <= max, else 0. */
static ns_status clip_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const clip_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  if (!down[0]) return NS_OK;
  const float *x = l->top[0] == b ? s->saved : b->data;
  if (l->top[0] == b && (!x || s->saved_cap < b->count))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place backward needs a TRAIN forward first");
  const float *dy = l->top[0]->diff;
  for (int64_t i = 0; i < b->count; i++)
    b->diff[i] = x[i] >= s->min && x[i] <= s->max ? dy[i] : 0.0f;
  return NS_OK;
}

const ns_layer_ops ns_clip_ops = {
    .type = "Clip",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = clip_setup,
    .reshape = clip_reshape,
    .forward = clip_forward,
    .backward = clip_backward,
    .destroy = clip_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_clip,
};
