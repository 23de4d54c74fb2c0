/* Element-wise neurons, as Caffe's NeuronLayer family: one bottom, one top
 * of the same shape, in place allowed (except AbsVal, as in Caffe).
 *   Sigmoid  y = 1 / (1 + e^-x)
 *   TanH     y = tanh x
 *   AbsVal   y = |x|
 *   Power    y = (shift + scale x)^power
 *   ELU      y = x > 0 ? x : alpha (e^x - 1)
 *   BNLL     y = log(1 + e^x)
 *   Exp      y = base^(shift + scale x)          (base -1: e)
 *   Log      y = log_base(shift + scale x)       (base -1: e)
 *   PReLU    y = x > 0 ? x : slope[c] x          (c: axis 1, or one shared slope) */
#include <math.h>
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct neuron_state neuron_state;
typedef void (*neuron_fn)(const neuron_state *s, const float *x, float *y, int64_t n);

struct neuron_state {
  neuron_fn fn;
  float scale, shift, power; /* Power; Exp and Log reuse scale/shift */
  float alpha;               /* ELU */
  float inner, outer;        /* Exp: y = outer e^(inner x); Log: y = outer ln(scale x + shift) */
  int64_t channels;          /* PReLU: number of slopes */
  float *saved;              /* PReLU in place, TRAIN: the bottom before forward */
  int64_t saved_cap;
};

/* The layer's state, in l->priv; NULL (error recorded) when out of memory. */
static neuron_state *neuron_init(ns_ctx *ctx, ns_layer *l, neuron_fn fn) {
  neuron_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return NULL;
  l->priv = s;
  s->fn = fn;
  return s;
}

static ns_status neuron_reshape(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0]) return NS_OK;
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status neuron_forward(ns_ctx *ctx, ns_layer *l) {
  const neuron_state *s = l->priv;
  s->fn(s, l->bottom[0]->data, l->top[0]->data, l->bottom[0]->count);
  return NS_OK;
}

/* Backward of an element-wise neuron: dx from x, y and dy (x is y when
 * in place; each formula below is the one Caffe's layer uses). */
#define NEURON_BACKWARD(NAME)                                                    \
  static ns_status NAME##_backward(ns_ctx *ctx, ns_layer *l, const int *down) {  \
    if (down[0])                                                                 \
      NAME##_grad(l->priv, l->bottom[0]->data, l->top[0]->data, l->top[0]->diff, \
                  l->bottom[0]->diff, l->bottom[0]->count);                      \
    return NS_OK;                                                                \
  }

#define NEURON_OPS(NAME, TYPE, SETUP, RESHAPE) \
  NEURON_BACKWARD(NAME)                        \
  const ns_layer_ops ns_##NAME##_ops = {       \
      .type = TYPE,                            \
      .min_bottoms = 1,                        \
      .max_bottoms = 1,                        \
      .min_tops = 1,                           \
      .max_tops = 1,                           \
      .setup = SETUP,                          \
      .reshape = RESHAPE,                      \
      .forward = neuron_forward,               \
      .backward = NAME##_backward,             \
      .geometry = ns_layer_geometry_pointwise, \
      .export_onnx = ns_onnx_export_##NAME,    \
  };

/* ---- Sigmoid, TanH, AbsVal, BNLL: no params --------------------------- */

/* The tanh form does not overflow for large |x|. */
static void sigmoid_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * tanhf(0.5f * x[i]) + 0.5f;
}
static void tanh_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void absval_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
}
/* log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow. */
static void bnll_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = (float)((x[i] > 0 ? (double)x[i] : 0.0) + log1p(exp(-fabs((double)x[i]))));
}

static ns_status sigmoid_setup(ns_ctx *ctx, ns_layer *l) {
  return neuron_init(ctx, l, sigmoid_fn) ? NS_OK : ctx->status;
}
static ns_status tanh_setup(ns_ctx *ctx, ns_layer *l) {
  return neuron_init(ctx, l, tanh_fn) ? NS_OK : ctx->status;
}
static ns_status absval_setup(ns_ctx *ctx, ns_layer *l) {
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "in-place computation is not allowed (Caffe's AbsVal refuses it)");
  return neuron_init(ctx, l, absval_fn) ? NS_OK : ctx->status;
}
static ns_status bnll_setup(ns_ctx *ctx, ns_layer *l) {
  return neuron_init(ctx, l, bnll_fn) ? NS_OK : ctx->status;
}

static void sigmoid_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                         float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}
static void tanh_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                      float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
static void absval_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                        float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (float)((x[i] > 0) - (x[i] < 0));
}
static void bnll_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                      float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

NEURON_OPS(sigmoid, "Sigmoid", sigmoid_setup, neuron_reshape)
NEURON_OPS(tanh, "TanH", tanh_setup, neuron_reshape)
NEURON_OPS(absval, "AbsVal", absval_setup, neuron_reshape)
NEURON_OPS(bnll, "BNLL", bnll_setup, neuron_reshape)

/* ---- Power ------------------------------------------------------------ */

static void power_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  if (s->power * s->scale == 0.0f) { /* constant output, as Caffe */
    float v = s->power == 0.0f ? 1.0f : powf(s->shift, s->power);
    for (int64_t i = 0; i < n; i++) y[i] = v;
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float v = s->scale * x[i] + s->shift;
    y[i] = s->power == 1.0f ? v : powf(v, s->power);
  }
}

static ns_status power_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__PowerParameter *p = l->param->power_param;
  neuron_state *s = neuron_init(ctx, l, power_fn);
  if (!s) return ctx->status;
  s->power = p && p->has_power ? p->power : 1.0f;
  s->scale = p && p->has_scale ? p->scale : 1.0f;
  s->shift = p && p->has_shift ? p->shift : 0.0f;
  return NS_OK;
}
static void power_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                       float *dx, int64_t n) {
  float k = s->power * s->scale;
  for (int64_t i = 0; i < n; i++) {
    if (k == 0.0f || s->power == 1.0f) {
      dx[i] = dy[i] * k;
      continue;
    }
    float v = s->scale * x[i] + s->shift;
    dx[i] = dy[i] * k * (s->power == 2.0f ? v : powf(v, s->power - 1.0f));
  }
}
NEURON_OPS(power, "Power", power_setup, neuron_reshape)

/* ---- ELU -------------------------------------------------------------- */

static void elu_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : s->alpha * (expf(x[i]) - 1.0f);
}

static ns_status elu_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ELUParameter *p = l->param->elu_param;
  neuron_state *s = neuron_init(ctx, l, elu_fn);
  if (!s) return ctx->status;
  s->alpha = p && p->has_alpha ? p->alpha : 1.0f;
  return NS_OK;
}
static void elu_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                     float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0 ? 1.0f : y[i] + s->alpha);
}
NEURON_OPS(elu, "ELU", elu_setup, neuron_reshape)

/* ---- Exp and Log -------------------------------------------------------- */

/* Checks base (-1 for e) and gives ln(base), 1 for e. */
static ns_status exp_log_base(ns_ctx *ctx, ns_layer *l, const char *field, float b,
                              float *ln_base) {
  if (!(b > 0.0f) && b != -1.0f)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%s.base %g must be positive, or -1 for e", field,
                         (double)b);
  *ln_base = b == -1.0f ? 1.0f : logf(b);
  if (!isfinite(*ln_base))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%s.base %g gives log(base) = %g", field, (double)b,
                         (double)*ln_base);
  return NS_OK;
}

static void exp_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = s->outer * expf(s->inner * x[i]);
}

static ns_status exp_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ExpParameter *p = l->param->exp_param;
  neuron_state *s = neuron_init(ctx, l, exp_fn);
  if (!s) return ctx->status;
  float ln_base, base = p && p->has_base ? p->base : -1.0f;
  if (exp_log_base(ctx, l, "exp_param", base, &ln_base) != NS_OK) return ctx->status;
  float scale = p && p->has_scale ? p->scale : 1.0f;
  float shift = p && p->has_shift ? p->shift : 0.0f;
  s->inner = ln_base * scale;
  s->outer = shift == 0.0f ? 1.0f : base == -1.0f ? expf(shift) : powf(base, shift);
  return NS_OK;
}
static void exp_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                     float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * s->inner;
}
NEURON_OPS(exp, "Exp", exp_setup, neuron_reshape)

static void log_fn(const neuron_state *s, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = s->outer * logf(s->scale * x[i] + s->shift);
}

static ns_status log_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__LogParameter *p = l->param->log_param;
  neuron_state *s = neuron_init(ctx, l, log_fn);
  if (!s) return ctx->status;
  float ln_base, base = p && p->has_base ? p->base : -1.0f;
  if (exp_log_base(ctx, l, "log_param", base, &ln_base) != NS_OK) return ctx->status;
  s->outer = 1.0f / ln_base;
  if (!isfinite(s->outer))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "log_param.base %g gives 1 / log(base) = %g",
                         (double)base, (double)s->outer);
  s->scale = p && p->has_scale ? p->scale : 1.0f;
  s->shift = p && p->has_shift ? p->shift : 0.0f;
  return NS_OK;
}
static void log_grad(const neuron_state *s, const float *x, const float *y, const float *dy,
                     float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = dy[i] * s->outer * s->scale / (s->scale * x[i] + s->shift);
}
NEURON_OPS(log, "Log", log_setup, neuron_reshape)

/* ---- PReLU ------------------------------------------------------------ */

static ns_status prelu_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__PReLUParameter *p = l->param->prelu_param;
  neuron_state *s = neuron_init(ctx, l, NULL);
  if (!s) return ctx->status;
  const ns_blob *x = l->bottom[0];
  if (x->num_axes < 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' has %d axes; PReLU needs at least 2",
                         x->name, x->num_axes);
  int shared = p && p->has_channel_shared ? p->channel_shared : 0;
  s->channels = x->shape[1];
  const int64_t shape[1] = {s->channels};
  if (ns_layer_add_param(ctx, l, shared ? 0 : 1, shape) != NS_OK) return ctx->status;
  Caffe__FillerParameter quarter = CAFFE__FILLER_PARAMETER__INIT;
  quarter.type = (char *)"constant";
  quarter.has_value = 1;
  quarter.value = 0.25f;
  return ns_filler_fill(ctx, l->params[0], p && p->filler ? p->filler : &quarter, l->rng);
}

static ns_status prelu_reshape(ns_ctx *ctx, ns_layer *l) {
  const neuron_state *s = l->priv;
  const ns_blob *x = l->bottom[0];
  if (x->num_axes < 2 || x->shape[1] != s->channels)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' changed channels (expected %lld)",
                         x->name, (long long)s->channels);
  int64_t want = l->params[0]->num_axes == 0 ? 1 : s->channels;
  if (l->params[0]->count != want)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "slope param has %lld values, expected %lld",
                         (long long)l->params[0]->count, (long long)want);
  return neuron_reshape(ctx, l);
}

static void prelu_destroy(ns_ctx *ctx, ns_layer *l) {
  neuron_state *s = l->priv;
  if (s) ns_floats_free(ctx, s->saved);
}

/* In place, backward needs the bottom that forward overwrites: training
 * keeps a copy (as Caffe's bottom_memory_). */
static ns_status prelu_save_bottom(ns_ctx *ctx, ns_layer *l) {
  neuron_state *s = l->priv;
  return ns_floats_save(ctx, &s->saved, &s->saved_cap, l->bottom[0]->data, l->bottom[0]->count);
}

static ns_status prelu_forward(ns_ctx *ctx, ns_layer *l) {
  const neuron_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (l->top[0] == b && ns_layer_phase_train(l) && prelu_save_bottom(ctx, l) != NS_OK)
    return ctx->status;
  const float *x = b->data, *slope = l->params[0]->data;
  float *y = l->top[0]->data;
  int shared = l->params[0]->num_axes == 0;
  int64_t c = s->channels, num = b->shape[0], dim = ns_blob_count_range(b, 2, b->num_axes);
  for (int64_t i = 0; i < num; i++)
    for (int64_t k = 0; k < c; k++) {
      float a = slope[shared ? 0 : k];
      int64_t base = (i * c + k) * dim;
      for (int64_t j = 0; j < dim; j++) {
        float v = x[base + j];
        y[base + j] = (v > 0 ? v : 0.0f) + a * (v < 0 ? v : 0.0f);
      }
    }
  return NS_OK;
}

/* dx = dy (x > 0 ? 1 : slope); d slope += sum dy x over x <= 0. */
static ns_status prelu_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const neuron_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  const float *x = l->top[0] == b ? s->saved : b->data;
  if (l->top[0] == b && (!x || s->saved_cap < b->count))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place backward needs a TRAIN forward first");
  const float *slope = l->params[0]->data, *dy = l->top[0]->diff;
  float *ds = ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL;
  int shared = l->params[0]->num_axes == 0;
  int64_t c = s->channels, num = b->shape[0], dim = ns_blob_count_range(b, 2, b->num_axes);
  for (int64_t i = 0; i < num; i++)
    for (int64_t k = 0; k < c; k++) {
      int64_t base = (i * c + k) * dim;
      float a = slope[shared ? 0 : k];
      if (ds) {
        double g = 0;
        for (int64_t j = 0; j < dim; j++)
          if (x[base + j] <= 0) g += (double)dy[base + j] * x[base + j];
        ds[shared ? 0 : k] += (float)g;
      }
      if (down[0])
        for (int64_t j = 0; j < dim; j++)
          b->diff[base + j] = dy[base + j] * (x[base + j] > 0 ? 1.0f : a);
    }
  return NS_OK;
}

const ns_layer_ops ns_prelu_ops = {
    .type = "PReLU",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = prelu_setup,
    .reshape = prelu_reshape,
    .forward = prelu_forward,
    .backward = prelu_backward,
    .destroy = prelu_destroy,
    .geometry = ns_layer_geometry_pointwise,
    .export_onnx = ns_onnx_export_prelu,
};
