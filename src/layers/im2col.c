/* Im2col, as Caffe's Im2colLayer: the unrolled convolution windows as a
 * blob.  convolution_param gives the channel axis (axis, default 1; one
 * or two spatial axes follow), kernel_size / kernel_h+w, stride, pad and
 * dilation, with Caffe's rules (each once, or once per spatial axis; the
 * _h/_w forms only in 2-D and not with the repeated form).  For each item
 * of count(0, axis), the top has channels * kernel_h * kernel_w channels
 * (channel-major, then kernel row, then column, as Caffe's im2col) over
 * the output grid (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1.
 * A 1-D bottom runs as height 1 (Caffe's im2col_nd gives the same
 * values).  Backward is col2im: each tap's gradient summed back into its
 * pixel.  Not in place. */
#include <limits.h>
#include <string.h>

#include "core/layer.h"
#include "kernels/col2im.h"
#include "kernels/im2col.h"

typedef struct im2col_state {
  int axis_param, num_spatial;
  int kernel[2], stride[2], pad[2], dilation[2]; /* [0] height (1-D: 1, 1, 0, 1) */
  int64_t num, channels, height, width, out_h, out_w;
} im2col_state;

/* One per-axis field: the repeated form (n values) or the 2-D pair. */
static ns_status read_axes(ns_ctx *ctx, const ns_layer *l, int ns, const char *name, size_t n,
                           const uint32_t *v, int has_hw, uint32_t h, uint32_t w, int dflt,
                           int min, int out[2]) {
  uint32_t got[2];
  if (has_hw) {
    if (ns != 2)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s_h/_w need 2 spatial axes",
                           name);
    if (n)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "convolution_param: give either %s or %s_h/_w, not both", name, name);
    got[0] = h;
    got[1] = w;
  } else if (n == 0) {
    if (dflt < 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s is missing", name);
    got[0] = got[1] = (uint32_t)dflt;
  } else if (n == 1 || n == (size_t)ns) {
    got[0] = v[0];
    got[1] = v[n - 1];
  } else {
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.%s has %zu values; give 1, or 1 per spatial axis (%d)",
                         name, n, ns);
  }
  for (int i = 2 - ns; i < 2; i++) {
    if (got[i] > (uint32_t)(INT_MAX / 4) || (int64_t)got[i] < min)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.%s %u is out of range [%d, %d]",
                           name, got[i], min, INT_MAX / 4);
    out[i] = (int)got[i];
  }
  return NS_OK;
}

static ns_status im2col_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  if (!p) return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param { kernel_size } is required");
  im2col_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const ns_blob *b = l->bottom[0];
  int axis = 0;
  s->axis_param = p->has_axis ? p->axis : 1;
  if (ns_blob_axis(ctx, b, s->axis_param, "convolution_param.axis", &axis) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Im2col): ", l->name);
    return ctx->status;
  }
  s->num_spatial = b->num_axes - axis - 1;
  if (s->num_spatial < 1 || s->num_spatial > 2)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "%d spatial axes after the channel axis; 1 or 2 are supported",
                         s->num_spatial);
  int ns = s->num_spatial;
  s->kernel[0] = s->stride[0] = s->dilation[0] = 1;
  s->pad[0] = 0;
  if (read_axes(ctx, l, ns, "kernel_size", p->n_kernel_size, p->kernel_size,
                p->has_kernel_h || p->has_kernel_w, p->kernel_h, p->kernel_w, -1, 1,
                s->kernel) != NS_OK ||
      read_axes(ctx, l, ns, "stride", p->n_stride, p->stride, p->has_stride_h || p->has_stride_w,
                p->stride_h, p->stride_w, 1, 1, s->stride) != NS_OK ||
      read_axes(ctx, l, ns, "pad", p->n_pad, p->pad, p->has_pad_h || p->has_pad_w, p->pad_h,
                p->pad_w, 0, 0, s->pad) != NS_OK ||
      read_axes(ctx, l, ns, "dilation", p->n_dilation, p->dilation, 0, 0, 0, 1, 1, s->dilation) !=
          NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status im2col_reshape(ns_ctx *ctx, ns_layer *l) {
  im2col_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  int axis = 0;
  if (l->top[0] == b) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  if (ns_blob_axis(ctx, b, s->axis_param, "convolution_param.axis", &axis) != NS_OK ||
      b->num_axes - axis - 1 != s->num_spatial)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the bottom's spatial axes changed");
  s->num = ns_blob_count_range(b, 0, axis);
  s->channels = b->shape[axis];
  s->height = s->num_spatial == 2 ? b->shape[axis + 1] : 1;
  s->width = b->shape[b->num_axes - 1];
  s->out_h = ns_conv_out_size(s->height, s->kernel[0], s->pad[0], s->stride[0], s->dilation[0]);
  s->out_w = ns_conv_out_size(s->width, s->kernel[1], s->pad[1], s->stride[1], s->dilation[1]);
  if (s->out_h < 1 || s->out_w < 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the kernel is larger than the padded input");
  int64_t cols = (int64_t)s->kernel[0] * s->kernel[1];
  if (s->channels > INT64_MAX / cols)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the unrolled channel count overflows");
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  shape[axis] = s->channels * cols;
  if (s->num_spatial == 2) shape[axis + 1] = s->out_h;
  shape[b->num_axes - 1] = s->out_w;
  if (ns_blob_reshape(ctx, l->top[0], b->num_axes, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Im2col): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status im2col_forward(ns_ctx *ctx, ns_layer *l) {
  const im2col_state *s = l->priv;
  ns_im2col_geom g = {s->channels,  s->height,   s->width,      s->kernel[0], s->kernel[1],
                      s->pad[0],    s->pad[1],   s->stride[0],  s->stride[1], s->dilation[0],
                      s->dilation[1], s->out_h, s->out_w};
  int64_t in = s->channels * s->height * s->width, out = l->top[0]->count / (s->num ? s->num : 1);
  for (int64_t n = 0; n < s->num; n++)
    ns_im2col(&g, l->bottom[0]->data + n * in, l->top[0]->data + n * out, ns_ctx_threads(ctx));
  return NS_OK;
}

static ns_status im2col_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const im2col_state *s = l->priv;
  if (!down[0]) return NS_OK;
  ns_col2im_geom g = {s->channels, s->height,    s->width,     s->kernel[0],   s->kernel[1],
                      s->pad[0],   s->pad[1],    s->stride[0], s->stride[1],   s->dilation[0],
                      s->dilation[1]};
  int64_t in = s->channels * s->height * s->width, out = l->top[0]->count / (s->num ? s->num : 1);
  for (int64_t n = 0; n < s->num; n++)
    ns_col2im(&g, l->top[0]->diff + n * out, l->bottom[0]->diff + n * in, ns_ctx_threads(ctx));
  return NS_OK;
}

/* Each top cell sees one convolution window of the bottom. */
static void im2col_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const im2col_state *s = l->priv;
  ns_layer_geometry_window(g);
  if (s->axis_param != 1 || s->num_spatial != 2) {
    g->grid = NS_GRID_UNKNOWN;
    return;
  }
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = s->kernel[a];
    g->stride[a] = s->stride[a];
    g->pad[a] = s->pad[a];
    g->dilation[a] = s->dilation[a];
  }
}

const ns_layer_ops ns_im2col_ops = {
    .type = "Im2col",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = im2col_setup,
    .reshape = im2col_reshape,
    .forward = im2col_forward,
    .backward = im2col_backward,
    .geometry = im2col_geometry,
};
