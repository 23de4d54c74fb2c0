/* Embed, as Caffe's EmbedLayer: a lookup table.  Each bottom value is an
 * integer index k in [0, input_dim); its top row is row k of the weights
 * W (input_dim, num_output), plus the bias b (num_output) when bias_term
 * (default true):  top[i, :] = W[x_i, :] + b.  The top's shape is the
 * bottom's with num_output appended.  embed_param.num_output and
 * input_dim must be positive; fillers as Caffe (default constant 0).
 * Caffe only DCHECKs the indices; here an index that is not an integer
 * in range is an error.  Backward: the weight row of each index gets the
 * top row's gradient added, the bias the sum of all rows; there is no
 * gradient to the indices (an error if asked, as Caffe's CHECK). */
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct embed_state {
  int64_t num_output, input_dim, rows;
  int bias_term;
} embed_state;

static ns_status embed_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__EmbedParameter *p = l->param->embed_param;
  if (!p || !p->has_num_output || p->num_output == 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "embed_param.num_output must be positive");
  if (!p->has_input_dim || p->input_dim == 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "embed_param.input_dim must be positive");
  embed_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->num_output = p->num_output;
  s->input_dim = p->input_dim;
  s->bias_term = p->has_bias_term ? p->bias_term : 1;
  const int64_t wshape[2] = {s->input_dim, s->num_output};
  if (ns_layer_add_param(ctx, l, 2, wshape) != NS_OK ||
      ns_filler_fill(ctx, l->params[0], p->weight_filler, l->rng) != NS_OK)
    return ctx->status;
  if (s->bias_term &&
      (ns_layer_add_param(ctx, l, 1, &s->num_output) != NS_OK ||
       ns_filler_fill(ctx, l->params[1], p->bias_filler, l->rng) != NS_OK))
    return ctx->status;
  return NS_OK;
}

static ns_status embed_reshape(ns_ctx *ctx, ns_layer *l) {
  embed_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (l->top[0] == b) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  if (b->num_axes >= NS_MAX_AXES)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the bottom has %d axes; at most %d", b->num_axes,
                         NS_MAX_AXES - 1);
  if (l->params[0]->count != s->input_dim * s->num_output ||
      (s->bias_term && l->params[1]->count != s->num_output))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "weights must be (%lld, %lld), bias (%lld)",
                         (long long)s->input_dim, (long long)s->num_output,
                         (long long)s->num_output);
  int64_t shape[NS_MAX_AXES];
  memcpy(shape, b->shape, (size_t)b->num_axes * sizeof *shape);
  shape[b->num_axes] = s->num_output;
  if (ns_blob_reshape(ctx, l->top[0], b->num_axes + 1, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Embed): ", l->name);
    return ctx->status;
  }
  s->rows = b->count;
  return NS_OK;
}

/* The row index of bottom value i, or an error naming it. */
static ns_status embed_index(ns_ctx *ctx, const ns_layer *l, int64_t i, int64_t *k) {
  const embed_state *s = l->priv;
  float v = l->bottom[0]->data[i];
  if (!(v >= 0 && v < (float)s->input_dim) || (float)(int64_t)v != v)
    return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                         "input %lld is %g; indices are integers in [0, %lld) (input_dim)",
                         (long long)i, (double)v, (long long)s->input_dim);
  *k = (int64_t)v;
  return NS_OK;
}

static ns_status embed_forward(ns_ctx *ctx, ns_layer *l) {
  const embed_state *s = l->priv;
  const float *w = l->params[0]->data, *bias = s->bias_term ? l->params[1]->data : NULL;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < s->rows; i++, y += s->num_output) {
    int64_t k = 0;
    if (embed_index(ctx, l, i, &k) != NS_OK) return ctx->status;
    memcpy(y, w + k * s->num_output, (size_t)s->num_output * sizeof *y);
    if (bias)
      for (int64_t j = 0; j < s->num_output; j++) y[j] += bias[j];
  }
  return NS_OK;
}

static ns_status embed_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const embed_state *s = l->priv;
  if (down[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the Embed input (indices)");
  const float *dy = l->top[0]->diff;
  if (ns_layer_param_grad(l, 0)) {
    float *dw = l->params[0]->diff;
    for (int64_t i = 0; i < s->rows; i++) {
      int64_t k = 0;
      if (embed_index(ctx, l, i, &k) != NS_OK) return ctx->status;
      for (int64_t j = 0; j < s->num_output; j++) dw[k * s->num_output + j] += dy[i * s->num_output + j];
    }
  }
  if (s->bias_term && ns_layer_param_grad(l, 1)) {
    float *db = l->params[1]->diff;
    for (int64_t i = 0; i < s->rows; i++)
      for (int64_t j = 0; j < s->num_output; j++) db[j] += dy[i * s->num_output + j];
  }
  return NS_OK;
}

static double embed_flops(const ns_layer *l) {
  const embed_state *s = l->priv;
  return s->bias_term ? (double)(s->rows * s->num_output) : 0;
}

const ns_layer_ops ns_embed_ops = {
    .type = "Embed",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = embed_setup,
    .reshape = embed_reshape,
    .forward = embed_forward,
    .backward = embed_backward,
    .flops = embed_flops,
    .weight_rank = 2,
    .export_onnx = ns_onnx_export_embed,
};
