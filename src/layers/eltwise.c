/* Eltwise: element-wise PROD, SUM (with one coefficient per bottom,
 * default 1) or MAX over bottoms of one shape. */
#include "core/layer.h"
#include "export/onnx_layers.h"
#include "kernels/parallel.h"

typedef struct eltwise_state {
  Caffe__EltwiseParameter__EltwiseOp op;
  float *coeff; /* n_bottom coefficients (SUM) */
} eltwise_state;

static ns_status eltwise_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__EltwiseParameter *p = l->param->eltwise_param;
  eltwise_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->op = p && p->has_operation ? p->operation : CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM;
  if (s->op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM &&
      s->op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD &&
      s->op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "eltwise_param.operation %d is unknown",
                         (int)s->op);
  size_t n_coeff = p ? p->n_coeff : 0;
  if (n_coeff != 0 && n_coeff != (size_t)l->n_bottom)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "eltwise_param.coeff has %zu values for %d bottoms (give one per bottom)",
                         n_coeff, l->n_bottom);
  if (n_coeff != 0 && s->op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "eltwise_param.coeff is only allowed with SUM");
  s->coeff = ns_calloc(ctx, (size_t)l->n_bottom, sizeof *s->coeff);
  if (!s->coeff) return ctx->status;
  for (int i = 0; i < l->n_bottom; i++) s->coeff[i] = n_coeff ? p->coeff[i] : 1.0f;
  return NS_OK;
}

static void eltwise_destroy(ns_ctx *ctx, ns_layer *l) {
  eltwise_state *s = l->priv;
  if (s) ns_free(ctx, s->coeff);
}

static ns_status eltwise_reshape(ns_ctx *ctx, ns_layer *l) {
  const ns_blob *b0 = l->bottom[0];
  for (int i = 1; i < l->n_bottom; i++)
    if (!ns_blob_same_shape(l->bottom[i], b0)) {
      char s0[128], s1[128];
      return ns_layer_fail(
          ctx, l, NS_ERR_NET, "bottom '%s' %s and bottom '%s' %s differ in shape", b0->name,
          ns_shape_str(b0->shape, b0->num_axes, s0, sizeof s0), l->bottom[i]->name,
          ns_shape_str(l->bottom[i]->shape, l->bottom[i]->num_axes, s1, sizeof s1));
    }
  /* In place on bottom[0] is fine: forward reads bottom[0] first. */
  for (int i = 1; i < l->n_bottom; i++)
    if (l->top[0] == l->bottom[i])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "top '%s' may only be computed in place on bottom 0",
                           l->top[0]->name);
  if (ns_blob_reshape_like(ctx, l->top[0], b0) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Eltwise): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* Four floats in a GCC vector (an SSE register in any x86-64 build):
 * -O2 leaves these loops scalar. */
typedef float v4 __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* y = c a (add 0) or y += c b (add 1) over n floats: the product rounded,
 * then the sum, as Caffe's axpy chain. */
static void scaled_into(float *y, const float *a, float c, int64_t n, int add) {
  const v4 vc = {c, c, c, c};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    v4 va, vy;
    __builtin_memcpy(&va, a + j, sizeof va);
    if (add) {
      __builtin_memcpy(&vy, y + j, sizeof vy);
      vy += vc * va;
    } else {
      vy = vc * va;
    }
    __builtin_memcpy(y + j, &vy, sizeof vy);
  }
  for (; j < n; j++) y[j] = add ? y[j] + c * a[j] : c * a[j];
}

/* max(0, y) in place; a NaN passes, as Caffe's ReLU. */
static void relu_in_place(float *y, int64_t n) {
  const v4 zero = {0};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    v4 v;
    __builtin_memcpy(&v, y + j, sizeof v);
    v = (v4)((v4i)v & ~(v < zero));
    __builtin_memcpy(y + j, &v, sizeof v);
  }
  for (; j < n; j++) y[j] = y[j] < 0.0f ? 0.0f : y[j];
}

/* SUM in blocks of 4096 shared out among the threads (ResNet's shortcut
 * adds: a block of every bottom stays in L1), each element summed in
 * bottom order as Caffe's axpy chain, then the fused ReLU. */
static void eltwise_sum(const ns_layer *l, const float *coeff, float *y, int64_t n, int relu,
                        int threads) {
  enum { BLOCK = 4096 };
  int64_t blocks = (n + BLOCK - 1) / BLOCK;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && blocks > 1)
  for (int64_t k = 0; k < blocks; k++) {
    int64_t j0 = k * BLOCK, len = n - j0 < BLOCK ? n - j0 : BLOCK;
    for (int i = 0; i < l->n_bottom; i++)
      scaled_into(y + j0, l->bottom[i]->data + j0, coeff[i], len, i > 0);
    if (relu) relu_in_place(y + j0, len);
  }
}

static ns_status eltwise_forward(ns_ctx *ctx, ns_layer *l) {
  const eltwise_state *s = l->priv;
  float *y = l->top[0]->data;
  const float *a = l->bottom[0]->data;
  int64_t n = l->top[0]->count;
  switch (s->op) {
    case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD:
      for (int64_t j = 0; j < n; j++) y[j] = a[j];
      for (int i = 1; i < l->n_bottom; i++) {
        const float *b = l->bottom[i]->data;
        for (int64_t j = 0; j < n; j++) y[j] *= b[j];
      }
      break;
    case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX:
      for (int64_t j = 0; j < n; j++) y[j] = a[j];
      for (int i = 1; i < l->n_bottom; i++) {
        const float *b = l->bottom[i]->data;
        for (int64_t j = 0; j < n; j++)
          if (b[j] > y[j]) y[j] = b[j];
      }
      break;
    default: /* SUM, accumulated in bottom order as Caffe's axpy chain */
      eltwise_sum(l, s->coeff, y, n, l->relu_fused, ns_ctx_threads(ctx));
      return NS_OK;
  }
  if (l->relu_fused) relu_in_place(y, n);
  return NS_OK;
}

/* Backward, as Caffe's Eltwise: SUM dx_i = coeff_i dy; PROD dx_i = dy times
 * the other bottoms (Caffe's stable_prod_grad); MAX routes dy to the
 * bottom that won (Caffe's rule: bottom 1 wins a tie with bottom 0, the
 * earlier one any later tie).  Bottom 0 last, so that in place (top ==
 * bottom 0) SUM reads dy before overwriting it; PROD and MAX need the
 * bottom's data, so they have no backward in place. */
static ns_status eltwise_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const eltwise_state *s = l->priv;
  const float *dy = l->top[0]->diff;
  int64_t n = l->top[0]->count;
  int in_place = l->top[0] == l->bottom[0];
  if (in_place && s->op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "no backward in place for PROD or MAX (it needs bottom 0's data)");
  for (int i = l->n_bottom - 1; i >= 0; i--) {
    if (!down[i]) continue;
    float *dx = l->bottom[i]->diff;
    switch (s->op) {
      case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD:
        for (int64_t j = 0; j < n; j++) {
          float p = dy[j];
          for (int k = 0; k < l->n_bottom; k++)
            if (k != i) p *= l->bottom[k]->data[j];
          dx[j] = p;
        }
        break;
      case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX:
        for (int64_t j = 0; j < n; j++) {
          int arg = l->bottom[0]->data[j] > l->bottom[1]->data[j] ? 0 : 1;
          float best = l->bottom[arg]->data[j];
          for (int k = 2; k < l->n_bottom; k++)
            if (l->bottom[k]->data[j] > best) {
              best = l->bottom[k]->data[j];
              arg = k;
            }
          dx[j] = arg == i ? dy[j] : 0.0f;
        }
        break;
      default:
        for (int64_t j = 0; j < n; j++) dx[j] = s->coeff[i] * dy[j];
        break;
    }
  }
  return NS_OK;
}

/* A SUM of two with unit coefficients: b0 + b1, one rounding, the sum a
 * convolution's epilogue adds in the same order of operations. */
static int eltwise_fuses_as_residual(const ns_layer *l) {
  const eltwise_state *s = l->priv;
  return s->op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM && l->n_bottom == 2 &&
         s->coeff[0] == 1.0f && s->coeff[1] == 1.0f;
}

const ns_layer_ops ns_eltwise_ops = {
    .type = "Eltwise",
    .min_bottoms = 2,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = eltwise_setup,
    .reshape = eltwise_reshape,
    .forward = eltwise_forward,
    .backward = eltwise_backward,
    .destroy = eltwise_destroy,
    .can_fuse_relu = 1,
    .fuses_as_residual = eltwise_fuses_as_residual,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_eltwise,
};
