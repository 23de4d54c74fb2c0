/* Convolution, as Caffe's: bottom i -> top i with shared weights
 * [num_output, channels / group, kernel...] and bias [num_output].  The
 * channel axis is convolution_param.axis (default 1); it is followed by
 * one or two spatial axes (a single spatial axis runs as a 2-D
 * convolution of height 1).  Output size per spatial axis:
 * (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1, floored. */
#include <limits.h>
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"
#include "kernels/winograd.h"

typedef struct conv_state {
  int axis, num_spatial; /* channel axis; 1 or 2 spatial axes */
  int64_t channels, num_output, group;
  int bias_term;
  /* [0] height, [1] width; a 1-D convolution keeps [0] at 1 / 1 / 0 / 1. */
  int kernel[2], stride[2], pad[2], dilation[2];
  ns_conv2d_shape shape; /* set by reshape */
  /* Winograd's transformed weights, kept between forwards: made again
   * when the net's params_epoch moved (the library wrote params), or,
   * once views of the params have been handed out (writes through them go
   * unseen), when the weights differ from the copy kept of them (a pass
   * over the weights, several times cheaper than the transform).  Their
   * size depends on the kernel and channels alone, not on a reshape. */
  float *wino_u, *wino_w;
  uint64_t wino_epoch;
  int wino_valid, wino_copied;
} conv_state;

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

static ns_status read_geometry(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                               conv_state *s) {
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
  axis_field dilation = {"dilation", "dilation", p->n_dilation, p->dilation, 0, 0, 0, 0, 1, 1};
  s->kernel[0] = s->stride[0] = s->dilation[0] = 1;
  s->pad[0] = 0;
  if (read_field(ctx, l, &kernel, s->num_spatial, s->kernel) != NS_OK ||
      read_field(ctx, l, &stride, s->num_spatial, s->stride) != NS_OK ||
      read_field(ctx, l, &pad, s->num_spatial, s->pad) != NS_OK ||
      read_field(ctx, l, &dilation, s->num_spatial, s->dilation) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status read_channels(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                               conv_state *s) {
  const ns_blob *b = l->bottom[0];
  if (ns_blob_axis(ctx, b, p->has_axis ? p->axis : 1, "convolution_param.axis", &s->axis) !=
      NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Convolution): ", l->name);
    return ctx->status;
  }
  s->num_spatial = b->num_axes - s->axis - 1;
  if (s->num_spatial < 1 || s->num_spatial > 2)
    return ns_layer_fail(ctx, l, s->num_spatial < 1 ? NS_ERR_NET : NS_ERR_UNSUPPORTED,
                         "bottom '%s' has %d spatial axes after channel axis %d; 1 or 2 are "
                         "supported",
                         b->name, s->num_spatial, s->axis);
  s->channels = b->shape[s->axis];
  s->num_output = p->has_num_output ? p->num_output : 0;
  s->group = p->has_group ? p->group : 1;
  s->bias_term = p->has_bias_term ? p->bias_term : 1;
  if (s->num_output <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "convolution_param.num_output must be positive");
  if (s->channels <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %lld channels", b->name,
                         (long long)s->channels);
  if (s->group <= 0 || s->channels % s->group != 0 || s->num_output % s->group != 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "convolution_param.group %lld must divide both the %lld input channels "
                         "and num_output %lld",
                         (long long)s->group, (long long)s->channels, (long long)s->num_output);
  return NS_OK;
}

static ns_status check_blobs(ns_ctx *ctx, const ns_layer *l) {
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

static ns_status add_params(ns_ctx *ctx, ns_layer *l, const Caffe__ConvolutionParameter *p,
                            const conv_state *s) {
  int64_t wshape[4] = {s->num_output, s->channels / s->group, s->kernel[0], s->kernel[1]};
  if (s->num_spatial == 1) wshape[2] = s->kernel[1];
  if (ns_layer_add_param(ctx, l, 2 + s->num_spatial, wshape) != NS_OK ||
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

static ns_status conv_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__ConvolutionParameter defaults = CAFFE__CONVOLUTION_PARAMETER__INIT;
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  if (!p) p = &defaults;
  if (check_blobs(ctx, l) != NS_OK) return ctx->status;
  conv_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  if (read_channels(ctx, l, p, s) != NS_OK || read_geometry(ctx, l, p, s) != NS_OK)
    return ctx->status;
  return add_params(ctx, l, p, s);
}

/* Output size per spatial axis into s->shape; errors for impossible ones. */
static ns_status output_size(ns_ctx *ctx, const ns_layer *l, conv_state *s) {
  const ns_blob *b = l->bottom[0];
  int64_t in[2] = {1, b->shape[b->num_axes - 1]}, out[2];
  if (s->num_spatial == 2) in[0] = b->shape[s->axis + 1];
  for (int i = 0; i < 2; i++) {
    int64_t extent = (int64_t)s->dilation[i] * (s->kernel[i] - 1) + 1;
    if (in[i] > INT_MAX || in[i] + 2 * (int64_t)s->pad[i] < extent)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "kernel %s extent %lld (kernel %d, dilation %d) is larger than the "
                           "padded input %lld (%lld + 2 * pad %d) of bottom '%s'",
                           i ? "width" : "height", (long long)extent, s->kernel[i], s->dilation[i],
                           (long long)(in[i] + 2 * (int64_t)s->pad[i]), (long long)in[i], s->pad[i],
                           b->name);
    out[i] = ns_conv_out_size(in[i], s->kernel[i], s->pad[i], s->stride[i], s->dilation[i]);
  }
  ns_conv2d_shape sh = {s->channels,  in[0],          in[1],          s->num_output, s->group,
                        s->kernel[0], s->kernel[1],   s->pad[0],      s->pad[1],     s->stride[0],
                        s->stride[1], s->dilation[0], s->dilation[1], out[0],        out[1]};
  s->shape = sh;
  int64_t col = ns_conv2d_col_count(&sh);
  if (col < 0 || !ns_conv2d_fits(&sh))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' is too large for Convolution", b->name);
  if (ns_check_tensor_size(ctx, col, "Convolution column buffer") != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Convolution): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status check_bottoms(ns_ctx *ctx, const ns_layer *l, const conv_state *s) {
  const ns_blob *b = l->bottom[0];
  char s0[128], s1[128];
  for (int i = 1; i < l->n_bottom; i++)
    if (!ns_blob_same_shape(l->bottom[i], b))
      return ns_layer_fail(
          ctx, l, NS_ERR_NET, "bottom '%s' %s and bottom '%s' %s differ in shape", b->name,
          ns_shape_str(b->shape, b->num_axes, s0, sizeof s0), l->bottom[i]->name,
          ns_shape_str(l->bottom[i]->shape, l->bottom[i]->num_axes, s1, sizeof s1));
  if (b->num_axes != s->axis + 1 + s->num_spatial || b->shape[s->axis] != s->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s: expected %lld channels at axis %d followed by %d "
                         "spatial axes, as at setup",
                         b->name, ns_shape_str(b->shape, b->num_axes, s0, sizeof s0),
                         (long long)s->channels, s->axis, s->num_spatial);
  return NS_OK;
}

static ns_status conv_reshape(ns_ctx *ctx, ns_layer *l) {
  conv_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (check_bottoms(ctx, l, s) != NS_OK || output_size(ctx, l, s) != NS_OK) return ctx->status;
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  shape[s->axis] = s->num_output;
  if (s->num_spatial == 2) shape[s->axis + 1] = s->shape.out_h;
  shape[b->num_axes - 1] = s->shape.out_w;
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape(ctx, l->top[i], b->num_axes, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Convolution): ", l->name);
      return ctx->status;
    }
  return NS_OK;
}

/* The transformed weights for this forward, or NULL (then computed per
 * call; also when the cache cannot be allocated: a slower path, not an
 * error). */
static const float *wino_weights(ns_ctx *ctx, ns_layer *l, int threads) {
  conv_state *s = l->priv;
  const ns_blob *w = l->params[0];
  uint64_t epoch = ns_layer_params_epoch(l);
  int exposed = ns_layer_params_exposed(l);
  if (!s->wino_u) {
    if (!(s->wino_u = ns_floats_alloc(ctx, ns_winograd_weights_count(&s->shape)))) {
      ns_ctx_clear_error(ctx);
      return NULL;
    }
  }
  if (exposed && !s->wino_w) {
    if (!(s->wino_w = ns_floats_alloc(ctx, w->count))) {
      ns_ctx_clear_error(ctx);
      return NULL;
    }
    s->wino_copied = 0;
  }
  size_t bytes = (size_t)w->count * sizeof(float);
  int stale = !s->wino_valid || s->wino_epoch != epoch ||
              (exposed &&
               (!s->wino_copied || memcmp(s->wino_w, w->data, bytes) != 0));
  if (stale) {
    ns_winograd_weights(&s->shape, w->data, s->wino_u, threads);
    if (exposed) {
      memcpy(s->wino_w, w->data, bytes);
      s->wino_copied = 1;
    }
    s->wino_epoch = epoch;
    s->wino_valid = 1;
  }
  return s->wino_u;
}

static ns_status conv_forward(ns_ctx *ctx, ns_layer *l) {
  const conv_state *s = l->priv;
  const ns_conv2d_shape *sh = &s->shape;
  const float *bias = s->bias_term ? l->params[1]->data : NULL;
  int threads = ns_ctx_threads(ctx);
  int64_t num = ns_blob_count_range(l->bottom[0], 0, s->axis);
  const float *u = ns_winograd_worth(sh, num, 1) ? wino_weights(ctx, l, threads) : NULL;
  float *scratch =
      ns_layer_scratch(ctx, l, ns_conv2d_batch_scratch_count(sh, num, u != NULL, threads));
  if (!scratch) return ctx->status;
  for (int i = 0; i < l->n_bottom; i++)
    ns_conv2d_batch(sh, num, l->params[0]->data, u, bias, l->bottom[i]->data, l->top[i]->data,
                    scratch, l->relu_fused, threads);
  return NS_OK;
}

/* Backward per item, as Caffe's BaseConvolutionLayer: for each group,
 * dW += dY col^T, dcol = W^T dY then col2im into dX; db += dY summed over
 * space.  col is im2col(x) (x itself on the 1x1 path). */
static ns_status conv_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const conv_state *s = l->priv;
  const ns_conv2d_shape *sh = &s->shape;
  int is_1x1 = ns_conv2d_is_1x1(sh);
  int64_t col_count = is_1x1 ? 0 : ns_conv2d_col_count(sh);
  float *col = NULL, *dcol = NULL;
  if (col_count > 0) {
    if (!(col = ns_layer_scratch(ctx, l, 2 * col_count))) return ctx->status;
    dcol = col + col_count;
  }
  int64_t cg = sh->channels / sh->group, og = sh->num_output / sh->group;
  int64_t kdim = cg * sh->kernel_h * sh->kernel_w, spatial = sh->out_h * sh->out_w;
  int64_t in_item = sh->channels * sh->height * sh->width, out_item = sh->num_output * spatial;
  int threads = ns_ctx_threads(ctx);
  float *dw = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  float *db = s->bias_term && ns_layer_param_grad(l, 1) ? l->params[1]->diff : NULL;
  const float *w = l->params[0]->data;
  ns_im2col_geom g = ns_conv2d_im2col_geom(sh);
  ns_col2im_geom cgeom = ns_conv2d_col2im_geom(sh);
  for (int i = 0; i < l->n_bottom; i++) {
    int64_t num = ns_blob_count_range(l->bottom[i], 0, s->axis);
    for (int64_t n = 0; n < num; n++) {
      const float *x = l->bottom[i]->data + n * in_item;
      const float *dy = l->top[i]->diff + n * out_item;
      if (db)
        for (int64_t o = 0; o < sh->num_output; o++) {
          double sum = 0;
          for (int64_t j = 0; j < spatial; j++) sum += dy[o * spatial + j];
          db[o] += (float)sum;
        }
      if (dw) {
        const float *src = x;
        if (!is_1x1) {
          ns_im2col(&g, x, col, threads);
          src = col;
        }
        for (int64_t k = 0; k < sh->group; k++)
          ns_sgemm(0, 1, og, kdim, spatial, 1.0f, dy + k * og * spatial, spatial,
                   src + k * kdim * spatial, spatial, 1.0f, dw + k * og * kdim, kdim);
      }
      if (down[i]) {
        float *dx = l->bottom[i]->diff + n * in_item;
        float *dst = is_1x1 ? dx : dcol;
        for (int64_t k = 0; k < sh->group; k++)
          ns_sgemm(1, 0, kdim, spatial, og, 1.0f, w + k * og * kdim, kdim, dy + k * og * spatial,
                   spatial, 0.0f, dst + k * kdim * spatial, spatial);
        if (!is_1x1) ns_col2im(&cgeom, dcol, dx, threads);
      }
    }
  }
  return NS_OK;
}

static void conv_destroy(ns_ctx *ctx, ns_layer *l) {
  conv_state *s = l->priv;
  if (!s) return;
  ns_floats_free(ctx, s->wino_u);
  ns_floats_free(ctx, s->wino_w);
}

/* Each output: channels / group * kh * kw multiply-adds. */
static double conv_flops(const ns_layer *l) {
  const ns_blob *w = l->params[0];
  return w->shape[0] ? 2.0 * (double)l->top[0]->count * (double)(w->count / w->shape[0]) : 0;
}

/* A 2-D convolution over (N, C, H, W) slides a window; other layouts
 * (a single spatial axis, a channel axis past 1) have no input grid. */
static void conv_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const conv_state *s = l->priv;
  g->grid = NS_GRID_UNKNOWN;
  if (l->bottom[0]->num_axes != 4 || s->num_spatial != 2) return;
  g->grid = NS_GRID_WINDOW;
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = s->kernel[a];
    g->stride[a] = s->stride[a];
    g->pad[a] = s->pad[a];
    g->dilation[a] = s->dilation[a];
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
    .weight_rank = 4,
    .flops = conv_flops,
    .geometry = conv_geometry,
};
