/* Reduction, as Caffe's ReductionLayer: reduces all axes from
 * reduction_param.axis (default 0; negative counts from the end) on to
 * one number, so the top has the bottom's first `axis` axes (axis 0: a
 * scalar, 0 axes).  For each outer index i, over the dim = count(axis)
 * values x of that block:
 *   SUM   y = coeff sum x        ASUM  y = coeff sum |x|
 *   SUMSQ y = coeff sum x^2      MEAN  y = (coeff / dim) sum x
 * (coeff default 1).  Backward: dx = c dy, c sign(x) dy, 2 c x dy, with c
 * the coefficient above (sign(0) = 0, as caffe_cpu_sign).  Not in place. */
#include <math.h>

#include "core/layer.h"
#include "export/onnx_layers.h"

typedef Caffe__ReductionParameter__ReductionOp reduction_op;

typedef struct reduction_state {
  reduction_op op;
  int axis_param;
  float coeff;       /* as given */
  float scale;       /* coeff, divided by dim for MEAN (Caffe's coeff_) */
  int64_t num, dim;  /* count(0, axis), count(axis) */
} reduction_state;

static ns_status reduction_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ReductionParameter *p = l->param->reduction_param;
  reduction_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->op = p && p->has_operation ? p->operation : CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUM;
  s->axis_param = p && p->has_axis ? p->axis : 0;
  s->coeff = p && p->has_coeff ? p->coeff : 1.0f;
  switch (s->op) {
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUM:
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM:
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ:
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__MEAN:
      return NS_OK;
    default:
      return ns_layer_fail(ctx, l, NS_ERR_NET, "reduction_param.operation %d is unknown",
                           (int)s->op);
  }
}

static ns_status reduction_reshape(ns_ctx *ctx, ns_layer *l) {
  reduction_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int axis = 0;
  if (l->top[0] == b) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  if (ns_blob_axis(ctx, b, s->axis_param, "reduction_param.axis", &axis) != NS_OK ||
      ns_blob_reshape(ctx, l->top[0], axis, b->shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Reduction): ", l->name);
    return ctx->status;
  }
  s->num = ns_blob_count_range(b, 0, axis);
  s->dim = ns_blob_count_range(b, axis, b->num_axes);
  s->scale = s->coeff;
  if (s->op == CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__MEAN) s->scale /= (float)s->dim;
  return NS_OK;
}

static ns_status reduction_forward(ns_ctx *ctx, ns_layer *l) {
  const reduction_state *s = l->priv;
  const float *x = l->bottom[0]->data;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < s->num; i++, x += s->dim) {
    double sum = 0;
    for (int64_t k = 0; k < s->dim; k++) {
      switch (s->op) {
        case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM:
          sum += fabs(x[k]);
          break;
        case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ:
          sum += (double)x[k] * x[k];
          break;
        default: /* SUM, MEAN */
          sum += x[k];
      }
    }
    y[i] = (float)sum * s->scale;
  }
  return NS_OK;
}

static ns_status reduction_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const reduction_state *s = l->priv;
  if (!down[0]) return NS_OK;
  const float *x = l->bottom[0]->data, *dy = l->top[0]->diff;
  float *dx = l->bottom[0]->diff;
  for (int64_t i = 0; i < s->num; i++, x += s->dim, dx += s->dim) {
    float c = dy[i] * s->scale;
    for (int64_t k = 0; k < s->dim; k++) {
      switch (s->op) {
        case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM:
          dx[k] = (float)((x[k] > 0) - (x[k] < 0)) * c;
          break;
        case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ:
          dx[k] = 2 * c * x[k];
          break;
        default: /* SUM, MEAN */
          dx[k] = c;
      }
    }
  }
  return NS_OK;
}

static double reduction_flops(const ns_layer *l) { return (double)l->bottom[0]->count; }

const ns_layer_ops ns_reduction_ops = {
    .type = "Reduction",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = reduction_setup,
    .reshape = reduction_reshape,
    .forward = reduction_forward,
    .backward = reduction_backward,
    .flops = reduction_flops,
    .export_onnx = ns_onnx_export_reduction,
};
