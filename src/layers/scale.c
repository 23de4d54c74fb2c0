/* Scale and Bias: multiply (add) a blob broadcast over bottom[0].  The
 * operand is a learned param or a second bottom; its shape must equal
 * bottom[0]'s dims [axis, axis + operand axes), so bottom[0] is viewed as
 * [outer, dim, inner] and element (o, d, i) uses operand[d].  A 0-axis
 * operand is a single scalar.  Scale with bias_term runs a Bias after it
 * (axis from scale_param; bias shape over num_axes, or over bottom[1]'s
 * axis count when the scale is a bottom). */
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct bcast {
  int64_t outer, dim, inner;
} bcast;

typedef struct scale_state {
  int axis_param; /* axis as given (resolved per reshape) */
  int has_bias;   /* Scale: bias_term */
  bcast scale, bias;
  float *saved; /* Scale in place, TRAIN: the bottom before forward */
  int64_t saved_cap;
} scale_state;

static const ns_blob *operand(const ns_layer *l, int param_index) {
  return l->n_bottom > 1 ? l->bottom[1] : l->params[param_index];
}

/* Caffe's operand-axis rule: a scalar operand always applies at axis 0. */
static ns_status broadcast_dims(ns_ctx *ctx, const ns_layer *l, const ns_blob *x, const ns_blob *op,
                                int axis_param, const char *field, bcast *out) {
  int axis = 0;
  if (op->num_axes > 0) {
    if (axis_param < -x->num_axes || axis_param >= x->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "%s.axis %d out of range for bottom '%s' with %d axes", field,
                           axis_param, x->name, x->num_axes);
    axis = axis_param < 0 ? axis_param + x->num_axes : axis_param;
  }
  char sx[128], so[128];
  if (axis + op->num_axes > x->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "%s operand '%s' %s extends past bottom '%s' %s when applied at axis %d",
                         field, op->name, ns_shape_str(op->shape, op->num_axes, so, sizeof so),
                         x->name, ns_shape_str(x->shape, x->num_axes, sx, sizeof sx), axis);
  for (int i = 0; i < op->num_axes; i++)
    if (x->shape[axis + i] != op->shape[i])
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "%s operand '%s' %s does not match bottom '%s' %s at axis %d", field,
                           op->name, ns_shape_str(op->shape, op->num_axes, so, sizeof so), x->name,
                           ns_shape_str(x->shape, x->num_axes, sx, sizeof sx), axis + i);
  out->outer = ns_blob_count_range(x, 0, axis);
  out->dim = op->count;
  out->inner = ns_blob_count_range(x, axis + op->num_axes, x->num_axes);
  return NS_OK;
}

/* Creates the learned operand over x's dims [axis, axis + num_axes)
 * (num_axes -1: to the end) and fills it. */
static ns_status add_operand_param(ns_ctx *ctx, ns_layer *l, int axis_param, int num_axes,
                                   const char *field, const Caffe__FillerParameter *filler) {
  const ns_blob *x = l->bottom[0];
  if (axis_param < -x->num_axes || axis_param >= x->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%s.axis %d out of range for bottom '%s' with %d axes",
                         field, axis_param, x->name, x->num_axes);
  int axis = axis_param < 0 ? axis_param + x->num_axes : axis_param;
  if (num_axes < -1)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "%s.num_axes %d must be non-negative, or -1 for all remaining axes", field,
                         num_axes);
  if (num_axes >= 0 && axis + num_axes > x->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "%s.num_axes %d from axis %d extends past bottom '%s' with %d axes", field,
                         num_axes, axis, x->name, x->num_axes);
  int n = num_axes == -1 ? x->num_axes - axis : num_axes;
  if (ns_layer_add_param(ctx, l, n, x->shape + axis) != NS_OK) return ctx->status;
  return ns_filler_fill(ctx, l->params[l->n_params - 1], filler, l->rng);
}

static ns_status reshape_top(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK; /* in place */
  if (l->n_bottom > 1 && l->top[0] == l->bottom[1])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "top '%s' may only be computed in place on bottom 0",
                         l->top[0]->name);
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
    return ctx->status;
  }
  return NS_OK;
}

static void apply_scale(const bcast *d, const float *x, const float *s, float *y) {
  for (int64_t o = 0; o < d->outer; o++)
    for (int64_t k = 0; k < d->dim; k++) {
      int64_t base = (o * d->dim + k) * d->inner;
      float f = s[k];
      for (int64_t i = 0; i < d->inner; i++) y[base + i] = x[base + i] * f;
    }
}

static void apply_bias(const bcast *d, const float *x, const float *b, float *y) {
  for (int64_t o = 0; o < d->outer; o++)
    for (int64_t k = 0; k < d->dim; k++) {
      int64_t base = (o * d->dim + k) * d->inner;
      float f = b[k];
      for (int64_t i = 0; i < d->inner; i++) y[base + i] = x[base + i] + f;
    }
}

/* Gradient of a broadcast operand: sum over outer and inner of dy (times
 * x for Scale), added to a param's diff or written to a bottom's. */
static void operand_grad(const bcast *d, const float *dy, const float *x, float *out, int add) {
  for (int64_t k = 0; k < d->dim; k++) {
    double sum = 0;
    for (int64_t o = 0; o < d->outer; o++) {
      int64_t base = (o * d->dim + k) * d->inner;
      if (x)
        for (int64_t i = 0; i < d->inner; i++) sum += (double)dy[base + i] * x[base + i];
      else
        for (int64_t i = 0; i < d->inner; i++) sum += dy[base + i];
    }
    out[k] = add ? out[k] + (float)sum : (float)sum;
  }
}

/* The operand's diff: a param's (if it learns) or bottom 1's (if asked). */
static float *operand_diff(ns_layer *l, int param_index, const int *down, int *add) {
  *add = l->n_bottom == 1;
  if (l->n_bottom > 1) return down[1] ? l->bottom[1]->diff : NULL;
  return ns_layer_param_grad(l, param_index) ? l->params[param_index]->diff : NULL;
}

/* ---- Scale ---------------------------------------------------------- */

static ns_status scale_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ScaleParameter *p = l->param->scale_param;
  scale_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->axis_param = p && p->has_axis ? p->axis : 1;
  int num_axes = p && p->has_num_axes ? p->num_axes : 1;
  s->has_bias = p && p->has_bias_term ? p->bias_term : 0;
  if (l->n_bottom == 1) {
    /* Default filler: constant 1, the identity. */
    Caffe__FillerParameter one = CAFFE__FILLER_PARAMETER__INIT;
    one.type = (char *)"constant";
    one.has_value = 1;
    one.value = 1.0f;
    const Caffe__FillerParameter *f = p && p->filler ? p->filler : &one;
    if (add_operand_param(ctx, l, s->axis_param, num_axes, "scale_param", f) != NS_OK)
      return ctx->status;
  }
  if (s->has_bias) {
    int bias_axes = l->n_bottom > 1 ? l->bottom[1]->num_axes : num_axes;
    if (add_operand_param(ctx, l, s->axis_param, bias_axes, "scale_param (bias)", p->bias_filler) !=
        NS_OK)
      return ctx->status;
  }
  return NS_OK;
}

static ns_status scale_reshape(ns_ctx *ctx, ns_layer *l) {
  scale_state *s = l->priv;
  const ns_blob *x = l->bottom[0];
  if (broadcast_dims(ctx, l, x, operand(l, 0), s->axis_param, "scale_param", &s->scale) != NS_OK)
    return ctx->status;
  if (s->has_bias && broadcast_dims(ctx, l, x, l->params[l->n_params - 1], s->axis_param,
                                    "scale_param (bias)", &s->bias) != NS_OK)
    return ctx->status;
  return reshape_top(ctx, l);
}

static void scale_destroy(ns_ctx *ctx, ns_layer *l) {
  scale_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->saved);
}

/* In place, the scale's gradient needs the bottom forward overwrites:
 * training keeps a copy (Caffe's temp_). */
static ns_status scale_save_bottom(ns_ctx *ctx, ns_layer *l) {
  scale_state *s = l->priv;
  return ns_floats_save(ctx, &s->saved, &s->saved_cap, l->bottom[0]->data, l->bottom[0]->count);
}

static ns_status scale_forward(ns_ctx *ctx, ns_layer *l) {
  const scale_state *s = l->priv;
  if (l->top[0] == l->bottom[0] && ns_layer_phase_train(l) && scale_save_bottom(ctx, l) != NS_OK)
    return ctx->status;
  float *y = l->top[0]->data;
  apply_scale(&s->scale, l->bottom[0]->data, operand(l, 0)->data, y);
  if (s->has_bias) apply_bias(&s->bias, y, l->params[l->n_params - 1]->data, y);
  return NS_OK;
}

/* dx = dy s; d scale = sum dy x; d bias = sum dy. */
static ns_status scale_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const scale_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  const float *dy = l->top[0]->diff;
  int in_place = l->top[0] == b;
  if (s->has_bias && ns_layer_param_grad(l, l->n_params - 1))
    operand_grad(&s->bias, dy, NULL, l->params[l->n_params - 1]->diff, 1);
  int add;
  float *ds = operand_diff(l, 0, down, &add);
  if (ds) {
    const float *x = in_place ? s->saved : b->data;
    if (in_place && (!x || s->saved_cap < b->count))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place backward needs a TRAIN forward first");
    operand_grad(&s->scale, dy, x, ds, add);
  }
  if (down[0]) apply_scale(&s->scale, dy, operand(l, 0)->data, b->diff);
  return NS_OK;
}

/* A learned per-channel operand (and bias) on axis 1, in place, outside
 * training (which keeps the bottom for backward): an affine map per
 * channel, which a convolution before it can apply. */
static int scale_fuses_as_affine(const ns_layer *l) {
  const scale_state *s = l->priv;
  const ns_blob *x = l->bottom[0];
  if (l->n_bottom != 1 || l->top[0] != x || ns_layer_phase_train(l) || x->num_axes < 2) return 0;
  if (s->scale.outer != x->shape[0] || s->scale.dim != x->shape[1]) return 0;
  return !s->has_bias || (s->bias.outer == x->shape[0] && s->bias.dim == x->shape[1]);
}

static void scale_affine_compose(const ns_layer *l, float *a, float *b) {
  const scale_state *s = l->priv;
  const float *f = l->params[0]->data, *g = s->has_bias ? l->params[l->n_params - 1]->data : NULL;
  for (int64_t k = 0; k < s->scale.dim; k++) {
    a[k] *= f[k];
    b[k] = b[k] * f[k] + (g ? g[k] : 0.0f);
  }
}

const ns_layer_ops ns_scale_ops = {
    .type = "Scale",
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = scale_setup,
    .reshape = scale_reshape,
    .forward = scale_forward,
    .backward = scale_backward,
    .destroy = scale_destroy,
    .fuses_as_affine = scale_fuses_as_affine,
    .affine_compose = scale_affine_compose,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_scale,
};

/* ---- Bias ----------------------------------------------------------- */

static ns_status bias_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__BiasParameter *p = l->param->bias_param;
  scale_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->axis_param = p && p->has_axis ? p->axis : 1;
  int num_axes = p && p->has_num_axes ? p->num_axes : 1;
  if (l->n_bottom == 1 && add_operand_param(ctx, l, s->axis_param, num_axes, "bias_param",
                                            p ? p->filler : NULL) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status bias_reshape(ns_ctx *ctx, ns_layer *l) {
  scale_state *s = l->priv;
  if (broadcast_dims(ctx, l, l->bottom[0], operand(l, 0), s->axis_param, "bias_param", &s->bias) !=
      NS_OK)
    return ctx->status;
  return reshape_top(ctx, l);
}

static ns_status bias_forward(ns_ctx *ctx, ns_layer *l) {
  const scale_state *s = l->priv;
  apply_bias(&s->bias, l->bottom[0]->data, operand(l, 0)->data, l->top[0]->data);
  return NS_OK;
}

/* dx = dy; d bias = sum dy. */
static ns_status bias_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const scale_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  const float *dy = l->top[0]->diff;
  int add;
  float *db = operand_diff(l, 0, down, &add);
  if (db) operand_grad(&s->bias, dy, NULL, db, add);
  if (down[0] && b->diff != dy && b->count > 0)
    memcpy(b->diff, dy, (size_t)b->count * sizeof(float));
  return NS_OK;
}

const ns_layer_ops ns_bias_ops = {
    .type = "Bias",
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = bias_setup,
    .reshape = bias_reshape,
    .forward = bias_forward,
    .backward = bias_backward,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_bias,
};
