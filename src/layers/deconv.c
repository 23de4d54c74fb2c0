/* Deconvolution: the transpose of Convolution (its forward pass is a
 * convolution's backward pass), with the same ConvolutionParameter.
 * Weights [C_in, num_output / group, kh, kw], bias [num_output].  Output
 * size per spatial axis: stride (in - 1) + dilation (k - 1) + 1 - 2 pad.
 * Per item and group: col = W_g^T x_g (GEMM), then col2im into the top,
 * then the bias.  Two spatial axes only. */
#include <limits.h>

#include "core/filler.h"
#include "core/layer.h"
#include "kernels/col2im.h"
#include "kernels/im2col.h"
#include "kernels/gemm.h"

typedef struct deconv_state {
  int axis; /* channel axis */
  int64_t channels, num_output, group;
  int kernel[2], stride[2], pad[2], dilation[2];
  int bias_term;
  int64_t in_hw[2], out_hw[2];
} deconv_state;

/* A per-axis field given as a repeated value (once, or once per axis) or
 * as the _h/_w pair (proto default 0 for a missing one). */
typedef struct spatial_field {
  const char *name, *hw; /* "kernel_size" and its pair's stem "kernel" */
  size_t n;
  const uint32_t *values;
  int has_h, has_w;
  uint32_t h, w;
  int fallback; /* when nothing is given; -1: required */
  int min;      /* smallest allowed value */
} spatial_field;

static ns_status read_spatial(ns_ctx *ctx, const ns_layer *l, const spatial_field *f, int out[2]) {
  uint32_t v[2];
  if (f->has_h || f->has_w) {
    if (f->n != 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "convolution_param: give either %s or %s_h/%s_w, not both", f->name,
                           f->hw, f->hw);
    v[0] = f->has_h ? f->h : 0;
    v[1] = f->has_w ? f->w : 0;
  } else if (f->n == 0) {
    if (f->fallback < 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s is missing", f->name);
    v[0] = v[1] = (uint32_t)f->fallback;
  } else if (f->n == 1 || f->n == 2) {
    v[0] = f->values[0];
    v[1] = f->values[f->n - 1];
  } else {
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.%s has %zu values (give 1, or 1 per spatial axis: 2)",
                         f->name, f->n);
  }
  for (int i = 0; i < 2; i++) {
    if (v[i] > (uint32_t)(INT_MAX / 4) || (int)v[i] < f->min)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s %s = %u is out of range",
                           f->name, i ? "width" : "height", v[i]);
    out[i] = (int)v[i];
  }
  return NS_OK;
}

static ns_status read_geometry(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                               deconv_state *s) {
  spatial_field kernel = {"kernel_size",
                          "kernel",
                          p->n_kernel_size,
                          p->kernel_size,
                          p->has_kernel_h,
                          p->has_kernel_w,
                          p->kernel_h,
                          p->kernel_w,
                          -1,
                          1};
  spatial_field stride = {"stride",        "stride",    p->n_stride, p->stride, p->has_stride_h,
                          p->has_stride_w, p->stride_h, p->stride_w, 1,         1};
  spatial_field pad = {"pad",        "pad",    p->n_pad, p->pad, p->has_pad_h,
                       p->has_pad_w, p->pad_h, p->pad_w, 0,      0};
  spatial_field dilation = {"dilation", "dilation", p->n_dilation, p->dilation, 0, 0, 0, 0, 1, 0};
  if (read_spatial(ctx, l, &kernel, s->kernel) != NS_OK ||
      read_spatial(ctx, l, &stride, s->stride) != NS_OK ||
      read_spatial(ctx, l, &pad, s->pad) != NS_OK ||
      read_spatial(ctx, l, &dilation, s->dilation) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status read_channels(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                               deconv_state *s) {
  const ns_blob *b = l->bottom[0];
  int axis = p->has_axis ? p->axis : 1;
  if (axis < -b->num_axes || axis >= b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.axis %d out of range for bottom '%s' with %d axes",
                         axis, b->name, b->num_axes);
  s->axis = axis < 0 ? axis + b->num_axes : axis;
  if (b->num_axes - s->axis - 1 != 2)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "bottom '%s' has %d spatial axes after channel axis %d; only 2 are "
                         "supported",
                         b->name, b->num_axes - s->axis - 1, s->axis);
  s->channels = b->shape[s->axis];
  s->num_output = p->has_num_output ? p->num_output : 0;
  s->group = p->has_group ? p->group : 1;
  s->bias_term = p->has_bias_term ? p->bias_term : 1;
  if (s->num_output <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.num_output must be positive");
  if (s->group <= 0 || s->channels % s->group != 0 || s->num_output % s->group != 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.group %lld must divide both the %lld input channels "
                         "and num_output %lld",
                         (long long)s->group, (long long)s->channels, (long long)s->num_output);
  return NS_OK;
}

static ns_status deconv_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  if (!p) return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param is missing");
  if (l->n_top != l->n_bottom)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%d bottoms but %d tops (need one top per bottom)",
                         l->n_bottom, l->n_top);
  for (int i = 0; i < l->n_top; i++)
    for (int j = 0; j < l->n_bottom; j++)
      if (l->top[i] == l->bottom[j])
        return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not allowed (blob '%s')",
                             l->top[i]->name);
  deconv_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  if (read_channels(ctx, l, p, s) != NS_OK || read_geometry(ctx, l, p, s) != NS_OK)
    return ctx->status;
  const int64_t wshape[4] = {s->channels, s->num_output / s->group, s->kernel[0], s->kernel[1]};
  if (ns_layer_add_param(ctx, l, 4, wshape) != NS_OK ||
      ns_filler_fill(ctx, l->params[0], p->weight_filler, l->rng) != NS_OK)
    return ctx->status;
  if (s->bias_term) {
    const int64_t bshape[1] = {s->num_output};
    if (ns_layer_add_param(ctx, l, 1, bshape) != NS_OK ||
        ns_filler_fill(ctx, l->params[1], p->bias_filler, l->rng) != NS_OK)
      return ctx->status;
  }
  return NS_OK;
}

static ns_status deconv_reshape(ns_ctx *ctx, ns_layer *l) {
  deconv_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  char s0[128], s1[128];
  for (int i = 1; i < l->n_bottom; i++)
    if (!ns_blob_same_shape(l->bottom[i], b))
      return ns_layer_fail(
          ctx, l, NS_ERR_NET, "bottom '%s' %s and bottom '%s' %s differ in shape", b->name,
          ns_shape_str(b->shape, b->num_axes, s0, sizeof s0), l->bottom[i]->name,
          ns_shape_str(l->bottom[i]->shape, l->bottom[i]->num_axes, s1, sizeof s1));
  if (b->num_axes != s->axis + 3 || b->shape[s->axis] != s->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s does not have %lld channels at axis %d "
                         "followed by 2 spatial axes",
                         b->name, ns_shape_str(b->shape, b->num_axes, s0, sizeof s0),
                         (long long)s->channels, s->axis);
  int64_t shape[NS_MAX_AXES];
  for (int i = 0; i < s->axis; i++) shape[i] = b->shape[i];
  shape[s->axis] = s->num_output;
  for (int i = 0; i < 2; i++) {
    s->in_hw[i] = b->shape[s->axis + 1 + i];
    int64_t extent = (int64_t)s->dilation[i] * (s->kernel[i] - 1) + 1;
    s->out_hw[i] = s->stride[i] * (s->in_hw[i] - 1) + extent - 2 * (int64_t)s->pad[i];
    if (s->in_hw[i] < 1 || s->out_hw[i] < 1)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "bottom '%s' %s gives a non-positive output %s of %lld", b->name,
                           ns_shape_str(b->shape, b->num_axes, s0, sizeof s0),
                           i ? "width" : "height", (long long)s->out_hw[i]);
    shape[s->axis + 1 + i] = s->out_hw[i];
  }
  /* GEMM dimensions must fit BLAS ints; the column buffer must fit memory. */
  int64_t kdim = (s->num_output / s->group) * s->kernel[0] * s->kernel[1], spatial, col;
  if (!ns_mul_i64(s->in_hw[0], s->in_hw[1], &spatial) ||
      !ns_gemm_fits(kdim, spatial, s->channels / s->group) ||
      !ns_mul_i64(kdim * s->group, spatial, &col))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' is too large for Deconvolution", b->name);
  if (ns_check_tensor_size(ctx, col, "Deconvolution column buffer") != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Deconvolution): ", l->name);
    return ctx->status;
  }
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape(ctx, l->top[i], s->axis + 3, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Deconvolution): ", l->name);
      return ctx->status;
    }
  return NS_OK;
}

/* One item: x [C, H, W] -> y [O, H', W']. */
static void deconv_item(const deconv_state *s, int threads, const float *w, const float *bias,
                        const float *x, float *col, float *y) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t kdim = og * s->kernel[0] * s->kernel[1], spatial = s->in_hw[0] * s->in_hw[1];
  for (int64_t g = 0; g < s->group; g++)
    ns_sgemm(1, 0, kdim, spatial, cg, 1.0f, w + g * cg * kdim, kdim, x + g * cg * spatial, spatial,
             0.0f, col + g * kdim * spatial, spatial);
  ns_col2im_geom geom = {s->num_output, s->out_hw[0],   s->out_hw[1],  s->kernel[0],
                         s->kernel[1],  s->pad[0],      s->pad[1],     s->stride[0],
                         s->stride[1],  s->dilation[0], s->dilation[1]};
  ns_col2im(&geom, col, y, threads);
  if (!bias) return;
  int64_t plane = s->out_hw[0] * s->out_hw[1];
  for (int64_t o = 0; o < s->num_output; o++)
    for (int64_t j = 0; j < plane; j++) y[o * plane + j] += bias[o];
}

static ns_status deconv_forward(ns_ctx *ctx, ns_layer *l) {
  const deconv_state *s = l->priv;
  const float *bias = s->bias_term ? l->params[1]->data : NULL;
  int64_t kdim = s->num_output * s->kernel[0] * s->kernel[1];
  float *col = ns_layer_scratch(ctx, l, kdim * s->in_hw[0] * s->in_hw[1]);
  if (!col) return ctx->status;
  int64_t in_item = s->channels * s->in_hw[0] * s->in_hw[1];
  int64_t out_item = s->num_output * s->out_hw[0] * s->out_hw[1];
  for (int i = 0; i < l->n_bottom; i++) {
    const ns_blob *b = l->bottom[i];
    int64_t num = ns_blob_count_range(b, 0, s->axis);
    for (int64_t n = 0; n < num; n++)
      deconv_item(s, ctx->threads, l->params[0]->data, bias, b->data + n * in_item, col,
                  l->top[i]->data + n * out_item);
  }
  return NS_OK;
}

/* Backward, as Caffe's DeconvolutionLayer: col = im2col(dY) over the
 * output image; per group dX = W col (a convolution forward) and
 * dW += X col^T; db += dY summed over space. */
static ns_status deconv_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const deconv_state *s = l->priv;
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t kdim = og * s->kernel[0] * s->kernel[1], spatial = s->in_hw[0] * s->in_hw[1];
  int64_t plane = s->out_hw[0] * s->out_hw[1];
  float *col = ns_layer_scratch(ctx, l, kdim * s->group * spatial);
  if (!col) return ctx->status;
  int64_t in_item = s->channels * spatial, out_item = s->num_output * plane;
  float *dw = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  float *db = s->bias_term && ns_layer_param_grad(l, 1) ? l->params[1]->diff : NULL;
  const float *w = l->params[0]->data;
  ns_im2col_geom g = {s->num_output,  s->out_hw[0], s->out_hw[1], s->kernel[0], s->kernel[1],
                      s->pad[0],      s->pad[1],    s->stride[0], s->stride[1], s->dilation[0],
                      s->dilation[1], s->in_hw[0],  s->in_hw[1]};
  for (int i = 0; i < l->n_bottom; i++) {
    int64_t num = ns_blob_count_range(l->bottom[i], 0, s->axis);
    for (int64_t n = 0; n < num; n++) {
      const float *dy = l->top[i]->diff + n * out_item;
      const float *x = l->bottom[i]->data + n * in_item;
      if (db)
        for (int64_t o = 0; o < s->num_output; o++) {
          double sum = 0;
          for (int64_t j = 0; j < plane; j++) sum += dy[o * plane + j];
          db[o] += (float)sum;
        }
      if (!dw && !down[i]) continue;
      ns_im2col(&g, dy, col, ctx->threads);
      for (int64_t k = 0; k < s->group; k++) {
        if (dw)
          ns_sgemm(0, 1, cg, kdim, spatial, 1.0f, x + k * cg * spatial, spatial,
                   col + k * kdim * spatial, spatial, 1.0f, dw + k * cg * kdim, kdim);
        if (down[i])
          ns_sgemm(0, 0, cg, spatial, kdim, 1.0f, w + k * cg * kdim, kdim, col + k * kdim * spatial,
                   spatial, 0.0f, l->bottom[i]->diff + n * in_item + k * cg * spatial, spatial);
      }
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
};
