/* Deconvolution: the transpose of Convolution, with the same
 * ConvolutionParameter.  Weights [C_in, num_output / group, kh, kw], bias
 * [num_output].  Output size per spatial axis:
 * stride (in - 1) + dilation (k - 1) + 1 - 2 pad.  As Caffe's
 * DeconvolutionLayer, it is the convolution from its top to its bottom
 * run the other way: its forward is that convolution's backward-data
 * kernel (W^T x per group, then col2im) plus the bias, its backward the
 * convolution's forward kernel.  Two spatial axes only. */
#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/conv2d.h"
#include "kernels/pgemm.h"
#include "layers/conv_params.h"

typedef struct deconv_state {
  ns_conv_params p; /* first: see ns_conv_layer_params */
  /* The convolution from the top (its image) to the bottom (its output
   * grid), set by reshape. */
  ns_conv2d_shape conv;
} deconv_state;

static ns_status deconv_setup(ns_ctx *ctx, ns_layer *l) {
  static const ns_conv_rules rules = {2, 0};
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  if (!p) return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param is missing");
  if (ns_conv_check_tops(ctx, l) != NS_OK) return ctx->status;
  deconv_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  if (ns_conv_params_read(ctx, l, p, &rules, &s->p) != NS_OK) return ctx->status;
  const ns_conv_params *cp = &s->p;
  const int64_t wshape[4] = {cp->channels, cp->num_output / cp->group, cp->geom.kernel[0],
                             cp->geom.kernel[1]};
  return ns_conv_add_params(ctx, l, 4, wshape, p->weight_filler, cp->bias_term, cp->num_output,
                            p->bias_filler);
}

static ns_status deconv_reshape(ns_ctx *ctx, ns_layer *l) {
  deconv_state *s = l->priv;
  const ns_conv_params *cp = &s->p;
  const ns_conv_geometry *g = &cp->geom;
  const ns_blob *b = l->bottom[0];
  char buf[128];
  if (ns_conv_check_bottoms(ctx, l, cp) != NS_OK) return ctx->status;
  int64_t shape[NS_MAX_AXES], in[2], out[2];
  for (int i = 0; i < cp->axis; i++) shape[i] = b->shape[i];
  shape[cp->axis] = cp->num_output;
  for (int i = 0; i < 2; i++) {
    in[i] = b->shape[cp->axis + 1 + i];
    int64_t extent = (int64_t)g->dilation[i] * (g->kernel[i] - 1) + 1;
    out[i] = g->stride[i] * (in[i] - 1) + extent - 2 * (int64_t)g->pad[i];
    if (in[i] < 1 || out[i] < 1)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "bottom '%s' %s gives a non-positive output %s of %lld", b->name,
                           ns_shape_str(b->shape, b->num_axes, buf, sizeof buf),
                           i ? "width" : "height", (long long)out[i]);
    shape[cp->axis + 1 + i] = out[i];
  }
  s->conv = ns_conv_params_shape(cp, 1, out, in);
  /* GEMM dimensions must fit BLAS ints; the column buffer must fit memory. */
  int64_t col = ns_conv2d_col_count(&s->conv);
  if (col < 0 || !ns_conv2d_fits(&s->conv))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' is too large for Deconvolution", b->name);
  if (ns_check_tensor_size(ctx, col, "Deconvolution column buffer") != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Deconvolution): ", l->name);
    return ctx->status;
  }
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape(ctx, l->top[i], cp->axis + 3, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Deconvolution): ", l->name);
      return ctx->status;
    }
  return NS_OK;
}

/* Per item: y = the convolution's backward-data of x, + bias. */
static ns_status deconv_forward(ns_ctx *ctx, ns_layer *l) {
  const deconv_state *s = l->priv;
  const ns_conv2d_shape *c = &s->conv;
  const float *bias = s->p.bias_term ? l->params[1]->data : NULL;
  int64_t col_count = ns_conv2d_col_count(c);
  float *col = NULL;
  if (col_count > 0 && !(col = ns_layer_scratch(ctx, l, col_count))) return ctx->status;
  int64_t plane = c->height * c->width;
  int64_t in_item = c->num_output * c->out_h * c->out_w, out_item = c->channels * plane;
  int threads = ns_ctx_threads(ctx);
  for (int i = 0; i < l->n_bottom; i++) {
    const ns_blob *b = l->bottom[i];
    int64_t num = ns_blob_count_range(b, 0, s->p.axis);
    for (int64_t n = 0; n < num; n++) {
      float *y = l->top[i]->data + n * out_item;
      ns_conv2d_backward_data(c, l->params[0]->data, b->data + n * in_item, y, col, threads);
      if (bias) ns_conv2d_bias_forward(1, c->channels, plane, bias, y);
    }
  }
  return NS_OK;
}

/* Backward, as Caffe's DeconvolutionLayer: db += dY summed over space;
 * the columns of dY (its im2col over the output image) serve both
 * dW += X col^T (the convolution's weight gradient, X as its output's)
 * and dX = W col (the convolution's forward). */
static ns_status deconv_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const deconv_state *s = l->priv;
  const ns_conv2d_shape *c = &s->conv;
  int threads = ns_ctx_threads(ctx);
  int64_t col_floats = (ns_conv2d_col_count(c) + 15) / 16 * 16;
  float *col = ns_layer_scratch(ctx, l, col_floats + ns_gemm_scratch_floats(threads));
  if (!col) return ctx->status;
  float *pack = col + col_floats;
  int64_t plane = c->height * c->width;
  int64_t in_item = c->num_output * c->out_h * c->out_w, out_item = c->channels * plane;
  float *dw = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  float *db = s->p.bias_term && ns_layer_param_grad(l, 1) ? l->params[1]->diff : NULL;
  for (int i = 0; i < l->n_bottom; i++) {
    int64_t num = ns_blob_count_range(l->bottom[i], 0, s->p.axis);
    for (int64_t n = 0; n < num; n++) {
      const float *dy = l->top[i]->diff + n * out_item;
      if (db) ns_conv2d_bias_backward(1, c->channels, plane, dy, db);
      if (!dw && !down[i]) continue;
      const float *cols = ns_conv2d_columns(c, dy, col, threads);
      if (dw) ns_conv2d_backward_weights(c, cols, l->bottom[i]->data + n * in_item, dw);
      if (down[i])
        ns_conv2d_from_columns(c, l->params[0]->data, NULL, cols, l->bottom[i]->diff + n * in_item,
                               pack, threads);
    }
  }
  return NS_OK;
}

/* Each input: num_output / group * kh * kw multiply-adds. */
static double deconv_flops(const ns_layer *l) {
  const ns_blob *w = l->params[0];
  return w->shape[0] ? 2.0 * (double)l->bottom[0]->count * (double)(w->count / w->shape[0]) : 0;
}

const ns_layer_ops ns_deconv_ops = {
    .type = "Deconvolution",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = deconv_setup,
    .reshape = deconv_reshape,
    .forward = deconv_forward,
    .backward = deconv_backward,
    .weight_rank = 4,
    .flops = deconv_flops,
    .export_onnx = ns_onnx_export_deconv,
};
