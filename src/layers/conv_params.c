#include "layers/conv_params.h"

#include <limits.h>

#include "core/filler.h"

/* One per-axis field: `name` given as a repeated value (once, or once per
 * spatial axis) or, for 2 spatial axes, as the pair <hw>_h / <hw>_w. */
typedef struct axis_field {
  const char *name, *hw;
  size_t n;
  const uint32_t *values;
  int has_h, has_w;
  uint32_t h, w;
  int fallback; /* when nothing is given; -1: required */
  int min;      /* smallest valid value */
} axis_field;

static ns_status read_field(ns_ctx *ctx, const ns_layer *l, const axis_field *f, int num_spatial,
                            int out[2]) {
  uint32_t v[2] = {0, 0};
  if (f->has_h || f->has_w) {
    if (num_spatial != 2)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "convolution_param.%s_h/%s_w need 2 spatial axes, the bottom has %d",
                           f->hw, f->hw, num_spatial);
    if (f->n != 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "convolution_param: give either %s or %s_h/%s_w, not both", f->name,
                           f->hw, f->hw);
    v[0] = f->h; /* a missing one is the schema's 0 */
    v[1] = f->w;
  } else if (f->n == 0) {
    if (f->fallback < 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s is missing", f->name);
    v[0] = v[1] = (uint32_t)f->fallback;
  } else if (f->n == 1 || f->n == (size_t)num_spatial) {
    v[0] = f->values[0];
    v[1] = f->values[f->n - 1];
  } else {
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.%s has %zu values; give 1, or 1 per spatial axis (%d)",
                         f->name, f->n, num_spatial);
  }
  for (int i = 2 - num_spatial; i < 2; i++) {
    if (v[i] > (uint32_t)(INT_MAX / 4) || (int64_t)v[i] < f->min)
      return ns_layer_fail(
          ctx, l, NS_ERR_NET, "convolution_param.%s %s= %u is out of range [%d, %d]", f->name,
          num_spatial == 1 ? "" : (i ? "(width) " : "(height) "), v[i], f->min, INT_MAX / 4);
    out[i] = (int)v[i];
  }
  return NS_OK;
}

ns_status ns_conv_geometry_read(ns_ctx *ctx, const ns_layer *l,
                                const Caffe__ConvolutionParameter *p, int num_spatial,
                                int min_dilation, ns_conv_geometry *g) {
  axis_field kernel = {"kernel_size",
                       "kernel",
                       p->n_kernel_size,
                       p->kernel_size,
                       p->has_kernel_h,
                       p->has_kernel_w,
                       p->kernel_h,
                       p->kernel_w,
                       -1,
                       1};
  axis_field stride = {"stride",        "stride",    p->n_stride, p->stride, p->has_stride_h,
                       p->has_stride_w, p->stride_h, p->stride_w, 1,         1};
  axis_field pad = {"pad",        "pad",    p->n_pad, p->pad, p->has_pad_h,
                    p->has_pad_w, p->pad_h, p->pad_w, 0,      0};
  axis_field dilation = {"dilation", "dilation", p->n_dilation, p->dilation, 0, 0, 0,
                         0,          1,          min_dilation};
  g->kernel[0] = g->stride[0] = g->dilation[0] = 1;
  g->pad[0] = 0;
  if (read_field(ctx, l, &kernel, num_spatial, g->kernel) != NS_OK ||
      read_field(ctx, l, &stride, num_spatial, g->stride) != NS_OK ||
      read_field(ctx, l, &pad, num_spatial, g->pad) != NS_OK ||
      read_field(ctx, l, &dilation, num_spatial, g->dilation) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status read_axes(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                           const ns_conv_rules *rules, ns_conv_params *out) {
  const ns_blob *b = l->bottom[0];
  if (ns_blob_axis(ctx, b, p->has_axis ? p->axis : 1, "convolution_param.axis", &out->axis) !=
      NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
    return ctx->status;
  }
  out->num_spatial = b->num_axes - out->axis - 1;
  if (out->num_spatial < rules->min_spatial || out->num_spatial > 2)
    return ns_layer_fail(ctx, l, out->num_spatial < 1 ? NS_ERR_NET : NS_ERR_UNSUPPORTED,
                         "bottom '%s' has %d spatial axes after channel axis %d; %s are "
                         "supported",
                         b->name, out->num_spatial, out->axis,
                         rules->min_spatial == 2 ? "only 2" : "1 or 2");
  return NS_OK;
}

ns_status ns_conv_params_read(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                              const ns_conv_rules *rules, ns_conv_params *out) {
  const ns_blob *b = l->bottom[0];
  if (read_axes(ctx, l, p, rules, out) != NS_OK) return ctx->status;
  out->channels = b->shape[out->axis];
  out->num_output = p->has_num_output ? p->num_output : 0;
  out->group = p->has_group ? p->group : 1;
  out->bias_term = p->has_bias_term ? p->bias_term : 1;
  if (out->num_output <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.num_output must be positive");
  if (out->channels <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %lld channels", b->name,
                         (long long)out->channels);
  if (out->group <= 0 || out->channels % out->group != 0 || out->num_output % out->group != 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.group %lld must divide both the %lld input channels "
                         "and num_output %lld",
                         (long long)out->group, (long long)out->channels,
                         (long long)out->num_output);
  return ns_conv_geometry_read(ctx, l, p, out->num_spatial, rules->min_dilation, &out->geom);
}

ns_status ns_conv_check_tops(ns_ctx *ctx, const ns_layer *l) {
  if (l->n_top != l->n_bottom)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%d bottoms but %d tops (need one top per bottom)",
                         l->n_bottom, l->n_top);
  for (int i = 0; i < l->n_top; i++)
    for (int j = 0; j < l->n_bottom; j++)
      if (l->top[i] == l->bottom[j])
        return ns_layer_fail(ctx, l, NS_ERR_NET,
                             "in-place computation is not supported (blob '%s')", l->top[i]->name);
  return NS_OK;
}

ns_status ns_conv_check_bottoms(ns_ctx *ctx, const ns_layer *l, const ns_conv_params *p) {
  const ns_blob *b = l->bottom[0];
  char s0[128], s1[128];
  for (int i = 1; i < l->n_bottom; i++)
    if (!ns_blob_same_shape(l->bottom[i], b))
      return ns_layer_fail(
          ctx, l, NS_ERR_NET, "bottom '%s' %s and bottom '%s' %s differ in shape", b->name,
          ns_shape_str(b->shape, b->num_axes, s0, sizeof s0), l->bottom[i]->name,
          ns_shape_str(l->bottom[i]->shape, l->bottom[i]->num_axes, s1, sizeof s1));
  if (b->num_axes != p->axis + 1 + p->num_spatial || b->shape[p->axis] != p->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s: expected %lld channels at axis %d followed by %d "
                         "spatial axes, as at setup",
                         b->name, ns_shape_str(b->shape, b->num_axes, s0, sizeof s0),
                         (long long)p->channels, p->axis, p->num_spatial);
  return NS_OK;
}

ns_conv2d_shape ns_conv_params_shape(const ns_conv_params *p, int transposed,
                                     const int64_t image[2], const int64_t grid[2]) {
  const ns_conv_geometry *g = &p->geom;
  ns_conv2d_shape s = {transposed ? p->num_output : p->channels,
                       image[0],
                       image[1],
                       transposed ? p->channels : p->num_output,
                       p->group,
                       g->kernel[0],
                       g->kernel[1],
                       g->pad[0],
                       g->pad[1],
                       g->stride[0],
                       g->stride[1],
                       g->dilation[0],
                       g->dilation[1],
                       grid[0],
                       grid[1]};
  return s;
}

ns_status ns_conv_add_params(ns_ctx *ctx, ns_layer *l, int rank, const int64_t *wshape,
                             const Caffe__FillerParameter *weight_filler, int bias_term,
                             int64_t num_output, const Caffe__FillerParameter *bias_filler) {
  if (ns_layer_add_param(ctx, l, rank, wshape) != NS_OK ||
      ns_filler_fill(ctx, l->params[0], weight_filler, l->rng) != NS_OK)
    return ctx->status;
  if (!bias_term) return NS_OK;
  const int64_t bshape[1] = {num_output};
  if (ns_layer_add_param(ctx, l, 1, bshape) != NS_OK ||
      ns_filler_fill(ctx, l->params[1], bias_filler, l->rng) != NS_OK)
    return ctx->status;
  return NS_OK;
}
