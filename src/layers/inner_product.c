/* InnerProduct, as Caffe's: the bottom flattened from inner_product_param.axis
 * (default 1) is x [M, K]; y [M, N] = x W^T + b with weights W [N, K], or
 * y = x W with W [K, N] when transpose is set; bias [N].  The top keeps the
 * bottom's axes before `axis` and adds N. */
#include <string.h>

#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/pgemm.h"
#include "layers/conv_params.h"

typedef struct ip_state {
  int axis; /* canonical, from setup */
  int64_t num_output, k, m;
  int bias_term, transpose;
} ip_state;

static ns_status ip_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__InnerProductParameter defaults = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  const Caffe__InnerProductParameter *p = l->param->inner_product_param;
  if (!p) p = &defaults;
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not supported (blob '%s')",
                         l->top[0]->name);
  ip_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  const ns_blob *b = l->bottom[0];
  if (ns_blob_axis(ctx, b, p->has_axis ? p->axis : 1, "inner_product_param.axis", &s->axis) !=
      NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (InnerProduct): ", l->name);
    return ctx->status;
  }
  s->num_output = p->has_num_output ? p->num_output : 0;
  s->bias_term = p->has_bias_term ? p->bias_term : 1;
  s->transpose = p->has_transpose ? p->transpose : 0;
  s->k = ns_blob_count_range(b, s->axis, b->num_axes);
  if (s->num_output <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "inner_product_param.num_output must be positive");
  const int64_t wshape[2] = {s->transpose ? s->k : s->num_output,
                             s->transpose ? s->num_output : s->k};
  return ns_conv_add_params(ctx, l, 2, wshape, p->weight_filler, s->bias_term, s->num_output,
                            p->bias_filler);
}

static ns_status ip_reshape(ns_ctx *ctx, ns_layer *l) {
  ip_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  char buf[128];
  if (s->axis >= b->num_axes)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' %s has no axis %d", b->name,
                         ns_shape_str(b->shape, b->num_axes, buf, sizeof buf), s->axis);
  int64_t k = ns_blob_count_range(b, s->axis, b->num_axes);
  if (k != s->k)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom '%s' %s has %lld inputs per item from axis %d, but the weights "
                         "take %lld",
                         b->name, ns_shape_str(b->shape, b->num_axes, buf, sizeof buf),
                         (long long)k, s->axis, (long long)s->k);
  s->m = ns_blob_count_range(b, 0, s->axis);
  if (!ns_gemm_fits(s->m, s->num_output, s->k))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' is too large for InnerProduct", b->name);
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  shape[s->axis] = s->num_output;
  if (ns_blob_reshape(ctx, l->top[0], s->axis + 1, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (InnerProduct): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Up to this many rows, dot products straight on the weight rows (the
 * weights stream through once); above, the GEMM Y^T = W X^T with the
 * weights read in place and only X packed. */
enum { IP_ROWS_MAX = 12 };

static ns_status ip_forward(ns_ctx *ctx, ns_layer *l) {
  const ip_state *s = l->priv;
  const float *w = l->params[0]->data, *x = l->bottom[0]->data;
  const float *bias = s->bias_term ? l->params[1]->data : NULL;
  float *y = l->top[0]->data;
  int64_t n = s->num_output, m = s->m;
  int threads = ns_ctx_threads(ctx);
  if (!s->transpose && m <= IP_ROWS_MAX) {
    ns_gemm_rows(m, n, s->k, x, s->k, w, s->k, y, n, bias, l->relu_fused, threads);
    return NS_OK;
  }
  int64_t pack_floats = ns_gemm_scratch_floats(threads);
  float *scratch = ns_layer_scratch(ctx, l, pack_floats + (s->transpose ? 0 : m * n));
  if (!scratch) return ctx->status;
  if (s->transpose) { /* W [k, n] is op(B) as stored */
    ns_gemm_epi epi = {NULL, bias, l->relu_fused, NULL, NULL};
    ns_gemm(m, n, s->k, x, s->k, w, n, 0, y, n, &epi, scratch, threads);
    return NS_OK;
  }
  float *yt = scratch + pack_floats; /* Y^T [n, m] */
  ns_gemm_epi epi = {bias, NULL, l->relu_fused, NULL, NULL};
  ns_gemm(n, m, s->k, w, s->k, x, s->k, 1, yt, m, &epi, scratch, threads);
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (m * n > 65536)
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) y[i * n + j] = yt[j * m + i];
  return NS_OK;
}

/* dW += dY^T X (or X^T dY when transposed), db += column sums of dY,
 * dX = dY W (or dY W^T), as Caffe's InnerProductLayer. */
static ns_status ip_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const ip_state *s = l->priv;
  const float *x = l->bottom[0]->data, *dy = l->top[0]->diff, *w = l->params[0]->data;
  int64_t n = s->num_output;
  if (ns_layer_param_grad(l, 0)) {
    if (s->transpose)
      ns_sgemm(1, 0, s->k, n, s->m, 1.0f, x, s->k, dy, n, 1.0f, l->params[0]->diff, n);
    else
      ns_sgemm(1, 0, n, s->k, s->m, 1.0f, dy, n, x, s->k, 1.0f, l->params[0]->diff, s->k);
  }
  /* Rows are items: the bias of a 1x1 convolution over m items. */
  if (s->bias_term && ns_layer_param_grad(l, 1))
    ns_conv2d_bias_backward(s->m, n, 1, dy, l->params[1]->diff);
  if (down[0])
    ns_sgemm(0, s->transpose, s->m, s->k, n, 1.0f, dy, n, w, s->transpose ? n : s->k, 0.0f,
             l->bottom[0]->diff, s->k);
  return NS_OK;
}

/* Each output: K multiply-adds. */
static double ip_flops(const ns_layer *l) {
  const ns_blob *w = l->params[0];
  const ip_state *s = l->priv;
  int64_t n_out = w->num_axes == 2 ? w->shape[s->transpose ? 1 : 0] : 0;
  return n_out ? 2.0 * (double)l->top[0]->count * (double)(w->count / n_out) : 0;
}

/* Flattened from the channel axis, every output sees the whole plane;
 * from any other axis, no grid survives. */
static void ip_geometry(const ns_layer *l, ns_layer_geometry *g) {
  const Caffe__InnerProductParameter *p = l->param->inner_product_param;
  g->grid = !p || !p->has_axis || p->axis == 1 ? NS_GRID_GLOBAL : NS_GRID_UNKNOWN;
}

const ns_layer_ops ns_inner_product_ops = {
    .type = "InnerProduct",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = ip_setup,
    .reshape = ip_reshape,
    .forward = ip_forward,
    .backward = ip_backward,
    .can_fuse_relu = 1,
    .weight_rank = 2,
    .flops = ip_flops,
    .geometry = ip_geometry,
    .export_onnx = ns_onnx_export_inner_product,
};
