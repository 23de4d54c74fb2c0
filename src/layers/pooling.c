/* Pooling, as Caffe's: MAX, AVE, or STOCHASTIC (test-time rule) over 2-D
 * windows of a [num, channels, height, width] bottom.  Output size rounds
 * up (round_mode CEIL, the default; FLOOR is the later Caffe option, and
 * the forks' ceil_mode: false the same) and
 * drops a last window that would start in the padding.  MAX may have a
 * second top: the index h * width + w of each maximum, as Caffe's mask.
 * Caffe's CPU code has no STOCHASTIC forward; its GPU test-time rule (a
 * weighted average sum x^2 / sum x) is what we run. */
#include <limits.h>

#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/pool2d.h"

typedef struct pool_state {
  ns_pool_method method;
  int global, floor_mode;
  int kernel[2], pad[2], stride[2]; /* [0] height, [1] width */
  ns_pool2d_shape shape;            /* set by reshape */
} pool_state;

static const char *const method_names[] = {"MAX", "AVE", "STOCHASTIC"};

/* Which of the exclusive spellings (`x` or x_h + x_w) a field uses. */
static ns_status check_spelling(ns_ctx *ctx, const ns_layer *l, const char *name, int has,
                                int has_h, int has_w) {
  if ((!has && has_h && has_w) || (!has_h && !has_w)) return NS_OK;
  return ns_layer_fail(ctx, l, NS_ERR_NET,
                       "pooling_param: give either %s or both %s_h and %s_w (only one form)", name,
                       name, name);
}

static ns_status read_kernel(ns_ctx *ctx, const ns_layer *l, const Caffe__PoolingParameter *p,
                             pool_state *s) {
  int has_hw = p->has_kernel_h && p->has_kernel_w;
  if (s->global) {
    if (p->has_kernel_size || p->has_kernel_h || p->has_kernel_w)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "pooling_param: global_pooling takes its kernel from the input; "
                           "kernel_size / kernel_h / kernel_w must not be given");
    return NS_OK;
  }
  if (p->has_kernel_size && has_hw)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: give kernel_size or kernel_h and kernel_w, not both");
  if (!p->has_kernel_size && !has_hw)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: kernel_size (or both kernel_h and kernel_w) is required");
  uint32_t kh = p->has_kernel_size ? p->kernel_size : p->kernel_h;
  uint32_t kw = p->has_kernel_size ? p->kernel_size : p->kernel_w;
  if (kh == 0 || kw == 0 || kh > INT_MAX / 4 || kw > INT_MAX / 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "pooling_param: kernel %ux%u is out of range", kh, kw);
  s->kernel[0] = (int)kh;
  s->kernel[1] = (int)kw;
  return NS_OK;
}

static ns_status read_pad_stride(ns_ctx *ctx, const ns_layer *l, const Caffe__PoolingParameter *p,
                                 pool_state *s) {
  if (check_spelling(ctx, l, "pad", p->has_pad, p->has_pad_h, p->has_pad_w) != NS_OK ||
      check_spelling(ctx, l, "stride", p->has_stride, p->has_stride_h, p->has_stride_w) != NS_OK)
    return ctx->status;
  uint32_t pad = p->has_pad ? p->pad : 0, stride = p->has_stride ? p->stride : 1;
  uint32_t v[4] = {p->has_pad_h ? p->pad_h : pad, p->has_pad_h ? p->pad_w : pad,
                   p->has_stride_h ? p->stride_h : stride, p->has_stride_h ? p->stride_w : stride};
  if (v[0] > INT_MAX / 4 || v[1] > INT_MAX / 4 || v[2] == 0 || v[3] == 0 || v[2] > INT_MAX / 4 ||
      v[3] > INT_MAX / 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: pad %ux%u / stride %ux%u is out of range (stride > 0)",
                         v[0], v[1], v[2], v[3]);
  for (int i = 0; i < 2; i++) {
    s->pad[i] = (int)v[i];
    s->stride[i] = (int)v[2 + i];
  }
  if (s->global && (s->pad[0] || s->pad[1] || s->stride[0] != 1 || s->stride[1] != 1))
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: global_pooling allows only pad 0 and stride 1");
  return NS_OK;
}

static ns_status check_pad(ns_ctx *ctx, const ns_layer *l, const pool_state *s) {
  if (!s->pad[0] && !s->pad[1]) return NS_OK;
  if (s->method == NS_POOL_STOCHASTIC)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: padding works only with MAX and AVE pooling, not "
                         "STOCHASTIC");
  if (s->pad[0] >= s->kernel[0] || s->pad[1] >= s->kernel[1])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: pad %dx%d must be smaller than the kernel %dx%d",
                         s->pad[0], s->pad[1], s->kernel[0], s->kernel[1]);
  return NS_OK;
}

/* Output rounding: BVLC's round_mode, or the forks' ceil_mode (Caffe PR
 * #3057, OpenCV, DenseNet-Caffe), where false means FLOOR.  Both given and
 * disagreeing is refused rather than one silently winning. */
static ns_status read_rounding(ns_ctx *ctx, ns_layer *l, const Caffe__PoolingParameter *p,
                               pool_state *s) {
  int round_floor =
      p->has_round_mode && p->round_mode == CAFFE__POOLING_PARAMETER__ROUND_MODE__FLOOR;
  int ceil_floor = p->has_ceil_mode && !p->ceil_mode;
  if (p->has_round_mode && p->has_ceil_mode && round_floor != ceil_floor)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "pooling_param: round_mode %s and ceil_mode %s disagree",
                         round_floor ? "FLOOR" : "CEIL", p->ceil_mode ? "true" : "false");
  s->floor_mode = round_floor || ceil_floor;
  return NS_OK;
}

static ns_status pool_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__PoolingParameter defaults = CAFFE__POOLING_PARAMETER__INIT;
  const Caffe__PoolingParameter *p = l->param->pooling_param;
  if (!p) p = &defaults;
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not supported (blob '%s')",
                         l->top[0]->name);
  pool_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  int pool = p->has_pool ? (int)p->pool : 0;
  if (pool < 0 || pool > 2)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "pooling_param.pool %d is unknown", pool);
  s->method = (ns_pool_method)pool;
  s->global = p->has_global_pooling && p->global_pooling;
  if (read_rounding(ctx, l, p, s) != NS_OK) return ctx->status;
  if (l->n_top > 1 && s->method != NS_POOL_MAX)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%s pooling has one top, not %d (only MAX has a mask)",
                         method_names[s->method], l->n_top);
  if (read_kernel(ctx, l, p, s) != NS_OK || read_pad_stride(ctx, l, p, s) != NS_OK)
    return ctx->status;
  return s->global ? NS_OK : check_pad(ctx, l, s);
}

/* Output size along one axis, or an error naming it. */
static ns_status out_size(ns_ctx *ctx, const ns_layer *l, const pool_state *s, int i, int64_t in,
                          int64_t *out) {
  int any_pad = s->pad[0] || s->pad[1];
  *out = ns_pool_out_size(in, s->kernel[i], s->pad[i], s->stride[i], any_pad, s->floor_mode);
  if (*out <= 0 || (*out - 1) * s->stride[i] >= in + s->pad[i])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "input %s %lld with kernel %d, pad %d, stride %d gives no valid "
                         "pooling output",
                         i ? "width" : "height", (long long)in, s->kernel[i], s->pad[i],
                         s->stride[i]);
  return NS_OK;
}

static ns_status pool_reshape(ns_ctx *ctx, ns_layer *l) {
  pool_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  char buf[128];
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s must have 4 axes (num, channels, height, width)", b->name,
                         ns_shape_str(b->shape, b->num_axes, buf, sizeof buf));
  int64_t h = b->shape[2], w = b->shape[3];
  if (h < 1 || w < 1 || h > INT_MAX / 4 || w > INT_MAX / 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' %s has an unusable spatial size", b->name,
                         ns_shape_str(b->shape, b->num_axes, buf, sizeof buf));
  if (s->global) {
    s->kernel[0] = (int)h;
    s->kernel[1] = (int)w;
  }
  int64_t oh, ow;
  if (out_size(ctx, l, s, 0, h, &oh) != NS_OK || out_size(ctx, l, s, 1, w, &ow) != NS_OK)
    return ctx->status;
  ns_pool2d_shape sh = {b->shape[0] * b->shape[1],
                        h,
                        w,
                        s->kernel[0],
                        s->kernel[1],
                        s->pad[0],
                        s->pad[1],
                        s->stride[0],
                        s->stride[1],
                        oh,
                        ow};
  s->shape = sh;
  const int64_t shape[4] = {b->shape[0], b->shape[1], oh, ow};
  for (int i = 0; i < l->n_top; i++)
    if (ns_blob_reshape(ctx, l->top[i], 4, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Pooling): ", l->name);
      return ctx->status;
    }
  return NS_OK;
}

static ns_status pool_forward(ns_ctx *ctx, ns_layer *l) {
  const pool_state *s = l->priv;
  float *mask = l->n_top > 1 ? l->top[1]->data : NULL;
  ns_pool2d(&s->shape, s->method, l->bottom[0]->data, l->top[0]->data, mask, ns_ctx_threads(ctx));
  return NS_OK;
}

/* Backward (kernels/pool2d.h); STOCHASTIC has no gradient here. */
static ns_status pool_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const pool_state *s = l->priv;
  if (!down[0]) return NS_OK;
  if (s->method == NS_POOL_STOCHASTIC)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "STOCHASTIC pooling has no backward");
  ns_pool2d_backward(&s->shape, s->method, l->bottom[0]->data, l->top[0]->diff, l->bottom[0]->diff,
                     ns_ctx_threads(ctx));
  return NS_OK;
}

/* Global pooling sees the whole plane; else a window with no dilation. */
static void pool_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const pool_state *s = l->priv;
  ns_layer_geometry_window(g);
  if (s->global) g->grid = NS_GRID_GLOBAL;
  for (int a = 0; a < 2 && !s->global; a++) {
    g->kernel[a] = s->kernel[a];
    g->stride[a] = s->stride[a];
    g->pad[a] = s->pad[a];
  }
}

const ns_layer_ops ns_pooling_ops = {
    .type = "Pooling",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 2,
    .setup = pool_setup,
    .reshape = pool_reshape,
    .forward = pool_forward,
    .backward = pool_backward,
    .geometry = pool_geometry,
    .export_onnx = ns_onnx_export_pooling,
};
