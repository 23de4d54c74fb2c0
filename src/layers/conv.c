/* Convolution, as Caffe's: bottom i -> top i with shared weights
 * [num_output, channels / group, kernel...] and bias [num_output].  The
 * channel axis is convolution_param.axis (default 1); it is followed by
 * one or two spatial axes (a single spatial axis runs as a 2-D
 * convolution of height 1).  Output size per spatial axis:
 * (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1, floored. */
#include <limits.h>
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/conv_plan.h"
#include "layers/conv_params.h"

typedef struct conv_state {
  ns_conv_params p;      /* first: see ns_conv_layer_params */
  ns_conv2d_shape shape; /* set by reshape, with the plan */
  ns_conv_plan plan;
} conv_state;

static ns_status conv_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__ConvolutionParameter defaults = CAFFE__CONVOLUTION_PARAMETER__INIT;
  static const ns_conv_rules rules = {1, 1};
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  if (!p) p = &defaults;
  if (ns_conv_check_tops(ctx, l) != NS_OK) return ctx->status;
  conv_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  if (ns_conv_params_read(ctx, l, p, &rules, &s->p) != NS_OK) return ctx->status;
  const ns_conv_params *cp = &s->p;
  const ns_conv_geometry *g = &cp->geom;
  int64_t wshape[4] = {cp->num_output, cp->channels / cp->group, g->kernel[0], g->kernel[1]};
  if (cp->num_spatial == 1) wshape[2] = g->kernel[1];
  return ns_conv_add_params(ctx, l, 2 + cp->num_spatial, wshape, p->weight_filler, cp->bias_term,
                            cp->num_output, p->bias_filler);
}

/* Output size per spatial axis into s->shape; errors for impossible ones. */
static ns_status output_size(ns_ctx *ctx, const ns_layer *l, conv_state *s) {
  const ns_blob *b = l->bottom[0];
  const ns_conv_params *cp = &s->p;
  const ns_conv_geometry *g = &cp->geom;
  int64_t in[2] = {1, b->shape[b->num_axes - 1]}, out[2];
  if (cp->num_spatial == 2) in[0] = b->shape[cp->axis + 1];
  for (int i = 0; i < 2; i++) {
    int64_t extent = (int64_t)g->dilation[i] * (g->kernel[i] - 1) + 1;
    if (in[i] > INT_MAX || in[i] + 2 * (int64_t)g->pad[i] < extent)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "kernel %s extent %lld (kernel %d, dilation %d) is larger than the "
                           "padded input %lld (%lld + 2 * pad %d) of bottom '%s'",
                           i ? "width" : "height", (long long)extent, g->kernel[i], g->dilation[i],
                           (long long)(in[i] + 2 * (int64_t)g->pad[i]), (long long)in[i], g->pad[i],
                           b->name);
    out[i] = ns_conv_out_size(in[i], g->kernel[i], g->pad[i], g->stride[i], g->dilation[i]);
  }
  s->shape = ns_conv_params_shape(cp, 0, in, out);
  int64_t col = ns_conv2d_col_count(&s->shape);
  if (col < 0 || !ns_conv2d_fits(&s->shape))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' is too large for Convolution", b->name);
  if (ns_check_tensor_size(ctx, col, "Convolution column buffer") != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Convolution): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status conv_reshape(ns_ctx *ctx, ns_layer *l) {
  conv_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (ns_conv_check_bottoms(ctx, l, &s->p) != NS_OK || output_size(ctx, l, s) != NS_OK)
    return ctx->status;
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  shape[s->p.axis] = s->p.num_output;
  if (s->p.num_spatial == 2) shape[s->p.axis + 1] = s->shape.out_h;
  shape[b->num_axes - 1] = s->shape.out_w;
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape(ctx, l->top[i], b->num_axes, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Convolution): ", l->name);
      return ctx->status;
    }
  ns_conv_plan_choose(&s->plan, &s->shape, ns_blob_count_range(b, 0, s->p.axis),
                      ns_ctx_threads(ctx), 1);
  return NS_OK;
}

/* y = a y + b per output channel after the convolution: the bias and the
 * in-place BatchNorm and Scale layers after it (ns_layer_fused_affine),
 * into a [num_output] and b [num_output]. */
static void fused_affine(const ns_layer *l, const float *bias, int64_t channels, float *a,
                         float *b) {
  for (int64_t c = 0; c < channels; c++) a[c] = 1.0f, b[c] = bias ? bias[c] : 0.0f;
  ns_layer_fused_affine(l, a, b);
}

static ns_status conv_forward(ns_ctx *ctx, ns_layer *l) {
  conv_state *s = l->priv;
  const ns_blob *w = l->params[0];
  const float *bias = s->p.bias_term ? l->params[1]->data : NULL;
  if (s->plan.threads != ns_ctx_threads(ctx)) /* set again since the reshape */
    ns_conv_plan_choose(&s->plan, &s->shape, s->plan.num, ns_ctx_threads(ctx), 1);
  const ns_conv_plan *plan = &s->plan;
  const float *u = ns_conv_plan_weights(ctx, &s->plan, w->data, w->count, ns_layer_params_epoch(l),
                                        ns_layer_params_exposed(l));
  ns_conv_plan uncached;
  if (plan->cached && !u) {
    uncached = ns_conv_plan_uncached(plan);
    plan = &uncached;
  }
  /* Folded layers: a and b first (then the depthwise kernel's weights
   * times a), 16-float aligned, the plan's scratch after them. */
  int64_t channels = s->p.num_output, extra = 0;
  int fold_weights = l->affine_fused && plan->algo == NS_CONV_DEPTHWISE;
  if (l->affine_fused) extra = (2 * channels + (fold_weights ? w->count : 0) + 15) / 16 * 16;
  float *scratch = ns_layer_scratch(ctx, l, extra + plan->scratch_count);
  if (!scratch) return ctx->status;
  /* A folded Eltwise sum: this top plus the residual, into its top. */
  const float *res = l->residual ? l->residual->data : NULL;
  if (!l->affine_fused) {
    ns_conv_epi epi = {NULL, bias, res, l->relu_fused};
    for (int i = 0; i < l->n_bottom; i++)
      ns_conv_plan_run(plan, w->data, u, &epi, l->bottom[i]->data,
                       res ? l->residual_top->data : l->top[i]->data, scratch);
    return NS_OK;
  }
  float *a = scratch, *b = a + channels, *wa = b + channels;
  fused_affine(l, bias, channels, a, b);
  ns_conv_epi epi = {a, b, res, l->relu_fused};
  const float *wu = w->data;
  if (fold_weights) { /* a few floats per channel: scale the weights instead */
    int64_t taps = w->count / channels;
    for (int64_t c = 0; c < channels; c++)
      for (int64_t t = 0; t < taps; t++) wa[c * taps + t] = w->data[c * taps + t] * a[c];
    wu = wa, u = NULL, epi.scale = NULL;
  }
  ns_conv_plan_run(plan, wu, u, &epi, l->bottom[0]->data,
                   res ? l->residual_top->data : l->top[0]->data, scratch + extra);
  return NS_OK;
}

/* The channels on axis 1 of one top: what the folded layers assume (and
 * a residual shaped as that top). */
static int conv_can_fuse_affine(const ns_layer *l) {
  const conv_state *s = l->priv;
  return s->p.axis == 1 && l->n_bottom == 1 && l->n_top == 1;
}

/* Backward per item, as Caffe's BaseConvolutionLayer: db += dY summed
 * over space; for each group dW += dY col^T (col: im2col(x), or x itself
 * on the 1x1 path); dX = col2im(W^T dY). */
static ns_status conv_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const conv_state *s = l->priv;
  const ns_conv2d_shape *sh = &s->shape;
  int64_t col_count = ns_conv2d_col_count(sh);
  float *col = NULL, *dcol = NULL;
  if (col_count > 0) {
    if (!(col = ns_layer_scratch(ctx, l, 2 * col_count))) return ctx->status;
    dcol = col + col_count;
  }
  int64_t spatial = sh->out_h * sh->out_w;
  int64_t in_item = sh->channels * sh->height * sh->width, out_item = sh->num_output * spatial;
  int threads = ns_ctx_threads(ctx);
  float *dw = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  float *db = s->p.bias_term && ns_layer_param_grad(l, 1) ? l->params[1]->diff : NULL;
  for (int i = 0; i < l->n_bottom; i++) {
    int64_t num = ns_blob_count_range(l->bottom[i], 0, s->p.axis);
    for (int64_t n = 0; n < num; n++) {
      const float *x = l->bottom[i]->data + n * in_item;
      const float *dy = l->top[i]->diff + n * out_item;
      if (db) ns_conv2d_bias_backward(1, sh->num_output, spatial, dy, db);
      if (dw) ns_conv2d_backward_weights(sh, ns_conv2d_columns(sh, x, col, threads), dy, dw);
      if (down[i])
        ns_conv2d_backward_data(sh, l->params[0]->data, dy, l->bottom[i]->diff + n * in_item, dcol,
                                threads);
    }
  }
  return NS_OK;
}

static void conv_destroy(ns_ctx *ctx, ns_layer *l) {
  conv_state *s = l->priv;
  if (s) ns_conv_plan_free(ctx, &s->plan);
}

/* Each output: channels / group * kh * kw multiply-adds. */
static double conv_flops(const ns_layer *l) {
  const ns_blob *w = l->params[0];
  return w->shape[0] ? 2.0 * (double)l->top[0]->count * (double)(w->count / w->shape[0]) : 0;
}

/* A 2-D convolution over (N, C, H, W) slides a window; other layouts
 * (a single spatial axis, a channel axis past 1) have no input grid. */
static void conv_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const ns_conv_params *p = ns_conv_layer_params(l);
  g->grid = NS_GRID_UNKNOWN;
  if (l->bottom[0]->num_axes != 4 || p->num_spatial != 2) return;
  g->grid = NS_GRID_WINDOW;
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = p->geom.kernel[a];
    g->stride[a] = p->geom.stride[a];
    g->pad[a] = p->geom.pad[a];
    g->dilation[a] = p->geom.dilation[a];
  }
}

const ns_layer_ops ns_convolution_ops = {
    .type = "Convolution",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = conv_setup,
    .reshape = conv_reshape,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
    .can_fuse_relu = 1,
    .can_fuse_affine = conv_can_fuse_affine,
    .can_fuse_residual = conv_can_fuse_affine,
    .weight_rank = 4,
    .flops = conv_flops,
    .geometry = conv_geometry,
    .export_onnx = ns_onnx_export_convolution,
};
